"""Lane events → sales, returns, shifts and cash movements, exactly once; sold goods off the ledger.

The pattern of :mod:`cloud.inventory.handheld_counts`: a **poll of the events table** (Celery
``cloud.sales.ingest`` every few seconds, and ``POST /sales/ingest`` on demand), not a hook in the bus
consumer, whose batches must stay cheap. :func:`ingest` reads the lane events (``LANE_EVENTS``)
after a persisted cursor (``sales_cursor``), page by page, one transaction per page. The page's
``sale_completed`` events, nearly all of them, are written together by the fast path
(:mod:`cloud.sales.bulk`: a constant number of statements per page instead of ~27 per sale); what
it cannot write exactly as the per-event path would (a bad payload, a refusal of the ledger, a
failure) it sets aside for that path. The per-event path applies every other event, each in its
own SAVEPOINT (an event that trips a bug is rolled back alone and reported, never blocks the
rest). The cursor moves only past events received more than :data:`SETTLE_S` ago (with several
consumers a lower ``events.id`` can commit after a higher one); re-reading an event is harmless
because every row is unique per tenant on the event's own key (``sale_id``, ``return_id``,
``shift_id``, ``move_id``): a replayed event, or the same sale in two events, is stored once.

A *rejected* event (its payload does not validate, or applying it raised) is rolled back whole and
reported (``bad_payload``/``error``), and the cursor still moves past it so that it never blocks its
store; the problem keeps the event's id, and :func:`retry` (``POST /sales/problems/{id}/retry``)
applies it again after a fix, exactly once.

Per event:

* ``sale_completed``: the sale, its lines and payments; the lines of catalog products are written
  off the store's sales-floor warehouse at cost (:func:`cloud.inventory.service.post_sale`, one
  ledger row per line, whose value is the line's cost) and their marking codes sold
  (:func:`cloud.marking.service.sell`). A line whose product the catalog does not know, or that
  the ledger refuses (negative stock, closed period), is stored flagged and reported in
  ``sales_problems``; the rest of the sale posts. A sale stored as cancelled that then arrives
  completed becomes completed (the fiscal storage holds the receipt).
* ``sale_cancelled``: stored with its voided payments; nothing is posted.
* ``return_completed``: matched to the original sale's lines by product; goods go back to the
  warehouse they left at their original cost (a ``linked`` ledger row on the sale's row, which the
  ledger keeps in step if that cost is recomputed) and marking codes are refunded. A return whose
  sale has not arrived yet waits until it settles, then is stored flagged with nothing posted.
* ``shift_opened`` / ``shift_closed``: the shift row (Z report, totals, reconciliation, differences).
* ``cash_moved``: the cash movement.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from celery import shared_task
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col, select

from cloud.base import utcnow
from cloud.catalog.models import Product, Warehouse, WarehouseKind
from cloud.catalog.units import to_milli
from cloud.config import get_settings
from cloud.db import session_factory, shared_engine, unit_of_work
from cloud.errors import CloudError, Conflict, NotFound
from cloud.inventory import ledger
from cloud.inventory import service as inventory
from cloud.inventory.models import CostMode, DocType, StockMove
from cloud.marking import service as marking
from cloud.marking.models import CodeEvent
from cloud.registry.models import Device, Event, Gateway, Store
from cloud.sales import bulk
from cloud.sales.models import (
    CashMovement,
    LineStatus,
    Sale,
    SalePayment,
    SaleReturn,
    SaleReturnLine,
    SalesCursor,
    SalesProblem,
    SaleStatus,
    Shift,
)
from cloud.sales.models import SaleLine as SaleLineRow
from protocols.bus import sales as bus

log = logging.getLogger(__name__)

SETTLE_S = 30.0
PAGE = 500
CURSOR = "sales"

STORED, DUPLICATE, DEFERRED, REJECTED, IGNORED = "stored", "duplicate", "deferred", "rejected", "ignored"
REJECTIONS = ("bad_payload", "error")
"""Problem codes of an event rolled back whole (nothing of it stored): it can be retried after a fix."""
_AFTER_SALES = frozenset({bus.EVENT_SALE_CANCELLED, bus.EVENT_RETURN_COMPLETED})
"""Events that may name a sale of the same page: the sales collected before them are written first."""


class _Ctx:
    """What one event needs: its row, tenant, store and lane code (looked up once per page)."""

    def __init__(self, session: Session, event: Event, store: Store, lane: str) -> None:
        self.session = session
        self.event = event
        self.store = store
        self.lane = lane
        self.tenant_id = event.tenant_id
        assert store.id is not None and event.id is not None
        self.store_id: int = store.id
        self.event_pk: int = event.id

    def day(self, at: datetime) -> date:
        try:
            return at.astimezone(ZoneInfo(self.store.timezone)).date()
        except (KeyError, ValueError):
            return at.date()

    def problem(self, ref: str, code: str, detail: str) -> None:
        exists = self.session.exec(select(SalesProblem.id).where(
            SalesProblem.event_id == self.event_pk, SalesProblem.code == code, SalesProblem.ref == ref[:64])).first()
        if exists is None:
            self.session.add(SalesProblem(tenant_id=self.tenant_id, store_id=self.store_id, event_id=self.event_pk,
                                          event_type=self.event.type, ref=ref[:64], code=code, detail=detail[:500]))
        log.warning("sales: event %s (%s) %s: %s: %s", self.event_pk, self.event.type, ref, code, detail)


# ---------------------------------------------------------------- helpers


def _product(session: Session, tenant_id: int, ref: str) -> Product | None:
    pk = bulk.product_pk(ref)
    if pk is None:
        return None
    product = session.get(Product, pk)
    return product if product is not None and product.tenant_id == tenant_id else None


def _sales_floor(session: Session, tenant_id: int, store_id: int) -> int | None:
    return session.exec(select(Warehouse.id).where(
        Warehouse.tenant_id == tenant_id, Warehouse.store_id == store_id,
        Warehouse.kind == WarehouseKind.SALES_FLOOR.value).order_by(col(Warehouse.id))).first()


def _payment_row(p: bus.SalePayment, **owner: Any) -> SalePayment:
    return SalePayment(type=p.type, amount_kop=p.amount, operation_id=p.operation_id, rrn=p.rrn,
                       auth_code=p.auth_code, card_mask=p.card_mask, **owner)


def _try(session: Session, fn: Callable[[], Any]) -> str | None:
    """Run ``fn`` in a savepoint; the refusal's message (rolled back) or ``None``."""
    try:
        with session.begin_nested():
            fn()
    except CloudError as exc:
        return exc.message
    return None


