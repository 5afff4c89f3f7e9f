"""Stock counts on handhelds: a ``count`` task from a count's snapshot, and its scans back as counted lines.

Sending: :func:`prepare_task` builds the task from the count's lines (product, till barcodes, PLU,
GTIN of marked goods, unit; a blind count unless ``show_expected``), records it in
``inventory_count_tasks`` (the args are kept, so a retried POST is the same ``assign_task``
command) and the router sends it through :mod:`cloud.handheld` (the store's pool device,
command id ``hht-{task_id}``).

Reading back — a **poll of the events table**, not a hook in the bus consumer: the consumer stores
events in multi-row ``INSERT … ON CONFLICT DO NOTHING`` batches inside one transaction per batch
(no ORM objects to listen to, and an after-commit listener would run count logic — locks on the
count document — on the consumer's writer thread and slow every gateway's events down).
:func:`sync_open_tasks` (Celery ``cloud.inventory.sync_handheld_counts``, every few seconds, and
``POST /inventory/counts/{id}/handheld-sync`` on demand) reads, per open task, the
``task_line``/``task_completed`` events after its cursor:

* each ``line_id`` becomes one ``inventory_count_task_lines`` row (unique per count: a redelivered
  or re-read event changes nothing); quantities are in the line's unit (kg for weighed goods) and
  converted to the product's base unit; a box barcode of an unexpected line counts its factor;
* a marking code counts once per count (one unit per code; kg from the code for weighed marked goods),
  a code seen again is kept as ``duplicate_marking`` and not counted;
* the count's line of each touched product is set to the sum of its handheld rows (through
  :func:`cloud.inventory.service.add_counted`, so the API's rules apply), ``counted_at`` = last scan;
* ``task_completed`` marks the task finished ("counting finished" when every task of the count is).

The cursor moves only past events received more than :data:`SETTLE_S` ago: with several consumers a
lower ``events.id`` can commit after a higher one, and re-reading a recent event is harmless.
A task closes when its count is no longer a draft (posted or cancelled); later lines are not applied.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from celery import shared_task
from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import JSON, BigInteger, Index, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Field, Session, SQLModel, col, select

from cloud.base import UtcDateTime, utcnow
from cloud.catalog.models import Barcode, MarkingType, Product, Warehouse
from cloud.catalog.service import to_base_m
from cloud.catalog.units import from_milli
from cloud.config import get_settings
from cloud.db import session_factory, shared_engine, unit_of_work
from cloud.errors import CloudError, Conflict, Invalid, NotFound
from cloud.handheld import service as handheld
from cloud.handheld.models import HandheldTaskCreate
from cloud.inventory import service as inventory
from cloud.inventory.models import CountLineIn, DocStatus, DocType, StockDocument, StockDocumentLine
from cloud.registry.models import Event, Gateway
from protocols.bus.tasks import ExpectedLine, TaskKind, Unit

log = logging.getLogger(__name__)

SETTLE_S = 30.0
EVENT_LINE = "task_line"
EVENT_COMPLETED = "task_completed"
BATCH = 2000


class LineStatus:
    APPLIED = "applied"
    DUPLICATE_MARKING = "duplicate_marking"
    UNKNOWN_PRODUCT = "unknown_product"
    BAD_QUANTITY = "bad_quantity"
    LATE = "late"


# ---------------------------------------------------------------- tables


class CountTask(SQLModel, table=True):
    """A handheld ``count`` task of a stock count, and how far its events have been read."""

    __tablename__ = "inventory_count_tasks"
    __table_args__ = (UniqueConstraint("tenant_id", "task_id"), Index("ix_inventory_count_tasks_closed", "closed"))

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    document_id: int = Field(foreign_key="stock_documents.id", index=True)
    store_id: int = Field(foreign_key="stores.id")
    task_id: str = Field(max_length=48)
    args: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    """The ``assign_task`` args as first sent (a retry sends the same)."""
    event_cursor: int = Field(default=0, sa_type=BigInteger)
    """Every task event with ``events.id`` up to here has been applied."""
    lines: int = 0
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    completed_by: str = Field(default="", max_length=64)
    closed: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class CountTaskLine(SQLModel, table=True):
    """One scanned line of a count task, stored once per ``line_id`` of the count."""

    __tablename__ = "inventory_count_task_lines"
    __table_args__ = (UniqueConstraint("document_id", "line_id"),)

    id: int | None = Field(default=None, primary_key=True)
    count_task_id: int = Field(foreign_key="inventory_count_tasks.id", index=True)
    document_id: int = Field(foreign_key="stock_documents.id")
    line_id: str = Field(max_length=64)
    event_id: int
    product_id: int | None = Field(default=None, foreign_key="products.id")
    barcode: str = Field(default="", max_length=300)
    qty_m: int = Field(default=0, sa_type=BigInteger)  # in the product's base unit
    marking: str | None = Field(default=None, max_length=200)
    status: str = Field(default=LineStatus.APPLIED, max_length=24)
    detail: str = Field(default="", max_length=300)
    scanned_at: datetime = Field(sa_type=UtcDateTime)


# ---------------------------------------------------------------- API shapes


class HandheldCountIn(BaseModel):
    """Body of ``POST /inventory/counts/{id}/handheld-task`` (all optional)."""

    part: str | None = PydanticField(default=None, pattern=r"^[A-Za-z0-9_.\-]{1,16}$")
    """Another task for the same count (a zone, a second pass): ``count-{id}-{part}``."""
    title: str | None = PydanticField(default=None, min_length=1, max_length=200)
    assignee: str | None = PydanticField(default=None, max_length=64)
    show_expected: bool = False
    """Show book quantities on the handheld (default: a blind count)."""
    timeout_s: float | None = PydanticField(default=None, ge=0)


class Prepared(BaseModel):
    task_id: str
    store_id: int
    pool_device_id: int
    args: dict[str, Any]
    lines: int
    skipped: list[dict[str, Any]]


class CountTaskPublic(BaseModel):
    task_id: str
    document_id: int
    lines_sent: int
    lines_received: int
    lines_applied: int
    lines_rejected: dict[str, int]
    completed_at: datetime | None
    completed_by: str
    closed: bool


class CountTasksPublic(BaseModel):
    document_id: int
    counting_finished: bool
    """Every handheld task of the count is completed."""
    tasks: list[CountTaskPublic]


# ---------------------------------------------------------------- sending


def task_id_of(document_id: int, part: str | None) -> str:
    return f"count-{document_id}" if part is None else f"count-{document_id}-{part}"


def _count(session: Session, tenant_id: int, document_id: int) -> StockDocument:
    doc = session.get(StockDocument, document_id)
    if doc is None or doc.tenant_id != tenant_id or doc.doc_type != DocType.STOCK_COUNT.value:
        raise NotFound(f"инвентаризация {document_id} не найдена", code="count_not_found")
    return doc


def expected_lines(session: Session, doc: StockDocument, show_expected: bool) -> tuple[list[ExpectedLine],
                                                                                      list[dict[str, Any]]]:
    """The task's lines from the count's lines; products a handheld cannot recognise are skipped."""
    rows = session.exec(select(StockDocumentLine).where(StockDocumentLine.document_id == doc.id)
                        .order_by(col(StockDocumentLine.line_no))).all()
    ids = [ln.product_id for ln in rows]
    products = {p.id: p for p in session.exec(select(Product).where(col(Product.id).in_(ids)))} if ids else {}
    codes: dict[int, list[str]] = defaultdict(list)
    gtins: dict[int, str] = {}
    if ids:
        for bc in session.exec(select(Barcode).where(col(Barcode.product_id).in_(ids)).order_by(col(Barcode.id))):
            if bc.unit is None:  # a box barcode would count one box as one unit
                codes[bc.product_id].append(bc.code)
            if bc.gtin:
                gtins.setdefault(bc.product_id, bc.gtin)
    out: list[ExpectedLine] = []
    skipped: list[dict[str, Any]] = []
    for ln in rows:
        product = products[ln.product_id]
        marked = product.marking != MarkingType.NONE.value
        gtin = gtins.get(ln.product_id) if marked else None
        try:
            out.append(ExpectedLine(
                line_no=ln.line_no, product_id=str(ln.product_id), name=product.name[:200],
                barcodes=tuple(codes.get(ln.product_id, ())), plu=product.plu, gtin=gtin,
                marked=marked and gtin is not None,
                expected_qty=from_milli(ln.expected_qty_m) if show_expected and ln.expected_qty_m is not None
                and ln.expected_qty_m >= 0 else None,
                unit=Unit.KG if product.base_unit == "kg" or product.weighed else Unit.PCS,
            ))
        except ValueError as exc:
            skipped.append({"product_id": ln.product_id, "line_no": ln.line_no,
                            "reason": "нет штрихкода, ПЛУ или GTIN — ТСД не узнает товар"
                            if not codes.get(ln.product_id) and product.plu is None and gtin is None
                            else str(exc).splitlines()[0]})
    return out, skipped


def prepare_task(session: Session, tenant_id: int, document_id: int, body: HandheldCountIn) -> Prepared:
    """Record the count's task (or find it again) and return what to send to the store's handheld pool."""
    doc = _count(session, tenant_id, document_id)
    if doc.status != DocStatus.DRAFT.value:
        raise Conflict(f"инвентаризация №{doc.number} уже {doc.status}: задание ТСД не нужно",
                       code="bad_document_status", extra={"status": doc.status})
    pool = handheld.pool_device(session, tenant_id, doc.store_id)
    assert pool.id is not None and doc.id is not None
    task_id = task_id_of(doc.id, body.part)
    existing = session.exec(select(CountTask).where(CountTask.tenant_id == tenant_id,
                                                    CountTask.task_id == task_id)).first()
    if existing is not None:
        return Prepared(task_id=task_id, store_id=doc.store_id, pool_device_id=pool.id, args=existing.args,
                        lines=len(existing.args.get("lines", ())), skipped=[])
    lines, skipped = expected_lines(session, doc, body.show_expected)
    if not lines:
        raise Invalid(f"инвентаризация №{doc.number}: нет товаров, которые ТСД может распознать",
                      code="nothing_to_count", extra={"skipped": skipped})
    wh = session.get(Warehouse, doc.warehouse_id)
    spec = HandheldTaskCreate(
        task_id=task_id, kind=TaskKind.COUNT,
        title=body.title or f"Инвентаризация №{doc.number}" + (f", склад {wh.code}" if wh else ""),
        lines=tuple(lines), assignee=body.assignee, allow_unexpected=True,
    )
    args = spec.args()
    session.add(CountTask(tenant_id=tenant_id, document_id=doc.id, store_id=doc.store_id, task_id=task_id,
                          args=args))
    try:
        session.commit()
    except IntegrityError:  # the same POST twice at once: the first one's args win
        session.rollback()
        return prepare_task(session, tenant_id, document_id, body)
    return Prepared(task_id=task_id, store_id=doc.store_id, pool_device_id=pool.id, args=args, lines=len(lines),
                    skipped=skipped)


# ---------------------------------------------------------------- reading back


def _when(value: Any, default: datetime) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return default
        if parsed.tzinfo is not None:
            return parsed
    return default


def _resolve(session: Session, tenant_id: int, data: dict[str, Any]) -> tuple[Product | None, str | None]:
    """The product of a line and the unit one scan of it stands for (``None``: the line's own unit)."""
    raw = data.get("product_id")
    if raw is not None:
        try:
            product = session.get(Product, int(str(raw)))
        except ValueError:
            product = None
        if product is not None and product.tenant_id == tenant_id:
            return product, None
        return None, None
    code = data.get("barcode")
    if not isinstance(code, str) or not code:
        return None, None
    bc = session.exec(select(Barcode).where(Barcode.tenant_id == tenant_id, Barcode.code == code)).first()
    if bc is None:
        return None, None
    return session.get(Product, bc.product_id), bc.unit


def _line_row(session: Session, task: CountTask, event: Event, markings: set[str]) -> CountTaskLine:
    data = event.data
    assert task.id is not None
    row = CountTaskLine(count_task_id=task.id, document_id=task.document_id, line_id=str(data["line_id"])[:64],
                        event_id=event.id or 0, barcode=str(data.get("barcode") or "")[:300],
                        scanned_at=_when(data.get("scanned_at"), event.ts))
    product, scan_unit = _resolve(session, task.tenant_id, data)
    if product is None:
        row.status, row.detail = LineStatus.UNKNOWN_PRODUCT, f"товар не найден: {data.get('product_id') or row.barcode}"
        return row
    row.product_id = product.id
    marking = data.get("marking")
    if isinstance(marking, str) and marking:
        row.marking = marking[:200]
        if row.marking in markings:
            row.status, row.detail = LineStatus.DUPLICATE_MARKING, "код маркировки уже посчитан"
            return row
    try:
        qty = Decimal(str(data.get("qty")))
        if not qty.is_finite() or qty <= 0:
            raise InvalidOperation
        line_unit = str(data.get("unit") or Unit.PCS.value)
        unit = scan_unit
        if unit is None and (line_unit == Unit.KG.value) != (product.base_unit == "kg"):
            unit = line_unit
        row.qty_m = to_base_m(session, product, qty, unit)
    except (InvalidOperation, ValueError):
        row.status, row.detail = LineStatus.BAD_QUANTITY, f"количество {data.get('qty')!r} не разобрано"
        return row
    except CloudError as exc:
        row.status, row.detail = LineStatus.BAD_QUANTITY, exc.message[:300]
        return row
    if row.marking:
        markings.add(row.marking)
    return row


def _task_events(session: Session, task: CountTask) -> list[Event]:
    gateways = select(Gateway.id).where(Gateway.store_id == task.store_id)
    return list(session.exec(
        select(Event)
        .where(Event.tenant_id == task.tenant_id, col(Event.gateway_id).in_(gateways),
               col(Event.type).in_((EVENT_LINE, EVENT_COMPLETED)), col(Event.id) > task.event_cursor,
               Event.data["task_id"].as_string() == task.task_id)
        .order_by(col(Event.id))
        .limit(BATCH)
    ).all())


def sync_task(session: Session, task_pk: int, now: datetime) -> int:
    """Apply one task's new events in ``session`` (committed here); returns the lines stored."""
    task = session.exec(select(CountTask).where(CountTask.id == task_pk).with_for_update()).one()
    if task.closed:
        return 0
    doc = session.get_one(StockDocument, task.document_id)
    events = _task_events(session, task)
    if doc.status != DocStatus.DRAFT.value:
        task.closed = True
    settled = now - timedelta(seconds=SETTLE_S)
    known = set(session.exec(select(CountTaskLine.line_id).where(CountTaskLine.document_id == task.document_id)))
    markings = {m for m in session.exec(
        select(CountTaskLine.marking).where(CountTaskLine.document_id == task.document_id,
                                            CountTaskLine.status == LineStatus.APPLIED,
                                            col(CountTaskLine.marking).is_not(None))) if m}
    touched: set[int] = set()
    stored = 0
    moving = True
    for event in events:
        data = event.data
        if event.type == EVENT_COMPLETED and task.completed_at is None:
            task.completed_at = _when(data.get("completed_at"), event.ts)
            task.completed_by = str(data.get("user") or "")[:64]
        elif event.type == EVENT_LINE and data.get("line_id") and str(data["line_id"])[:64] not in known:
            row = _line_row(session, task, event, markings)
            if task.closed and row.status == LineStatus.APPLIED:
                row.status, row.detail = LineStatus.LATE, f"пришла после проведения или отмены ({doc.status})"
            known.add(row.line_id)
            session.add(row)
            stored += 1
            if row.status == LineStatus.APPLIED and row.product_id is not None:
                touched.add(row.product_id)
        if moving and event.received_at <= settled and event.id is not None:
            task.event_cursor = event.id
        else:
            moving = False
    task.lines += stored
    session.add(task)
    session.flush()
    if touched and not task.closed:
        items = _totals(session, task.document_id, touched)
        inventory.add_counted(session, task.tenant_id, task.document_id, items)  # commits
    else:
        session.commit()
    return stored


def _totals(session: Session, document_id: int, products: set[int]) -> list[CountLineIn]:
    sums: dict[int, int] = defaultdict(int)
    last: dict[int, datetime] = {}
    for row in session.exec(select(CountTaskLine).where(CountTaskLine.document_id == document_id,
                                                        CountTaskLine.status == LineStatus.APPLIED,
                                                        col(CountTaskLine.product_id).in_(products))):
        assert row.product_id is not None
        sums[row.product_id] += row.qty_m
        last[row.product_id] = max(last.get(row.product_id, row.scanned_at), row.scanned_at)
    return [CountLineIn(product_id=p, quantity=from_milli(sums[p]), counted_at=last[p]) for p in sorted(sums)]


def sync_open_tasks(factory: sessionmaker[Session], now: datetime | None = None,
                    document_id: int | None = None) -> int:
    """Apply the new events of every open count task (of one count when ``document_id``); lines stored."""
    with unit_of_work(factory) as session:
        query = select(CountTask.id).where(col(CountTask.closed).is_(False))
        if document_id is not None:
            query = query.where(CountTask.document_id == document_id)
        ids = [i for i in session.exec(query.order_by(col(CountTask.id))) if i is not None]
    stored = 0
    for pk in ids:
        try:
            with unit_of_work(factory) as session:
                stored += sync_task(session, pk, now or utcnow())
        except CloudError as exc:  # e.g. the count stopped being a draft between two reads: next run
            log.warning("count task %s: %s", pk, exc.message)
    return stored


def sync_document(factory: sessionmaker[Session], tenant_id: int, document_id: int) -> CountTasksPublic:
    with unit_of_work(factory) as session:
        _count(session, tenant_id, document_id)
    sync_open_tasks(factory, document_id=document_id)
    with unit_of_work(factory) as session:
        return tasks_of(session, tenant_id, document_id)


def tasks_of(session: Session, tenant_id: int, document_id: int) -> CountTasksPublic:
    _count(session, tenant_id, document_id)
    tasks = session.exec(select(CountTask).where(CountTask.tenant_id == tenant_id,
                                                 CountTask.document_id == document_id)
                         .order_by(col(CountTask.id))).all()
    out = []
    for task in tasks:
        statuses: dict[str, int] = defaultdict(int)
        for status in session.exec(select(CountTaskLine.status).where(CountTaskLine.count_task_id == task.id)):
            statuses[status] += 1
        applied = statuses.pop(LineStatus.APPLIED, 0)
        out.append(CountTaskPublic(
            task_id=task.task_id, document_id=document_id, lines_sent=len(task.args.get("lines", ())),
            lines_received=task.lines, lines_applied=applied, lines_rejected=dict(statuses),
            completed_at=task.completed_at, completed_by=task.completed_by, closed=task.closed,
        ))
    return CountTasksPublic(document_id=document_id, counting_finished=bool(out) and all(t.completed_at for t in out),
                            tasks=out)


@shared_task(name="cloud.inventory.sync_handheld_counts", ignore_result=False)  # type: ignore[untyped-decorator]
def sync_handheld_counts(database_url: str | None = None) -> int:
    """The poll: apply new ``task_line``/``task_completed`` events of open count tasks; returns lines stored."""
    engine = shared_engine(database_url or get_settings().database_url)
    stored = sync_open_tasks(session_factory(engine))
    if stored:
        log.info("handheld count lines stored: %d", stored)
    return stored
