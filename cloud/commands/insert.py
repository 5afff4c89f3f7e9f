"""The hot path of ``POST …/commands``: a new key for a target that can take it, in one statement
(PostgreSQL) or two (SQLite).

Most commands are new keys for an online gateway's present device. For them the request needs
one read (the target: device, gateway and store codes and states, by primary key and tenant) and
one ``INSERT … ON CONFLICT DO NOTHING RETURNING id``, committed with relaxed durability
(:func:`cloud.db.relaxed_durability`). On PostgreSQL the read, the insert and
``set_config('synchronous_commit', 'off', true)`` are one statement run in autocommit (a
data-modifying CTE): one round trip instead of seven (ping, BEGIN, SET LOCAL, target, key lookup
FOR UPDATE, INSERT, COMMIT) — from the event loop, without a ping (:class:`PostgresInserter`),
or after SQLAlchemy's pool ping (:func:`create_new`). On SQLite they are two statements in one
``BEGIN IMMEDIATE`` transaction. No ORM unit of work: the ORM path cost about 2 ms of Python per
command on a small machine, this one about 0.6 ms.

Everything else returns ``None`` and the caller runs the full path
(:func:`cloud.commands.service.create_for_publish`), which answers it precisely: a key already
used (the insert conflicted — same intent, another intent, or a concurrent request), a target not
found in the tenant, a gateway offline, a device not present. The full path reads again, so a
target that changed between the two reads is judged on what it is then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Integer, String, bindparam, text
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import TextClause

from cloud.base import UtcDateTime
from cloud.commands import service
from cloud.commands.models import Command, CommandStatus
from cloud.db import RELAXED_DURABILITY
from cloud.registry.models import GatewayStatus


@dataclass(frozen=True, slots=True)
class Target:
    """What a command's topic and warnings need of its device (``None`` for a gateway command),
    gateway and store."""

    gateway_id: int
    gateway_code: str
    gateway_status: str
    store_code: str
    device_id: int | None = None
    device_code: str | None = None
    device_state: str | None = None
    device_reported: bool = False
    """The device ever reported a status (``status_at`` set): only then is its state a warning."""

    def warnings(self) -> list[str]:
        return service.target_warnings(self.gateway_status, self.device_state, self.device_reported)


_DEVICE_TARGET = """
SELECT {relax} g.id AS gateway_id, g.code AS gateway_code, g.status AS gateway_status, s.code AS store_code,
       d.id AS device_id, d.code AS device_code, d.state AS device_state, d.status_at IS NOT NULL AS reported
FROM devices d JOIN gateways g ON g.id = d.gateway_id JOIN stores s ON s.id = g.store_id
WHERE d.id = :target_id AND d.tenant_id = :tenant_id AND d.present AND g.status <> :offline
"""
_GATEWAY_TARGET = """
SELECT {relax} g.id AS gateway_id, g.code AS gateway_code, g.status AS gateway_status, s.code AS store_code,
       CAST(NULL AS INTEGER) AS device_id, NULL AS device_code, NULL AS device_state, 1 = 0 AS reported