# ---------------------------------------------------------------- sales


def _sale_completed(ctx: _Ctx, data: bus.SaleCompleted) -> str:
    s = ctx.session
    sale = s.exec(select(Sale).where(Sale.tenant_id == ctx.tenant_id, Sale.sale_id == data.sale_id)
                  .with_for_update()).first()
    if sale is not None and sale.status != SaleStatus.CANCELLED.value:
        return DUPLICATE
    if sale is not None:  # cancelled first, then completed: the receipt is in the FN, it wins
        ctx.problem(data.sale_id, "completed_after_cancel", "продажа пришла отменённой, затем завершённой: "
                    "учтена как завершённая")
        s.execute(delete(SalePayment).where(col(SalePayment.sale_pk) == sale.id))
        s.execute(delete(SaleLineRow).where(col(SaleLineRow.sale_pk) == sale.id))
    else:
        sale = Sale(tenant_id=ctx.tenant_id, store_id=ctx.store_id, device_id=ctx.event.device_id,
                    sale_id=data.sale_id, event_id=ctx.event_pk, lane=ctx.lane, completed_at=data.completed_at,
                    business_date=ctx.day(data.completed_at))
    f = data.fiscal
    sale.sqlmodel_update({
        "status": SaleStatus.COMPLETED.value, "shift_id": data.shift_id, "cashier": data.cashier.name[:128],
        "cashier_inn": data.cashier.inn, "origin": data.origin, "order_id": data.order_id, "total_kop": data.total,
        "change_kop": data.change, "fd_number": f.fd_number, "fiscal_sign": f.fiscal_sign,
        "fn_number": f.fn_number, "shift_number": f.shift_number, "receipt_number": f.receipt_number,
        "fiscal_at": f.issued_at, "opened_at": data.opened_at, "completed_at": data.completed_at,
        "business_date": ctx.day(data.completed_at), "cancel_reason": "", "flagged": False,
    })
    s.add(sale)
    s.flush()
    assert sale.id is not None
    rows: list[tuple[SaleLineRow, Product | None]] = []
    for ln in data.lines:
        product = _product(s, ctx.tenant_id, ln.product_id)
        row = SaleLineRow(sale_pk=sale.id, line_no=ln.line_no, product_id=product.id if product else None,
                          product_ref=ln.product_id, name=ln.name[:300], qty_m=to_milli(ln.quantity),
                          measure=ln.measure, price_kop=ln.price, amount_kop=ln.amount, vat=ln.vat,
                          vat_rate=ln.vat_rate[:32], marking_codes=list(ln.marking_codes), source=ln.source)
        if product is None:
            row.status, row.detail = LineStatus.UNKNOWN_PRODUCT.value, f"товар {ln.product_id!r} не найден в каталоге"
            ctx.problem(f"{data.sale_id}#{ln.line_no}", "unknown_product", f"{ln.name}: {row.detail}")
        rows.append((row, product))
    for p in data.payments:
        s.add(_payment_row(p, sale_pk=sale.id))
    _post_lines(ctx, sale, rows)
    for row, _p in rows:
        s.add(row)
    sale.flagged = any(r.status != LineStatus.POSTED.value or r.detail for r, _ in rows)
    s.add(sale)
    return STORED


