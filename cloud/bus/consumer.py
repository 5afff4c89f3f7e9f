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

Throughput — batches (group commit): paho's thread only queues each message; one worker thread
takes whatever is queued (up to ``batch_max``), applies it in **one transaction**, in arrival
order (so the handlers' session/order checks see what they would one by one), commits, and only
then acknowledges every message of the batch. Each message runs inside a SAVEPOINT, so a message
that trips a bug is rolled back alone, dropped and acknowledged while the others are stored;
events — the bulk of the traffic — go in one multi-row ``INSERT … ON CONFLICT DO NOTHING``
(:class:`~cloud.bus.handlers.EventBatch`). A database error fails the whole batch: nothing of it
is acknowledged, and the resync makes the broker redeliver all of it. Under light load a batch is
one message (no waiting); under load batches grow by themselves while the previous one commits.
A batch of command replies alone commits with relaxed durability
(:func:`cloud.db.relaxed_durability`, as the API's own command rows do): a command's status is
bookkeeping — the gateway's journal holds the outcome and answers a retry with it — and its fsync
held SQLite's single writer lock for a millisecond that the next command's insert waited out.
Events are never relaxed: they exist only here once acknowledged.

Acknowledging from the worker thread: ``Client.ack`` only queues a PUBACK packet, exactly as
``publish`` from another thread does (paho's ``_packet_queue``: a deque append and a wake-up
byte). A packet id belongs to the connection's session: an ack is sent only for a message
received on the *current* connection (``_epoch``, bumped on every connect and disconnect, checked
under ``_ack_lock``), never for one from an earlier connection, whose packet id the broker may
have reused for another message since; that message is redelivered and stored once instead.

Several consumers share the load through ``$share/{shared_group}/…`` when the broker offers MQTT
5 shared subscriptions; otherwise (MQTT 3.1.1, e.g. the embedded broker) run one consumer.
Shared subscriptions get no retained messages, so on every connect the retained topics (state,
inventory, status) are also subscribed non-shared once and unsubscribed on SUBACK: every
consumer replays the snapshot, which the handlers make idempotent.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from cloud.base import utcnow
from cloud.bus.handlers import Decoded, EventBatch, Message, Outcome, apply, apply_reply_fast, decode_message
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
from cloud.db import make_engine, ping, relaxed_durability, session_factory, unit_of_work
from protocols.bus import (
    CloudState,
    PayloadError,
    TopicKind,
    cloud_filters,
    cloud_state_topic,
    decode,
    encode,
)

log = logging.getLogger(__name__)

DB_RETRY_MIN_S = 0.2
DB_RETRY_MAX_S = 30.0
BATCH_MAX = 500
BATCH_LINGER_S = 0.0


@dataclass(frozen=True, slots=True)
class _Inbound:
    message: Message
    mid: int
    qos: int
    epoch: int


class BusConsumer:
    """Consume gateway topics of every tenant under ``settings.bus_root`` into the database."""

    def __init__(
        self,
        settings: CloudSettings,
        *,
        engine: Engine | None = None,
        client_id: str | None = None,
        batch_max: int = BATCH_MAX,
        batch_linger_s: float = BATCH_LINGER_S,
    ):
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
        self.batch_max = max(1, batch_max)
        self.batch_linger_s = max(0.0, batch_linger_s)
        self._queue: queue.SimpleQueue[_Inbound | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._epoch = 0
        self._ack_lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> BusConsumer:
        """Connect in the background (retrying with backoff) and start consuming."""
        self.protocol = probe_protocol(self.endpoint)
        self._worker = threading.Thread(target=self._work, name="bus-writer", daemon=True)
        self._worker.start()
        self._client = self._build_client()
        self._connect()
        self._supervisor = threading.Thread(target=self._supervise, name="bus-supervisor", daemon=True)
        self._supervisor.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the cloud offline, disconnect (keeping the broker session), release the DB."""
        self._stopping.set()
        if self._worker is not None:  # store and acknowledge what is already queued
            self._queue.put(None)
            self._worker.join(timeout)
            self._worker = None
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

    def _count(self, key: str, by: int = 1) -> None:
        with self._cond:
            self.stats[key] += by
            self._cond.notify_all()

    def _count_many(self, counts: Counter[str]) -> None:
        with self._cond:
            self.stats.update(counts)
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
        self._new_epoch()
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

    def _new_epoch(self) -> None:
        with self._ack_lock:
            self._epoch += 1

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _flags: Any, reason_code: Any, _p: Any) -> None:
        self._new_epoch()
        if not self._stopping.is_set():
            log.warning("consumer disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if self._paused.is_set():
            return  # not acknowledged: redelivered after the resync
        if msg.topic == cloud_state_topic(self.root):
            self._on_cloud_state(client, bytes(msg.payload))
            client.ack(msg.mid, msg.qos)
            return
        self._queue.put(_Inbound(Message(msg.topic, bytes(msg.payload), bool(msg.retain)), msg.mid, msg.qos,
                                 self._epoch))

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

    def _work(self) -> None:
        """The writer thread: take what is queued, store it in one transaction, then ack it."""
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            deadline = time.monotonic() + self.batch_linger_s
            stop = False
            while len(batch) < self.batch_max:
                try:
                    left = deadline - time.monotonic()
                    nxt = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            try:
                self._run_batch(batch)
            except Exception:  # never let the writer thread die
                log.exception("bus writer: unexpected failure; %d messages left unacknowledged", len(batch))
                self._paused.set()
                self._resync.set()
            if stop:
                return

    def _run_batch(self, batch: list[_Inbound]) -> None:
        if self._paused.is_set():
            return  # after a database error: the broker redelivers these after the resync
        live = [item for item in batch if item.epoch == self._epoch]
        if not live:
            return  # received on a connection that is gone: redelivered on the current one
        outcomes = self._process([item.message for item in live])
        if outcomes is None:
            self._paused.set()
            self._resync.set()
            return
        client = self._client
        acked = 0
        with self._ack_lock:
            if client is not None:
                for item in live:
                    if item.epoch == self._epoch:
                        client.ack(item.mid, item.qos)
                        acked += 1
        self._count("acked", acked)

    def _process(self, messages: Sequence[Message]) -> list[Outcome] | None:
        """Store ``messages`` in one transaction; their outcomes, or ``None`` on a database error
        (then nothing of the batch is committed and nothing may be acknowledged)."""
        counts: Counter[str] = Counter()
        decoded: list[Decoded | None] = []
        for message in messages:
            try:
                decoded.append(decode_message(message, self.root))
            except Exception:
                log.exception("unexpected error decoding %r; message dropped", message.topic)
                counts["errors"] += 1
                decoded.append(None)
        for attempt in range(2):
            tx_counts = Counter(counts)
            try:
                with unit_of_work(self.sessions) as session:
                    if all(d is None or d.kind == TopicKind.REPLY for d in decoded):
                        relaxed_durability(session)  # command bookkeeping only: see the module doc
                    outcomes = self._apply_batch(session, decoded, utcnow(), tx_counts)
                    if any(o != Outcome.DROPPED for o in outcomes):
                        session.commit()
                tx_counts.update(o.value for o in outcomes)
                tx_counts["batches"] += 1
                self._count_many(tx_counts)
                return outcomes
            except IntegrityError as exc:
                # A concurrent consumer inserted the same row first: the retry sees it.
                if attempt == 0:
                    continue
                log.error("database integrity error in a batch of %d: %s", len(messages), exc)
                self._count("db_errors")
                return None
            except SQLAlchemyError as exc:
                log.error("database error, %d messages left unacknowledged: %s", len(messages), exc)
                self._count("db_errors")
                return None
        return None

    def _apply_batch(
        self, session: Session, decoded: Sequence[Decoded | None], now: datetime, counts: Counter[str]
    ) -> list[Outcome]:
        """Apply every message in order inside ``session``'s transaction (the caller commits)."""
        outcomes: list[Outcome] = [Outcome.DROPPED] * len(decoded)
        events = EventBatch(session, now)
        pending: dict[tuple[int, str], int] = {}  # (gateway id, event id) → index, queued in ``events``

        def flush_events() -> None:
            if not pending:
                return
            savepoint = session.begin_nested()
            try:
                stored = events.flush()
                savepoint.commit()
            except IntegrityError:
                # Not a replay (those are skipped by ON CONFLICT): one of them is bad, or a
                # concurrent consumer created a gateway/device row. Find out one by one.
                savepoint.rollback()
                events.reset()
                queued = sorted(pending.values())
                pending.clear()
                for index in queued:
                    one(index)
                return
            for key, index in pending.items():
                outcomes[index] = Outcome.STORED if key in stored else Outcome.DUPLICATE
            pending.clear()

        def one(index: int) -> None:
            item = decoded[index]
            assert item is not None
            for attempt in range(2):
                savepoint = session.begin_nested()
                try:
                    outcome = apply(session, item, now)
                except IntegrityError:
                    savepoint.rollback()
                    events.reset()
                    if attempt == 0:
                        continue  # a concurrent consumer inserted the same row first: retry sees it
                    raise
                except SQLAlchemyError:
                    raise  # the database, not the message: the whole batch stays unacknowledged
                except Exception:
                    savepoint.rollback()
                    events.reset()
                    log.exception("unexpected error on %r; message dropped", item.message.topic)
                    counts["errors"] += 1
                    return
                if outcome == Outcome.DROPPED:
                    savepoint.rollback()
                    events.reset()
                else:
                    savepoint.commit()
                outcomes[index] = outcome
                return

        def reply(index: int) -> None:
            """A command reply: one statement, no savepoint (see ``apply_reply_fast``); it needs
            nothing the queued events would create, so they stay queued for one insert."""
            item = decoded[index]
            assert item is not None
            try:
                outcomes[index] = apply_reply_fast(session, events, item, now)
            except SQLAlchemyError:
                raise  # the database: the whole batch stays unacknowledged
            except Exception:
                log.exception("unexpected error on %r; message dropped", item.message.topic)
                counts["errors"] += 1

        for index, item in enumerate(decoded):
            if item is None:
                continue
            if item.kind == TopicKind.REPLY:
                reply(index)
                continue
            if item.kind != TopicKind.EVENT:
                flush_events()
                one(index)
                continue
            try:
                target = events.resolve(item)
            except SQLAlchemyError:
                raise
            except Exception:
                log.exception("unexpected error on %r; message dropped", item.message.topic)
                counts["errors"] += 1
                events.reset()
                continue
            if target is None:
                continue  # unknown tenant: dropped (logged)
            key = events.add(item, *target)
            if key is None:
                outcomes[index] = Outcome.DUPLICATE  # the same event twice in one batch
            else:
                pending[key] = index
        flush_events()
        return outcomes

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
