"""The page fast path of sales ingestion: a page's ``sale_completed`` events, written set-based.

Applied one by one (:mod:`cloud.sales.ingest`), a sale costs some 27 statements and a savepoint:
~20–60 sales/s. Here the receipts of a page are written in a number of statements that does not
grow with the page: the sales already stored looked up in one query, the products in one, the sales
floors of the page's stores in one, one ledger posting for every line of every sale
(:func:`cloud.inventory.service.post_sales`, each row at its own sale's moment), the marking codes
sold in one transition, then sales, lines, payments and problems inserted in bulk (on PostgreSQL one
statement each: the rows travel as one JSON parameter read by ``json_to_recordset``, as the ledger
does; SQLite, the embedded default, gets executemany).

Only what is written exactly as the per-event path would write it comes through here. The rest is
*set aside* and applied per event by the caller, in event order, with that path's own behaviour and
problem reports: a payload that does not validate, a sale stored before as cancelled (completed
after cancel), a later copy of a sale whose first copy was set aside, a sale with goods in a store
without a sales floor, and the sales the ledger refuses (closed period, negative stock: every sale of
the pair that ran out). When the batch fails for any other reason (a bug, a constraint) its
savepoint is rolled back and it is halved until the failing part is small enough to go per event:
one bad sale in a page costs a few more statements, not the page's speed, and is still rolled back
alone, flagged and reported by the per-event path.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col

from cloud.base import utcnow
from cloud.catalog.models import Product, Warehouse, WarehouseKind
from cloud.catalog.units import to_milli
from cloud.errors import CloudError
from cloud.inventory import ledger
from cloud.inventory import service as inventory
from cloud.marking import service as marking
from cloud.registry.models import Event, Store
from cloud.sales.models import LineStatus, Sale, SalePayment, SalesProblem, SaleStatus
from cloud.sales.models import SaleLine as SaleLineRow
from protocols.bus import sales as bus

log = logging.getLogger(__name__)

SALES: Table = Sale.__table__  # type: ignore[attr-defined]
LINES: Table = SaleLineRow.__table__  # type: ignore[attr-defined]
PAYMENTS: Table = SalePayment.__table__  # type: ignore[attr-defined]
PROBLEMS: Table = SalesProblem.__table__  # type: ignore[attr-defined]

SPLIT_BELOW = 8
"""A failing batch this small goes per event instead of being halved again."""
MAX_REFUSALS = 8
MAX_ID = 2**31 - 1
"""Ledger refusals set aside and the batch posted again at most this often, then the rest goes per event."""


@dataclass
class Item:
    """One ``sale_completed`` event of the page with its store and lane (device code)."""

    event: Event
    store: Store
    lane: str
    data: bus.SaleCompleted | None = None

    @property
    def pk(self) -> int:
        assert self.event.id is not None
        return self.event.id


@dataclass
class Outcome:
    """What the fast path did: events stored, events that were duplicates, events left for the per-event path."""

    stored: set[int] = field(default_factory=set)
    duplicate: set[int] = field(default_factory=set)
    aside: list[Item] = field(default_factory=list)


class _Refused(Exception):
    def __init__(self, items: list[Item]) -> None:
        super().__init__(f"{len(items)} sales refused by the ledger")
        self.items = items


def product_pk(ref: str) -> int | None:
    """The catalog id a lane line names (``str(products.id)``), or ``None`` when it cannot be one."""
    try:
        pk = int(ref)
    except ValueError:
        return None
    return pk if 0 < pk <= MAX_ID else None  # beyond ``products.id``'s range a lookup would fail, not miss


def apply_sales(session: Session, items: Sequence[Item]) -> Outcome:
    """Write the page's sales that can be written set-based; the others are returned set aside, in event order."""
    out = Outcome()
    by_tenant: dict[int, list[Item]] = {}
    for it in items:
        try:
            it.data = bus.SaleCompleted.model_validate(it.event.data)
        except Exception:  # whatever it is, the per-event path reports it (bad_payload, error)
            out.aside.append(it)
            continue
        by_tenant.setdefault(it.event.tenant_id, []).append(it)
    if by_tenant:
        floors = _floors(session, {(t, it.store.id or 0) for t, group in by_tenant.items() for it in group})
        for tenant_id, group in by_tenant.items():
            _tenant(session, tenant_id, group, floors, out)
    out.aside.sort(key=lambda it: it.pk)
    return out


