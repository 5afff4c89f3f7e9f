"""Session-wide fixtures: real servers where the machine has them, embedded ones otherwise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backends import RUN_ID, Backends, PrivateMosquitto, detect

_BACKENDS: Backends | None = None


def backends() -> Backends:
    global _BACKENDS
    if _BACKENDS is None:
        _BACKENDS = detect()
    return _BACKENDS


def pytest_report_header(config: pytest.Config) -> str:
    b = backends()
    return (
        f"vitrina backends: mqtt={b.mqtt or 'embedded amqtt'} "
        f"database={'postgresql' if b.database else 'sqlite'} "
        f"redis={b.redis or 'none (tasks run in-process)'}"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(pytest_report_header(terminalreporter.config))


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    """URL of the broker integration tests use (the machine's Mosquitto or an embedded amqtt)."""
    b = backends()
    if b.mqtt:
        yield b.mqtt
        return
    from vitrina.broker import EmbeddedBroker

    broker = EmbeddedBroker(port=0).start()
    b.mqtt = broker.url
    try:
        yield broker.url
    finally:
        broker.stop()


@pytest.fixture
def bus_tenant() -> str:
    """A tenant slug unique to this test, so topics never collide across tests or runs."""
    return f"t{RUN_ID}{uuid.uuid4().hex[:6]}"


@pytest.fixture
def bus_root() -> str:
    """A topic root unique to this test (instead of ``vitrina``): isolates retained messages,
    including ``{root}/v1/cloud/state``, from every other test and run on a shared broker."""
    return f"vt{RUN_ID}{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def database_server_url() -> str | None:
    """PostgreSQL admin URL when the machine has one, else ``None`` (tests use SQLite)."""
    return backends().database or None


@pytest.fixture
def fresh_database_url(database_server_url: str | None, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's own: a new PostgreSQL database, or an SQLite file."""
    if database_server_url is None:
        yield f"sqlite:///{tmp_path / 'vitrina.db'}"
        return
    import psycopg

    name = f"vitrina_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    admin = database_server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def private_broker() -> Iterator[PrivateMosquitto]:
    """A broker of the test's own that it may stop, kill and restart."""
    broker = PrivateMosquitto().start()
    try:
        yield broker
    finally:
        broker.stop()
