"""Catalog endpoints under ``/catalog``; the service filters every query by the caller's tenant."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from cloud.catalog import service
from cloud.catalog.models import (
    BarcodeCreate,
    BarcodePublic,
    PriceCreate,
    PricePublic,
    ProductCreate,
    ProductPublic,
    ProductUpdate,
    VatRatePublic,
    WarehouseCreate,
    WarehousePublic,
    WarehouseUpdate,
)
from cloud.deps import SessionDep, TenantId
from cloud.errors import Invalid

router = APIRouter(prefix="/catalog", tags=["catalog"])


def aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise Invalid(f"{name}: укажите часовой пояс, например 2026-01-01T00:00:00Z", code="naive_datetime")
    return value


@router.post("/products", response_model=ProductPublic, status_code=201)
def create_product(data: ProductCreate, session: SessionDep, tenant_id: TenantId) -> ProductPublic:
    return service.create_product(session, tenant_id, data)


@router.get("/products", response_model=list[ProductPublic])
def list_products(
    session: SessionDep,
    tenant_id: TenantId,
    search: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[ProductPublic]:
    return service.list_products(session, tenant_id, search, limit, offset)


@router.get("/products/{product_id}", response_model=ProductPublic)
def get_product(product_id: int, session: SessionDep, tenant_id: TenantId) -> ProductPublic:
    return service.product_public(session, service.get_product(session, tenant_id, product_id))


@router.patch("/products/{product_id}", response_model=ProductPublic)
def update_product(product_id: int, data: ProductUpdate, session: SessionDep, tenant_id: TenantId) -> ProductPublic:
    return service.update_product(session, tenant_id, product_id, data)


@router.post("/products/{product_id}/barcodes", response_model=BarcodePublic, status_code=201)
def add_barcode(product_id: int, data: BarcodeCreate, session: SessionDep, tenant_id: TenantId) -> BarcodePublic:
    return service.add_barcode(session, tenant_id, product_id, data)


@router.get("/barcodes/{code}", response_model=BarcodePublic)
def find_barcode(code: str, session: SessionDep, tenant_id: TenantId) -> BarcodePublic:
    return service.find_barcode(session, tenant_id, code)


@router.delete("/barcodes/{code}", status_code=204)
def delete_barcode(code: str, session: SessionDep, tenant_id: TenantId) -> Response:
    service.delete_barcode(session, tenant_id, code)
    return Response(status_code=204)


@router.get("/vat-rates", response_model=list[VatRatePublic])
def vat_rates(session: SessionDep, _tenant_id: TenantId, on: date | None = None) -> list[VatRatePublic]:
    return service.vat_rates(session, on)


@router.post("/prices", response_model=PricePublic, status_code=201)
def set_price(data: PriceCreate, session: SessionDep, tenant_id: TenantId) -> PricePublic:
    return service.set_price(session, tenant_id, data)


@router.get("/prices", response_model=PricePublic)
def price_on(store_id: int, product_id: int, on: datetime, session: SessionDep, tenant_id: TenantId) -> PricePublic:
    return service.price_on(session, tenant_id, store_id, product_id, aware(on, "on"))


@router.post("/warehouses", response_model=WarehousePublic, status_code=201)
def create_warehouse(data: WarehouseCreate, session: SessionDep, tenant_id: TenantId) -> WarehousePublic:
    return service.create_warehouse(session, tenant_id, data)


@router.get("/warehouses", response_model=list[WarehousePublic])
def list_warehouses(session: SessionDep, tenant_id: TenantId, store_id: int | None = None) -> list[WarehousePublic]:
    return service.list_warehouses(session, tenant_id, store_id)


@router.patch("/warehouses/{warehouse_id}", response_model=WarehousePublic)
def update_warehouse(
    warehouse_id: int, data: WarehouseUpdate, session: SessionDep, tenant_id: TenantId
) -> WarehousePublic:
    return service.update_warehouse(session, tenant_id, warehouse_id, data)
