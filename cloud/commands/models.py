"""Commands sent to gateways and devices, keyed by ``(tenant, command_id)``.

``command_id`` is the idempotency key: the client's ``Idempotency-Key`` (or a generated UUID).
The status only moves forward (pending → accepted → progress → final) and a final status is
never overwritten, whatever order replies arrive in.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field as PydanticField
from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from cloud.base import UtcDateTime, utcnow


class CommandStatus(StrEnum):
    PENDING = "pending"  # stored, published (or about to be); no reply yet
    ACCEPTED = "accepted"
    PROGRESS = "progress"
    DONE = "done"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    EXPIRED = "expired"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def is_final(self) -> bool:
        return self.rank == 3


_RANK = {
    CommandStatus.PENDING: 0,
    CommandStatus.ACCEPTED: 1,
    CommandStatus.PROGRESS: 2,
    CommandStatus.DONE: 3,
    CommandStatus.FAILED: 3,
    CommandStatus.DUPLICATE: 3,
    CommandStatus.EXPIRED: 3,
}


class Command(SQLModel, table=True):
    __tablename__ = "commands"
    __table_args__ = (UniqueConstraint("tenant_id", "command_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    command_id: str = Field(max_length=64)
    gateway_id: int = Field(foreign_key="gateways.id", index=True)
    device_id: int | None = Field(default=None, foreign_key="devices.id", index=True)
    action: str = Field(max_length=64)
    args: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(default=CommandStatus.PENDING.value, max_length=16)
    code: str | None = Field(default=None, max_length=64)
    message: str | None = Field(default=None, max_length=500)
    stage: str | None = Field(default=None, max_length=64)
    result: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    publish_count: int = 0


class CommandCreate(SQLModel):
    """Body of ``POST …/commands``; the key may also come as the ``Idempotency-Key`` header."""

    action: str = PydanticField(min_length=1, max_length=64)
    args: dict[str, Any] = PydanticField(default_factory=dict)
    idempotency_key: str | None = None
    timeout_s: float | None = PydanticField(default=None, ge=0)
    ttl_s: float | None = PydanticField(default=None, gt=0, le=86_400)


class CommandPublic(SQLModel):
    command_id: str
    gateway_id: int
    device_id: int | None
    action: str
    args: dict[str, Any]
    status: str
    code: str | None
    message: str | None
    stage: str | None
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    warnings: list[str] = []
