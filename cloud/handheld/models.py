"""API shapes of handheld tasks; the task itself is the bus contract's ``TaskSpec``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from protocols.bus.tasks import TaskSpec


class HandheldTaskCreate(TaskSpec):
    """Body of ``POST /stores/{id}/handheld-tasks``: the bus contract's task plus how long to wait."""

    timeout_s: float | None = Field(default=None, ge=0)

    def args(self) -> dict[str, Any]:
        """The ``assign_task`` args (quantities as strings: never floats on the bus)."""
        return self.model_dump(mode="json", exclude={"timeout_s"}, exclude_none=True)


class HandheldLine(BaseModel):
    line_id: str
    line_no: int | None
    product_id: str | None
    barcode: str | None
    code_type: str | None
    qty: str
    unit: str
    marking: str | None = None
    user: str | None = None
    terminal: str | None = None
    device_id: int
    scanned_at: str | None = None


class HandheldTaskPublic(BaseModel):
    task_id: str
    store_id: int
    device_id: int
    kind: str
    title: str
    assigned: str
    """The ``assign_task`` command's status: pending / accepted / done / failed / …"""
    assign_code: str | None = None
    assign_message: str | None = None
    status: str
    """assigned → in_progress (opened or a line arrived) → completed."""
    opened_by: list[str] = Field(default_factory=list)
    lines: list[HandheldLine] = Field(default_factory=list)
    completed: dict[str, Any] | None = None
    created_at: datetime
