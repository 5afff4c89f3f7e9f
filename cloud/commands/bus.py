"""The API process's own MQTT client: publishes commands and hears their replies first-hand.

It subscribes non-shared to every reply topic under the root, so the process that published a
command is the one that hears the answer, and completes the request waiting on it without a
database round trip. Persisting replies is the bus consumer's job (any API process can then
answer ``GET /commands/{id}``); the API also records the final reply it returns, so a client
that polls right after a 200 sees the same status.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from typing import Any

import paho.mqtt.client as mqtt

from cloud.bus.mqtt import KEEPALIVE_S, guarded, new_client, parse_mqtt_url, probe_protocol, set_nodelay
from cloud.config import CloudSettings
from cloud.errors import Unavailable
from protocols.bus import BusError, Command, Reply, TopicKind, decode, encode, parse_topic

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0


class ReplyWaiter:
    """Resolves with the first final reply of one command; keeps the latest intermediate one."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[Reply] = loop.create_future()
        self.latest: Reply | None = None

    def offer(self, reply: Reply) -> None:
        self.latest = reply
        if reply.status.is_final:
            self.loop.call_soon_threadsafe(self._resolve, reply)

    def _resolve(self, reply: Reply) -> None:
        if not self.future.done():
            self.future.set_result(reply)


class CommandBus:
    """Publish commands; route replies (by tenant slug and command id) to waiters."""

    def __init__(self, settings: CloudSettings, *, client_id: str | None = None) -> None:
        import os

        self.settings = settings
        self.root = settings.bus_root
        self.endpoint = parse_mqtt_url(settings.mqtt_url, settings.mqtt_username, settings.mqtt_password)
        self.client_id = client_id or f"{settings.shared_group}-api-{settings.instance_id}-{os.getpid()}"
        self._waiters: dict[tuple[str, str], list[ReplyWaiter]] = defaultdict(list)
        self._lock = threading.Lock()
        self._client: mqtt.Client | None = None
        self.subscribed = threading.Event()

    def start(self) -> CommandBus:
        client = new_client(self.endpoint, self.client_id, probe_protocol(self.endpoint))
        client.on_connect = guarded("commands.on_connect")(self._on_connect)
        client.on_message = guarded("commands.on_message")(self._on_message)
        client.on_subscribe = guarded("commands.on_subscribe")(lambda *_: self.subscribed.set())
        client.connect_async(self.endpoint.host, self.endpoint.port, KEEPALIVE_S)
        client.loop_start()
        self._client = client
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected()

    def reply_filter(self) -> str:
        return f"{self.root}/v1/+/+/+/reply/+"

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker refused the API's command client: %s", reason_code)
            return
        set_nodelay(client)
        client.subscribe(self.reply_filter(), qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            parsed = parse_topic(msg.topic, self.root)
            if parsed.kind != TopicKind.REPLY or parsed.address is None:
                return
            reply = decode(Reply, bytes(msg.payload))
        except BusError as exc:
            log.debug("ignored reply on %r: %s", msg.topic, exc.message)
            return
        if reply.command_id != parsed.name:
            return
        with self._lock:
            waiters = list(self._waiters.get((parsed.address.tenant, reply.command_id), ()))
        for waiter in waiters:
            waiter.offer(reply)

    def register(self, tenant: str, command_id: str) -> ReplyWaiter:
        """Register before publishing, so a reply faster than the publish call is not missed."""
        waiter = ReplyWaiter(asyncio.get_running_loop())
        with self._lock:
            self._waiters[(tenant, command_id)].append(waiter)
        return waiter

    def unregister(self, tenant: str, command_id: str, waiter: ReplyWaiter) -> None:
        with self._lock:
            waiters = self._waiters.get((tenant, command_id))
            if waiters and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[(tenant, command_id)]

    def publish(self, topic: str, command: Command) -> None:
        """QoS 1, never retained; returns once the broker acknowledged it, else :class:`Unavailable`."""
        client = self._client
        if client is None or not client.is_connected():
            raise Unavailable("брокер MQTT недоступен, повторите запрос с тем же ключом", code="bus_unavailable")
        info = client.publish(topic, encode(command), qos=1, retain=False)
        try:
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
        except (RuntimeError, ValueError) as exc:
            raise Unavailable(f"команда не отправлена: {exc}", code="bus_unavailable") from exc
        if not info.is_published():
            raise Unavailable("брокер MQTT не подтвердил команду, повторите запрос с тем же ключом",
                              code="bus_unavailable")
