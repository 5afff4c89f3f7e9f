"""The API process's own MQTT client: publishes commands and hears their replies first-hand.

It subscribes non-shared to every reply topic under the root, so the process that published a
command is the one that hears the answer, and completes the request waiting on it without a
database round trip. Persisting replies is the bus consumer's job alone (the request path writes
nothing after the publish). So that a client polling right after a 200 sees the status it was
given even before the consumer committed it, every API process keeps the final replies it heard
in the last ``RECENT_TTL_S`` (bounded, ``RECENT_MAX``) and ``GET /commands/{id}`` lays them over
the stored row (forward only, like the consumer). Every API process hears every reply, so this
holds whichever process answers the GET.

The client runs on the API's event loop (:class:`~cloud.bus.asyncio_driver.AsyncioDriver`), not on
a thread of paho's: the loop that publishes a command writes it and reads its reply.
Publishing never blocks: :meth:`CommandBus.publish` hands the message to paho (a queue append;
the loop writes it when the socket is writable) and returns an asyncio future that paho's
``on_publish`` (the PUBACK) completes. A
PUBACK can arrive before ``publish()`` has returned the mid; paho calls ``on_publish`` holding
its own lock, so ours is never held across ``publish()``: early acks wait in ``_early`` until
the publisher claims its mid.

Within one process, the first request waiting on a ``(tenant, command_id)`` is its *leader*; a
concurrent request with the same key is a follower that waits for the same reply and never
publishes (:meth:`CommandBus.register`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict, defaultdict
from typing import Any

import paho.mqtt.client as mqtt

from cloud.bus.asyncio_driver import AsyncioDriver
from cloud.bus.mqtt import (
    KEEPALIVE_S,
    RECONNECT_MAX_S,
    RECONNECT_MIN_S,
    guarded,
    new_client,
    parse_mqtt_url,
    probe_protocol,
    set_nodelay,
)
from cloud.config import CloudSettings
from cloud.errors import Unavailable
from protocols.bus import BusError, Command, Reply, TopicKind, decode, encode, parse_topic

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0
RECENT_TTL_S = 120.0
RECENT_MAX = 20_000


class ReplyWaiter:
    """Resolves with the first final reply of one command; keeps the latest intermediate one."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, leader: bool = True) -> None:
        self.loop = loop
        self.future: asyncio.Future[Reply] = loop.create_future()
        self.latest: Reply | None = None
        self.leader = leader  # the first waiter of its key in this process: the one that publishes

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
        self._driver: AsyncioDriver | None = None
        self.subscribed = threading.Event()
        self._acks: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = {}
        self._early: set[int] = set()
        self._recent: OrderedDict[tuple[str, str], tuple[float, Reply]] = OrderedDict()

    def start(self) -> CommandBus:
        """Connect from the running event loop (:class:`~cloud.bus.asyncio_driver.AsyncioDriver`:
        the loop that publishes a command also reads its reply, no thread in between)."""
        client = new_client(self.endpoint, self.client_id, probe_protocol(self.endpoint))
        client.on_connect = guarded("commands.on_connect")(self._on_connect)
        client.on_message = guarded("commands.on_message")(self._on_message)
        client.on_subscribe = guarded("commands.on_subscribe")(lambda *_: self.subscribed.set())
        client.on_publish = guarded("commands.on_publish")(self._on_publish)
        self._driver = AsyncioDriver(client, self.endpoint.host, self.endpoint.port, KEEPALIVE_S,
                                     reconnect_min_s=RECONNECT_MIN_S, reconnect_max_s=RECONNECT_MAX_S)
        self._client = client
        self._driver.start()
        return self

    async def stop(self) -> None:
        if self._driver is not None:
            await self._driver.stop()
            self._driver = None
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
        with self._lock:
            self._early.clear()  # mids of an earlier connection
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
        key = (parsed.address.tenant, reply.command_id)
        with self._lock:
            waiters = list(self._waiters.get(key, ()))
            if reply.status.is_final:
                self._remember(key, reply)
        for waiter in waiters:
            waiter.offer(reply)

    def _remember(self, key: tuple[str, str], reply: Reply) -> None:
        """Keep a final reply for :meth:`recent_final` (the first one heard wins; under ``_lock``)."""
        now = time.monotonic()
        if key not in self._recent:
            self._recent[key] = (now + RECENT_TTL_S, reply)
        while self._recent:
            oldest_key, (expires, _r) = next(iter(self._recent.items()))
            if expires > now and len(self._recent) <= RECENT_MAX:
                break
            del self._recent[oldest_key]

    def recent_final(self, tenant: str, command_id: str) -> Reply | None:
        """The final reply of a command heard in the last ``RECENT_TTL_S`` seconds, if any."""
        with self._lock:
            entry = self._recent.get((tenant, command_id))
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def register(self, tenant: str, command_id: str) -> ReplyWaiter:
        """Register before touching the database and publishing, so a reply faster than the
        publish call is not missed, and so that of two concurrent requests with the same key in
        this process only the first (``leader``) publishes."""
        with self._lock:
            waiters = self._waiters[(tenant, command_id)]
            waiter = ReplyWaiter(asyncio.get_running_loop(), leader=not any(w.leader for w in waiters))
            waiters.append(waiter)
        return waiter

    def unregister(self, tenant: str, command_id: str, waiter: ReplyWaiter) -> None:
        with self._lock:
            waiters = self._waiters.get((tenant, command_id))
            if waiters and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[(tenant, command_id)]

    def publish(self, topic: str, command: Command) -> asyncio.Future[None]:
        """QoS 1, never retained, from the event loop; the future completes on the PUBACK (and
        fails with :class:`Unavailable` if the broker refuses it). Raises :class:`Unavailable`
        at once when not connected. The caller bounds the wait (``PUBLISH_TIMEOUT_S``)."""
        client = self._client
        if client is None or not client.is_connected():
            raise Unavailable("брокер MQTT недоступен, повторите запрос с тем же ключом", code="bus_unavailable")
        loop = asyncio.get_running_loop()
        ack: asyncio.Future[None] = loop.create_future()
        try:
            info = client.publish(topic, encode(command), qos=1, retain=False)
        except (RuntimeError, ValueError) as exc:
            raise Unavailable(f"команда не отправлена: {exc}", code="bus_unavailable") from exc
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise Unavailable("брокер MQTT недоступен, повторите запрос с тем же ключом", code="bus_unavailable")
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                ack.set_result(None)
            else:
                self._acks[info.mid] = (loop, ack)
        return ack

    def forget_ack(self, ack: asyncio.Future[None]) -> None:
        """Stop tracking a publish whose caller gave up waiting for its PUBACK."""
        with self._lock:
            for mid, (_loop, fut) in list(self._acks.items()):
                if fut is ack:
                    del self._acks[mid]

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason_code: Any, _p: Any) -> None:
        with self._lock:
            entry = self._acks.pop(mid, None)
            if entry is None:
                if len(self._early) > 1024:  # never claimed (a publish abandoned mid-way): forget
                    self._early.clear()
                self._early.add(mid)  # claimed by ``publish`` right after paho returns the mid
                return
        loop, ack = entry
        refused = bool(getattr(reason_code, "is_failure", False))
        loop.call_soon_threadsafe(_settle, ack, None if not refused else str(reason_code))


def _settle(ack: asyncio.Future[None], refusal: str | None) -> None:
    if ack.done():
        return
    if refusal is None:
        ack.set_result(None)
    else:
        ack.set_exception(Unavailable(f"брокер MQTT отклонил команду: {refusal}", code="bus_unavailable"))
