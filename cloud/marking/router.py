"""Marking-code reads under ``/marking``; codes change state only through inventory documents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cloud.deps import SessionDep, TenantId
from cloud.marking import service
from cloud.marking.models import MarkingCodePublic, MarkingEventPublic

router = APIRouter(prefix="/marking", tags=["marking"])


@router.get("/codes", response_model=list[MarkingCodePublic])
def list_codes(
    session: SessionDep,
    tenant_id: TenantId,
    product_id: int | None = None,
    state: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[MarkingCodePublic]:
    return service.list_codes(session, tenant_id, product_id, state, limit, offset)


@router.get("/code", response_model=MarkingCodePublic)
def get_code(code: Annotated[str, Query(max_length=300)], session: SessionDep, tenant_id: TenantId) -> MarkingCodePublic:
    """A code by its identity (``01…21…``) or as scanned (GS as ``\\x1d``)."""
    return service.get_code(session, tenant_id, code)


@router.get("/code/history", response_model=list[MarkingEventPublic])
def code_history(
    code: Annotated[str, Query(max_length=300)], session: SessionDep, tenant_id: TenantId
) -> list[MarkingEventPublic]:
    return service.history(session, tenant_id, code)