def _post_lines(ctx: _Ctx, sale: Sale, rows: list[tuple[SaleLineRow, Product | None]]) -> None:
    """Write the known products off the sales floor (all lines at once, else line by line), sell codes."""
    s = ctx.session
    known: list[tuple[SaleLineRow, Product]] = [(row, p) for row, p in rows if p is not None]
    if not known:
        return
    floor = _sales_floor(s, ctx.tenant_id, ctx.store_id)
    if floor is None:
        for row, _p in known:
            row.status, row.detail = LineStatus.NOT_POSTED.value, "у магазина нет склада торгового зала"
        ctx.problem(sale.sale_id, "no_sales_floor", "у магазина нет склада торгового зала: продажа не списана")
        return

    def post(part: list[tuple[SaleLineRow, Product]]) -> None:
        items = [(p.id or 0, Decimal(row.qty_m) / 1000) for row, p in part]
        ids = inventory.post_sale(s, ctx.tenant_id, ctx.store_id, floor, sale.completed_at, items)
        for (row, _p), move_id in zip(part, ids, strict=True):
            row.move_id = move_id

    if _try(s, lambda: post(known)) is not None:
        for one in known:
            error = _try(s, lambda one=one: post([one]))  # type: ignore[misc]
            if error is not None:
                one[0].move_id = None
                one[0].status, one[0].detail = LineStatus.NOT_POSTED.value, error[:500]
                ctx.problem(f"{sale.sale_id}#{one[0].line_no}", "not_posted", error)
    for row, _p in known:
        if row.marking_codes:
            codes = list(row.marking_codes)
            error = _try(s, lambda codes=codes: marking.sell(s, ctx.tenant_id, codes))  # type: ignore[misc]
            if error is not None:
                row.detail = (row.detail + " " if row.detail else "") + error[:400]
                ctx.problem(f"{sale.sale_id}#{row.line_no}", "marking", error)


