"""The one ``PaymentTerminal`` API every card terminal driver implements (UPOS, nexo).

Money: ``Decimal`` roubles with at most 2 decimals in, integer kopecks on the wire.

The rules the gateway builds on:

- **One operation at a time.** A call while another runs raises ``TerminalBusy`` at once
  (never waits, never interleaves).
- **Idempotency is the caller's key.** Every operation carries an ``operation_id`` (the bus
  ``command_id``) that the terminal records with the operation (UPOS: on the slip and the
  control tape; nexo: the ServiceID and SaleTransactionID). ``find(operation_id)`` answers
  "did this operation happen?": a ``PaymentResult``, ``None`` = definitely not performed, or
  ``OutcomeUnknown`` when the terminal cannot tell now. A gateway that lost an answer calls
  ``find`` before anything else and never retries blindly.
- **A lost answer is not a decline.** When the terminal stops answering mid-operation the
  driver kills the process / drops the socket, asks ``find`` itself, and raises
  ``OutcomeUnknown`` unless that proves the outcome. A timeout that ``find`` proves harmless
  comes back as a declined result with code ``not_performed``.
- **Progress** stages (``STAGE_*``) go to the ``progress`` callback from the calling thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Protocol, runtime_checkable

from drivers.errors import DeviceRejected, DeviceTimeout, DriverError

KOPECK = Decimal("0.01")

STAGE_WAITING_CARD = "waiting_card"
STAGE_PIN_ENTRY = "pin_entry"
STAGE_AUTHORISING = "authorising"
STAGES = (STAGE_WAITING_CARD, STAGE_PIN_ENTRY, STAGE_AUTHORISING)

OP_PURCHASE = "purchase"
OP_REFUND = "refund"
OP_CANCEL = "cancel"

Progress = Callable[[str], None]


def to_kopecks(amount: Decimal) -> int:
    """Integer kopecks of a positive amount with at most 2 decimals; anything else is our bug."""
    if not isinstance(amount, Decimal):
        raise InvalidAmount(f"Сумма должна быть Decimal, получено {type(amount).__name__}")
    try:
        exact = amount.quantize(KOPECK)
    except InvalidOperation as exc:
        raise InvalidAmount(f"Недопустимая сумма {amount}") from exc
    if exact != amount or not amount.is_finite() or amount <= 0:
        raise InvalidAmount(f"Недопустимая сумма {amount}: нужна положительная сумма с точностью до копейки")
    return int(exact * 100)


def from_kopecks(kop: int) -> Decimal:
    return (Decimal(kop) / 100).quantize(KOPECK)


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """What a purchase, refund or cancel ended with. ``approved`` is the only "money moved"."""

    approved: bool
    operation: str
    operation_id: str
    amount: Decimal
    code: str
    message: str
    device_code: str = ""
    auth_code: str = ""
    rrn: str = ""
    card_mask: str = ""
    slip: str = ""
    voided: bool = False
    """The operation was later cancelled (known when it comes from ``find``)."""
    reference: str = ""
    """The terminal's own transaction id (nexo POITransactionID; UPOS: the RRN)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "approved": self.approved, "operation": self.operation, "operation_id": self.operation_id,
            "amount": str(self.amount), "code": self.code, "message": self.message,
            "device_code": self.device_code, "auth_code": self.auth_code, "rrn": self.rrn,
            "card_mask": self.card_mask, "slip": self.slip, "voided": self.voided, "reference": self.reference,
        }


@dataclass(frozen=True, slots=True)
class ReconciliationResult:
    """Сверка итогов: the closed batch's totals."""

    ok: bool
    code: str
    message: str
    batch: str = ""
    purchases_count: int = 0
    purchases_amount: Decimal = Decimal("0.00")
    refunds_count: int = 0
    refunds_amount: Decimal = Decimal("0.00")
    voids_count: int = 0
    voids_amount: Decimal = Decimal("0.00")
    slip: str = ""


@dataclass(frozen=True, slots=True)
class TerminalStatus:
    state: str
    """``idle``, ``busy`` or ``offline``."""
    detail: str = ""


class PaymentError(DriverError):
    code = "payment_error"


class InvalidAmount(PaymentError):
    """Our fault: an amount that is not a positive number of kopecks."""

    code = "invalid_amount"


class TerminalBusy(PaymentError):
    """Another operation is running on this terminal; nothing was started."""

    code = "terminal_busy"


class OutcomeUnknown(PaymentError, DeviceTimeout):
    """The terminal stopped answering and ``find`` could not tell whether money moved.

    A person must resolve it (look at the terminal, the bank's statement); never retry blindly.
    """

    code = "outcome_unknown"

    def __init__(self, message: str, *, operation_id: str) -> None:
        super().__init__(message)
        self.operation_id = operation_id


class OperationNotFound(PaymentError, DeviceRejected):
    """``cancel``/``refund`` names an operation the terminal has no record of."""

    code = "operation_not_found"


@runtime_checkable
class PaymentTerminal(Protocol):
    """What the gateway needs from any card payment terminal. Calls block; see the module doc."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def purchase(self, amount: Decimal, operation_id: str, progress: Progress | None = None) -> PaymentResult: ...

    def refund(
        self, amount: Decimal, operation_id: str, original: PaymentResult | str, progress: Progress | None = None
    ) -> PaymentResult:
        """``original``: the purchase's result, or its RRN."""
        ...

    def cancel(self, operation_id: str, progress: Progress | None = None) -> PaymentResult:
        """Void the operation ``operation_id`` (of the open batch). Idempotent."""
        ...

    def reconcile(self) -> ReconciliationResult: ...

    def status(self) -> TerminalStatus: ...

    def find(self, operation_id: str) -> PaymentResult | None: ...

    def last_slip(self) -> str:
        """The text of a copy of the last slip."""
        ...
