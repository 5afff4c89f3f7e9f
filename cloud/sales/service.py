"""Reading sales back (lists, a receipt with lines/payments/fiscal data, shifts, returns, problems),
the sales report (revenue, cost from the ledger, margin) and its xlsx export, and the ``fiscalize``
command's arguments. Every query is filtered by tenant.

Money leaves the API as ``Decimal`` roubles with 2 decimals, quantities with 3 (as the catalog and
inventory APIs do); the database keeps kopecks and thousandths.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator
from sqlalchemy import and_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from cloud.catalog.models import Product
from cloud.catalog.units import from_kop, from_milli
from cloud.errors import Invalid, NotFound
from cloud.inventory.models import StockMove
from cloud.registry.models import Device, Gateway, Store
from cloud.sales.models import (
    CashMovement,
    Sale,
    SaleLine,
    SalePayment,
    SaleReturn,
    SaleReturnLine,
    SalesProblem,
    SaleStatus,
    Shift,
)

GroupBy = Literal["store", "day", "product", "cashier"]

# ---------------------------------------------------------------- API shapes


class PaymentPublic(BaseModel):
    type: str
    amount: Decimal
    operation_id: str | None
    rrn: str | None
    auth_code: str | None
    card_mask: str | None
    voided: bool


class FiscalPublic(BaseModel):
    fd_number: int | None
    fiscal_sign: int | None
    fn_number: str | None
    shift_number: int | None
    receipt_number: int | None
    issued_at: datetime | None


class SaleSummary(BaseModel):
    id: int
    sale_id: str
    store_id: int
    lane: str
    shift_id: str | None
    cashier: str
    status: str
    origin: str
    order_id: str | None
    total: Decimal
    returned: Decimal
    completed_at: datetime
    business_date: date
    flagged: bool


class SaleLinePublic(BaseModel):
    line_no: int
    product_id: int | None
    product_ref: str
    name: str
    quantity: Decimal
    measure: str
    price: Decimal
    amount: Decimal
    vat: str
    vat_rate: str
    marking_codes: list[str]
    returned: Decimal
    status: str
    detail: str


class SalePublic(SaleSummary):
    cashier_inn: str | None
    change: Decimal
    opened_at: datetime | None
    cancel_reason: str
    fiscal: FiscalPublic
    lines: list[SaleLinePublic]
    payments: list[PaymentPublic]
    returns: list[str]


class SalePage(BaseModel):
    items: list[SaleSummary]
    limit: int
    offset: int


class ReturnLinePublic(BaseModel):
    line_no: int
    product_id: int | None
    product_ref: str
    name: str
    quantity: Decimal
    amount: Decimal
    status: str
    detail: str


class ReturnPublic(BaseModel):
    id: int
    return_id: str
    sale_id: str
    sale_pk: int | None
    store_id: int
    lane: str
    cashier: str
    total: Decimal
    completed_at: datetime
    business_date: date
    flagged: bool
    fiscal: FiscalPublic
    lines: list[ReturnLinePublic]
    refunds: list[PaymentPublic]


class ShiftPublic(BaseModel):
    id: int
    shift_id: str
    store_id: int
    lane: str
    shift_number: int | None
    cashier: str
    opened_at: datetime | None
    closed_at: datetime | None
    z_report: dict[str, Any] | None
    totals: dict[str, Any] | None
    fiscal_receipts: int | None
    fn_receipts: int | None
    reconciliation: dict[str, Any] | None
    differences: list[dict[str, Any]]
    cash_movements: list[dict[str, Any]]


class ProblemPublic(BaseModel):
    id: int
    store_id: int
    event_id: int
    event_type: str
    ref: str
    code: str
    detail: str
    created_at: datetime
    resolved_at: datetime | None = None
    resolution: str = ""
    retries: int = 0


class ReportRow(BaseModel):
    key: str
    label: str
    receipts: int
    quantity: Decimal | None
    """Net quantity sold (``group_by=product`` only)."""
    revenue: Decimal
    cost: Decimal
    margin: Decimal
    margin_pct: Decimal | None


class ReportPublic(BaseModel):
    group_by: str
    date_from: date
    date_to: date
    rows: list[ReportRow]
    total: ReportRow
    uncosted_lines: int
    """Lines with revenue but no ledger cost (unknown product, not posted): their cost counts as 0."""


# ---------------------------------------------------------------- reads


def _fiscal(row: Sale | SaleReturn) -> FiscalPublic:
    return FiscalPublic(fd_number=row.fd_number, fiscal_sign=row.fiscal_sign, fn_number=row.fn_number,
                        shift_number=row.shift_number, receipt_number=row.receipt_number, issued_at=row.fiscal_at)


def _payment(p: SalePayment) -> PaymentPublic:
    return PaymentPublic(type=p.type, amount=from_kop(p.amount_kop), operation_id=p.operation_id, rrn=p.rrn,
                         auth_code=p.auth_code, card_mask=p.card_mask, voided=p.voided)


def _summary(s: Sale) -> dict[str, Any]:
    return {"id": s.id, "sale_id": s.sale_id, "store_id": s.store_id, "lane": s.lane, "shift_id": s.shift_id,
            "cashier": s.cashier, "status": s.status, "origin": s.origin, "order_id": s.order_id,
            "total": from_kop(s.total_kop), "returned": from_kop(s.returned_kop), "completed_at": s.completed_at,
            "business_date": s.business_date, "flagged": s.flagged}


def list_sales(session: Session, tenant_id: int, *, store_id: int | None = None, date_from: date | None = None,
               date_to: date | None = None, lane: str | None = None, cashier: str | None = None,
               status: str | None = None, limit: int = 100, offset: int = 0) -> SalePage:
    q = select(Sale).where(Sale.tenant_id == tenant_id)
    if store_id is not None:
        q = q.where(Sale.store_id == store_id)
    if date_from is not None:
        q = q.where(Sale.business_date >= date_from)
    if date_to is not None:
        q = q.where(Sale.business_date <= date_to)
    if lane is not None:
        q = q.where(Sale.lane == lane)
    if cashier is not None:
        q = q.where(Sale.cashier == cashier)
    if status is not None:
        q = q.where(Sale.status == status)
    rows = session.exec(q.order_by(col(Sale.completed_at).desc(), col(Sale.id).desc()).offset(offset).limit(limit))
    return SalePage(items=[SaleSummary(**_summary(s)) for s in rows], limit=limit, offset=offset)


def get_sale(session: Session, tenant_id: int, pk: int) -> SalePublic:
    s = session.get(Sale, pk)
    if s is None or s.tenant_id != tenant_id:
        raise NotFound(f"продажа {pk} не найдена", code="sale_not_found")
    lines = session.exec(select(SaleLine).where(SaleLine.sale_pk == pk).order_by(col(SaleLine.line_no))).all()
    payments = session.exec(select(SalePayment).where(SalePayment.sale_pk == pk).order_by(col(SalePayment.id))).all()
    returns = session.exec(select(SaleReturn.return_id).where(SaleReturn.sale_pk == pk)
                           .order_by(col(SaleReturn.id))).all()
    return SalePublic(
        **_summary(s), cashier_inn=s.cashier_inn, change=from_kop(s.change_kop), opened_at=s.opened_at,
        cancel_reason=s.cancel_reason, fiscal=_fiscal(s),
        lines=[SaleLinePublic(line_no=ln.line_no, product_id=ln.product_id, product_ref=ln.product_ref, name=ln.name,
                              quantity=from_milli(ln.qty_m), measure=ln.measure, price=from_kop(ln.price_kop),
                              amount=from_kop(ln.amount_kop), vat=ln.vat, vat_rate=ln.vat_rate,
                              marking_codes=list(ln.marking_codes), returned=from_milli(ln.returned_m),
                              status=ln.status, detail=ln.detail) for ln in lines],
        payments=[_payment(p) for p in payments], returns=list(returns),
    )


def list_returns(session: Session, tenant_id: int, *, store_id: int | None = None, date_from: date | None = None,
                 date_to: date | None = None, sale_pk: int | None = None, limit: int = 100,
                 offset: int = 0) -> list[ReturnPublic]:
    q = select(SaleReturn).where(SaleReturn.tenant_id == tenant_id)
    if store_id is not None:
        q = q.where(SaleReturn.store_id == store_id)
    if date_from is not None:
        q = q.where(SaleReturn.business_date >= date_from)
    if date_to is not None:
        q = q.where(SaleReturn.business_date <= date_to)
    if sale_pk is not None:
        q = q.where(SaleReturn.sale_pk == sale_pk)
    out = []
    for r in session.exec(q.order_by(col(SaleReturn.completed_at).desc()).offset(offset).limit(limit)).all():
        lines = session.exec(select(SaleReturnLine).where(SaleReturnLine.return_pk == r.id)
                             .order_by(col(SaleReturnLine.line_no))).all()
        refunds = session.exec(select(SalePayment).where(SalePayment.return_pk == r.id)).all()
        out.append(ReturnPublic(
            id=r.id or 0, return_id=r.return_id, sale_id=r.sale_ref, sale_pk=r.sale_pk, store_id=r.store_id,
            lane=r.lane, cashier=r.cashier, total=from_kop(r.total_kop), completed_at=r.completed_at,
            business_date=r.business_date, flagged=r.flagged, fiscal=_fiscal(r),
            lines=[ReturnLinePublic(line_no=ln.line_no, product_id=ln.product_id, product_ref=ln.product_ref,
                                    name=ln.name, quantity=from_milli(ln.qty_m), amount=from_kop(ln.amount_kop),
                                    status=ln.status, detail=ln.detail) for ln in lines],
            refunds=[_payment(p) for p in refunds],
        ))
    return out


def list_shifts(session: Session, tenant_id: int, *, store_id: int | None = None, lane: str | None = None,
                limit: int = 100, offset: int = 0) -> list[ShiftPublic]:
    q = select(Shift).where(Shift.tenant_id == tenant_id)
    if store_id is not None:
        q = q.where(Shift.store_id == store_id)
    if lane is not None:
        q = q.where(Shift.lane == lane)
    shifts = session.exec(q.order_by(col(Shift.id).desc()).offset(offset).limit(limit)).all()
    ids = [s.shift_id for s in shifts]
    cash: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        for m in session.exec(select(CashMovement).where(CashMovement.tenant_id == tenant_id,
                                                         col(CashMovement.shift_id).in_(ids))
                              .order_by(col(CashMovement.moved_at))):
            cash[m.shift_id or ""].append({"move_id": m.move_id, "direction": m.direction,
                                           "amount": str(from_kop(m.amount_kop)), "reason": m.reason,
                                           "cashier": m.cashier, "moved_at": m.moved_at.isoformat()})
    return [ShiftPublic(id=s.id or 0, shift_id=s.shift_id, store_id=s.store_id, lane=s.lane,
                        shift_number=s.shift_number, cashier=s.cashier, opened_at=s.opened_at, closed_at=s.closed_at,
                        z_report=s.z_report, totals=s.totals, fiscal_receipts=s.fiscal_receipts,
                        fn_receipts=s.fn_receipts, reconciliation=s.reconciliation, differences=list(s.differences),
                        cash_movements=cash.get(s.shift_id, [])) for s in shifts]


def list_problems(session: Session, tenant_id: int, limit: int = 100, offset: int = 0) -> list[ProblemPublic]:
    rows = session.exec(select(SalesProblem).where(SalesProblem.tenant_id == tenant_id)
                        .order_by(col(SalesProblem.id).desc()).offset(offset).limit(limit)).all()
    return [ProblemPublic.model_validate(r, from_attributes=True) for r in rows]


# ---------------------------------------------------------------- the report


@dataclass
class _Acc:
    label: str = ""
    receipts: set[tuple[str, int]] = field(default_factory=set)
    qty_m: int = 0
    revenue: int = 0
    cost: int = 0

    def row(self, key: str, with_qty: bool) -> ReportRow:
        margin = self.revenue - self.cost
        pct = (Decimal(margin) * 100 / Decimal(self.revenue)).quantize(Decimal("0.01"), ROUND_HALF_UP) \
            if self.revenue else None
        return ReportRow(key=key, label=self.label, receipts=len(self.receipts),
                         quantity=from_milli(self.qty_m) if with_qty else None, revenue=from_kop(self.revenue),
                         cost=from_kop(self.cost), margin=from_kop(margin), margin_pct=pct)


def report(session: Session, tenant_id: int, group_by: GroupBy, date_from: date, date_to: date,
           store_id: int | None = None) -> ReportPublic:
    """Revenue (lines of completed receipts minus returns), cost (the ledger's value of their rows),
    margin and margin % per store, business day, product or cashier, over business dates inclusive."""
    if date_to < date_from:
        raise Invalid("to раньше from", code="bad_period")
    moves = StockMove.__table__  # type: ignore[attr-defined]
    S, SL = Sale.__table__, SaleLine.__table__  # type: ignore[attr-defined]
    R, RL = SaleReturn.__table__, SaleReturnLine.__table__  # type: ignore[attr-defined]
    sale_q = (sa_select(SL.c.product_id, SL.c.product_ref, SL.c.name, SL.c.qty_m, SL.c.amount_kop, S.c.id,
                        S.c.store_id, S.c.business_date, S.c.cashier, moves.c.value_kop, moves.c.cancelled)
              .select_from(SL.join(S, S.c.id == SL.c.sale_pk)
                           .outerjoin(moves, and_(moves.c.id == SL.c.move_id, moves.c.tenant_id == tenant_id)))
              .where(S.c.tenant_id == tenant_id, S.c.status != SaleStatus.CANCELLED.value,
                     S.c.business_date >= date_from, S.c.business_date <= date_to))
    ret_q = (sa_select(RL.c.product_id, RL.c.product_ref, RL.c.name, RL.c.qty_m, RL.c.amount_kop, R.c.id,
                       R.c.store_id, R.c.business_date, R.c.cashier, moves.c.value_kop, moves.c.cancelled)
             .select_from(RL.join(R, R.c.id == RL.c.return_pk)
                          .outerjoin(moves, and_(moves.c.id == RL.c.move_id, moves.c.tenant_id == tenant_id)))
             .where(R.c.tenant_id == tenant_id, R.c.business_date >= date_from, R.c.business_date <= date_to))
    if store_id is not None:
        sale_q = sale_q.where(S.c.store_id == store_id)
        ret_q = ret_q.where(R.c.store_id == store_id)
    stores = {s.id: s for s in session.exec(select(Store).where(Store.tenant_id == tenant_id))}
    groups: dict[str, _Acc] = defaultdict(_Acc)
    total = _Acc(label="Итого")
    uncosted = 0
    for sign, kind, query in ((1, "sale", sale_q), (-1, "return", ret_q)):
        for product_id, ref, name, qty_m, amount, doc_pk, st, day, cashier, value, cancelled in session.execute(query):
            has_cost = value is not None and not cancelled
            cost = abs(value) if has_cost else 0  # a sale row's value is negative, a return's positive
            uncosted += 0 if has_cost else 1
            if group_by == "store":
                key, label = str(st), (stores[st].name or stores[st].code) if st in stores else str(st)
            elif group_by == "day":
                key = label = day.isoformat()
            elif group_by == "product":
                key, label = (str(product_id), name) if product_id is not None else (f"unknown:{ref}", name)
            else:
                key = label = cashier or "—"
            for acc in (groups[key], total):
                acc.label = acc.label or label
                if sign > 0:
                    acc.receipts.add((kind, doc_pk))
                acc.qty_m += sign * qty_m
                acc.revenue += sign * amount
                acc.cost += sign * cost
    if group_by == "product":
        names = {p.id: p.name for p in session.exec(select(Product).where(
            Product.tenant_id == tenant_id, col(Product.id).in_([int(k) for k in groups if k.isdigit()])))}
        for k, acc in groups.items():
            if k.isdigit():
                acc.label = names.get(int(k), acc.label)
    with_qty = group_by == "product"
    rows = [groups[k].row(k, with_qty) for k in sorted(groups)]
    return ReportPublic(group_by=group_by, date_from=date_from, date_to=date_to, rows=rows,
                        total=total.row("total", with_qty), uncosted_lines=uncosted)


def report_xlsx(rep: ReportPublic) -> bytes:
    from openpyxl import Workbook

    titles = {"store": "Магазин", "day": "День", "product": "Товар", "cashier": "Кассир"}
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Продажи"
    ws.append([f"Отчёт о продажах {rep.date_from.isoformat()} — {rep.date_to.isoformat()}"])
    header = [titles[rep.group_by], "Чеков", *(["Количество"] if rep.group_by == "product" else []),
              "Выручка", "Себестоимость", "Маржа", "Маржа, %"]
    ws.append(header)
    for r in [*rep.rows, rep.total]:
        ws.append([r.label, r.receipts, *([r.quantity] if rep.group_by == "product" else []), r.revenue, r.cost,
                   r.margin, r.margin_pct])
    money_from = 4 if rep.group_by == "product" else 3
    for row in ws.iter_rows(min_row=3, min_col=money_from, max_col=money_from + 3):
        for cell in row:
            cell.number_format = "#,##0.00"
    ws.column_dimensions["A"].width = 40
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---------------------------------------------------------------- fiscalize (cloud → a store's lane)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FiscalItemIn(_In):
    product_id: str = Field(default="order-item", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    name: str = Field(min_length=1, max_length=128)
    quantity: str = Field(pattern=r"^[0-9]{1,7}(\.[0-9]{1,3})?$")
    price: StrictInt = Field(ge=0, le=10**11)
    """Kopecks per piece or per kg."""
    vat: str
    measure: Literal["piece", "kg"] = "piece"
    marking_code: str | None = None
    item_type: StrictInt = 1
    payment_method: StrictInt = 4
    """FFD tag 1214: 4 = full settlement."""


class FiscalPaymentsIn(_In):
    cash: StrictInt = Field(default=0, ge=0)
    electronic: StrictInt = Field(default=0, ge=0)
    prepayment: StrictInt = Field(default=0, ge=0)
    """The prepayment offset (kopecks already paid, e.g. online)."""
    rrn: str | None = None


class CashierIn(_In):
    name: str = Field(min_length=1, max_length=64)
    inn: str | None = Field(default=None, pattern=r"^([0-9]{10}|[0-9]{12})$")


class FiscalizeIn(_In):
    """Body of ``POST /stores/{id}/fiscalize``: the lane ``fiscalize`` command's args (kopecks) and how to send it."""

    order_id: str = Field(min_length=1, max_length=64)
    items: list[FiscalItemIn] = Field(min_length=1, max_length=100)
    payments: FiscalPaymentsIn
    customer_contact: str | None = None
    cashier: CashierIn | None = None
    device_id: int | None = None
    """The lane to use (default: the store's first present lane)."""
    idempotency_key: str | None = None
    """Default ``fiscalize-{order_id}``: one receipt per order however often this is retried."""
    timeout_s: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _balanced(self) -> FiscalizeIn:
        from protocols.bus.sales import VAT_KINDS

        for it in self.items:
            if it.vat not in VAT_KINDS:
                raise ValueError(f"items: vat {it.vat!r} must be one of {', '.join(VAT_KINDS)}")
        total = sum(int((Decimal(it.price) * Decimal(it.quantity)).quantize(Decimal(1), ROUND_HALF_UP))
                    for it in self.items)
        paid = self.payments.cash + self.payments.electronic + self.payments.prepayment
        if paid != total:
            raise ValueError(f"payments add up to {paid} kopecks, the items to {total}")
        return self

    def args(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"device_id", "idempotency_key", "timeout_s"}, exclude_none=True)

    def key(self) -> str:
        return self.idempotency_key or f"fiscalize-{self.order_id}"


def lane_of(session: Session, tenant_id: int, store_id: int, device_id: int | None) -> int:
    """The lane device of the store that will fiscalize (the one asked for, or its first present lane)."""
    store = session.get(Store, store_id)
    if store is None or store.tenant_id != tenant_id:
        raise NotFound(f"магазин {store_id} не найден", code="store_not_found")
    q = (select(Device.id).join(Gateway, col(Gateway.id) == Device.gateway_id)
         .where(Device.tenant_id == tenant_id, Gateway.store_id == store_id, Device.kind == "lane"))
    if device_id is not None:
        found = session.exec(q.where(Device.id == device_id)).first()
        if found is None:
            raise NotFound(f"касса {device_id} в магазине {store_id} не найдена", code="lane_not_found")
        return found
    found = session.exec(q.where(col(Device.present).is_(True)).order_by(col(Device.id))).first()
    if found is None:
        raise NotFound(f"в магазине {store_id} нет кассы (устройства lane)", code="lane_not_found")
    return found
