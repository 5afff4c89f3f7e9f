"""Returns by the original receipt: what may still be returned, the refund to the card, then the return receipt.

A return is an operation of kind ``return`` under its own id (a new one, or the cloud's
``return_id``: a repeat continues the stored one). Its lines point at the sale's
(``original_line_no``); no line is returned beyond what earlier returns left. The card share
(at most what the sale's card paid less earlier card refunds) is refunded under ``{return}.p1``
by the sale's RRN, the rest in cash; then the return receipt goes through the sale saga's
receipt step (:func:`gateway.checkout.saga.fiscalize`), event and refund slip included.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gateway.checkout.base import KG, UNKNOWN_CODES, CheckoutRefused, amount, new_id, now
from gateway.checkout.calls import CODE_NOT_STARTED
from gateway.checkout.machine import SaleState, step
from gateway.checkout.saga import fiscalize
from gateway.checkout.store import KIND_FISCALIZE, KIND_RETURN, KIND_SALE, CheckoutStore, Op
from gateway.devices.base import Outcome
from protocols.bus import ReplyStatus

if TYPE_CHECKING:
    from gateway.checkout.lane import Lane

S = SaleState


def return_sale(lane: Lane, sale_id: str, lines: list[dict[str, Any]] | None,
                return_id: str | None) -> dict[str, Any]:
    """A return by the original receipt: ``lines`` [{line_no, quantity}] (all when None)."""
    lane.require_ready()
    who = lane.require_cashier()
    record = lane.require_shift()
    original = lane.store.get(sale_id)
    if original is None or original.kind not in (KIND_SALE, KIND_FISCALIZE) or original.state != S.COMPLETED:
        raise CheckoutRefused(f"Чек продажи {sale_id} не найден или не завершён")
    rid = return_id or new_id()
    existing = lane.store.get(rid)
    if existing is not None:
        return lane.resume(existing)
    returned = returned_qty(lane.store, lane.id, sale_id)
    by_no = {line["line_no"]: line for line in original.doc["lines"]}
    wanted = lines or [{"line_no": n, "quantity": by_no[n]["quantity"]} for n in by_no]
    out_lines = []
    for n, w in enumerate(wanted, start=1):
        src = by_no.get(int(w["line_no"]))
        if src is None:
            raise CheckoutRefused(f"В чеке продажи нет позиции {w['line_no']}")
        qty = Decimal(str(w.get("quantity") or src["quantity"])).quantize(KG)
        left = Decimal(src["quantity"]) - returned.get(src["line_no"], Decimal(0))
        if qty <= 0 or qty > left:
            raise CheckoutRefused(f"«{src['name']}»: можно вернуть не больше {left.normalize()}")
        line_amount = src["amount"] if qty == Decimal(src["quantity"]) else amount(src["price"], qty)
        out_lines.append({**src, "line_no": n, "original_line_no": src["line_no"], "quantity": str(qty),
                          "amount": line_amount})
    total = sum(line["amount"] for line in out_lines)
    card_paid = sum(p["amount"] for p in original.doc["payments"] if p["type"] == "card")
    card_refunded = refunded_card(lane.store, lane.id, sale_id)
    card = min(total, card_paid - card_refunded)
    card_src = next((p for p in original.doc["payments"] if p["type"] == "card"), None)
    op = Op(rid, lane.id, KIND_RETURN, S.PAYMENT_PENDING, {
        "sale_id": sale_id, "lines": out_lines, "cashier": who, "opened_at": now(),
        "tender": {"cash": total - card, "card": card, "total": total,
                   "card_op": f"{rid}.p1" if card else None,
                   "rrn": card_src.get("rrn") if card_src else None},
        "payments": [],
    }, shift_id=record["shift_id"])
    lane.store.save(op, "return", {"sale_id": sale_id, "total": total})
    lane.update_record(current_sale=op.id)
    return refund_payment(lane, op, recovering=False)


def returned_qty(store: CheckoutStore, lane: str, sale_id: str) -> dict[int, Decimal]:
    """How much of each line of ``sale_id`` earlier returns took back (by the sale's line number)."""
    out: dict[int, Decimal] = {}
    for o in store.recent(lane, KIND_RETURN, 1000):
        if o.doc.get("sale_id") == sale_id and o.state not in (S.CANCELLED, S.CANCELLED_REFUNDED):
            for line in o.doc["lines"]:
                key = line["original_line_no"]
                out[key] = out.get(key, Decimal(0)) + Decimal(line["quantity"])
    return out


def refunded_card(store: CheckoutStore, lane: str, sale_id: str) -> int:
    """Kopecks completed returns of ``sale_id`` refunded to the card."""
    return sum(p["amount"] for o in store.recent(lane, KIND_RETURN, 1000)
               if o.doc.get("sale_id") == sale_id and o.state == S.COMPLETED
               for p in o.doc["payments"] if p["type"] == "card")


def refund_payment(lane: Lane, op: Op, *, recovering: bool) -> dict[str, Any]:
    """Refund the card share (or, recovering, learn from the journal whether it was), then the receipt."""
    tender = op.doc["tender"]
    payments = []
    if tender.get("card_op"):
        assert lane.settings.payment is not None
        if recovering and not lane.calls.started(tender["card_op"]):
            out = Outcome.failed(CODE_NOT_STARTED, "возврат не начинался")
        elif recovering:
            out = lane.calls.outcome(tender["card_op"])
        else:
            args = {"amount": tender["card"], "rrn": tender["rrn"]}
            out = lane.calls.call(lane.settings.payment, "refund", tender["card_op"], args,
                                  progress=lane.progress)
        if out.status is not ReplyStatus.DONE:
            if out.code in UNKNOWN_CODES:
                op.state = step(S(op.state), "unknown")
                lane.store.save(op, "refund_unknown", {"code": out.code, "message": out.message})
                lane.changed()
                raise CheckoutRefused(f"Результат возврата на карту неизвестен: {out.message}")
            op.state = S.CANCELLED
            op.doc["reason"] = f"возврат на карту не прошёл: {out.message}"
            lane.store.save(op, "refund_declined", {"code": out.code, "message": out.message})
            lane.update_record(current_sale=None)
            lane.changed()
            raise CheckoutRefused(f"Возврат на карту не прошёл: {out.message}")
        r = out.result or {}
        payments.append({"type": "card", "amount": tender["card"], "operation_id": tender["card_op"],
                         "rrn": r.get("rrn"), "auth_code": r.get("auth_code"), "card_mask": r.get("card_mask")})
    if tender["cash"]:
        payments.insert(0, {"type": "cash", "amount": tender["cash"]})
    op.doc["payments"] = payments
    op.state = step(S(op.state), "charged")
    lane.store.save(op, "refunded", {"payments": payments})
    return fiscalize(lane, op)