def _sale_cancelled(ctx: _Ctx, data: bus.SaleCancelled) -> str:
    s = ctx.session
    if s.exec(select(Sale.id).where(Sale.tenant_id == ctx.tenant_id, Sale.sale_id == data.sale_id)).first():
        return DUPLICATE
    sale = Sale(tenant_id=ctx.tenant_id, store_id=ctx.store_id, device_id=ctx.event.device_id, lane=ctx.lane,
                sale_id=data.sale_id, event_id=ctx.event_pk, shift_id=data.shift_id,
                cashier=data.cashier.name[:128] if data.cashier else "",
                cashier_inn=data.cashier.inn if data.cashier else None, status=SaleStatus.CANCELLED.value,
                total_kop=data.total, completed_at=data.cancelled_at, business_date=ctx.day(data.cancelled_at),
                cancel_reason=f"{data.state}: {data.reason}"[:300])
    s.add(sale)
    s.flush()
    for ln in data.lines:
        product = _product(s, ctx.tenant_id, ln.product_id)
        s.add(SaleLineRow(sale_pk=sale.id or 0, line_no=ln.line_no, product_id=product.id if product else None,
                          product_ref=ln.product_id, name=ln.name[:300], qty_m=to_milli(ln.quantity),
                          measure=ln.measure, price_kop=ln.price, amount_kop=ln.amount, vat=ln.vat,
                          vat_rate=ln.vat_rate[:32], marking_codes=list(ln.marking_codes), source=ln.source,
                          status=LineStatus.NONE.value))
    for p in data.voided:
        s.add(_payment_row(p, sale_pk=sale.id, voided=True))
    return STORED


# ---------------------------------------------------------------- returns


def _return_completed(ctx: _Ctx, data: bus.ReturnCompleted, settled: bool) -> str:
    s = ctx.session
    if s.exec(select(SaleReturn.id).where(SaleReturn.tenant_id == ctx.tenant_id,
                                          SaleReturn.return_id == data.return_id)).first():
        return DUPLICATE
    sale = s.exec(select(Sale).where(Sale.tenant_id == ctx.tenant_id, Sale.sale_id == data.sale_id)
                  .with_for_update()).first()
    if sale is None and not settled:
        return DEFERRED  # its sale may still be on its way: read again on the next run
    f = data.fiscal
    ret = SaleReturn(tenant_id=ctx.tenant_id, store_id=ctx.store_id, device_id=ctx.event.device_id, lane=ctx.lane,
                     return_id=data.return_id, sale_ref=data.sale_id, sale_pk=sale.id if sale else None,
                     event_id=ctx.event_pk, shift_id=data.shift_id, cashier=data.cashier.name[:128],
                     total_kop=data.total, fd_number=f.fd_number, fiscal_sign=f.fiscal_sign, fn_number=f.fn_number,
                     shift_number=f.shift_number, receipt_number=f.receipt_number, fiscal_at=f.issued_at,
                     completed_at=data.completed_at, business_date=ctx.day(data.completed_at))
    s.add(ret)
    s.flush()
    assert ret.id is not None
    for p in data.refunds:
        s.add(_payment_row(p, return_pk=ret.id))
    if sale is None:
        ret.flagged = True
        ctx.problem(data.return_id, "sale_unknown", f"возврат по продаже {data.sale_id}, которой нет в облаке: "
                    "товар не оприходован обратно")
    elif sale.status == SaleStatus.CANCELLED.value:
        sale = None
        ret.flagged = True
        ctx.problem(data.return_id, "sale_cancelled", f"возврат по отменённой продаже {data.sale_id}")
    sale_lines = list(s.exec(select(SaleLineRow).where(SaleLineRow.sale_pk == sale.id)
                             .order_by(col(SaleLineRow.line_no)))) if sale is not None else []
    for ln in data.lines:
        row = SaleReturnLine(return_pk=ret.id, line_no=ln.line_no, product_ref=ln.product_id, name=ln.name[:300],
                             qty_m=to_milli(ln.quantity), price_kop=ln.price, amount_kop=ln.amount, vat=ln.vat,
                             marking_codes=list(ln.marking_codes), status=LineStatus.NOT_POSTED.value)
        if sale is not None:
            _return_line(ctx, sale, sale_lines, row, data)
        ret.flagged = ret.flagged or row.status != LineStatus.POSTED.value or bool(row.detail)
        s.add(row)
    if sale is not None:
        sale.returned_kop += data.total
        full = all(x.returned_m >= x.qty_m for x in sale_lines if x.status != LineStatus.NONE.value)
        sale.status = (SaleStatus.RETURNED if full else SaleStatus.RETURNED_PARTIALLY).value
        for x in sale_lines:
            s.add(x)
        s.add(sale)
    s.add(ret)
    return STORED


