"""Read endpoints of the registry; every one is filtered by the caller's tenant in the service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from cloud.deps import SessionDep, TenantId
from cloud.registry import service
from cloud.registry.models import DevicePublic, EventPage, GatewayPublic, StorePublic

router = APIRouter(tags=["registry"])


@router.get("/stores", response_model=list[StorePublic])
def list_stores(session: SessionDep, tenant_id: TenantId) -> list[StorePublic]:
    return service.list_stores(session, tenant_id)


@router.get("/gateways", response_model=list[GatewayPublic])
def list_gateways(session: SessionDep, tenant_id: TenantId, store_id: int | None = None) -> list[GatewayPublic]:
    return service.list_gateways(session, tenant_id, store_id)


@router.get("/gateways/{gateway_id}", response_model=GatewayPublic)
def get_gateway(gateway_id: int, session: SessionDep, tenant_id: TenantId) -> GatewayPublic:
    return service.get_gateway(session, tenant_id, gateway_id)


@router.get("/devices", response_model=list[DevicePublic])
def list_devices(
    session: SessionDep,
    tenant_id: TenantId,
    store_id: int | None = None,
    gateway_id: int | None = None,
    kind: str | None = None,
    present: bool | None = None,
) -> list[DevicePublic]:
    return service.list_devices(
        session, tenant_id, store_id=store_id, gateway_id=gateway_id, kind=kind, present=present
    )


@router.get("/devices/{device_id}", response_model=DevicePublic)
def get_device(device_id: int, session: SessionDep, tenant_id: TenantId) -> DevicePublic:
    return service.get_device(session, tenant_id, device_id)


@router.get("/events", response_model=EventPage)
def list_events(
    session: SessionDep,
    tenant_id: TenantId,
    device_id: int | None = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> EventPage:
    """Events newest first; ``since`` must carry a zone (UTC recommended)."""
    if since is not None and since.tzinfo is None:
        from cloud.errors import Invalid

        raise Invalid("since: укажите часовой пояс, например 2026-01-01T00:00:00Z", code="naive_datetime")
    items = service.list_events(
        session, tenant_id, device_id=device_id, event_type=type, since=since, limit=limit, offset=offset
    )
    return EventPage(items=items, limit=limit, offset=offset)
