"""``POST /stores/{id}/handheld-tasks`` and ``GET /stores/{id}/handheld-tasks/{task_id}``.

Mounted under ``/api/v1`` by ``cloud.app`` (one ``include_router`` line, to be added by the
lead). The POST sends ``assign_task`` to the store's pool device through the commands module
(idempotency key ``hht-{task_id}``) and answers like ``POST …/commands`` (200 final, 202 pending).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from cloud.commands.models import CommandCreate, CommandPublic
from cloud.commands.router import send_command
from cloud.deps import CurrentCaller, SessionDep, TenantId
from cloud.handheld import service
from cloud.handheld.models import HandheldTaskCreate, HandheldTaskPublic

router = APIRouter(tags=["handheld"])


@router.post("/stores/{store_id}/handheld-tasks", response_model=CommandPublic)
async def assign_task(
    store_id: int, body: HandheldTaskCreate, request: Request, response: Response, caller: CurrentCaller
) -> CommandPublic:
    """Give a task to the store's handhelds; repeat with the same ``task_id`` safely."""
    factory: sessionmaker[Session] = request.app.state.sessions

    def pool_id() -> int:
        with factory() as session:
            device = service.pool_device(session, caller.tenant_id, store_id)
            assert device.id is not None
            return device.id

    device_id = await run_in_threadpool(pool_id)
    command = CommandCreate(action=service.ASSIGN_ACTION, args=body.args(),
                            idempotency_key=service.command_id(body.task_id), timeout_s=body.timeout_s)
    return await send_command(request, response, caller, command, None, device_id=device_id)


@router.get("/stores/{store_id}/handheld-tasks/{task_id}", response_model=HandheldTaskPublic)
def get_task(store_id: int, task_id: str, session: SessionDep, tenant_id: TenantId) -> HandheldTaskPublic:
    """The task, its lines (from the handhelds' events, each ``line_id`` once) and its completion."""
    return service.get_task(session, tenant_id, store_id, task_id)