def _return_line(ctx: _Ctx, sale: Sale, sale_lines: list[SaleLineRow], row: SaleReturnLine,
                 data: bus.ReturnCompleted) -> None:
    """Match the line to the sale's, and put the goods back at the cost they left with."""
    s = ctx.session
    ref = f"{data.return_id}#{row.line_no}"
    candidates = [x for x in sale_lines if x.product_ref == row.product_ref and x.qty_m - x.returned_m >= row.qty_m]
    candidates.sort(key=lambda x: (x.line_no != row.line_no, x.line_no))
    if not candidates:
        row.detail = f"в продаже {sale.sale_id} нет строки {row.product_ref!r} на {Decimal(row.qty_m) / 1000} к возврату"
        ctx.problem(ref, "return_exceeds_sale", row.detail)
        return
    src = candidates[0]
    src.returned_m += row.qty_m
    row.sale_line_pk, row.product_id = src.id, src.product_id
    if src.move_id is None:
        row.detail = f"строка продажи не списывалась ({src.status}): возврат не оприходован"
        ctx.problem(ref, "not_posted", row.detail)
        return
    move = s.get(StockMove, src.move_id)
    if move is None or move.cancelled:
        row.detail = "движение продажи отменено: возврат не оприходован"
        ctx.problem(ref, "not_posted", row.detail)
        return
    pair = ledger.Pair(move.tenant_id, move.store_id, move.product_id, move.warehouse_id)
    value = ledger.linked_value(move.qty_m, move.value_kop, row.qty_m)
    new = ledger.NewMove(pair, row.qty_m, CostMode.LINKED, value, source_move_id=move.id)

    def post() -> None:
        closed = ledger.closed_through(s, ctx.tenant_id, ctx.store_id)
        if closed is not None and data.completed_at <= closed:
            raise CloudError(f"возврат {data.completed_at.isoformat()}: период по {closed.isoformat()} закрыт",
                             code="period_closed")
        cfg = ledger.settings_of(s, ctx.tenant_id)
        row.move_id = ledger.post_moves(s, cfg, DocType.SALE.value, None, data.completed_at, [new])[0]

    error = _try(s, post)
    if error is not None:
        row.move_id = None
        row.detail = error[:500]
        ctx.problem(ref, "not_posted", error)
        return
    row.status = LineStatus.POSTED.value
    if row.marking_codes:
        codes = list(row.marking_codes)

        def refund() -> None:
            ids = [marking.parse_unit(c, "возврат").identity for c in codes]
            marking.transition(s, ctx.tenant_id, src.product_id, ids, CodeEvent.REFUND, None, "возврат")

        error = _try(s, refund)
        if error is not None:
            row.detail = error[:500]
            ctx.problem(ref, "marking", error)


# ---------------------------------------------------------------- shifts and cash


def _shift(ctx: _Ctx, shift_id: str) -> Shift:
    row = ctx.session.exec(select(Shift).where(Shift.tenant_id == ctx.tenant_id, Shift.shift_id == shift_id)
                           .with_for_update()).first()
    if row is None:
        row = Shift(tenant_id=ctx.tenant_id, store_id=ctx.store_id, device_id=ctx.event.device_id, lane=ctx.lane,
                    shift_id=shift_id)
    return row


def _shift_opened(ctx: _Ctx, data: bus.ShiftOpened) -> str:
    row = _shift(ctx, data.shift_id)
    if row.opened_at is not None:
        return DUPLICATE
    row.opened_at, row.cashier = data.opened_at, data.cashier.name[:128]
    row.shift_number = row.shift_number or data.shift_number
    row.open_report = data.fiscal.model_dump(mode="json") if data.fiscal else None
    ctx.session.add(row)
    return STORED


def _shift_closed(ctx: _Ctx, data: bus.ShiftClosed) -> str:
    row = _shift(ctx, data.shift_id)
    if row.closed_at is not None:
        return DUPLICATE
    row.sqlmodel_update({
        "closed_at": data.closed_at, "closed_by": data.cashier.name[:128],
        "shift_number": data.shift_number or row.shift_number, "z_report": data.z_report.model_dump(mode="json"),
        "totals": data.totals.model_dump(mode="json"), "fiscal_receipts": data.fiscal_receipts,
        "fn_receipts": data.fn_receipts, "reconciliation": data.reconciliation,
        "differences": [d.model_dump(mode="json") for d in data.differences],
    })
    if not row.cashier:
        row.cashier = data.cashier.name[:128]
    ctx.session.add(row)
    if data.differences:
        ctx.problem(data.shift_id, "shift_differences",
                    "; ".join(d.message for d in data.differences)[:500] or "расхождения при закрытии смены")
    return STORED


