"""Inventory endpoints under ``/inventory``: settings, periods, documents, stock reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from cloud.base import utcnow
from cloud.catalog.router import aware
from cloud.deps import CurrentUser, SessionDep, TenantId
from cloud.inventory import reports, service, tasks
from cloud.inventory.models import (
    ClosePeriodIn,
    CountLineIn,
    DocType,
    DocumentIn,
    DocumentPublic,
    MovementPublic,
    ReasonPublic,
    ReceiveIn,
    SettingsPublic,
    SettingsUpdate,
    StockRow,
)

router = APIRouter(prefix="/inventory", tags=["inventory"])

PATHS = {
    "receipts": DocType.RECEIPT,
    "write-offs": DocType.WRITE_OFF,
    "transfers": DocType.TRANSFER,
    "supplier-returns": DocType.SUPPLIER_RETURN,
}


def _after(request: Request, session: SessionDep) -> None:
    tasks.enqueue_dirty(session, request.app.state.settings.database_url)


@router.get("/settings", response_model=SettingsPublic)
def get_settings(session: SessionDep, tenant_id: TenantId) -> SettingsPublic:
    return service.get_settings(session, tenant_id)


@router.put("/settings", response_model=SettingsPublic)
def update_settings(data: SettingsUpdate, session: SessionDep, tenant_id: TenantId) -> SettingsPublic:
    return service.update_settings(session, tenant_id, data)


@router.put("/closed-period", response_model=ClosePeriodIn)
def close_period(data: ClosePeriodIn, session: SessionDep, tenant_id: TenantId) -> ClosePeriodIn:
    return service.close_period(session, tenant_id, data)


@router.get("/write-off-reasons", response_model=list[ReasonPublic])
def reasons(session: SessionDep, tenant_id: TenantId) -> list[ReasonPublic]:
    return service.reasons(session, tenant_id)


def _doc_type(kind: str) -> DocType:
    from cloud.errors import NotFound

    if kind not in PATHS:
        raise NotFound(f"нет документов вида {kind!r}", code="unknown_document_kind")
    return PATHS[kind]


@router.post("/counts", response_model=DocumentPublic, status_code=201)
def start_count(data: DocumentIn, session: SessionDep, tenant_id: TenantId, user: CurrentUser) -> DocumentPublic:
    """Start a stock count: the warehouse's book quantities at ``posted_at`` become the expected snapshot."""
    return service.start_count(session, tenant_id, user.id, data)


@router.post("/counts/{document_id}/lines", response_model=DocumentPublic)
def add_counted(document_id: int, items: list[CountLineIn], session: SessionDep, tenant_id: TenantId) -> DocumentPublic:
    return service.add_counted(session, tenant_id, document_id, items)


@router.post("/{kind}", response_model=DocumentPublic, status_code=201)
def create_document(kind: str, data: DocumentIn, session: SessionDep, tenant_id: TenantId,
                    user: CurrentUser) -> DocumentPublic:
    """Create a draft receipt / write-off / transfer / supplier return (``kind`` is the path)."""
    return service.create_document(session, tenant_id, user.id, _doc_type(kind), data)


@router.get("/documents", response_model=list[DocumentPublic])
def list_documents(
    session: SessionDep,
    tenant_id: TenantId,
    doc_type: Annotated[str | None, Query(max_length=16)] = None,
    store_id: int | None = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[DocumentPublic]:
    return service.list_documents(session, tenant_id, doc_type, store_id, status, limit, offset)


@router.get("/documents/{document_id}", response_model=DocumentPublic)
def get_document(document_id: int, session: SessionDep, tenant_id: TenantId) -> DocumentPublic:
    return service.get_document(session, tenant_id, document_id)


@router.put("/documents/{document_id}", response_model=DocumentPublic)
def update_document(document_id: int, data: DocumentIn, session: SessionDep, tenant_id: TenantId) -> DocumentPublic:
    """Replace a draft's header and lines."""
    return service.update_document(session, tenant_id, document_id, data)


@router.post("/documents/{document_id}/post", response_model=DocumentPublic)
def post_document(document_id: int, request: Request, session: SessionDep, tenant_id: TenantId) -> DocumentPublic:
    doc = service.post_document(session, tenant_id, document_id)
    _after(request, session)
    return doc


@router.post("/documents/{document_id}/cancel", response_model=DocumentPublic)
def cancel_document(document_id: int, request: Request, session: SessionDep, tenant_id: TenantId) -> DocumentPublic:
    doc = service.cancel_document(session, tenant_id, document_id)
    _after(request, session)
    return doc


@router.post("/documents/{document_id}/receive", response_model=DocumentPublic)
def receive_transfer(document_id: int, data: ReceiveIn, request: Request, session: SessionDep,
                     tenant_id: TenantId) -> DocumentPublic:
    doc = service.receive_transfer(session, tenant_id, document_id, data)
    _after(request, session)
    return doc


def _at(at: datetime | None) -> datetime:
    return utcnow() if at is None else aware(at, "at")


@router.get("/stock", response_model=list[StockRow])
def stock(session: SessionDep, tenant_id: TenantId, at: datetime | None = None, store_id: int | None = None,
          warehouse_id: int | None = None, product_id: int | None = None) -> list[StockRow]:
    """Stock at ``at`` (inclusive; default now) per product and warehouse."""
    return reports.stock_on(session, tenant_id, _at(at), store_id=store_id, warehouse_id=warehouse_id,
                            product_id=product_id)


@router.get("/stock.csv")
def stock_csv(session: SessionDep, tenant_id: TenantId, at: datetime | None = None, store_id: int | None = None,
              warehouse_id: int | None = None) -> Response:
    rows = reports.stock_on(session, tenant_id, _at(at), store_id=store_id, warehouse_id=warehouse_id)
    return Response(reports.stock_csv(session, rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="stock.csv"'})


@router.get("/stock.xlsx")
def stock_xlsx(session: SessionDep, tenant_id: TenantId, at: datetime | None = None, store_id: int | None = None,
               warehouse_id: int | None = None) -> Response:
    when = _at(at)
    rows = reports.stock_on(session, tenant_id, when, store_id=store_id, warehouse_id=warehouse_id)
    return Response(reports.stock_xlsx(session, rows, when),
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="stock.xlsx"'})


@router.get("/valuation")
def valuation(session: SessionDep, tenant_id: TenantId, at: datetime | None = None,
              store_id: int | None = None) -> dict[str, Any]:
    return reports.valuation(session, tenant_id, _at(at), store_id)


@router.get("/products/{product_id}/movements", response_model=list[MovementPublic])
def movements(
    product_id: int,
    session: SessionDep,
    tenant_id: TenantId,
    warehouse_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[MovementPublic]:
    return reports.movements(session, tenant_id, product_id, warehouse_id=warehouse_id,
                             since=None if since is None else aware(since, "since"),
                             until=None if until is None else aware(until, "until"), limit=limit, offset=offset)


@router.get("/recompute")
def pending(session: SessionDep, tenant_id: TenantId) -> list[dict[str, Any]]:
    """Pairs whose later rows still await the background recompute after a backdated posting."""
    return service.pending_recomputes(session, tenant_id)
