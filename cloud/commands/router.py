"""``POST …/commands`` (device and gateway) and ``GET /commands/{id}``.

The POST publishes, then waits up to ``timeout_s`` for the final reply: 200 with it, or 202 with
the command to poll. The request path is: (token from the process cache) → the command stored
(a new key: one statement, on the event loop for PostgreSQL, :mod:`cloud.commands.insert`;
anything else: one transaction in the thread pool — look-ups + the row created or re-marked as
published; both committed with relaxed durability, see :mod:`cloud.commands.service`) → publish
from the event loop → await the PUBACK and the final reply (asyncio futures completed by the bus
client, which runs on the same event loop: a waiting request holds no thread) → answer from
memory. Nothing is written after the publish: the bus consumer persists every reply, and
``GET /commands/{id}`` lays the final replies this process heard over the stored row until the
consumer's commit lands (:class:`~cloud.commands.bus.CommandBus`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, select

from cloud.base import utcnow
from cloud.commands import insert, service
from cloud.commands.bus import PUBLISH_TIMEOUT_S, CommandBus, ReplyWaiter
from cloud.commands.models import Command, CommandCreate, CommandPublic
from cloud.config import CloudSettings
from cloud.db import relaxed_durability, unit_of_work
from cloud.deps import Caller, CurrentCaller, SessionDep
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
    publish: bool,
    device_id: int | None = None,
    gateway_id: int | None = None,
    try_new: bool = True,
) -> _Prepared:
    """Everything before the publish, in one transaction (the thread pool's only job per POST):
    the short insert of :mod:`cloud.commands.insert` for a new key (unless ``try_new`` is off:
    the event loop tried it already), else the full path."""
    tenant_id = caller.tenant_id
    if try_new and publish and _valid_action(body.action, gateway_level=device_id is None):
        fast = _prepare_new(factory, settings, caller, body, key, ttl_s, device_id=device_id, gateway_id=gateway_id)
        if fast is not None:
            return fast
    with unit_of_work(factory) as session:
        if publish:
            relaxed_durability(session)
        device, gateway, store = _target(session, tenant_id, device_id, gateway_id)
        service.check_action(body.action, gateway_level=device is None)
        address = GatewayAddress(caller.tenant_slug, store.code, gateway.code, settings.bus_root)
        existing = service.find(session, tenant_id, key, lock=publish)
        warnings: list[str] = []
        if existing is None or not service.is_final(existing.status):
            warnings = service.check_target(gateway, device)
        command, _created, must_publish = service.create_for_publish(
            session, tenant_id=tenant_id, gateway=gateway, device=device, action=body.action,
            args=body.args, key=key, ttl_s=ttl_s, now=utcnow(), publish=publish, existing=existing,
        )
        topic = address.command(device.code, body.action) if device else address.gateway_command(body.action)
        return _Prepared(command, topic, address.reply(key), warnings, must_publish)


def _valid_action(action: str, *, gateway_level: bool) -> bool:
    try:
        service.check_action(action, gateway_level=gateway_level)
    except Invalid:
        return False
    return True


def _prepare_new(
    factory: sessionmaker[Session], settings: CloudSettings, caller: Caller, body: CommandCreate, key: str,
    ttl_s: float, *, device_id: int | None, gateway_id: int | None,
) -> _Prepared | None:
    """A new key for a target that can take it, in one short transaction; ``None``: anything else."""
    created = insert.create_new(
        factory.kw["bind"], tenant_id=caller.tenant_id, key=key, device_id=device_id, gateway_id=gateway_id,
        action=body.action, args=body.args, now=utcnow(), ttl_s=ttl_s,
    )
    return None if created is None else _prepared_new(settings, caller, body, key, *created)


async def _prepare_new_async(
    inserter: insert.PostgresInserter, settings: CloudSettings, caller: Caller, body: CommandCreate, key: str,
    ttl_s: float, *, device_id: int | None, gateway_id: int | None,
) -> _Prepared | None:
    """:func:`_prepare_new` on the event loop (PostgreSQL)."""
    created = await inserter.create_new(
        tenant_id=caller.tenant_id, key=key, device_id=device_id, gateway_id=gateway_id, action=body.action,
        args=body.args, now=utcnow(), ttl_s=ttl_s,
    )
    return None if created is None else _prepared_new(settings, caller, body, key, *created)


def _prepared_new(settings: CloudSettings, caller: Caller, body: CommandCreate, key: str, command: Command,
                  found: insert.Target) -> _Prepared:
    address = GatewayAddress(caller.tenant_slug, found.store_code, found.gateway_code, settings.bus_root)
    topic = address.command(found.device_code, body.action) if found.device_code else address.gateway_command(body.action)
    return _Prepared(command, topic, address.reply(key), found.warnings(), True)


def _target(session: Session, tenant_id: int, device_id: int | None,
            gateway_id: int | None) -> tuple[Device | None, Gateway, Store]:
    """The device (or none), its gateway and store in one query; 404 as the registry says it."""
    if device_id is not None:
        row = session.exec(
            select(Device, Gateway, Store)
            .join(Gateway, Gateway.id == Device.gateway_id)  # type: ignore[arg-type]
            .join(Store, Store.id == Gateway.store_id)  # type: ignore[arg-type]
            .where(Device.id == device_id, Device.tenant_id == tenant_id)
        ).first()
        if row is None:
            registry.get_device_row(session, tenant_id, device_id)  # raises its NotFound
            raise AssertionError("unreachable")
        return row[0], row[1], row[2]
    assert gateway_id is not None
    pair = session.exec(
        select(Gateway, Store)
        .join(Store, Store.id == Gateway.store_id)  # type: ignore[arg-type]
        .where(Gateway.id == gateway_id, Gateway.tenant_id == tenant_id)
    ).first()
    if pair is None:
        registry.get_gateway_row(session, tenant_id, gateway_id)  # raises its NotFound
        raise AssertionError("unreachable")
    return None, pair[0], pair[1]


def _read(factory: sessionmaker[Session], tenant_id: int, command_id: str) -> Command | None:
    with unit_of_work(factory) as session:
        return service.find(session, tenant_id, command_id)


async def _await_reply(bus: CommandBus, waiter: ReplyWaiter, ack: asyncio.Future[None] | None,
                       timeout: float) -> Reply | None:
    """The final reply within ``timeout`` (counted from the PUBACK), else ``None``.

    Without a PUBACK (nor a reply, which implies one) within ``PUBLISH_TIMEOUT_S``: 503, as the
    command may not have reached the broker; the client retries with the same key.
    """
    if ack is not None and not ack.done():
        either: set[asyncio.Future[Any]] = {ack, waiter.future}
        done, _ = await asyncio.wait(either, timeout=PUBLISH_TIMEOUT_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if not done:
            bus.forget_ack(ack)
            raise Unavailable("брокер MQTT не подтвердил команду, повторите запрос с тем же ключом",
                              code="bus_unavailable")
    if ack is not None and ack.done() and not waiter.future.done():
        ack.result()  # a refused publish raises Unavailable
    if waiter.future.done():
        return waiter.future.result()
    try:
        return await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
    except TimeoutError:
        return None


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
    slug = caller.tenant_slug
    # Registered before the database: a reply faster than anything below is not missed, and a
    # concurrent request with the same key in this process follows this one (never publishes).
    waiter = bus.register(slug, key) if bus is not None else None
    try:
        heard = bus.recent_final(slug, key) if bus is not None else None
        publish = waiter is not None and waiter.leader and heard is None and bus is not None and bus.connected
        inserter: insert.PostgresInserter | None = request.app.state.command_inserter
        prepared: _Prepared | None = None
        if publish and inserter is not None and _valid_action(body.action, gateway_level=device_id is None):
            prepared = await _prepare_new_async(inserter, settings, caller, body, key, ttl_s,
                                                device_id=device_id, gateway_id=gateway_id)
        if prepared is None:
            prepared = await run_in_threadpool(
                _prepare, factory, settings, caller, body, key, ttl_s, publish=publish,
                device_id=device_id, gateway_id=gateway_id, try_new=inserter is None,
            )
        command: Command = prepared.command
        reply: Reply | None = heard
        now = utcnow()
        if reply is None and service.needs_publish(command, now):
            if bus is None or waiter is None:
                raise Unavailable("API запущен без брокера MQTT", code="bus_unavailable")
            ack = None
            if prepared.publish:
                ack = bus.publish(prepared.topic, service.to_message(command, prepared.reply_to))
            elif waiter.leader and not publish:  # not connected when we looked: nothing was marked
                raise Unavailable("брокер MQTT недоступен, повторите запрос с тем же ключом", code="bus_unavailable")
            reply = await _await_reply(bus, waiter, ack, timeout)
            if reply is None:
                # No final reply in time (not the hot path): the stored row, which the consumer may
                # have moved on, plus the latest intermediate reply heard here.
                stored = await run_in_threadpool(_read, factory, caller.tenant_id, key)
                command = stored if stored is not None else command
                reply = waiter.latest
    finally:
        if bus is not None and waiter is not None:
            bus.unregister(slug, key, waiter)
    if reply is not None:
        service.advance(command, reply, utcnow())  # in memory: the consumer persists it
    response.status_code = 200 if service.is_final(command.status) else 202
    return service.to_public(command, prepared.warnings)


def _answer(public: CommandPublic, response: Response) -> Response:
    """The answer serialised once, by pydantic-core (``response_model`` stays for the schema: a
    returned ``Response`` is not validated and dumped a second time)."""
    return Response(public.model_dump_json(), status_code=response.status_code or 200, media_type="application/json")


@router.post("/devices/{device_id}/commands", response_model=CommandPublic, responses=_RESPONSES)
async def post_device_command(
    device_id: int, body: CommandCreate, request: Request, response: Response, caller: CurrentCaller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Send a command to a device and wait up to ``timeout_s`` for its final reply."""
    return _answer(await send_command(request, response, caller, body, idempotency_key, device_id=device_id), response)


@router.post("/gateways/{gateway_id}/commands", response_model=CommandPublic, responses=_RESPONSES)
async def post_gateway_command(
    gateway_id: int, body: CommandCreate, request: Request, response: Response, caller: CurrentCaller,
    idempotency_key: IdempotencyHeader = None,
) -> Response:
    """Send a gateway command (``rebirth``, ``rescan``, ``config``, ``ping``)."""
    return _answer(await send_command(request, response, caller, body, idempotency_key, gateway_id=gateway_id), response)


@router.get("/commands/{command_id}", response_model=CommandPublic)
def get_command(command_id: str, request: Request, session: SessionDep, caller: CurrentCaller) -> CommandPublic:
    """The stored state of a command of the caller's tenant (with a final reply this process heard
    and the bus consumer has not stored yet laid over it, forward only)."""
    command = service.get(session, caller.tenant_id, command_id)
    bus: CommandBus | None = request.app.state.command_bus
    heard = bus.recent_final(caller.tenant_slug, command_id) if bus is not None else None
    if heard is not None and not service.is_final(command.status):
        session.expunge(command)  # changed for this answer only, never flushed
        service.advance(command, heard, command.updated_at)
    return service.to_public(command)
