"""Argument schemas of payment actions and how terminal results become JSON.

Amounts are integers of kopecks on the wire, strictly: ``100.5``, ``"100"``, ``true`` and ``0`` are
refused (``invalid_args``) — a float or a string amount is a bug upstream, not something to round.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drivers.payment.base import PaymentResult, ReconciliationResult
from gateway.devices.payment.const import MAX_AMOUNT_KOP, RESULT_APPROVED, RESULT_DECLINED

Kopecks = Annotated[int, Field(strict=True, gt=0, le=MAX_AMOUNT_KOP)]
OperationId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PayArgs(_Args):
    """``pay``: charge ``amount`` kopecks; the command_id is the terminal's operation id."""

    amount: Kopecks


class RefundArgs(_Args):
    """``refund``: return ``amount`` kopecks of a purchase named by its ``rrn`` or its operation id."""

    amount: Kopecks
    rrn: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z]+$")] | None = None
    original_operation_id: OperationId | None = None

    @model_validator(mode="after")
    def _one_original(self) -> RefundArgs:
        if (self.rrn is None) == (self.original_operation_id is None):
            raise ValueError("give exactly one of rrn, original_operation_id")
        return self


class CancelArgs(_Args):
    """``cancel``: void the operation ``operation_id`` of the open batch (idempotent)."""

    operation_id: OperationId


class ResolveArgs(_Args):
    """``resolve``: a person who checked the terminal (or the bank statement) settles the
    ``unknown_outcome`` of the pay or refund ``operation_id`` (its command_id); ``note`` says who
    checked what. The terminal is asked first: what it knows wins over the person's word."""

    operation_id: OperationId
    outcome: Literal["approved", "not_performed"]
    note: Annotated[str, Field(min_length=1, max_length=500)]

    @field_validator("note")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("say who checked what (the note is the record of the resolution)")
        return value


def kopecks(result: PaymentResult) -> int:
    return int(result.amount * 100)


def payment_json(result: PaymentResult, *, source: str, amount: int | None = None) -> dict[str, Any]:
    """The ``payment`` event and the reply result: the terminal's answer as data.

    ``source``: ``terminal`` (the operation's own answer) or ``control_tape`` (learned with
    ``find`` after a lost answer or a crash). ``amount``: kopecks asked for, used when the
    terminal reports none (a decline).
    """
    moved = kopecks(result)
    return {
        "result": RESULT_APPROVED if result.approved else RESULT_DECLINED,
        "approved": result.approved,
        "operation": result.operation,
        "operation_id": result.operation_id,
        "amount": moved if moved or amount is None else amount,
        "code": result.code,
        "message": result.message,
        "device_code": result.device_code,
        "auth_code": result.auth_code,
        "rrn": result.rrn,
        "card_mask": result.card_mask,
        "voided": result.voided,
        "slip": result.slip,
        "source": source,
    }


def reconciliation_json(result: ReconciliationResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "code": result.code,
        "message": result.message,
        "batch": result.batch,
        "purchases": {"count": result.purchases_count, "amount": int(result.purchases_amount * 100)},
        "refunds": {"count": result.refunds_count, "amount": int(result.refunds_amount * 100)},
        "voids": {"count": result.voids_count, "amount": int(result.voids_amount * 100)},
        "slip": result.slip,
    }


def summary(data: dict[str, Any]) -> dict[str, Any]:
    """What the retained status keeps of the last operation (no slip)."""
    return {k: data.get(k) for k in ("operation", "operation_id", "result", "amount", "code", "rrn")}
