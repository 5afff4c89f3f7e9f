"""An operation as others see it: on the cashier page (:func:`sale_view`) and on the bus (:func:`event_of`).

Pure functions of a stored :class:`~gateway.checkout.store.Op`; nothing here reads a device or
writes the store. The lane's own view (shift, cashier, the sale on screen) is ``Lane.view``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from gateway.checkout.machine import SaleState
from gateway.checkout.store import (
    KIND_CASH,
    KIND_FISCALIZE,
    KIND_RETURN,
    KIND_SALE,
    KIND_SHIFT_CLOSE,
    KIND_SHIFT_OPEN,
    Op,
)
from protocols.bus import sales as ev

S = SaleState

STATE_TEXT = {
    S.OPEN: "Новый чек", S.LINES: "Чек набирается", S.PAYMENT_PENDING: "Идёт оплата", S.PAID: "Оплачено",
    S.FISCAL_PENDING: "Печать чека", S.COMPLETED: "Чек напечатан", S.REFUND_PENDING: "Отмена оплаты",
    S.CANCELLED: "Чек отменён", S.CANCELLED_REFUNDED: "Оплата отменена, чек не напечатан",
    S.NEEDS_ATTENTION: "Требует разбора",
}


# The cashier page -------------------------------------------------------------------------------
def sale_view(op: Op) -> dict[str, Any]:
    """A sale, a return or a receipt the cloud asked for, as the page shows it (without its slip)."""
    d = op.doc
    total = sum(line["amount"] for line in d.get("lines", []))
    fiscal = d.get("fiscal") or {}
    return {
        "sale_id": op.id, "kind": op.kind, "state": op.state, "state_text": STATE_TEXT[S(op.state)],
        "lines": d.get("lines", []), "total": total, "payments": d.get("payments", []),
        "change": d.get("change", 0), "problem": d.get("problem", ""),
        "fiscal_error": d.get("fiscal_error"), "original_sale": d.get("sale_id"),
        "fiscal": {k: fiscal.get(k) for k in ("fd_number", "fiscal_sign", "fn_number", "shift_number",
                                              "receipt_number", "issued_at")} if fiscal else None,
        "updated": time.time(),
    }


# The bus ----------------------------------------------------------------------------------------
def event_of(op: Op, lane: str) -> tuple[str, dict[str, Any]] | None:
    """The event a final operation sends (type and data), or ``None`` when it sends none."""
    d = op.doc
    shift = op.shift_id
    if op.kind in (KIND_SALE, KIND_FISCALIZE) and op.state == S.COMPLETED:
        total = sum(line["amount"] for line in d["lines"])
        data: Any = ev.SaleCompleted(
            sale_id=op.id, lane=lane, shift_id=shift, cashier=ev.Cashier(**d["cashier"]),
            lines=tuple(ev.SaleLine(**event_line(line)) for line in d["lines"]),
            payments=tuple(ev.SalePayment(**p) for p in d["payments"]), total=total, change=d.get("change", 0),
            fiscal=fiscal_data(d["fiscal"]), opened_at=d["opened_at"], completed_at=d["completed_at"],
            origin="cloud" if op.kind == KIND_FISCALIZE else "checkout", order_id=d.get("order_id"))
        return ev.EVENT_SALE_COMPLETED, data.model_dump(mode="json")
    if op.kind == KIND_SALE and op.state in (S.CANCELLED, S.CANCELLED_REFUNDED):
        data = ev.SaleCancelled(
            sale_id=op.id, lane=lane, shift_id=shift, cashier=ev.Cashier(**d["cashier"]),
            state=op.state, reason=d.get("reason", ""),
            total=sum(line["amount"] for line in d["lines"]),
            voided=tuple(ev.SalePayment(**p) for p in d.get("voided", [])),
            cash_returned=d.get("cash_returned", 0),
            lines=tuple(ev.SaleLine(**event_line(line)) for line in d["lines"]), cancelled_at=dt.datetime.now(dt.UTC))
        return ev.EVENT_SALE_CANCELLED, data.model_dump(mode="json")
    if op.kind == KIND_RETURN and op.state == S.COMPLETED:
        data = ev.ReturnCompleted(
            return_id=op.id, sale_id=d["sale_id"], lane=lane, shift_id=shift, cashier=ev.Cashier(**d["cashier"]),
            lines=tuple(ev.SaleLine(**event_line(line)) for line in d["lines"]),
            refunds=tuple(ev.SalePayment(**p) for p in d["payments"]),
            total=sum(line["amount"] for line in d["lines"]), fiscal=fiscal_data(d["fiscal"]),
            completed_at=d["completed_at"])
        return ev.EVENT_RETURN_COMPLETED, data.model_dump(mode="json")
    if op.kind == KIND_SHIFT_OPEN and op.state == S.COMPLETED:
        data = ev.ShiftOpened(
            shift_id=op.id, lane=lane, cashier=ev.Cashier(**d["cashier"]), shift_number=d.get("shift_number"),
            fiscal=fiscal_data(d["fiscal"]) if d.get("fiscal") else None, opened_at=d["opened_at"])
        return ev.EVENT_SHIFT_OPENED, data.model_dump(mode="json")
    if op.kind == KIND_SHIFT_CLOSE and op.state == S.COMPLETED:
        return ev.EVENT_SHIFT_CLOSED, d["closed"]
    if op.kind == KIND_CASH:
        return ev.EVENT_CASH_MOVED, d["event"]
    return None


def event_line(line: dict[str, Any]) -> dict[str, Any]:
    """A sale line as the bus contract has it (the page's extra keys dropped)."""
    keys = ("line_no", "product_id", "name", "quantity", "measure", "price", "amount", "vat", "vat_rate",
            "marking_codes", "source")
    return {k: line[k] for k in keys if k in line}


def fiscal_data(doc: dict[str, Any]) -> ev.FiscalData:
    """A fiscal document's attributes as the bus contract has them (the FN's naive local clock → UTC)."""
    return ev.FiscalData(
        fd_number=doc.get("fd_number", 0), fiscal_sign=doc.get("fiscal_sign", 0), fn_number=doc.get("fn_number"),
        shift_number=doc.get("shift_number"), receipt_number=doc.get("receipt_number"),
        issued_at=(dt.datetime.fromisoformat(str(doc["issued_at"])).astimezone(dt.UTC)  # the FN's clock: naive, local
                   if doc.get("issued_at") else dt.datetime.now(dt.UTC)),
    )
