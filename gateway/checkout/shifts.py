"""The lane's shift: open it, print an X report, close it (Z report, then the terminal's reconciliation)
and compare the shift's totals with the FN and the terminal.

Opening is an operation of kind ``shift_open`` under a new id; the register's ``open_shift`` runs
under that id (when its shift is open already the lane adopts it). Closing is ``{shift}.z``
(the shift id's first 28 characters): ``close_shift`` under it, the Z report saved before the
reconciliation ``{shift}.z.rc``, then the ``shift_closed`` event with the totals and every
difference found. Both finish from recovery after a crash (:func:`finish_open`, :func:`finish_close`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from gateway.checkout.base import UNKNOWN_CODES, CheckoutRefused, fiscal_cashier, new_id, now, rub
from gateway.checkout.machine import FINAL, SaleState
from gateway.checkout.store import (
    KIND_CASH,
    KIND_FISCALIZE,
    KIND_RETURN,
    KIND_SALE,
    KIND_SHIFT_CLOSE,
    KIND_SHIFT_OPEN,
    CheckoutStore,
    Op,
)
from gateway.checkout.views import fiscal_data
from protocols.bus import ReplyStatus
from protocols.bus import sales as ev

if TYPE_CHECKING:
    from gateway.checkout.lane import Lane

S = SaleState


# Open ---------------------------------------------------------------------------------------------
def open_shift(lane: Lane, cashier: dict[str, Any] | None) -> dict[str, Any]:
    lane.require_ready()
    who = lane.require_cashier(cashier)
    record = lane.record()
    if record.get("shift_state") == "open":
        raise CheckoutRefused(f"Смена {record.get('shift_number')} уже открыта")
    op = Op(new_id(), lane.id, KIND_SHIFT_OPEN, S.FISCAL_PENDING, {"cashier": who, "opened_at": now()})
    op.shift_id = op.id
    lane.store.save(op, "open_shift")
    return finish_open(lane, op)


def finish_open(lane: Lane, op: Op) -> dict[str, Any]:
    """Open the register's shift under ``op``'s id (or adopt the one open there) and record it."""
    who = op.doc["cashier"]
    out = lane.calls.call(lane.settings.fiscal, "open_shift", op.id, {"cashier": fiscal_cashier(who)},
                          progress=lane.progress)
    fiscal: dict[str, Any] | None
    if out.status is ReplyStatus.DONE:
        fiscal = out.result or {}
    elif out.code == "fiscal_shift_open":  # the register's shift is open already: adopt it
        st = lane.calls.call(lane.settings.fiscal, "status", f"{op.id}.st", {}, journaled=False)
        if st.status is not ReplyStatus.DONE:
            raise CheckoutRefused(f"ККТ не отвечает: {st.message}")
        fiscal = None
        op.doc["adopted_shift_number"] = (st.result or {}).get("shift_number")
    else:
        if out.code not in UNKNOWN_CODES:
            op.state = S.CANCELLED
            lane.store.save(op, "open_failed", {"code": out.code, "message": out.message})
        raise CheckoutRefused(f"Смена не открыта: {out.message}")
    number = (fiscal or {}).get("shift_number") or op.doc.get("adopted_shift_number")
    op.state, op.event_pending = S.COMPLETED, True
    op.doc.update(fiscal=fiscal, shift_number=number)
    lane.store.save(op, "opened", {"fiscal": fiscal})
    lane.update_record(shift_state="open", shift_id=op.id, shift_number=number, shift_opened_at=op.doc["opened_at"])
    lane.emit_event(op)
    lane.changed()
    return {"shift_id": op.id, "shift_number": number, "fiscal": fiscal}


# X report -----------------------------------------------------------------------------------------
def x_report(lane: Lane) -> dict[str, Any]:
    lane.require_ready()
    lane.require_shift()
    out = lane.calls.call(lane.settings.fiscal, "x_report", f"x{new_id()[:30]}", {}, journaled=False)
    if out.status is not ReplyStatus.DONE:
        raise CheckoutRefused(f"X-отчёт не напечатан: {out.message}")
    return {"printed": True}


# Close --------------------------------------------------------------------------------------------
def close_shift(lane: Lane, cashier: dict[str, Any] | None) -> dict[str, Any]:
    lane.require_ready()
    who = lane.require_cashier(cashier)
    record = lane.require_shift()
    sale = lane.current()
    if sale is not None and S(sale.state) not in FINAL and sale.doc.get("lines"):
        raise CheckoutRefused("Сначала завершите или отмените текущий чек")
    op = Op(f"{record['shift_id'][:28]}.z", lane.id, KIND_SHIFT_CLOSE, S.FISCAL_PENDING,
            {"cashier": who, "shift_number": record.get("shift_number")}, shift_id=record["shift_id"])
    existing = lane.store.get(op.id)
    lane.store.save(existing or op, "close_shift")
    return finish_close(lane, existing or op)


def finish_close(lane: Lane, op: Op) -> dict[str, Any]:
    """Z report (once), the terminal's reconciliation (once), then the totals and the ``shift_closed`` event."""
    assert op.shift_id is not None
    if "z" not in op.doc:
        out = lane.calls.call(lane.settings.fiscal, "close_shift", op.id,
                              {"cashier": fiscal_cashier(op.doc["cashier"])}, progress=lane.progress)
        if out.status is not ReplyStatus.DONE:
            lane.store.save(op, "close_failed", {"code": out.code, "message": out.message})
            raise CheckoutRefused(f"Смена не закрыта: {out.message}")
        op.doc["z"] = out.result or {}
        lane.store.save(op, "z_report", {"fd_number": op.doc["z"].get("fd_number")})
    if "reconciliation" not in op.doc and lane.settings.payment:
        out = lane.calls.call(lane.settings.payment, "reconcile", f"{op.id}.rc", {}, progress=lane.progress)
        op.doc["reconciliation"] = out.result if out.status is ReplyStatus.DONE else {
            "ok": False, "code": out.code, "message": out.message}
        lane.store.save(op, "reconciled", {"code": op.doc["reconciliation"].get("code")})
    data = shift_closed(lane.store, op, lane=lane.id, terminal=bool(lane.settings.payment))
    op.doc["closed"] = data
    op.state, op.event_pending = S.COMPLETED, True
    lane.store.save(op, "closed")
    lane.update_record(shift_state="closed", shift_id=None, current_sale=None)
    lane.emit_event(op)
    lane.changed()
    return data


