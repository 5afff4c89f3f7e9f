"""Cloud fixtures: a migrated database, a tenant, settings on the test's own topic root, and a
fake gateway speaking contract v1 over a real broker."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from cloud.bus.consumer import BusConsumer
from cloud.bus.mqtt import parse_mqtt_url
from cloud.config import CloudSettings
from cloud.db import make_engine, session_factory, unit_of_work, upgrade
from cloud.tenancy.service import create_tenant
from protocols.bus import GatewayAddress, encode


@pytest.fixture
def db_url(fresh_database_url: str, tmp_path: Path) -> str:
    """A fresh database (PostgreSQL when the machine has one, else SQLite) at the latest migration.

    ``VITRINA_TEST_CLOUD_SQLITE=1`` forces SQLite, to run the cloud suite on both backends.
    """
    url = fresh_database_url
    if os.environ.get("VITRINA_TEST_CLOUD_SQLITE") == "1":
        url = f"sqlite:///{tmp_path / 'forced' / 'vitrina.db'}"
    upgrade(url)
    return url


@pytest.fixture
def sqlite_db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'sqlite' / 'vitrina.db'}"
    upgrade(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def settings(db_url: str, mqtt_url: str, bus_root: str) -> CloudSettings:
    return CloudSettings(
        database_url=db_url,
        mqtt_url=mqtt_url,
        bus_root=bus_root,
        instance_id=f"test-{uuid.uuid4().hex[:8]}",
        mqtt_session_expiry_s=120,
        command_timeout_s=5,
    )


@pytest.fixture
def tenant(sessions: sessionmaker[Session], bus_tenant: str) -> tuple[int, str, str]:
    """(tenant id, slug, token) of a tenant whose slug is unique to this test."""
    with unit_of_work(sessions) as session:
        t, _user, token = create_tenant(session, bus_tenant, "Тестовая сеть")
    assert t.id is not None
    return t.id, t.slug, token


@pytest.fixture
def consumer(settings: CloudSettings, tenant: tuple[int, str, str]) -> Iterator[BusConsumer]:
    c = BusConsumer(settings).start()
    assert c.wait_until(lambda s: s["subscribed"] >= 1, 10), "consumer did not subscribe"
    yield c
    c.stop()


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


class FakeGateway:
    """The gateway side of contract v1, enough to drive the cloud: publishes and answers commands."""

    def __init__(self, mqtt_url: str, address: GatewayAddress) -> None:
        self.address = address
        endpoint = parse_mqtt_url(mqtt_url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fakegw-{uuid.uuid4().hex[:8]}")
        self.commands: list[tuple[str, bytes]] = []
        self.retained: set[str] = set()
        self.on_command: Callable[[FakeGateway, str, bytes], None] | None = None
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe([(f, 1) for f in address.command_filters()])
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "fake gateway did not subscribe"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.commands.append((msg.topic, bytes(msg.payload)))
        if self.on_command is not None:
            # answer from another thread: publishing with wait_for_publish inside paho's own
            # network thread would wait for a PUBACK that thread can no longer read
            threading.Thread(target=self._answer, args=(msg.topic, bytes(msg.payload)), daemon=True).start()

    def _answer(self, topic: str, payload: bytes) -> None:
        assert self.on_command is not None
        try:
            self.on_command(self, topic, payload)
        except Exception as exc:
            print("fake gateway handler failed:", exc)

    def publish(self, topic: str, payload: BaseModel | bytes, *, retain: bool = False) -> None:
        data = payload if isinstance(payload, bytes) else encode(payload)
        if retain:
            self.retained.add(topic)
        self.client.publish(topic, data, qos=1, retain=retain).wait_for_publish(5)

    def clear_retained(self, topics: list[str]) -> None:
        for topic in topics:
            self.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def gateway_factory(mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Callable[..., FakeGateway]]:
    made: list[FakeGateway] = []

    def make(store: str = "s1", gateway: str = "gw1", tenant: str | None = None) -> FakeGateway:
        gw = FakeGateway(mqtt_url, GatewayAddress(tenant or bus_tenant, store, gateway, bus_root))
        made.append(gw)
        return gw

    yield make
    for gw in made:
        # retained messages live under this test's own root; clear them anyway to keep the broker tidy
        gw.clear_retained(sorted(gw.retained))
        gw.close()
