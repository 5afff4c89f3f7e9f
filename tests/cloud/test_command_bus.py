"""The API's command bus runs paho on the event loop: it publishes, hears replies, and comes back
by itself after the broker restarts (the driver reconnects, the bus resubscribes)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from cloud.commands.bus import CommandBus
from cloud.config import CloudSettings
from protocols.bus import Command, GatewayAddress, Reply, ReplyStatus, encode
from tests.support.backends import PrivateMosquitto

pytestmark = pytest.mark.integration


class EchoGateway:
    """A bare paho client answering every command on the gateway's topics with ``done``."""

    def __init__(self, broker: PrivateMosquitto, address: GatewayAddress) -> None:
        self.address = address
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"echo-{uuid.uuid4().hex[:6]}")
        self.client.on_connect = lambda c, *_: c.subscribe(f"{address.prefix}/dev/+/cmd/+", qos=1)
        self.client.on_message = self._answer
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", broker.port, 30)
        self.client.loop_start()

    def _answer(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        command = json.loads(msg.payload)
        reply = Reply(session=1, command_id=command["command_id"], status=ReplyStatus.DONE, result={"ok": 1})
        client.publish(command["reply_to"], encode(reply), qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_round_trips_before_and_after_a_broker_restart(private_broker: PrivateMosquitto) -> None:
    root = f"vb{uuid.uuid4().hex[:6]}"
    settings = CloudSettings(database_url="sqlite://", mqtt_url=private_broker.url, bus_root=root,
                             instance_id=f"t-{uuid.uuid4().hex[:6]}", redis_url=None)
    address = GatewayAddress("t1", "s1", "gw1", root)
    gateway = EchoGateway(private_broker, address)

    async def round_trip(bus: CommandBus) -> Reply:
        key = f"k-{uuid.uuid4().hex[:8]}"
        waiter = bus.register("t1", key)
        try:
            ack = bus.publish(address.command("scale-1", "weigh"),
                              Command(command_id=key, args={}, reply_to=address.reply(key)))
            await asyncio.wait_for(ack, 5)
            return await asyncio.wait_for(waiter.future, 5)
        finally:
            bus.unregister("t1", key, waiter)

    async def until_ready(bus: CommandBus, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not (bus.connected and bus.subscribed.is_set()):
            assert time.monotonic() < deadline, "the command bus did not (re)connect"
            await asyncio.sleep(0.05)

    async def scenario() -> list[str]:
        bus = CommandBus(settings).start()
        try:
            await until_ready(bus)
            first = await round_trip(bus)
            private_broker.stop()
            deadline = time.monotonic() + 10
            while bus.connected:
                assert time.monotonic() < deadline, "the bus never noticed the broker was gone"
                await asyncio.sleep(0.05)
            bus.subscribed.clear()
            private_broker.start()
            await until_ready(bus)
            second = await round_trip(bus)
            return [first.status.value, second.status.value]
        finally:
            await bus.stop()

    try:
        assert asyncio.run(scenario()) == ["done", "done"]
    finally:
        gateway.close()


def test_no_thread_of_its_own(private_broker: PrivateMosquitto) -> None:
    """paho's network thread is gone: the event loop does the bus's I/O."""
    settings = CloudSettings(database_url="sqlite://", mqtt_url=private_broker.url, bus_root="vbx",
                             instance_id=f"t-{uuid.uuid4().hex[:6]}", redis_url=None)

    async def scenario() -> set[str]:
        before = {t.name for t in threading.enumerate()}
        bus = CommandBus(settings).start()
        try:
            deadline = time.monotonic() + 10
            while not bus.subscribed.is_set():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            return {t.name for t in threading.enumerate()} - before
        finally:
            await bus.stop()

    assert not [name for name in asyncio.run(scenario()) if name.startswith("paho")]


def test_an_api_started_before_its_broker_connects_when_the_broker_comes(private_broker: PrivateMosquitto) -> None:
    private_broker.stop()
    settings = CloudSettings(database_url="sqlite://", mqtt_url=private_broker.url, bus_root="vby",
                             instance_id=f"t-{uuid.uuid4().hex[:6]}", redis_url=None)

    async def scenario() -> tuple[bool, bool]:
        bus = CommandBus(settings).start()
        try:
            await asyncio.sleep(1.5)
            before = bus.connected
            private_broker.start()
            deadline = time.monotonic() + 30
            while not (bus.connected and bus.subscribed.is_set()):
                assert time.monotonic() < deadline, "never connected once the broker came"
                await asyncio.sleep(0.05)
            return before, bus.connected
        finally:
            await bus.stop()

    assert asyncio.run(scenario()) == (False, True)