def _cash_moved(ctx: _Ctx, data: bus.CashMoved) -> str:
    s = ctx.session
    if s.exec(select(CashMovement.id).where(CashMovement.tenant_id == ctx.tenant_id,
                                            CashMovement.move_id == data.move_id)).first():
        return DUPLICATE
    s.add(CashMovement(tenant_id=ctx.tenant_id, store_id=ctx.store_id, device_id=ctx.event.device_id, lane=ctx.lane,
                       move_id=data.move_id, shift_id=data.shift_id, cashier=data.cashier.name[:128],
                       direction=data.direction, amount_kop=data.amount, reason=data.reason[:300],
                       moved_at=data.moved_at))
    return STORED


# ---------------------------------------------------------------- the poll


def _apply(ctx: _Ctx, settled: bool) -> str:
    schema = bus.EVENT_SCHEMAS[ctx.event.type]
    try:
        data: BaseModel = schema.model_validate(ctx.event.data)
    except ValidationError as exc:
        key = ctx.event.data.get(bus.EVENT_KEYS[ctx.event.type]) if isinstance(ctx.event.data, dict) else None
        ctx.problem(str(key or ""), "bad_payload", str(exc).replace("\n", " ")[:500])
        return REJECTED
    if isinstance(data, bus.SaleCompleted):
        return _sale_completed(ctx, data)
    if isinstance(data, bus.SaleCancelled):
        return _sale_cancelled(ctx, data)
    if isinstance(data, bus.ReturnCompleted):
        return _return_completed(ctx, data, settled)
    if isinstance(data, bus.ShiftOpened):
        return _shift_opened(ctx, data)
    if isinstance(data, bus.ShiftClosed):
        return _shift_closed(ctx, data)
    assert isinstance(data, bus.CashMoved)
    return _cash_moved(ctx, data)


def _cursor(session: Session) -> SalesCursor:
    row = session.exec(select(SalesCursor).where(SalesCursor.name == CURSOR).with_for_update()).first()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(SalesCursor(name=CURSOR))
            session.flush()
    except IntegrityError:
        pass  # created by a concurrent run
    return session.exec(select(SalesCursor).where(SalesCursor.name == CURSOR).with_for_update()).one()


def _event_key(event: Event) -> str:
    key = event.data.get(bus.EVENT_KEYS.get(event.type, ""), "") if isinstance(event.data, dict) else ""
    return str(key or "")


def _apply_one(session: Session, event: Event, place: tuple[Store, str], settled: bool) -> str:
    ctx = _Ctx(session, event, *place)
    try:
        with session.begin_nested():
            return _apply(ctx, settled)
    except Exception as exc:  # a bug on one event: rolled back alone, reported, the rest goes on
        log.exception("sales: event %s (%s) failed", event.id, event.type)
        with session.begin_nested():
            ctx.problem(_event_key(event), "error", f"{type(exc).__name__}: {exc}")
        return REJECTED


def _places(session: Session, device_ids: Collection[int]) -> dict[int, tuple[Store, str] | None]:
    """Store and lane code (the device's code) of each device, in one query; ``None``: not in a store."""
    out: dict[int, tuple[Store, str] | None] = dict.fromkeys(device_ids)
    if not device_ids:
        return out
    rows = session.exec(select(Device.id, Device.code, Store).join(Gateway, col(Gateway.id) == Device.gateway_id)
                        .join(Store, col(Store.id) == Gateway.store_id).where(col(Device.id).in_(sorted(device_ids))))
    for device_id, code, store in rows:
        if device_id is not None:
            out[device_id] = (store, code)
    return out


