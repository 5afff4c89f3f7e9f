"""``POST …/commands`` (device and gateway) and ``GET /commands/{id}``.

The POST publishes, then waits up to ``timeout_s`` for the final reply: 200 with it, or 202 with
the command to poll. Database work runs in the thread pool; the wait itself is an asyncio future
completed by the MQTT thread, so a waiting request holds no thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from cloud.base import utcnow
from cloud.commands import service
from cloud.commands.bus import CommandBus
from cloud.commands.models import Command, CommandCreate, CommandPublic
from cloud.config import CloudSettings
from cloud.db import unit_of_work
from cloud.deps import Caller, CurrentCaller, SessionDep, TenantId
from cloud.errors import Invalid, Unavailable
from cloud.registry import service as registry
from cloud.registry.models import Device, Gateway, Store
from protocols.bus import GatewayAddress, Reply

router = APIRouter(tags=["commands"])

IdempotencyHeader = Annotated[str | None, Header(alias="Idempotency-Key")]
_RESPONSES: dict[int | str, dict[str, object]] = {
    202: {"model": CommandPublic, "description": "No final reply within timeout_s: poll GET /commands/{id}"},
    409: {"description": "Gateway offline, device not present, or idempotency key reused"},
}


@dataclass
class _Prepared:
    command: Command
    topic: str
    reply_to: str
    warnings: list[str]
    publish: bool


def _key(body: CommandCreate, header: str | None) -> str:
    import uuid

    if body.idempotency_key and header and body.idempotency_key != header:
        raise Invalid("idempotency_key в теле и заголовок Idempotency-Key различаются", code="idempotency_key_mismatch")
    return service.check_key(body.idempotency_key or header or str(uuid.uuid4()))


def _prepare(
    factory: sessionmaker[Session],
    settings: CloudSettings,
    caller: Caller,
    body: CommandCreate,
    key: str,
    ttl_s: float,
    *,
    device_id: int | None = None,
    gateway_id: int | None = None,
) -> _Prepared:
    tenant_id = caller.tenant_id
    with unit_of_work(factory) as session:
        device: Device | None = None
        if device_id is not None:
            device = registry.get_device_row(session, tenant_id, device_id)
            gateway = session.get_one(Gateway, device.gateway_id)
        else:
            assert gateway_id is not None
            gateway = registry.get_gateway_row(session, tenant_id, gateway_id)
        service.check_action(body.action, gateway_level=device is None)
        store = session.get_one(Store, gateway.store_id)
        address = GatewayAddress(caller.tenant.slug, store.code, gateway.code, settings.bus_root)
        existing = service.find(session, tenant_id, key)
        warnings: list[str] = []
        if existing is None or not service.is_final(existing.status):
            warnings = service.check_target(gateway, device)
        now = utcnow()
        command, _created = service.create_or_get(
            session, tenant_id=tenant_id, gateway=gateway, device=device, action=body.action,
            args=body.args, key=key, ttl_s=ttl_s, now=now,
        )
        topic = address.command(device.code, body.action) if device else address.gateway_command(body.action)
        return _Prepared(command, topic, address.reply(key), warnings, service.needs_publish(command, now))


def _mark_published(factory: sessionmaker[Session], tenant_id: int, command_id: str) -> None:
    with unit_of_work(factory) as session:
        service.mark_published(session, tenant_id, command_id, utcnow())
        session.commit()


def _record(factory: sessionmaker[Session], tenant_id: int, command_id: str, reply: Reply | None) -> Command:
    with unit_of_work(factory) as session:
        command = service.find(session, tenant_id, command_id, lock=reply is not None)
        assert command is not None
        if reply is not None and service.apply_reply(session, command, reply, utcnow()):
            session.commit()
        return command


async def send_command(
    request: Request, response: Response, caller: Caller, body: CommandCreate, header_key: str | None,
    *, device_id: int | None = None, gateway_id: int | None = None,
) -> CommandPublic:
    settings: CloudSettings = request.app.state.settings
    factory: sessionmaker[Session] = request.app.state.sessions
    bus: CommandBus | None = request.app.state.command_bus
    key = _key(body, header_key)
    timeout = settings.command_timeout_s if body.timeout_s is None else body.timeout_s
    if timeout > settings.command_max_timeout_s:
        raise Invalid(f"timeout_s не может превышать {settings.command_max_timeout_s:g} с", code="timeout_too_long")
    ttl_s = body.ttl_s if body.ttl_s is not None else max(settings.command_max_timeout_s, timeout)
    prepared = await run_in_threadpool(
        _prepare, factory, settings, caller, body, key, ttl_s, device_id=device_id, gateway_id=gateway_id
    )
    command = prepared.command
    if prepared.publish:
        if bus is None:
            raise Unavailable("API запущен без брокера MQTT", code="bus_unavailable")
        slug = caller.tenant.slug
        waiter = bus.register(slug, key)
        try:
            await run_in_threadpool(bus.publish, prepared.topic, service.to_message(command, prepared.reply_to))
            await run_in_threadpool(_mark_published, factory, caller.tenant_id, key)
            reply: Reply | None
            try:
                reply = await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
            except TimeoutError:
                reply = None
        finally:
            bus.unregister(slug, key, waiter)
        command = await run_in_threadpool(_record, factory, caller.tenant_id, key, reply)
    response.status_code = 200 if service.is_final(command.status) else 202
    return service.to_public(command, prepared.warnings)


@router.post("/devices/{device_id}/commands", response_model=CommandPublic, responses=_RESPONSES)
async def post_device_command(
    device_id: int, body: CommandCreate, request: Request, response: Response, caller: CurrentCaller,
    idempotency_key: IdempotencyHeader = None,
) -> CommandPublic:
    """Send a command to a device and wait up to ``timeout_s`` for its final reply."""
    return await send_command(request, response, caller, body, idempotency_key, device_id=device_id)


@router.post("/gateways/{gateway_id}/commands", response_model=CommandPublic, responses=_RESPONSES)
async def post_gateway_command(
    gateway_id: int, body: CommandCreate, request: Request, response: Response, caller: CurrentCaller,
    idempotency_key: IdempotencyHeader = None,
) -> CommandPublic:
    """Send a gateway command (``rebirth``, ``rescan``, ``config``, ``ping``)."""
    return await send_command(request, response, caller, body, idempotency_key, gateway_id=gateway_id)


@router.get("/commands/{command_id}", response_model=CommandPublic)
def get_command(command_id: str, session: SessionDep, tenant_id: TenantId) -> CommandPublic:
    """The stored state of a command of the caller's tenant."""
    return service.to_public(service.get(session, tenant_id, command_id))