FROM gateways g JOIN stores s ON s.id = g.store_id
WHERE g.id = :target_id AND g.tenant_id = :tenant_id AND g.status <> :offline
"""
_COLUMNS = "tenant_id, command_id, gateway_id, device_id, action, args, status, created_at, updated_at, expires_at," \
    " published_at, publish_count"
_INSERT = f"""
INSERT INTO commands ({_COLUMNS})
VALUES (:tenant_id, :key, :gateway_id, :device_id, :action, :args, :status, :now, :now, :expires_at, :now, 1)
ON CONFLICT (tenant_id, command_id) DO NOTHING
RETURNING id
"""
_POSTGRES = f"""
WITH target AS ({{target}}),
inserted AS (
    INSERT INTO commands ({_COLUMNS})
    SELECT :tenant_id, :key, target.gateway_id, target.device_id, :action, CAST(:args AS JSON), :status, :now, :now,
           :expires_at, :now, 1
    FROM target
    ON CONFLICT (tenant_id, command_id) DO NOTHING
    RETURNING id
)
SELECT target.*, inserted.id FROM target LEFT JOIN inserted ON true
"""
"""PostgreSQL: the read, the insert and the relaxed commit in one statement (one round trip)."""

_STATEMENTS: dict[tuple[str, str], TextClause] = {}


def _statement(dialect: str, name: str) -> TextClause:
    """The statement ``name`` (``device``, ``gateway``, ``insert``) for ``dialect``, built once."""
    found = _STATEMENTS.get((dialect, name))
    if found is not None:
        return found
    typed = (bindparam("offline", type_=String), bindparam("args", type_=JSON), bindparam("now", type_=UtcDateTime),
             bindparam("expires_at", type_=UtcDateTime), bindparam("device_id", type_=Integer),
             bindparam("gateway_id", type_=Integer))
    if dialect == "postgresql":
        relax = "set_config('synchronous_commit', 'off', true) AS relaxed,"
        sql = _POSTGRES.format(target=(_DEVICE_TARGET if name == "device" else _GATEWAY_TARGET).format(relax=relax))
    else:
        sql = _INSERT if name == "insert" else (_DEVICE_TARGET if name == "device" else _GATEWAY_TARGET).format(relax="")
    stmt = text(sql)
    stmt = stmt.bindparams(*(p for p in typed if f":{p.key}" in sql))
    _STATEMENTS[(dialect, name)] = stmt
    return stmt


def create_new(
    engine: Engine, *, tenant_id: int, key: str, device_id: int | None, gateway_id: int | None, action: str,
    args: dict[str, Any], now: datetime, ttl_s: float,
) -> tuple[Command, Target] | None:
    """Store the command for a new ``key``, marked published, if its target can take it.

    ``None`` when the target is not found in the tenant, cannot take a command, or the key
    exists: nothing was written, and the full path says which."""
    name = "device" if device_id is not None else "gateway"
    params = _params(tenant_id, key, device_id, gateway_id, action, args, now, ttl_s)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            row = connection.execute(_statement("postgresql", name), params).mappings().first()
        if row is None or row["id"] is None:
            return None
        return _command(params, row, int(row["id"])), _target(row)
    with engine.execution_options(**{RELAXED_DURABILITY: True}).begin() as connection:
        found = connection.execute(_statement(engine.dialect.name, name), params).mappings().first()
        if found is None:
            return None
        params["gateway_id"], params["device_id"] = found["gateway_id"], found["device_id"]
        inserted = connection.execute(_statement(engine.dialect.name, "insert"), params).first()
        if inserted is None:
            return None
    return _command(params, found, int(inserted[0])), _target(found)


def _params(tenant_id: int, key: str, device_id: int | None, gateway_id: int | None, action: str,
            args: dict[str, Any], now: datetime, ttl_s: float) -> dict[str, Any]:
    return {
        "target_id": device_id if device_id is not None else gateway_id, "tenant_id": tenant_id,
        "offline": GatewayStatus.OFFLINE.value, "key": key, "action": action, "args": args,
        "status": CommandStatus.PENDING.value, "now": now, "expires_at": now + timedelta(seconds=ttl_s),
    }


class PostgresInserter:
    """:func:`create_new` for PostgreSQL on the event loop: no thread-pool hop, no ping per request.

    A small psycopg pool (``psycopg_pool``) of autocommit connections of the API process's own,
    opened with the app and closed with it. Instead of pinging before each use, a statement that
    fails on a broken connection is tried once more on another (the pool drops the broken one):
    safe, because a repeat of the insert conflicts with its own row and the full path answers it.
    When no pooled connection is free within ``timeout_s`` (all busy under load, or the database
    unreachable) it answers ``None``: the full path in the thread pool then stores the command
    through SQLAlchemy's pool, or answers 503 ``database_unavailable``.
    """

    def __init__(self, database_url: str, *, max_size: int = 4, timeout_s: float = 1.0) -> None:
        from psycopg_pool import AsyncConnectionPool
        from sqlalchemy.engine import make_url

        conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.timeout_s = timeout_s
        self.pool = AsyncConnectionPool(conninfo, min_size=1, max_size=max_size, open=False,
                                        kwargs={"autocommit": True}, name="vitrina-commands")
        self._sql = {name: re.sub(r"(?<!:):(\w+)", r"%(\1)s", str(_statement("postgresql", name)))
                     for name in ("device", "gateway")}

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def create_new(
        self, *, tenant_id: int, key: str, device_id: int | None, gateway_id: int | None, action: str,
        args: dict[str, Any], now: datetime, ttl_s: float,
    ) -> tuple[Command, Target] | None:
        import psycopg
        from psycopg.rows import dict_row
        from psycopg.types.json import Json
        from psycopg_pool import PoolTimeout

        params = _params(tenant_id, key, device_id, gateway_id, action, args, now, ttl_s)
        sql = self._sql["device" if device_id is not None else "gateway"]
        for attempt in (1, 2):
            try:
                async with self.pool.connection(timeout=self.timeout_s) as connection:
                    cursor = connection.cursor(row_factory=dict_row)
                    await cursor.execute(sql, {**params, "args": Json(args)})
                    row = await cursor.fetchone()
                break
            except PoolTimeout:
                return None
            except psycopg.OperationalError:
                if attempt == 2:
                    return None
        if row is None or row["id"] is None:
            return None
        return _command(params, row, int(row["id"])), _target(row)


def _target(row: Any) -> Target:
    device_id = row["device_id"]
    return Target(
        int(row["gateway_id"]), row["gateway_code"], row["gateway_status"], row["store_code"],
        None if device_id is None else int(device_id), row["device_code"], row["device_state"], bool(row["reported"]),
    )


def _command(params: dict[str, Any], row: Any, row_id: int) -> Command:
    device_id = row["device_id"]
    return Command(
        id=row_id, tenant_id=params["tenant_id"], command_id=params["key"], gateway_id=int(row["gateway_id"]),
        device_id=None if device_id is None else int(device_id), action=params["action"], args=params["args"],
        created_at=params["now"], updated_at=params["now"], expires_at=params["expires_at"],
        published_at=params["now"], publish_count=1,
    )
