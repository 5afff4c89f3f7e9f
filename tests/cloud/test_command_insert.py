"""The two-statement insert of a new command (``cloud.commands.insert``), on PostgreSQL (where the
machine has it) and SQLite alike: it writes a new key for a target that can take it, and writes
nothing — leaving the answer to the full path — for everything else."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud.base import utcnow
from cloud.commands import insert, service
from cloud.commands.models import Command
from cloud.db import make_engine, session_factory, unit_of_work, upgrade
from cloud.registry.models import Device, Gateway, GatewayStatus, Store
from cloud.tenancy.service import create_tenant
from tests.cloud.inventory.shared_db import shared_db_url

__all__ = ["shared_db_url"]

EVENT_LOOP: set[Engine] = set()
"""Engines whose ``create`` goes through :class:`insert.PostgresInserter`."""


@pytest.fixture(scope="module")
def databases(shared_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The session's shared database (PostgreSQL where the machine has it: each test seeds tenants
    of its own) and, always, an SQLite file of the module's."""
    sqlite = f"sqlite:///{tmp_path_factory.mktemp('insert') / 'vitrina.db'}"
    upgrade(sqlite)
    return {"default": shared_db_url, "sqlite": sqlite}


@pytest.fixture(scope="module", params=["default", "sqlite", "event-loop"])
def engine(request: pytest.FixtureRequest, databases: dict[str, str]) -> Iterator[Engine]:
    """The test database (PostgreSQL where present) and, always, SQLite; on PostgreSQL also the
    event-loop variant (:class:`insert.PostgresInserter`), which ``create`` then uses."""
    eng = make_engine(databases["sqlite" if request.param == "sqlite" else "default"])
    if request.param == "event-loop":
        if eng.dialect.name != "postgresql":
            pytest.skip("the event-loop inserter is for PostgreSQL")
        EVENT_LOOP.add(eng)  # read by ``create``
    yield eng
    EVENT_LOOP.discard(eng)
    eng.dispose()


@pytest.fixture
def rows(engine: Engine) -> dict[str, int]:
    return seed(engine)


def seed(engine: Engine) -> dict[str, int]:
    """Two tenants; the first has a store with an online gateway, a present scale, a scale gone
    from the inventory, and an offline gateway with a present printer."""
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        tenant, _u, _t = create_tenant(session, f"ins{uuid.uuid4().hex[:8]}", "Сеть 1")
        other, _u, _t = create_tenant(session, f"ins{uuid.uuid4().hex[:8]}", "Сеть 2")
        store = Store(tenant_id=tenant.id, code="s1")
        session.add(store)
        session.flush()
        online = Gateway(tenant_id=tenant.id, store_id=store.id, code="gw1", status=GatewayStatus.ONLINE)
        offline = Gateway(tenant_id=tenant.id, store_id=store.id, code="gw2", status=GatewayStatus.OFFLINE)
        session.add_all([online, offline])
        session.flush()
        scale = Device(tenant_id=tenant.id, gateway_id=online.id, code="scale-1", kind="scale", present=True,
                       state="online", status_at=utcnow())
        gone = Device(tenant_id=tenant.id, gateway_id=online.id, code="scale-2", kind="scale", present=False)
        printer = Device(tenant_id=tenant.id, gateway_id=offline.id, code="printer-1", kind="receipt_printer",
                         present=True)
        session.add_all([scale, gone, printer])
        session.commit()
        return {"tenant": tenant.id, "other": other.id, "online": online.id, "offline": offline.id,
                "scale": scale.id, "gone": gone.id, "printer": printer.id}


def create(engine: Engine, tenant: int, key: str, *, device: int | None = None, gateway: int | None = None,
           args: dict[str, object] | None = None) -> tuple[Command, insert.Target] | None:
    kwargs: dict[str, Any] = {"tenant_id": tenant, "key": key, "device_id": device, "gateway_id": gateway,
                              "action": "weigh" if device else "ping", "args": args or {}, "now": utcnow(),
                              "ttl_s": 60}
    if engine not in EVENT_LOOP:
        return insert.create_new(engine, **kwargs)

    async def on_the_loop() -> tuple[Command, insert.Target] | None:
        inserter = insert.PostgresInserter(engine.url.render_as_string(hide_password=False))
        await inserter.open()
        try:
            return await inserter.create_new(**kwargs)
        finally:
            await inserter.close()

    return asyncio.run(on_the_loop())


def stored(engine: Engine, tenant: int) -> list[Command]:
    with Session(engine) as session:
        return list(session.exec(select(Command).where(Command.tenant_id == tenant)))