def _apply_sales(session: Session, items: list[bulk.Item]) -> dict[int, str]:
    """The page fast path for consecutive ``sale_completed`` events; what it sets aside goes per event, in order.

    The fast path runs in a savepoint of its own: should it fail outside its own fallbacks (a bug in
    it), it is rolled back whole and every one of its events goes the per-event way.
    """
    try:
        with session.begin_nested():
            done = bulk.apply_sales(session, items)
    except Exception:
        log.exception("sales: the fast path failed on %d sales; they are applied one by one", len(items))
        done = bulk.Outcome(aside=list(items))
    outcomes = dict.fromkeys(done.stored, STORED) | dict.fromkeys(done.duplicate, DUPLICATE)
    for it in done.aside:
        outcomes[it.pk] = _apply_one(session, it.event, (it.store, it.lane), False)
    return outcomes


def _resolve(session: Session, outcomes: dict[int, str], now: datetime) -> None:
    """Rejections of events that have now been applied (read again before the cursor passed them) are resolved."""
    applied = [pk for pk, outcome in outcomes.items() if outcome in (STORED, DUPLICATE)]
    if not applied:
        return
    for problem in session.exec(select(SalesProblem).where(  # a range of the (event_id, …) index: no id list
            col(SalesProblem.event_id).between(min(applied), max(applied)), col(SalesProblem.code).in_(REJECTIONS),
            col(SalesProblem.resolved_at).is_(None))):
        if outcomes.get(problem.event_id) in (STORED, DUPLICATE):
            problem.resolved_at, problem.resolution = now, outcomes[problem.event_id]
            session.add(problem)


def _page(session: Session, after: int, now: datetime, settle_s: float, counts: Counter[str]) -> tuple[int, int]:
    """Apply one page of events after ``after`` (committed here); returns (last id read, events read).

    Events are applied in id order, except that consecutive ``sale_completed`` events are collected
    and written together by the fast path (:mod:`cloud.sales.bulk`) just before the next event that
    could depend on them (a cancellation or a return, which may name one of those sales) and at the
    end of the page; shifts and cash movements touch none of a sale's rows and do not interrupt a batch.
    """
    cursor = _cursor(session)
    after = max(after, cursor.event_cursor)
    events = list(session.exec(select(Event).where(col(Event.id) > after, col(Event.type).in_(bus.LANE_EVENTS))
                               .order_by(col(Event.id)).limit(PAGE)))
    settled_at = now - timedelta(seconds=settle_s)
    places = _places(session, {e.device_id for e in events})
    outcomes: dict[int, str] = {}
    pending: list[bulk.Item] = []
    deferred: list[tuple[Event, tuple[Store, str]]] = []

    def flush() -> None:
        if pending:
            outcomes.update(_apply_sales(session, pending))
            pending.clear()

    for event in events:
        assert event.id is not None
        place = places.get(event.device_id)
        if not isinstance(event.data, dict) or "lane" not in event.data or place is None:
            outcomes[event.id] = IGNORED  # e.g. the fiscal register's own shift_opened/shift_closed
        elif event.type == bus.EVENT_SALE_COMPLETED:
            pending.append(bulk.Item(event, *place))
        else:
            if event.type in _AFTER_SALES:
                flush()
            outcome = outcomes[event.id] = _apply_one(session, event, place, event.received_at <= settled_at)
            if outcome == DEFERRED:
                deferred.append((event, place))
    flush()
    moving = True
    for event in events:
        assert event.id is not None
        outcome = outcomes[event.id]
        settled = event.received_at <= settled_at
        if outcome != DEFERRED:
            counts[outcome] += 1
        if moving and settled and outcome != DEFERRED:
            cursor.event_cursor = event.id
        else:
            moving = False
    for event, place in deferred:  # a return read before its sale, which came later in this page
        assert event.id is not None
        outcome = outcomes[event.id] = _apply_one(session, event, place, False)
        counts[outcome] += 1
    _resolve(session, outcomes, utcnow())
    cursor.updated_at = utcnow()
    session.add(cursor)
    session.commit()
    return (events[-1].id or after if events else after), len(events)


