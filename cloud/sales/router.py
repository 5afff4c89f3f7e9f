"""Sales API (tenant-scoped): receipts, returns, shifts, problems, the report (JSON or xlsx), ingestion
on demand, and ``POST /stores/{id}/fiscalize`` (a receipt made at a store's lane for the cloud)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from cloud.commands.models import CommandCreate, CommandPublic
from cloud.commands.router import send_command
from cloud.db import unit_of_work
from cloud.deps import CurrentCaller, SessionDep, SessionFactoryDep, TenantId
from cloud.sales import ingest as ingestion
from cloud.sales import service

router = APIRouter(tags=["sales"])

FISCALIZE_ACTION = "fiscalize"
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]


@router.get("/sales", response_model=service.SalePage)
def list_sales(session: SessionDep, tenant_id: TenantId, store_id: int | None = None,
               date_from: Annotated[date | None, Query(alias="from")] = None,
               date_to: Annotated[date | None, Query(alias="to")] = None, lane: str | None = None,
               cashier: str | None = None, status: str | None = None, limit: Limit = 100,
               offset: Offset = 0) -> service.SalePage:
    """Receipts, newest first; ``from``/``to`` are business dates (store time zone), inclusive."""
    return service.list_sales(session, tenant_id, store_id=store_id, date_from=date_from, date_to=date_to, lane=lane,
                              cashier=cashier, status=status, limit=limit, offset=offset)


@router.get("/sales/report", response_model=service.ReportPublic)
def sales_report(session: SessionDep, tenant_id: TenantId, group_by: service.GroupBy,
                 date_from: Annotated[date, Query(alias="from")], date_to: Annotated[date, Query(alias="to")],
                 store_id: int | None = None, format: Literal["json", "xlsx"] = "json") -> Response | service.ReportPublic:
    """Revenue, cost (from the ledger), margin and margin % by store, day, product or cashier."""
    rep = service.report(session, tenant_id, group_by, date_from, date_to, store_id)
    if format == "xlsx":
        name = f"sales-{group_by}-{date_from.isoformat()}-{date_to.isoformat()}.xlsx"
        return Response(service.report_xlsx(rep),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return rep


@router.get("/sales/shifts", response_model=list[service.ShiftPublic])
def list_shifts(session: SessionDep, tenant_id: TenantId, store_id: int | None = None, lane: str | None = None,
                limit: Limit = 100, offset: Offset = 0) -> list[service.ShiftPublic]:
    """Shifts with the Z report, the totals compared and the differences, and their cash movements."""
    return service.list_shifts(session, tenant_id, store_id=store_id, lane=lane, limit=limit, offset=offset)


@router.get("/sales/returns", response_model=list[service.ReturnPublic])
def list_returns(session: SessionDep, tenant_id: TenantId, store_id: int | None = None,
                 date_from: Annotated[date | None, Query(alias="from")] = None,
                 date_to: Annotated[date | None, Query(alias="to")] = None, sale_id: int | None = None,
                 limit: Limit = 100, offset: Offset = 0) -> list[service.ReturnPublic]:
    return service.list_returns(session, tenant_id, store_id=store_id, date_from=date_from, date_to=date_to,
                                sale_pk=sale_id, limit=limit, offset=offset)


@router.get("/sales/problems", response_model=list[service.ProblemPublic])
def list_problems(session: SessionDep, tenant_id: TenantId, limit: Limit = 100,
                  offset: Offset = 0) -> list[service.ProblemPublic]:
    """What ingestion could not do: unknown products, lines the ledger refused, bad payloads, differences."""
    return service.list_problems(session, tenant_id, limit, offset)


class IngestResult(BaseModel):
    counts: dict[str, int]


class RetryResult(BaseModel):
    outcome: str
    """``stored``, ``duplicate`` (its sale came in another event) or ``rejected`` (again)."""
    applied: bool
    """False: the problem was resolved before; nothing was applied now."""
    problem: service.ProblemPublic


@router.post("/sales/problems/retry", response_model=IngestResult)
def retry_rejected(factory: SessionFactoryDep, tenant_id: TenantId) -> IngestResult:
    """Apply every rejected event of the tenant again (after a fix), each exactly once; the counts of outcomes."""
    return IngestResult(counts=dict(ingestion.retry_rejected(factory, tenant_id)))


@router.post("/sales/problems/{problem_id}/retry", response_model=RetryResult)
def retry_problem(problem_id: int, factory: SessionFactoryDep, tenant_id: TenantId) -> RetryResult:
    """Apply a rejected event (``bad_payload``, ``error``) again after a fix, exactly once.

    The cursor moved past it so that it never blocked its store; this is how it is not lost. A
    problem that is not a rejection is 409 (its event is stored); a resolved one answers with
    its resolution and applies nothing."""
    done = ingestion.retry(factory, tenant_id, problem_id)
    return RetryResult(outcome=done.outcome, applied=done.applied,
                       problem=service.ProblemPublic.model_validate(done.problem, from_attributes=True))


@router.post("/sales/ingest", response_model=IngestResult)
def ingest_now(factory: SessionFactoryDep, _tenant_id: TenantId) -> IngestResult:
    """Apply the lane events that have arrived so far (what the periodic task does)."""
    return IngestResult(counts=dict(ingestion.ingest(factory)))


@router.get("/sales/{sale_pk}", response_model=service.SalePublic)
def get_sale(sale_pk: int, session: SessionDep, tenant_id: TenantId) -> service.SalePublic:
    """One receipt with its lines, payments and fiscal data."""
    return service.get_sale(session, tenant_id, sale_pk)


@router.post("/stores/{store_id}/fiscalize", response_model=CommandPublic)
async def fiscalize(store_id: int, body: service.FiscalizeIn, request: Request, response: Response,
                    caller: CurrentCaller, factory: SessionFactoryDep) -> CommandPublic:
    """Ask a store's lane to fiscalize a receipt it did not sell (a delivery's settlement with its
    prepayment offset): the lane's ``fiscalize`` command, once per ``idempotency_key`` (default
    ``fiscalize-{order_id}``). 200 with the final reply, 202 while pending (repeat the same body)."""

    def lane() -> int:
        with unit_of_work(factory) as session:
            return service.lane_of(session, caller.tenant_id, store_id, body.device_id)

    device_id = await run_in_threadpool(lane)
    command = CommandCreate(action=FISCALIZE_ACTION, args=body.args(), idempotency_key=body.key(),
                            timeout_s=body.timeout_s)
    return await send_command(request, response, caller, command, None, device_id=device_id)