def _tenant(session: Session, tenant_id: int, group: list[Item], floors: dict[tuple[int, int], int],
            out: Outcome) -> None:
    existing = _existing(session, tenant_id, sorted({_data(it).sale_id for it in group}))
    first: dict[str, Item] = {}
    later: list[Item] = []
    fresh: list[Item] = []
    for it in group:
        sale_id = _data(it).sale_id
        if sale_id in first:
            later.append(it)
            continue
        first[sale_id] = it
        status = existing.get(sale_id)
        if status == SaleStatus.CANCELLED.value:
            out.aside.append(it)  # cancelled first, then completed: the per-event path converts it and says so
        elif status is not None:
            out.duplicate.add(it.pk)
        else:
            fresh.append(it)
    products = _products(session, tenant_id, fresh)
    batch: list[Item] = []
    for it in fresh:
        has_goods = any(product_pk(ln.product_id) in products for ln in _data(it).lines)
        if has_goods and (tenant_id, it.store.id or 0) not in floors:
            out.aside.append(it)  # no sales floor: the per-event path flags it
        else:
            batch.append(it)
    _write_or_split(session, tenant_id, batch, products, floors, out)
    for it in later:  # the same sale again in this page: a duplicate of what its first copy became
        head = first[_data(it).sale_id]
        if head.pk in out.stored or head.pk in out.duplicate:
            out.duplicate.add(it.pk)
        else:
            out.aside.append(it)


def _data(it: Item) -> bus.SaleCompleted:
    assert it.data is not None
    return it.data


# ---------------------------------------------------------------- lookups, one statement each


def _existing(session: Session, tenant_id: int, sale_ids: list[str]) -> dict[str, str]:
    if not sale_ids:
        return {}
    rows = session.execute(select(col(Sale.sale_id), col(Sale.status)).where(
        col(Sale.tenant_id) == tenant_id, col(Sale.sale_id).in_(sale_ids)))
    return {r[0]: r[1] for r in rows}


def _products(session: Session, tenant_id: int, items: list[Item]) -> set[int]:
    wanted = sorted({pk for it in items for ln in _data(it).lines if (pk := product_pk(ln.product_id)) is not None})
    if not wanted:
        return set()
    return set(session.execute(select(col(Product.id)).where(col(Product.tenant_id) == tenant_id,
                                                             col(Product.id).in_(wanted))).scalars())


