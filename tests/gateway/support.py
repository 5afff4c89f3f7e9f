"""Helpers for gateway tests: a fake Scale that counts calls, a bus watcher, config builders."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.errors import DeviceUnavailable
from drivers.scale.base import ScaleInfo, ScaleUnstable, WeightReading
from gateway.config import BrokerConfig, DeviceConfig, GatewayConfig, OutboxConfig
from protocols.bus import CloudState, DeviceKind, cloud_state_topic, encode


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class FakeScale:
    """An in-memory ``Scale``: readings come from ``weights`` (cycled), every call is counted."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.weight = Decimal("0.000")
        self.stable = True
        self.tare_kg = Decimal("0.000")
        self.unplugged = False
        self.unstable_forever = False
        self.step: Decimal | None = None  # added to the weight on every poll read
        self.opened = False
        self.lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1
        if self.unplugged:
            raise DeviceUnavailable("fake scale unplugged")

    def open(self) -> None:
        self._count("open")
        self.opened = True

    def close(self) -> None:
        self.calls["close"] = self.calls.get("close", 0) + 1
        self.opened = False

    def info(self) -> ScaleInfo:
        self._count("info")
        return ScaleInfo(model="fake")

    def weigh(self, *, stable: bool = True, timeout: float = 3.0) -> WeightReading:
        self._count("weigh_stable" if stable else "weigh_now")
        if stable and self.unstable_forever:
            raise ScaleUnstable("not stable", WeightReading(self.weight, False))
        if not stable and self.step is not None:
            self.weight += self.step
        return WeightReading(self.weight - self.tare_kg, self.stable or stable, tare=self.tare_kg)

    def zero(self) -> None:
        self._count("zero")

    def tare(self) -> WeightReading:
        self._count("tare")
        self.tare_kg = self.weight
        return WeightReading(Decimal("0.000"), True, tare=self.tare_kg)

    def clear_tare(self) -> None:
        self._count("clear_tare")
        self.tare_kg = Decimal("0.000")


@dataclass
class FakeScaleFactory:
    """``open_scale``-compatible factory returning one shared FakeScale (opened)."""

    scale: FakeScale = field(default_factory=FakeScale)
    opens: int = 0

    def __call__(self, driver: str, url: str, options: dict[str, Any]) -> FakeScale:
        self.opens += 1
        self.scale.open()
        return self.scale


def make_config(
    tmp_path: Path,
    mqtt_url: str,
    bus_root: str,
    tenant: str,
    *,
    devices: list[DeviceConfig] | None = None,
    keepalive: int = 5,
    require_cloud_online: bool = False,
    **outbox: Any,
) -> GatewayConfig:
    return GatewayConfig(
        tenant=tenant,
        store="s1",
        gateway="gw1",
        bus_root=bus_root,
        data_dir=tmp_path / "gw",
        broker=BrokerConfig(
            url=mqtt_url, keepalive=keepalive, reconnect_min_s=0.1, reconnect_max_s=0.5,
            client_id=f"gw-{uuid.uuid4().hex[:10]}",
        ),
        outbox=OutboxConfig(require_cloud_online=require_cloud_online, **outbox),
        devices=devices if devices is not None else [scale_device()],
    )


def scale_device(device_id: str = "scale1", url: str = "fake://", **options: Any) -> DeviceConfig:
    opts = {"poll_interval_s": 0.05, **options}
    return DeviceConfig(id=device_id, kind=DeviceKind.SCALE, driver="mtsics", url=url, options=opts)


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> dict[str, Any]:
        return json.loads(self.payload)


class BusWatcher:
    """A test-side MQTT client: subscribes, records every message, publishes commands."""

    def __init__(self, url: str, filters: list[str], *, protocol: int = mqtt.MQTTv311,
                 on_connect_publish: list[tuple[str, bytes, bool]] | None = None) -> None:
        parts = urlsplit(url)
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._filters = filters
        self._on_connect_publish = on_connect_publish or []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"w-{uuid.uuid4().hex[:10]}",
                                  protocol=protocol)
        self.client.on_connect = self._connected
        self.client.on_message = self._message
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self.connected = threading.Event()
        self.client.connect_async(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=5)
        self.client.loop_start()
        if not self.connected.wait(5):
            raise AssertionError("watcher could not connect")

    def _connected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            return
        client.subscribe([(f, 1) for f in self._filters])
        for topic, payload, retain in self._on_connect_publish:
            client.publish(topic, payload, qos=1, retain=retain)
        self.connected.set()

    def _message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if predicate(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(m.topic, m.payload[:120]) for m in self.messages[-10:]]
                    raise AssertionError(f"no matching message within {timeout} s; last seen: {seen}")
                self._cond.wait(left)

    def matching(self, predicate: Callable[[Message], bool]) -> list[Message]:
        with self._cond:
            return [m for m in self.messages if predicate(m)]

    def on_topic(self, topic: str) -> Iterator[Message]:
        return iter(self.matching(lambda m: m.topic == topic))

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def cloud_online(root: str) -> tuple[str, bytes, bool]:
    return cloud_state_topic(root), encode(CloudState(online=True)), True


def command(command_id: str | None = None, **fields: Any) -> bytes:
    body: dict[str, Any] = {"v": 1, "ts": "2026-01-01T00:00:00Z"}
    if command_id is not None:
        body["command_id"] = command_id
    body.update(fields)
    return json.dumps(body).encode()
