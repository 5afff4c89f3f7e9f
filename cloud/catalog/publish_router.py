"""``POST /catalog/stores/{id}/publish`` (a new version of the price list and PLU list to the store's gateways)
and what was published."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from cloud.catalog import publish
from cloud.catalog.router import aware
from cloud.config import CloudSettings
from cloud.deps import SessionDep, SessionFactoryDep, TenantId

router = APIRouter(prefix="/catalog", tags=["catalog"])


@router.post("/stores/{store_id}/publish", response_model=publish.PublishResult)
async def publish_store(store_id: int, request: Request, factory: SessionFactoryDep,
                        tenant_id: TenantId) -> publish.PublishResult:
    """Publish the store's current price list and weighed-goods PLU list (both retained, QoS 1, the same
    version) to each of its gateways as a new version.

    A gateway that is offline gets it from the broker when it reconnects: ``published_not_confirmed``.
    """
    settings: CloudSettings = request.app.state.settings
    return await run_in_threadpool(publish.publish_now, factory, settings, tenant_id, store_id)


@router.get("/stores/{store_id}/publication", response_model=publish.PublishResult)
def last_publication(store_id: int, session: SessionDep, tenant_id: TenantId) -> publish.PublishResult:
    """The last published version, its item and PLU counts, and its per-gateway topics and status."""
    return publish.publication(session, tenant_id, store_id)


@router.get("/stores/{store_id}/pricelist", response_model=publish.CatalogPreview)
def price_list(store_id: int, session: SessionDep, tenant_id: TenantId,
               at: datetime | None = None) -> publish.CatalogPreview:
    """What the store's price list and weighed-goods PLU list are at ``at`` (default now), unpublished."""
    return publish.preview(session, tenant_id, store_id, None if at is None else aware(at, "at"))
