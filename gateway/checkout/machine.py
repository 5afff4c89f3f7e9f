"""The sale saga's states as one table (h11 style): an illegal step raises naming state and event.

Sales, returns and receipts the cloud asks for (``fiscalize``) share it::

    open ──add_line──▶ lines ──pay──▶ payment_pending ──charged──▶ paid ──fiscalize──▶ fiscal_pending
      │                 ▲  │                 │  │                                       │   │   ▲
      └──cancel──▶ cancelled ◀──cancel──┘    │  └─unknown─▶ needs_attention             │   │   └ fiscal_failed
                        ▲                    └─declined─▶ lines                          │   │     (retry = fiscalize)
                        │                                                     fiscalized │   └give_up─▶ refund_pending
                        │                                                                ▼                │
                        │                                                            completed            ├voided─▶ cancelled_refunded
                                                                                                          └void_failed─▶ needs_attention

``completed``, ``cancelled`` and ``cancelled_refunded`` are final; ``needs_attention`` is sticky
(a person decides: the terminal could not say whether money moved, or a void failed).
"""

from __future__ import annotations

from enum import StrEnum

from gateway.errors import GatewayError


class SaleState(StrEnum):
    OPEN = "open"
    LINES = "lines"
    PAYMENT_PENDING = "payment_pending"
    PAID = "paid"
    FISCAL_PENDING = "fiscal_pending"
    COMPLETED = "completed"
    REFUND_PENDING = "refund_pending"
    CANCELLED = "cancelled"
    CANCELLED_REFUNDED = "cancelled_refunded"
    NEEDS_ATTENTION = "needs_attention"


S = SaleState

TRANSITIONS: dict[tuple[SaleState, str], SaleState] = {
    (S.OPEN, "add_line"): S.LINES,
    (S.LINES, "add_line"): S.LINES,
    (S.LINES, "remove_line"): S.LINES,
    (S.OPEN, "cancel"): S.CANCELLED,
    (S.LINES, "cancel"): S.CANCELLED,
    (S.LINES, "pay"): S.PAYMENT_PENDING,
    (S.PAYMENT_PENDING, "charged"): S.PAID,
    (S.PAYMENT_PENDING, "declined"): S.LINES,
    (S.PAYMENT_PENDING, "unknown"): S.NEEDS_ATTENTION,
    (S.PAID, "fiscalize"): S.FISCAL_PENDING,
    (S.FISCAL_PENDING, "fiscalize"): S.FISCAL_PENDING,
    (S.FISCAL_PENDING, "fiscal_failed"): S.FISCAL_PENDING,
    (S.FISCAL_PENDING, "fiscalized"): S.COMPLETED,
    (S.FISCAL_PENDING, "give_up"): S.REFUND_PENDING,
    (S.REFUND_PENDING, "give_up"): S.REFUND_PENDING,
    (S.REFUND_PENDING, "voided"): S.CANCELLED_REFUNDED,
    (S.REFUND_PENDING, "void_failed"): S.NEEDS_ATTENTION,
}

FINAL = frozenset({S.COMPLETED, S.CANCELLED, S.CANCELLED_REFUNDED})
ACTIVE = frozenset(set(SaleState) - FINAL - {S.NEEDS_ATTENTION})
"""States recovery moves forward at startup."""


class IllegalTransition(GatewayError):
    """A step the sale's state does not allow (the cashier page shows the message)."""

    code = "illegal_transition"


_RU = {
    S.OPEN: "открыт", S.LINES: "набирается", S.PAYMENT_PENDING: "идёт оплата", S.PAID: "оплачен",
    S.FISCAL_PENDING: "печатается чек", S.COMPLETED: "завершён", S.REFUND_PENDING: "отменяется оплата",
    S.CANCELLED: "отменён", S.CANCELLED_REFUNDED: "отменён, оплата возвращена",
    S.NEEDS_ATTENTION: "требует разбора",
}


def describe(state: SaleState) -> str:
    return _RU[state]


def step(state: SaleState, event: str) -> SaleState:
    """The state after ``event``; ``IllegalTransition`` naming both when the table has no such step."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(
            f"Нельзя выполнить «{event}»: чек {describe(state)} (state={state.value}, event={event})"
        ) from None