def ingest(factory: sessionmaker[Session], now: datetime | None = None, settle_s: float = SETTLE_S) -> Counter[str]:
    """Apply every lane event not yet applied; counts of ``stored``/``duplicate``/``deferred``/``rejected``."""
    counts: Counter[str] = Counter()
    after = 0
    while True:
        with unit_of_work(factory) as session:
            after, read = _page(session, after, now or utcnow(), settle_s, counts)
        if read < PAGE:
            return counts


# ---------------------------------------------------------------- rejected events, again


@dataclass(frozen=True)
class Retried:
    """A retry's answer: the problem as it is now, what applying the event gave, whether it was applied now."""

    problem: SalesProblem
    outcome: str
    applied: bool


def retry(factory: sessionmaker[Session], tenant_id: int, problem_id: int) -> Retried:
    """Apply a rejected event (``bad_payload``, ``error``) again, after a fix; exactly once.

    The cursor has moved past it (one bad event must not block its store), so nothing else will
    read it again. The retry takes the cursor's lock (never beside a page of the poll or another
    retry) and the problem's row; a problem already resolved answers with its resolution and
    applies nothing. Applying goes through the per-event path, so its keys (``sale_id``…) keep it
    exactly once: a sale that came in meanwhile in another event makes it a ``duplicate``. Stored
    or duplicate resolves every rejection of the event; rejected again counts a retry.
    """
    with unit_of_work(factory) as session:
        _cursor(session)
        problem = session.exec(select(SalesProblem).where(SalesProblem.id == problem_id,
                                                          SalesProblem.tenant_id == tenant_id).with_for_update()).first()
        if problem is None:
            raise NotFound(f"проблема {problem_id} не найдена", code="problem_not_found")
        if problem.code not in REJECTIONS:
            raise Conflict(f"проблема {problem_id} ({problem.code}) не отказ: событие учтено, повторять нечего",
                           code="problem_not_retryable")
        if problem.resolved_at is not None:
            return Retried(problem, problem.resolution, applied=False)
        event = session.get(Event, problem.event_id)
        place = _places(session, [event.device_id])[event.device_id] if event is not None else None
        if event is None or event.tenant_id != tenant_id or place is None:
            raise Conflict(f"событие {problem.event_id} не найдено или его касса больше не относится к магазину",
                           code="event_gone")
        outcome = _apply_one(session, event, place, True)
        if outcome in (STORED, DUPLICATE):
            now = utcnow()
            for row in session.exec(select(SalesProblem).where(
                    SalesProblem.event_id == problem.event_id, col(SalesProblem.code).in_(REJECTIONS),
                    col(SalesProblem.resolved_at).is_(None))):
                row.resolved_at, row.resolution = now, outcome
                session.add(row)
        else:
            problem.retries += 1
            session.add(problem)
        session.commit()
        log.info("sales: rejected event %s retried: %s", problem.event_id, outcome)
        return Retried(problem, outcome, applied=True)


def retry_rejected(factory: sessionmaker[Session], tenant_id: int) -> Counter[str]:
    """:func:`retry` every unresolved rejection of the tenant, oldest first, each in its own transaction."""
    with unit_of_work(factory) as session:
        ids = list(session.exec(select(SalesProblem.id).where(
            SalesProblem.tenant_id == tenant_id, col(SalesProblem.code).in_(REJECTIONS),
            col(SalesProblem.resolved_at).is_(None)).order_by(col(SalesProblem.id))))
    counts: Counter[str] = Counter()
    for problem_id in ids:
        if problem_id is None:
            continue
        try:
            done = retry(factory, tenant_id, problem_id)
        except CloudError as exc:
            log.warning("sales: problem %s not retried: %s", problem_id, exc.message)
            counts["skipped"] += 1
            continue
        if done.applied:  # another rejection of the same event, resolved by an earlier one, is not counted
            counts[done.outcome] += 1
    return counts


@shared_task(name="cloud.sales.ingest", ignore_result=False)  # type: ignore[untyped-decorator]
def ingest_task(database_url: str | None = None) -> dict[str, int]:
    """The poll: lane events → sales, returns, shifts and cash movements; returns the counts."""
    engine = shared_engine(database_url or get_settings().database_url)
    counts = ingest(session_factory(engine))
    if counts[STORED]:
        log.info("sales ingested: %s", dict(counts))
    return dict(counts)
