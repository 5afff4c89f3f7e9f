"""Cash put into or taken out of the drawer (внесение / выемка) during an open shift.

No device is asked: the move is an operation of kind ``cash``, saved ``completed`` with its
``cash_moved`` event in the same step, then the event goes to the outbox. A repeat with the same
``move_id`` (the cloud's command retried) returns the stored event. The shift's close counts the
moves into its totals (:mod:`gateway.checkout.shifts`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from gateway.checkout.base import CheckoutRefused, new_id
from gateway.checkout.machine import SaleState
from gateway.checkout.store import KIND_CASH, Op
from protocols.bus import sales as ev

if TYPE_CHECKING:
    from gateway.checkout.lane import Lane


def cash_move(lane: Lane, direction: str, amount: int, reason: str, cashier: dict[str, Any] | None,
              move_id: str | None) -> dict[str, Any]:
    """Record a cash move ``direction`` (``in`` / ``out``) of ``amount`` kopecks; returns its event."""
    lane.require_ready()
    who = lane.require_cashier(cashier)
    record = lane.require_shift()
    if amount <= 0:
        raise CheckoutRefused("Сумма должна быть больше нуля")
    op_id = move_id or new_id()
    existing = lane.store.get(op_id)
    if existing is not None:
        return dict(existing.doc["event"])
    op = Op(op_id, lane.id, KIND_CASH, SaleState.COMPLETED, {"direction": direction, "amount": amount},
            shift_id=record["shift_id"], event_pending=True)
    data = ev.CashMoved(move_id=op.id, lane=lane.id, shift_id=record["shift_id"], cashier=ev.Cashier(**who),
                        direction=direction, amount=amount, reason=reason,
                        moved_at=dt.datetime.now(dt.UTC)).model_dump(mode="json")
    op.doc["event"] = data
    lane.store.save(op, f"cash_{direction}", {"amount": amount})
    lane.emit_event(op)
    return data
