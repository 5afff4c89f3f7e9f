"""Handheld (ТСД) tasks on the store bus: the ``assign_task`` args and their parts.

The cloud sends ``assign_task`` to a store's handheld pool device with a :class:`TaskSpec`;
handhelds scan against it on the gateway; accepted scans come back as ``task_line`` events and
the end as ``task_completed``. Quantities are ``Decimal`` strings with 3 decimals (kg for
weighed goods), never floats. One definition for the gateway and the cloud.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator, model_validator

QTY = Decimal("0.001")
MAX_QTY = Decimal("99999.999")


def _qty_str(value: Decimal) -> str:
    return str(value.quantize(QTY))


Qty = Annotated[Decimal, Field(ge=0, le=MAX_QTY, decimal_places=3), PlainSerializer(_qty_str, return_type=str)]


class TaskKind(StrEnum):
    COUNT = "count"
    RECEIVE = "receive"
    PICK = "pick"
    PRICE_CHECK = "price_check"
    RELABEL = "relabel"


class Unit(StrEnum):
    PCS = "pcs"
    KG = "kg"


class TaskStatus(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedLine(_Frozen):
    """One product the task expects: how to recognise it and how much is expected."""

    line_no: int = Field(ge=1)
    product_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    barcodes: tuple[str, ...] = ()
    plu: int | None = Field(default=None, ge=0)
    """Item code on the store's weight labels (``2X PPPPP WWWWW C``)."""
    gtin: str | None = Field(default=None, pattern=r"^[0-9]{14}$")
    """GTIN-14 a marking code must carry to match this line."""
    marked: bool = False
    """Only marking codes count for this line (one unit per code)."""
    expected_qty: Qty | None = None
    unit: Unit = Unit.PCS
    price: int | None = Field(default=None, ge=0)
    """Kopecks (``price_check``/``relabel``)."""

    @field_validator("barcodes")
    @classmethod
    def _strip(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(b.strip() for b in value if b.strip())
        for code in out:
            if len(code) > 64:
                raise ValueError(f"barcode longer than 64 characters: {code[:20]}…")
        return out

    @model_validator(mode="after")
    def _recognisable(self) -> ExpectedLine:
        if not self.barcodes and self.plu is None and self.gtin is None:
            raise ValueError(f"line {self.line_no}: give barcodes, plu or gtin")
        if self.marked and self.gtin is None:
            raise ValueError(f"line {self.line_no}: a marked line needs its gtin")
        return self


class TaskSpec(_Frozen):
    """``assign_task`` args: a task and its expected lines, idempotent by ``task_id``."""

    task_id: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,48}$")
    kind: TaskKind
    title: str = Field(min_length=1, max_length=200)
    lines: tuple[ExpectedLine, ...] = Field(min_length=1, max_length=20_000)
    assignee: str | None = Field(default=None, max_length=64)
    """A handheld device id or a user login; ``None``: any handheld of the store."""
    allow_unexpected: bool = False
    """Accept product barcodes of goods not in the task (a receipt with a surplus)."""

    @model_validator(mode="after")
    def _unique(self) -> TaskSpec:
        numbers = [line.line_no for line in self.lines]
        if len(set(numbers)) != len(numbers):
            raise ValueError("line_no values must be unique")
        return self

    def digest(self) -> str:
        """A stable hash of the content: the same ``task_id`` with other content is a conflict."""
        body = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(body.encode()).hexdigest()


class TaskRef(_Frozen):
    """``cancel_task`` / ``get_task`` args."""

    task_id: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,48}$")
