"""Stock counts on handhelds: ``POST /inventory/counts/{id}/handheld-task`` and reading the lines back.

The POST sends a ``count`` task built from the count's snapshot to the store's handheld pool through
:mod:`cloud.handheld` (answers like ``POST …/handheld-tasks``: 200 with the final reply, 202 pending);
repeating it is safe (same task, same command). Scanned lines reach the count through the poll task
(:mod:`cloud.inventory.handheld_counts`); ``…/handheld-sync`` applies what has arrived right now.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from cloud.commands.models import CommandCreate, CommandPublic
from cloud.commands.router import send_command
from cloud.db import unit_of_work
from cloud.deps import CurrentCaller, SessionDep, SessionFactoryDep, TenantId
from cloud.handheld import service as handheld
from cloud.inventory import handheld_counts as counts

router = APIRouter(prefix="/inventory", tags=["inventory"])


class HandheldCountTaskSent(BaseModel):
    task_id: str
    document_id: int
    lines: int
    skipped: list[dict[str, Any]]
    """Count lines a handheld cannot recognise (no barcode, PLU or GTIN): count them through the API."""
    command: CommandPublic


@router.post("/counts/{document_id}/handheld-task", response_model=HandheldCountTaskSent)
async def send_count_task(document_id: int, request: Request, response: Response, caller: CurrentCaller,
                          factory: SessionFactoryDep, body: counts.HandheldCountIn | None = None) -> HandheldCountTaskSent:
    """Send the count to the store's handhelds as a ``count`` task (blind unless ``show_expected``)."""
    data = body or counts.HandheldCountIn()

    def prepare() -> counts.Prepared:
        with unit_of_work(factory) as session:
            return counts.prepare_task(session, caller.tenant_id, document_id, data)

    prepared = await run_in_threadpool(prepare)
    command = CommandCreate(action=handheld.ASSIGN_ACTION, args=prepared.args,
                            idempotency_key=handheld.command_id(prepared.task_id), timeout_s=data.timeout_s)
    sent = await send_command(request, response, caller, command, None, device_id=prepared.pool_device_id)
    return HandheldCountTaskSent(task_id=prepared.task_id, document_id=document_id, lines=prepared.lines,
                                 skipped=prepared.skipped, command=sent)


@router.get("/counts/{document_id}/handheld-tasks", response_model=counts.CountTasksPublic)
def count_tasks(document_id: int, session: SessionDep, tenant_id: TenantId) -> counts.CountTasksPublic:
    """The count's handheld tasks: lines received and applied, completion ("counting finished")."""
    return counts.tasks_of(session, tenant_id, document_id)


@router.post("/counts/{document_id}/handheld-sync", response_model=counts.CountTasksPublic)
def sync(document_id: int, factory: SessionFactoryDep, tenant_id: TenantId) -> counts.CountTasksPublic:
    """Apply the handheld lines that have arrived so far (what the poll task does), e.g. right before posting."""
    return counts.sync_document(factory, tenant_id, document_id)