def test_a_new_key_is_stored_marked_published_and_names_its_topic(engine: Engine, rows: dict[str, int]) -> None:
    before = utcnow()
    created = create(engine, rows["tenant"], "k1", device=rows["scale"], args={"stable": True, "n": [1, 2]})
    assert created is not None
    command, target = created
    assert (target.store_code, target.gateway_code, target.device_code) == ("s1", "gw1", "scale-1")
    assert target.warnings() == []
    [row] = stored(engine, rows["tenant"])
    assert row.id == command.id and row.command_id == "k1" and row.status == "pending"
    assert (row.gateway_id, row.device_id, row.action, row.args) == (rows["online"], rows["scale"], "weigh",
                                                                     {"stable": True, "n": [1, 2]})
    assert row.publish_count == 1 and row.published_at is not None and row.published_at >= before
    assert row.expires_at - row.created_at == timedelta(seconds=60)
    assert service.to_public(command) == service.to_public(row)


def test_a_gateway_command_has_no_device(engine: Engine, rows: dict[str, int]) -> None:
    created = create(engine, rows["tenant"], "g1", gateway=rows["online"])
    assert created is not None
    assert created[0].device_id is None and created[1].device_code is None
    assert [(c.command_id, c.device_id) for c in stored(engine, rows["tenant"])] == [("g1", None)]


@pytest.mark.parametrize("target", [
    {"device": "gone"}, {"device": "printer"}, {"gateway": "offline"}, {"device": "missing"}, {"gateway": "missing"},
])
def test_a_target_that_cannot_take_it_writes_nothing(engine: Engine, rows: dict[str, int],
                                                     target: dict[str, str]) -> None:
    ids = {kind: rows.get(name, 10_000) for kind, name in target.items()}
    assert create(engine, rows["tenant"], "k2", **ids) is None
    assert stored(engine, rows["tenant"]) == []


def test_another_tenants_device_is_not_found(engine: Engine, rows: dict[str, int]) -> None:
    assert create(engine, rows["other"], "k3", device=rows["scale"]) is None
    assert stored(engine, rows["other"]) == [] and stored(engine, rows["tenant"]) == []


def test_a_key_that_exists_writes_nothing_and_the_first_row_stands(engine: Engine, rows: dict[str, int]) -> None:
    assert create(engine, rows["tenant"], "k4", device=rows["scale"]) is not None
    assert create(engine, rows["tenant"], "k4", device=rows["scale"], args={"other": 1}) is None
    [row] = stored(engine, rows["tenant"])
    assert row.args == {} and row.publish_count == 1
    assert create(engine, rows["other"], "k4", gateway=None, device=None) is None  # no target: nothing


def test_warnings_for_a_stale_gateway_and_a_device_that_reported_offline(engine: Engine,
                                                                         rows: dict[str, int]) -> None:
    with Session(engine) as session:
        gateway = session.get(Gateway, rows["online"])
        device = session.get(Device, rows["scale"])
        assert gateway is not None and device is not None
        gateway.status, device.state = GatewayStatus.STALE.value, "offline"
        session.add_all([gateway, device])
        session.commit()
    created = create(engine, rows["tenant"], "k5", device=rows["scale"])
    assert created is not None
    assert created[1].warnings() == ["gateway_stale", "device_offline"]


def test_the_event_loop_inserter_survives_a_dropped_connection(db_url: str) -> None:
    """A pooled connection the server closed (a restart, an idle timeout) costs one retry, not
    an error: the pool does not ping before each use."""
    engine = make_engine(db_url)
    if engine.dialect.name != "postgresql":
        pytest.skip("the event-loop inserter is for PostgreSQL")
    rows = seed(engine)
    url = engine.url.render_as_string(hide_password=False)

    async def scenario() -> list[bool]:
        inserter = insert.PostgresInserter(url, max_size=1)
        await inserter.open()
        try:
            first = await inserter.create_new(tenant_id=rows["tenant"], key="d1", device_id=rows["scale"],
                                              gateway_id=None, action="weigh", args={}, now=utcnow(), ttl_s=60)
            with engine.connect() as admin:  # end every other session on this database
                admin.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()")
            second = await inserter.create_new(tenant_id=rows["tenant"], key="d2", device_id=rows["scale"],
                                               gateway_id=None, action="weigh", args={}, now=utcnow(), ttl_s=60)
            return [first is not None, second is not None]
        finally:
            await inserter.close()

    try:
        assert asyncio.run(scenario()) == [True, True]
        assert sorted(c.command_id for c in stored(engine, rows["tenant"])) == ["d1", "d2"]
    finally:
        engine.dispose()
