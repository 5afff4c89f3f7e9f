"""Shared plumbing of the benchmarks: a private broker, a fresh cloud database, a tenant.

Every benchmark runs on a private Mosquitto (``set_tcp_nodelay true``, free port) so that it
never measures the machine's own broker (which has Nagle on) and never disturbs it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.backends import PrivateMosquitto, postgres_answers

PG_ADMIN = os.environ.get("VITRINA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def private_broker() -> Iterator[PrivateMosquitto]:
    broker = PrivateMosquitto().start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass(frozen=True)
class Database:
    url: str
    kind: str  # "postgresql" or "sqlite"


@contextmanager
def fresh_database(prefer: str = "postgresql", label: str = "bench") -> Iterator[Database]:
    """A migrated, empty database of the benchmark's own, dropped (or deleted) afterwards.

    PostgreSQL when ``prefer`` says so and the server answers, else an SQLite file.
    """
    from cloud.db import upgrade

    if prefer == "postgresql" and postgres_answers(PG_ADMIN):
        import psycopg

        name = f"vitrina_{label}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = "postgresql+psycopg://" + PG_ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"
        try:
            upgrade(url)
            yield Database(url, "postgresql")
        finally:
            from cloud.db import _ENGINES

            engine = _ENGINES.pop(url, None)
            if engine is not None:
                engine.dispose()
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    with tempfile.TemporaryDirectory(prefix=f"vitrina-{label}-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'cloud.db'}"
        upgrade(url)
        yield Database(url, "sqlite")


def create_tenant_token(database_url: str, slug: str) -> str:
    from cloud.db import session_factory, shared_engine, unit_of_work
    from cloud.tenancy.service import create_tenant

    with unit_of_work(session_factory(shared_engine(database_url))) as session:
        _tenant, _user, token = create_tenant(session, slug, "Сеть для замеров")
    return str(token)


def quiet_logs() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