# The totals compared --------------------------------------------------------------------------------
def shift_closed(store: CheckoutStore, op: Op, *, lane: str, terminal: bool) -> dict[str, Any]:
    """The ``shift_closed`` event of closing ``op``: the lane's totals, and where the FN or the terminal differ.

    ``terminal``: the lane has a payment terminal, so a missing reconciliation is a difference.
    """
    assert op.shift_id is not None
    totals, receipts = _totals(store, op.shift_id)
    opened = store.get(op.shift_id)
    z = op.doc.get("z") or {}
    fn_receipts = None
    open_fd = ((opened.doc.get("fiscal") or {}).get("fd_number")) if opened else None
    if open_fd is not None and z.get("fd_number") is not None:
        fn_receipts = int(z["fd_number"]) - int(open_fd) - 1
    differences: list[ev.Difference] = []
    if fn_receipts is not None and fn_receipts != receipts:
        differences.append(ev.Difference(
            what="receipts", lane=receipts, other=fn_receipts, source="fiscal",
            message=f"Чеков в кассе {receipts}, документов в ФН за смену {fn_receipts}"))
    rec = op.doc.get("reconciliation")
    if rec and "purchases" in rec:
        card = rec["purchases"]["amount"] - rec["voids"]["amount"]
        if card != totals.sales_card:
            differences.append(ev.Difference(
                what="card_sales", lane=totals.sales_card, other=card, source="terminal",
                message=f"Оплаты картой по кассе {rub(totals.sales_card)}, по терминалу {rub(card)}"))
        if rec["refunds"]["amount"] != totals.returns_card:
            differences.append(ev.Difference(
                what="card_returns", lane=totals.returns_card, other=rec["refunds"]["amount"], source="terminal",
                message=f"Возвраты на карту по кассе {rub(totals.returns_card)}, "
                        f"по терминалу {rub(rec['refunds']['amount'])}"))
    elif terminal:
        differences.append(ev.Difference(
            what="reconciliation", lane=totals.sales_card, other=0, source="terminal",
            message=f"Сверка итогов не выполнена: {(rec or {}).get('message', 'нет ответа терминала')}"))
    data = ev.ShiftClosed(
        shift_id=op.shift_id, lane=lane, cashier=ev.Cashier(**op.doc["cashier"]),
        shift_number=z.get("shift_number") or op.doc.get("shift_number"),
        z_report=fiscal_data(z), totals=totals, fiscal_receipts=receipts, fn_receipts=fn_receipts,
        reconciliation=rec, differences=tuple(differences), closed_at=dt.datetime.now(dt.UTC),
    )
    return data.model_dump(mode="json")


def _totals(store: CheckoutStore, shift_id: str) -> tuple[ev.Totals, int]:
    """The shift's completed sales, returns and cash moves summed, and how many receipts they printed."""
    receipts = 0
    t = ev.Totals().model_dump()
    for o in store.in_shift(shift_id):
        if o.state != S.COMPLETED:
            continue
        if o.kind in (KIND_SALE, KIND_FISCALIZE):
            receipts += 1
            t["sales_count"] += 1
            for p in o.doc.get("payments", []):
                if p["type"] == "cash":
                    t["sales_cash"] += p["amount"]
                elif p["type"] == "card":
                    t["sales_card"] += p["amount"]
        elif o.kind == KIND_RETURN:
            receipts += 1
            t["returns_count"] += 1
            for p in o.doc.get("payments", []):
                t["returns_cash" if p["type"] == "cash" else "returns_card"] += p["amount"]
        elif o.kind == KIND_CASH:
            t["cash_in" if o.doc["direction"] == "in" else "cash_out"] += o.doc["amount"]
    return ev.Totals(**t), receipts