def _floors(session: Session, places: set[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """The sales-floor warehouse of each (tenant, store): the first one, as the per-event path takes it."""
    stores = sorted({s for _t, s in places})
    rows = session.execute(select(col(Warehouse.tenant_id), col(Warehouse.store_id), col(Warehouse.id)).where(
        col(Warehouse.store_id).in_(stores), col(Warehouse.kind) == WarehouseKind.SALES_FLOOR.value)
        .order_by(col(Warehouse.id)))
    out: dict[tuple[int, int], int] = {}
    for tenant_id, store_id, wh in rows:
        if (tenant_id, store_id) in places:
            out.setdefault((tenant_id, store_id), wh)
    return out


# ---------------------------------------------------------------- the batch


def _write_or_split(session: Session, tenant_id: int, batch: list[Item], products: set[int],
                    floors: dict[tuple[int, int], int], out: Outcome) -> None:
    """Write ``batch`` in a savepoint; set aside what the ledger refuses; halve it on any other failure."""
    refusals = 0
    while batch:
        try:
            with session.begin_nested():
                _write(session, tenant_id, batch, products, floors)
        except _Refused as exc:
            refused = {it.pk for it in exc.items}
            out.aside.extend(exc.items)
            batch = [it for it in batch if it.pk not in refused]
            refusals += 1
            if refusals >= MAX_REFUSALS:
                out.aside.extend(batch)
                return
            continue
        except Exception as exc:  # a bug or a constraint: find the failing part, it goes per event
            log.warning("sales: a batch of %d sales failed (%s: %s); splitting it", len(batch), type(exc).__name__,
                        exc)
            if len(batch) <= SPLIT_BELOW:
                out.aside.extend(batch)
                return
            mid = len(batch) // 2
            _write_or_split(session, tenant_id, batch[:mid], products, floors, out)
            _write_or_split(session, tenant_id, batch[mid:], products, floors, out)
            return
        out.stored.update(it.pk for it in batch)
        return


def _write(session: Session, tenant_id: int, batch: list[Item], products: set[int],
           floors: dict[tuple[int, int], int]) -> None:
    """Everything the per-event path writes for these sales, in a constant number of statements."""
    now = utcnow()
    days: dict[int, ZoneInfo | None] = {}
    sales: list[dict[str, Any]] = []
    lines: list[list[dict[str, Any]]] = []
    problems: list[dict[str, Any]] = []
    write_offs: list[inventory.SaleWriteOff] = []
    posted: list[tuple[Item, list[dict[str, Any]]]] = []
    for it in batch:
        d, store_id = _data(it), it.store.id or 0
        rows: list[dict[str, Any]] = []
        for ln in d.lines:
            pk = product_pk(ln.product_id)
            known = pk if pk in products else None
            row = {"line_no": ln.line_no, "product_id": known, "product_ref": ln.product_id, "name": ln.name[:300],
                   "qty_m": to_milli(ln.quantity), "measure": ln.measure, "price_kop": ln.price,
                   "amount_kop": ln.amount, "vat": ln.vat, "vat_rate": ln.vat_rate[:32],
                   "marking_codes": list(ln.marking_codes), "source": ln.source, "move_id": None, "returned_m": 0,
                   "status": LineStatus.POSTED.value, "detail": ""}
            if known is None:
                row["status"] = LineStatus.UNKNOWN_PRODUCT.value
                row["detail"] = f"товар {ln.product_id!r} не найден в каталоге"
                problems.append(_problem(it, f"{d.sale_id}#{ln.line_no}", "unknown_product",
                                         f"{ln.name}: {row['detail']}", now))
            rows.append(row)
        goods = [r for r in rows if r["product_id"] is not None]
        if goods:
            write_offs.append(inventory.SaleWriteOff(store_id, floors[(tenant_id, store_id)], d.completed_at,
                                                     [(r["product_id"], r["qty_m"]) for r in goods]))
            posted.append((it, goods))
        lines.append(rows)
        sales.append({
            "tenant_id": tenant_id, "store_id": store_id, "device_id": it.event.device_id, "lane": it.lane,
            "sale_id": d.sale_id, "event_id": it.pk, "shift_id": d.shift_id, "cashier": d.cashier.name[:128],
            "cashier_inn": d.cashier.inn, "status": SaleStatus.COMPLETED.value, "origin": d.origin,
            "order_id": d.order_id, "total_kop": d.total, "change_kop": d.change, "returned_kop": 0,
            "fd_number": d.fiscal.fd_number, "fiscal_sign": d.fiscal.fiscal_sign, "fn_number": d.fiscal.fn_number,
            "shift_number": d.fiscal.shift_number, "receipt_number": d.fiscal.receipt_number,
            "fiscal_at": d.fiscal.issued_at, "opened_at": d.opened_at, "completed_at": d.completed_at,
            "business_date": _day(days, it.store, d.completed_at), "cancel_reason": "", "flagged": False,
            "created_at": now})
    try:
        move_ids = inventory.post_sales(session, tenant_id, write_offs)
    except inventory.SalesRefused as exc:
        raise _Refused([posted[i][0] for i in exc.sales]) from exc
    for (_it, goods), ids in zip(posted, move_ids, strict=True):
        for row, move_id in zip(goods, ids, strict=True):
            row["move_id"] = move_id
    _sell_codes(session, tenant_id, [(it, r) for it, goods in posted for r in goods if r["marking_codes"]],
                problems, now)
    for sale, rows in zip(sales, lines, strict=True):
        sale["flagged"] = any(r["status"] != LineStatus.POSTED.value or r["detail"] for r in rows)
    sale_pks = insert_rows(session, SALES, sales, returning=True)
    insert_rows(session, LINES, [{**r, "sale_pk": pk} for pk, rows in zip(sale_pks, lines, strict=True) for r in rows])
    insert_rows(session, PAYMENTS, [
        {"sale_pk": pk, "return_pk": None, "type": p.type, "amount_kop": p.amount, "operation_id": p.operation_id,
         "rrn": p.rrn, "auth_code": p.auth_code, "card_mask": p.card_mask, "voided": False}
        for pk, it in zip(sale_pks, batch, strict=True) for p in _data(it).payments])
    add_problems(session, problems)


def _sell_codes(session: Session, tenant_id: int, lines: list[tuple[Item, dict[str, Any]]],
                problems: list[dict[str, Any]], now: datetime) -> None:
    """Mark every line's codes sold in one transition; if that is refused, line by line as the per-event path does."""
    if not lines:
        return
    try:
        with session.begin_nested():
            marking.sell(session, tenant_id, [c for _it, r in lines for c in r["marking_codes"]])
        return
    except CloudError:
        pass  # some code cannot be sold: find which line, keeping the others sold
    for it, row in lines:
        try:
            with session.begin_nested():
                marking.sell(session, tenant_id, list(row["marking_codes"]))
        except CloudError as exc:
            row["detail"] = (row["detail"] + " " if row["detail"] else "") + exc.message[:400]
            problems.append(_problem(it, f"{_data(it).sale_id}#{row['line_no']}", "marking", exc.message, now))


def _day(cache: dict[int, ZoneInfo | None], store: Store, at: datetime) -> date:
    """The business date in the store's time zone (its ``_Ctx.day`` twin: a bad zone falls back to UTC)."""
    key = store.id or 0
    if key not in cache:
        try:
            cache[key] = ZoneInfo(store.timezone)
        except (KeyError, ValueError):
            cache[key] = None
    zone = cache[key]
    return at.astimezone(zone).date() if zone is not None else at.date()


def _problem(it: Item, ref: str, code: str, detail: str, now: datetime) -> dict[str, Any]:
    return {"tenant_id": it.event.tenant_id, "store_id": it.store.id or 0, "event_id": it.pk,
            "event_type": it.event.type, "ref": ref[:64], "code": code, "detail": detail[:500], "created_at": now,
            "resolved_at": None, "resolution": "", "retries": 0}


def add_problems(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert problem rows, each once per (event, code, ref) as ``_Ctx.problem`` does (executemany: any count)."""
    if not rows:
        return
    session.execute(ledger.upsert_insert(session)(PROBLEMS).on_conflict_do_nothing(
        index_elements=["event_id", "code", "ref"]), rows)
    for r in rows:
        log.warning("sales: event %s (%s) %s: %s: %s", r["event_id"], r["event_type"], r["ref"], r["code"], r["detail"])


# ---------------------------------------------------------------- bulk inserts


_PG_TYPES: dict[tuple[str, str], str] = {}
_PG_INSERTS: dict[tuple[str, tuple[str, ...]], Any] = {}


def _pg_type(table: Table, name: str) -> str:
    """The column's PostgreSQL type for ``json_to_recordset``; strings as ``text`` so the insert checks lengths."""
    key = (table.name, name)
    if key not in _PG_TYPES:
        compiled = table.c[name].type.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
        _PG_TYPES[key] = "text" if compiled.startswith("VARCHAR") else compiled.lower()
    return _PG_TYPES[key]


def _pg_insert(table: Table, names: tuple[str, ...]) -> Any:
    key = (table.name, names)
    if key not in _PG_INSERTS:
        cols = ", ".join(names)
        _PG_INSERTS[key] = text(
            f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM json_to_recordset(CAST(:rows AS json)) "
            f"AS v({', '.join(f'{n} {_pg_type(table, n)}' for n in names)})")
    return _PG_INSERTS[key]


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # UtcDateTime refuses these too: never let PostgreSQL guess the zone
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]], returning: bool = False) -> list[int]:
    """Insert ``rows`` (all with the same keys) in one statement; their new ids, in order, when ``returning``.

    The ids are chosen first, as :func:`cloud.inventory.ledger.allocate_move_ids` does for ledger
    rows, so no ``RETURNING`` has to be matched back to its rows (SQLite would insert one row per
    statement for that). PostgreSQL: from the table's sequence (``nextval`` over
    ``generate_series``), then the rows travel as one JSON parameter: the statement text is the same
    for any number of rows. SQLite: after the current maximum, safe because the transaction holds
    SQLite's single write lock (``BEGIN IMMEDIATE``), then ``executemany``.
    """
    if not rows:
        return []
    ids: list[int] = []
    if not ledger.is_postgres(session):
        if returning:
            top = int(session.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one())
            ids = list(range(top + 1, top + 1 + len(rows)))
            rows = [{**r, "id": i} for r, i in zip(rows, ids, strict=True)]
        session.execute(insert(table), rows)
        return ids
    if returning:
        seq = func.pg_get_serial_sequence(table.name, "id")
        ids = sorted(int(i) for i in session.execute(
            select(func.nextval(seq)).select_from(func.generate_series(1, len(rows)))).scalars())
        rows = [{**r, "id": i} for r, i in zip(rows, ids, strict=True)]
    names = tuple(rows[0])
    payload = json.dumps(rows, default=_json_default, ensure_ascii=False, separators=(",", ":"))
    session.execute(_pg_insert(table, names), {"rows": payload})
    return ids
