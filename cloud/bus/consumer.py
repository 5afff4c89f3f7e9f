"""The bus consumer: gateway messages → database, acknowledged only after the commit.

Delivery guarantees:

* ``manual_ack=True``: the PUBACK for a message is sent only after its transaction committed (or
  after it was judged invalid and dropped). A crash before that loses nothing: the session is
  persistent (``clean_start=False`` + Session Expiry on MQTT 5, ``clean_session=False`` on 3.1.1)
  and the broker redelivers unacknowledged messages on the next connect.
* A database error leaves the message unacknowledged and pauses the consumer; a supervisor
  thread waits until the database answers again, rebuilds the pool and reconnects to the
  broker (with the same session), which makes the broker redeliver what was not acknowledged.
* Events are unique on ``(gateway, event_id)``, so a redelivered event is stored once.

Several consumers share the load through ``$share/{shared_group}/…`` when the broker offers MQTT
5 shared subscriptions; otherwise (MQTT 3.1.1, e.g. the embedded broker) run one consumer.
Shared subscriptions get no retained messages, so on every connect the retained topics (state,
inventory, status) are also subscribed non-shared once and unsubscribed on SUBACK: every
consumer replays the snapshot, which the handlers make idempotent.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cloud.base import utcnow
from cloud.bus.handlers import Message, Outcome, handle
from cloud.bus.mqtt import (
    KEEPALIVE_S,
    guarded,
    new_client,
    parse_mqtt_url,
    probe_protocol,
    set_nodelay,
    shared_subscriptions_available,
)
from cloud.config import CloudSettings
from cloud.db import make_engine, ping, session_factory, unit_of_work
from protocols.bus import CloudState, PayloadError, cloud_filters, cloud_state_topic, decode, encode

log = logging.getLogger(__name__)

DB_RETRY_MIN_S = 0.2
DB_RETRY_MAX_S = 30.0


class BusConsumer:
    """Consume gateway topics of every tenant under ``settings.bus_root`` into the database."""

    def __init__(self, settings: CloudSettings, *, engine: Engine | None = None, client_id: str | None = None):
        self.settings = settings
        self.root = settings.bus_root
        self._own_engine = engine is None
        self.engine = engine if engine is not None else make_engine(settings.database_url)
        self.sessions = session_factory(self.engine)
        self.endpoint = parse_mqtt_url(settings.mqtt_url, settings.mqtt_username, settings.mqtt_password)
        self.client_id = client_id or f"{settings.shared_group}-bus-{settings.instance_id}"
        self.protocol: MQTTProtocolVersion | None = None
        self.shared = False
        self.stats: Counter[str] = Counter()
        self._cond = threading.Condition()
        self._paused = threading.Event()
        self._resync = threading.Event()
        self._stopping = threading.Event()
        self._snapshot_mid: int | None = None
        self._client: mqtt.Client | None = None
        self._supervisor: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> BusConsumer:
        """Connect in the background (retrying with backoff) and start consuming."""
        self.protocol = probe_protocol(self.endpoint)
        self._client = self._build_client()
        self._connect()
        self._supervisor = threading.Thread(target=self._supervise, name="bus-supervisor", daemon=True)
        self._supervisor.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the cloud offline, disconnect (keeping the broker session), release the DB."""
        self._stopping.set()
        client = self._client
        if client is not None:
            if client.is_connected():
                info = client.publish(
                    cloud_state_topic(self.root), encode(CloudState(online=False)), qos=1, retain=True
                )
                try:
                    info.wait_for_publish(timeout)
                except (RuntimeError, ValueError) as exc:
                    log.warning("cloud offline state not published: %s", exc)
            client.disconnect()
            client.loop_stop()
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        if self._own_engine:
            self.engine.dispose()

    def run_forever(self) -> None:
        """Run until SIGINT/SIGTERM (the ``vitrina cloud bus`` command)."""
        done = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
        self.start()
        log.info("bus consumer %s consuming %s (root %r)", self.client_id, self.settings.mqtt_url, self.root)
        try:
            while not done.wait(1.0):
                pass
        finally:
            self.stop()

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected()

    def wait_until(self, predicate: Callable[[Counter[str]], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(stats)`` holds (tests and ``vitrina up`` use it instead of sleeps)."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.stats), timeout)

    def _count(self, key: str) -> None:
        with self._cond:
            self.stats[key] += 1
            self._cond.notify_all()

    # ------------------------------------------------------------ MQTT

    def _build_client(self) -> mqtt.Client:
        assert self.protocol is not None
        client = new_client(self.endpoint, self.client_id, self.protocol, persistent=True, manual_ack=True)
        client.will_set(cloud_state_topic(self.root), encode(CloudState(online=False)), qos=1, retain=True)
        client.on_connect = guarded("consumer.on_connect")(self._on_connect)
        client.on_disconnect = guarded("consumer.on_disconnect")(self._on_disconnect)
        client.on_message = guarded("consumer.on_message")(self._on_message)
        client.on_subscribe = guarded("consumer.on_subscribe")(self._on_subscribe)
        return client

    def _connect(self) -> None:
        assert self._client is not None
        if self.protocol == MQTTProtocolVersion.MQTTv5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.settings.mqtt_session_expiry_s
            self._client.connect_async(
                self.endpoint.host, self.endpoint.port, KEEPALIVE_S, clean_start=False, properties=props
            )
        else:
            self._client.connect_async(self.endpoint.host, self.endpoint.port, KEEPALIVE_S)
        self._client.loop_start()

    def _on_connect(self, client: mqtt.Client, _u: Any, _flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker refused the consumer: %s", reason_code)
            return
        set_nodelay(client)
        filters = cloud_filters(root=self.root)
        self.shared = self.protocol == MQTTProtocolVersion.MQTTv5 and shared_subscriptions_available(properties)
        if self.shared:
            group = self.settings.shared_group
            client.subscribe([(f"$share/{group}/{f}", 1) for f in filters])
            retained = [f for f in filters if f.endswith(("/state", "/inventory", "/status"))]
            _rc, self._snapshot_mid = client.subscribe([(f, 1) for f in retained])
        else:
            client.subscribe([(f, 1) for f in filters])
        # Every consumer watches the shared cloud state: when another instance dies (its Will
        # says offline) or stops, the ones still running say online again, so gateways keep
        # replaying their outboxes while any consumer is alive.
        client.subscribe(cloud_state_topic(self.root), 1)
        client.publish(cloud_state_topic(self.root), encode(CloudState(online=True)), qos=1, retain=True)
        self._count("connects")
        log.info("consumer connected (MQTT %s, shared=%s)", "5" if self.protocol == 5 else "3.1.1", self.shared)

    def _on_subscribe(self, client: mqtt.Client, _u: Any, mid: int, _codes: Any, _props: Any) -> None:
        if mid == self._snapshot_mid:
            self._snapshot_mid = None
            filters = cloud_filters(root=self.root)
            client.unsubscribe([f for f in filters if f.endswith(("/state", "/inventory", "/status"))])
        self._count("subscribed")

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _flags: Any, reason_code: Any, _p: Any) -> None:
        if not self._stopping.is_set():
            log.warning("consumer disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if self._paused.is_set():
            return  # not acknowledged: redelivered after the resync
        if msg.topic == cloud_state_topic(self.root):
            self._on_cloud_state(client, bytes(msg.payload))
            client.ack(msg.mid, msg.qos)
            return
        outcome = self._process(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))
        if outcome is None:
            self._paused.set()
            self._resync.set()
            return
        client.ack(msg.mid, msg.qos)
        self._count("acked")

    def _on_cloud_state(self, client: mqtt.Client, payload: bytes) -> None:
        try:
            state = decode(CloudState, payload)
        except PayloadError:
            state = CloudState(online=False)  # an empty or foreign retained value: correct it
        if not state.online and not self._stopping.is_set():
            log.info("cloud state says offline while this consumer runs: republishing online")
            client.publish(cloud_state_topic(self.root), encode(CloudState(online=True)), qos=1, retain=True)
            self._count("cloud_state_reasserted")

    # ------------------------------------------------------------ database

    def _process(self, message: Message) -> Outcome | None:
        """Handle one message in one transaction; ``None`` on a database error (do not ack)."""
        for attempt in range(2):
            try:
                with unit_of_work(self.sessions) as session:
                    outcome = handle(session, message, self.root, utcnow())
                    if outcome != Outcome.DROPPED:
                        session.commit()
                self._count(outcome.value)
                return outcome
            except IntegrityError as exc:
                # A concurrent consumer inserted the same row first: the retry sees it.
                if attempt == 0:
                    continue
                log.error("database integrity error on %r: %s", message.topic, exc)
                self._count("db_errors")
                return None
            except SQLAlchemyError as exc:
                log.error("database error on %r, message left unacknowledged: %s", message.topic, exc)
                self._count("db_errors")
                return None
            except Exception:
                # A bug on one message must not block the queue forever (a poison message).
                log.exception("unexpected error on %r; message dropped", message.topic)
                self._count("errors")
                return Outcome.DROPPED
        return None

    def _supervise(self) -> None:
        """After a DB error: wait for the DB, reset the pool, reconnect so the broker redelivers."""
        while not self._stopping.is_set():
            if not self._resync.wait(0.5):
                continue
            delay = DB_RETRY_MIN_S
            while not self._stopping.is_set() and not ping(self.engine):
                log.warning("database unavailable; retrying in %.1f s", delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, DB_RETRY_MAX_S)
            if self._stopping.is_set():
                return
            self.engine.dispose()
            assert self._client is not None
            self._client.disconnect()
            self._client.loop_stop()
            self._resync.clear()
            self._paused.clear()
            self._count("resyncs")
            self._connect()
