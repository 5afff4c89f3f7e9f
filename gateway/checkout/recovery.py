"""Recovery: at start, before the cashier can touch the lane, every operation not final moves forward.

``payment_pending`` → the journal's answer for the card operation, which the payment family's own
recovery got from the terminal (``find``): approved → ``paid`` and on to the receipt; proved not
charged → back to ``lines`` (the cashier takes payment again); unknown → ``needs_attention``.
Recovery never starts a charge. A return's refund the same way. ``paid``/``fiscal_pending`` → the
receipt under the sale id: the fiscal family finds it in the FN or makes it once.
``refund_pending`` → the void again (idempotent). A shift being opened or closed → finished (the
register and the terminal answer from the journal). A final operation whose event was not stored
→ stored now (and its card slip planned). A slip still ``printing`` → printed under the same id:
the journal decides (:mod:`gateway.checkout.slips`).

The same step continues an operation a request repeats by id (:func:`resume`: a cloud command
retried, a return asked for again).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gateway.checkout import saga, shifts
from gateway.checkout.base import CheckoutRefused
from gateway.checkout.machine import FINAL, IllegalTransition, SaleState
from gateway.checkout.returns import refund_payment
from gateway.checkout.slips import KIND_SLIP, SLIP_FINAL
from gateway.checkout.store import KIND_RETURN, KIND_SHIFT_CLOSE, KIND_SHIFT_OPEN, Op
from gateway.checkout.views import sale_view

if TYPE_CHECKING:
    from gateway.checkout.lane import Lane

log = logging.getLogger(__name__)

S = SaleState


def recover(lane: Lane) -> list[str]:
    """Move every unfinished operation of ``lane`` forward, oldest first; returns the ids it touched.

    An operation that cannot move on now (the terminal has not answered yet, a step the state
    does not allow) is logged and left as it is: the cashier sees it on the page.
    """
    touched = []
    for op in lane.store.unfinished(lane.id, frozenset(FINAL | {S.NEEDS_ATTENTION} | SLIP_FINAL)):
        try:
            recover_one(lane, op)
        except (CheckoutRefused, IllegalTransition) as exc:
            log.warning("lane %s: %s %s left %s: %s", lane.id, op.kind, op.id, op.state, exc.message)
        touched.append(op.id)
    return touched


def recover_one(lane: Lane, op: Op) -> None:
    if op.kind == KIND_SLIP:
        lane.slips.recover(op)
        return
    state = S(op.state)
    log.warning("lane %s: recovering %s %s in state %s", lane.id, op.kind, op.id, state.value)
    if state in FINAL or state is S.NEEDS_ATTENTION:
        if op.event_pending:
            slip = lane.slips.plan(op)  # died between "fiscalized" and the slip's plan
            lane.emit_event(op)
            lane.slips.run(slip)
        return
    if op.kind == KIND_SHIFT_OPEN:
        shifts.finish_open(lane, op)
    elif op.kind == KIND_SHIFT_CLOSE:
        shifts.finish_close(lane, op)
    elif state is S.PAYMENT_PENDING:
        if op.kind == KIND_RETURN:
            refund_payment(lane, op, recovering=True)
        else:
            saga.settle_payment(lane, op, recovering=True)
    elif state in (S.PAID, S.FISCAL_PENDING):
        saga.fiscalize(lane, op)
    elif state is S.REFUND_PENDING:
        saga.void(lane, op)


def resume(lane: Lane, op: Op) -> dict[str, Any]:
    """An operation a request names again: final → as it ended; otherwise moved forward as at start."""
    if S(op.state) in FINAL or S(op.state) is S.NEEDS_ATTENTION:
        return sale_view(op)
    recover_one(lane, op)
    refreshed = lane.store.get(op.id)
    assert refreshed is not None
    return sale_view(refreshed)
