"""Stores, gateways, devices and their events, as the bus reports them.

Rows are created from the bus (a gateway appears when it first publishes) and are never deleted
by it: a device missing from a newer inventory is marked ``present=False`` so its history stays.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from cloud.base import UtcDateTime, utcnow


class GatewayStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    STALE = "stale"  # connected as far as the broker knows, but silent for too long


class Store(SQLModel, table=True):
    __tablename__ = "stores"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    code: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    timezone: str = Field(default="Europe/Moscow", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Gateway(SQLModel, table=True):
    __tablename__ = "gateways"
    __table_args__ = (UniqueConstraint("store_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    store_id: int = Field(foreign_key="stores.id", index=True)
    code: str = Field(max_length=64)
    online: bool = False
    status: str = Field(default=GatewayStatus.OFFLINE.value, max_length=16)
    session: int | None = None
    inventory_session: int | None = None
    version: str = Field(default="", max_length=64)
    last_seen: datetime | None = Field(default=None, sa_type=UtcDateTime)
    connected_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Device(SQLModel, table=True):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("gateway_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    gateway_id: int = Field(foreign_key="gateways.id", index=True)
    code: str = Field(max_length=64)
    kind: str = Field(default="unknown", max_length=32)
    model: str = Field(default="", max_length=100)
    driver: str = Field(default="", max_length=100)
    port: str = Field(default="", max_length=200)
    capabilities: list[str] = Field(default_factory=list, sa_type=JSON)
    state: str = Field(default="offline", max_length=16)
    detail: str = Field(default="", max_length=500)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    present: bool = False
    status_session: int | None = None
    status_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Event(SQLModel, table=True):
    """One device event; ``(gateway_id, event_id)`` is unique so a redelivered event is stored once."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("gateway_id", "event_id"),
        Index("ix_events_tenant_id_ts", "tenant_id", "ts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    gateway_id: int = Field(foreign_key="gateways.id")
    device_id: int = Field(foreign_key="devices.id", index=True)
    event_id: str = Field(max_length=36)
    type: str = Field(max_length=64)
    seq: int
    session: int
    ts: datetime = Field(sa_type=UtcDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    historical: bool = False
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class StorePublic(SQLModel):
    id: int
    code: str
    name: str
    timezone: str


class GatewayPublic(SQLModel):
    id: int
    store_id: int
    store_code: str
    code: str
    online: bool
    status: str
    session: int | None
    version: str
    last_seen: datetime | None
    connected_at: datetime | None


class DevicePublic(SQLModel):
    id: int
    gateway_id: int
    code: str
    kind: str
    model: str
    driver: str
    port: str
    capabilities: list[str]
    state: str
    detail: str
    data: dict[str, Any]
    present: bool
    updated_at: datetime


class EventPublic(SQLModel):
    id: int
    device_id: int
    gateway_id: int
    event_id: str
    type: str
    seq: int
    session: int
    ts: datetime
    received_at: datetime
    historical: bool
    data: dict[str, Any]


class EventPage(SQLModel):
    items: list[EventPublic]
    limit: int
    offset: int
