"""Pydantic schemas of every payload on the store bus, contract v1.

Every payload is a JSON object with ``v`` (contract version, always 1 here) and ``ts`` (UTC,
ISO 8601). Gateway-originated payloads also carry ``session``: a counter the gateway keeps on
disk and increments on every MQTT connect, so the cloud can tell a late message of an old
connection from a fresh one (Sparkplug's bdSeq idea).

Readers are tolerant: unknown fields are ignored, so a v1 reader keeps working when a v1
writer adds an optional field. A change that breaks readers bumps ``v`` and the topic root.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from protocols.bus.ids import uuid7

CONTRACT_VERSION: Literal[1] = 1
_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def utcnow() -> datetime:
    """Aware UTC now, truncated to milliseconds (what JSON keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


def _check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError("must be 1-64 characters of A-Z a-z 0-9 _ . -")
    return value


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Identifier = Annotated[str, AfterValidator(_check_id)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class DeviceKind(StrEnum):
    SCALE = "scale"
    LABEL_SCALE = "label_scale"
    FISCAL_REGISTER = "fiscal_register"
    PAYMENT_TERMINAL = "payment_terminal"
    LABEL_PRINTER = "label_printer"
    RECEIPT_PRINTER = "receipt_printer"
    SCANNER = "scanner"
    HANDHELD = "handheld"
    LANE = "lane"


class DeviceState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    BUSY = "busy"
    ERROR = "error"


class ReplyStatus(StrEnum):
    ACCEPTED = "accepted"
    PROGRESS = "progress"
    DONE = "done"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self not in (ReplyStatus.ACCEPTED, ReplyStatus.PROGRESS)


class ReplyCode(StrEnum):
    """Machine-readable reasons carried by ``failed`` / ``expired`` replies."""

    MALFORMED_JSON = "malformed_json"
    INVALID_SCHEMA = "invalid_schema"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_ACTION = "unknown_action"
    INVALID_ARGS = "invalid_args"
    RETAINED = "retained_command"
    EXPIRED = "expired"
    BUSY = "busy"
    DEVICE_OFFLINE = "device_offline"
    DEVICE_ERROR = "device_error"
    DEVICE_TIMEOUT = "device_timeout"
    INTERRUPTED = "interrupted"
    UNKNOWN_OUTCOME = "unknown_outcome"
    INTERNAL = "internal_error"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = CONTRACT_VERSION
    ts: UtcDatetime = Field(default_factory=utcnow)


class GatewayState(_Payload):
    """``…/state``: retained; the Will publishes ``online=false`` with the same session."""

    online: bool
    session: int = Field(ge=0)
    version: str = ""
    reason: str = ""


class DeviceInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: Identifier
    kind: DeviceKind
    model: str = ""
    driver: str
    port: str = ""
    capabilities: tuple[str, ...] = ()
    events: tuple[str, ...] = ()


class Inventory(_Payload):
    """``…/inventory``: every device the gateway is configured with, retained."""

    session: int = Field(ge=0)
    devices: tuple[DeviceInfo, ...] = ()


class DeviceStatus(_Payload):
    """``…/dev/{device}/status``: retained, published on change."""

    session: int = Field(ge=0)
    state: DeviceState
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class Event(_Payload):
    """``…/dev/{device}/evt/{type}``: leaves the gateway through its durable outbox.

    ``event_id`` is the idempotency key the cloud stores under ``(gateway, event_id)``;
    ``seq`` increases per gateway and never resets, so gaps are visible.
    """

    session: int = Field(ge=0)
    event_id: UUID = Field(default_factory=uuid7)
    seq: int = Field(ge=0)
    data: dict[str, Any] = Field(default_factory=dict)
    historical: bool = False


class Command(_Payload):
    """``…/dev/{device}/cmd/{action}`` and ``…/gw/cmd/{action}``: never retained.

    ``command_id`` is the idempotency key: the sender reuses it on every retry, and the
    gateway runs a side effect at most once per id.
    """

    command_id: Identifier
    args: dict[str, Any] = Field(default_factory=dict)
    expires_at: UtcDatetime | None = None
    reply_to: str | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class Reply(_Payload):
    """``…/reply/{command_id}`` (or ``reply_to``): ``accepted`` → ``progress`` → final.

    A ``duplicate`` reply repeats the stored final reply of the first run: ``original`` holds its
    status and ``result``/``code``/``message`` are copied from it.
    """

    session: int = Field(ge=0)
    command_id: Identifier
    status: ReplyStatus
    code: str | None = None
    message: str | None = None
    stage: str | None = None
    result: dict[str, Any] | None = None
    original: ReplyStatus | None = None


class CloudState(_Payload):
    """``vitrina/v1/cloud/state``: gateways replay their outbox only while it is online."""

    online: bool
