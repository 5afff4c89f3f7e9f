"""Registry rules: what a bus message does to stores, gateways and devices, and tenant-scoped reads.

Ingestion rules (each function runs inside the caller's transaction and never commits):

* A gateway is created the first time any message arrives for it (under a known tenant).
* ``state``: a message from an older session than the stored one is ignored, so a late Will of
  an old connection never marks a reconnected gateway offline. Within one session, ``offline``
  is final: a redelivered ``online`` of the same session after its ``offline`` is ignored.
* ``last_seen`` moves to the receive time on every live message; a retained replay only moves it
  to the payload's own ``ts`` (it says nothing about the gateway being alive now).
* Stale rule: a gateway the broker still considers connected (``online``) that sent nothing for
  ``gateway_stale_after_s`` becomes ``stale``; any live message makes it ``online`` again. The
  gateway republishes nothing periodically, so a quiet but healthy store does go stale; the
  broker's Will is what says ``offline``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from cloud.errors import NotFound
from cloud.registry.models import (
    Device,
    DevicePublic,
    Event,
    EventPublic,
    Gateway,
    GatewayPublic,
    GatewayStatus,
    Store,
    StorePublic,
)
from cloud.tenancy.models import Tenant
from protocols.bus import DeviceStatus, GatewayAddress, GatewayState, Inventory
from protocols.bus import Event as BusEvent

# ---------------------------------------------------------------- ingestion from the bus


def tenant_by_slug(session: Session, slug: str) -> Tenant | None:
    return session.exec(select(Tenant).where(Tenant.slug == slug)).first()


def ensure_gateway(session: Session, tenant_id: int, address: GatewayAddress) -> Gateway:
    """The gateway row for ``address``, creating its store and itself on first sight."""
    row = session.exec(
        select(Gateway, Store)
        .join(Store, Store.id == Gateway.store_id)  # type: ignore[arg-type]
        .where(Store.tenant_id == tenant_id, Store.code == address.store, Gateway.code == address.gateway)
    ).first()
    if row is not None:
        return row[0]
    store = session.exec(select(Store).where(Store.tenant_id == tenant_id, Store.code == address.store)).first()
    if store is None:
        store = Store(tenant_id=tenant_id, code=address.store, name=address.store)
        session.add(store)
        session.flush()
    assert store.id is not None
    gateway = Gateway(tenant_id=tenant_id, store_id=store.id, code=address.gateway)
    session.add(gateway)
    session.flush()
    return gateway


def touch(gateway: Gateway, now: datetime, *, retained: bool, ts: datetime) -> None:
    """Record that the gateway spoke (see the module docstring for retained replays)."""
    seen = min(ts, now) if retained else now
    if gateway.last_seen is None or seen > gateway.last_seen:
        gateway.last_seen = seen
    if not retained and gateway.online and gateway.status == GatewayStatus.STALE:
        gateway.status = GatewayStatus.ONLINE.value


def apply_state(gateway: Gateway, state: GatewayState, now: datetime) -> bool:
    """Apply a ``state`` message; False when it is an old session's (ignored)."""
    if gateway.session is not None:
        if state.session < gateway.session:
            return False
        if state.session == gateway.session and state.online and gateway.status == GatewayStatus.OFFLINE:
            return False
    gateway.session = state.session
    gateway.online = state.online
    if state.online:
        gateway.status = GatewayStatus.ONLINE.value
        gateway.connected_at = state.ts
        if state.version:
            gateway.version = state.version
    else:
        gateway.status = GatewayStatus.OFFLINE.value
    return True


def ensure_device(session: Session, gateway: Gateway, code: str) -> Device:
    """The device row, created as not present when a status or event precedes the inventory."""
    device = session.exec(select(Device).where(Device.gateway_id == gateway.id, Device.code == code)).first()
    if device is None:
        assert gateway.id is not None
        device = Device(tenant_id=gateway.tenant_id, gateway_id=gateway.id, code=code, present=False)
        session.add(device)
        session.flush()
    return device


def apply_inventory(session: Session, gateway: Gateway, inventory: Inventory, now: datetime) -> bool:
    """Upsert the listed devices as present; mark every other device of the gateway not present."""
    if gateway.inventory_session is not None and inventory.session < gateway.inventory_session:
        return False
    gateway.inventory_session = inventory.session
    listed = {info.id: info for info in inventory.devices}
    existing = {d.code: d for d in session.exec(select(Device).where(Device.gateway_id == gateway.id)).all()}
    for code, info in listed.items():
        device = existing.get(code) or ensure_device(session, gateway, code)
        device.kind = info.kind.value
        device.model = info.model
        device.driver = info.driver
        device.port = info.port
        device.capabilities = list(info.capabilities)
        device.present = True
        device.updated_at = now
        session.add(device)
    for code, device in existing.items():
        if code not in listed and device.present:
            device.present = False
            device.updated_at = now
            session.add(device)
    return True


def apply_device_status(
    session: Session, gateway: Gateway, code: str, status: DeviceStatus, now: datetime
) -> bool:
    device = ensure_device(session, gateway, code)
    if device.status_session is not None and status.session < device.status_session:
        return False
    if device.status_session == status.session and device.status_at is not None and status.ts < device.status_at:
        return False  # an older status of the same session arriving late
    device.status_session = status.session
    device.status_at = status.ts
    device.state = status.state.value
    device.detail = status.detail[:500]
    device.data = dict(status.data)
    device.updated_at = now
    session.add(device)
    return True


def record_event(
    session: Session, gateway: Gateway, code: str, event_type: str, event: BusEvent, now: datetime
) -> bool:
    """Store the event once per ``(gateway, event_id)``; False for a replay (a no-op)."""
    event_id = str(event.event_id)
    exists = session.exec(
        select(Event.id).where(Event.gateway_id == gateway.id, Event.event_id == event_id)
    ).first()
    if exists is not None:
        return False
    device = ensure_device(session, gateway, code)
    assert gateway.id is not None and device.id is not None
    session.add(
        Event(
            tenant_id=gateway.tenant_id,
            gateway_id=gateway.id,
            device_id=device.id,
            event_id=event_id,
            type=event_type,
            seq=event.seq,
            session=event.session,
            ts=event.ts,
            received_at=now,
            historical=event.historical,
            data=dict(event.data),
        )
    )
    return True


def mark_stale_gateways(session: Session, now: datetime, stale_after_s: float) -> list[int]:
    """Mark online gateways silent for longer than ``stale_after_s`` as stale (caller commits)."""
    cutoff = now - timedelta(seconds=stale_after_s)
    gateways = session.exec(
        select(Gateway).where(
            Gateway.status == GatewayStatus.ONLINE.value,
            col(Gateway.last_seen).is_not(None),
            col(Gateway.last_seen) < cutoff,
        )
    ).all()
    for gateway in gateways:
        gateway.status = GatewayStatus.STALE.value
        session.add(gateway)
    return [g.id for g in gateways if g.id is not None]


# ---------------------------------------------------------------- tenant-scoped reads


def list_stores(session: Session, tenant_id: int) -> list[StorePublic]:
    rows = session.exec(select(Store).where(Store.tenant_id == tenant_id).order_by(col(Store.code))).all()
    return [StorePublic.model_validate(r, from_attributes=True) for r in rows]


def _gateway_public(gateway: Gateway, store: Store) -> GatewayPublic:
    return GatewayPublic.model_validate({**gateway.model_dump(), "store_code": store.code})


def list_gateways(session: Session, tenant_id: int, store_id: int | None = None) -> list[GatewayPublic]:
    query = (
        select(Gateway, Store)
        .join(Store, Store.id == Gateway.store_id)  # type: ignore[arg-type]
        .where(Gateway.tenant_id == tenant_id)
    )
    if store_id is not None:
        query = query.where(Gateway.store_id == store_id)
    rows = session.exec(query.order_by(col(Store.code), col(Gateway.code))).all()
    return [_gateway_public(g, s) for g, s in rows]


def get_gateway_row(session: Session, tenant_id: int, gateway_id: int) -> Gateway:
    """The tenant's gateway or :class:`NotFound` (also for another tenant's id: existence never leaks)."""
    gateway = session.exec(
        select(Gateway).where(Gateway.id == gateway_id, Gateway.tenant_id == tenant_id)
    ).first()
    if gateway is None:
        raise NotFound(f"шлюз {gateway_id} не найден", code="gateway_not_found")
    return gateway


def get_gateway(session: Session, tenant_id: int, gateway_id: int) -> GatewayPublic:
    gateway = get_gateway_row(session, tenant_id, gateway_id)
    store = session.get_one(Store, gateway.store_id)
    return _gateway_public(gateway, store)


def list_devices(
    session: Session,
    tenant_id: int,
    *,
    store_id: int | None = None,
    gateway_id: int | None = None,
    kind: str | None = None,
    present: bool | None = None,
) -> list[DevicePublic]:
    query = select(Device).where(Device.tenant_id == tenant_id)
    if store_id is not None:
        query = query.join(Gateway, Gateway.id == Device.gateway_id).where(  # type: ignore[arg-type]
            Gateway.store_id == store_id
        )
    if gateway_id is not None:
        query = query.where(Device.gateway_id == gateway_id)
    if kind is not None:
        query = query.where(Device.kind == kind)
    if present is not None:
        query = query.where(Device.present == present)
    rows = session.exec(query.order_by(col(Device.gateway_id), col(Device.code))).all()
    return _devices_public(rows)


def _devices_public(rows: Iterable[Device]) -> list[DevicePublic]:
    return [DevicePublic.model_validate(r, from_attributes=True) for r in rows]


def get_device_row(session: Session, tenant_id: int, device_id: int) -> Device:
    device = session.exec(select(Device).where(Device.id == device_id, Device.tenant_id == tenant_id)).first()
    if device is None:
        raise NotFound(f"устройство {device_id} не найдено", code="device_not_found")
    return device


def get_device(session: Session, tenant_id: int, device_id: int) -> DevicePublic:
    return _devices_public([get_device_row(session, tenant_id, device_id)])[0]


def list_events(
    session: Session,
    tenant_id: int,
    *,
    device_id: int | None = None,
    event_type: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[EventPublic]:
    """Newest first (by the gateway's ``ts``, then arrival order)."""
    query = select(Event).where(Event.tenant_id == tenant_id)
    if device_id is not None:
        query = query.where(Event.device_id == device_id)
    if event_type is not None:
        query = query.where(Event.type == event_type)
    if since is not None:
        query = query.where(col(Event.ts) >= since)
    query = query.order_by(col(Event.ts).desc(), col(Event.id).desc()).offset(offset).limit(limit)
    return [EventPublic.model_validate(r, from_attributes=True) for r in session.exec(query).all()]
