"""Sends the outbox to the broker: in order, a bounded window in flight, delete on PUBACK only.

Bookkeeping, and why each piece is there:

* ``inflight`` maps paho ``mid`` → ``seq`` for the *current connection* (``epoch``). A row is
  deleted only when paho's ``on_publish`` reports the PUBACK of its mid — never because
  ``publish()`` returned success (that only means "written to a socket that may be dead").
* A PUBACK can arrive before ``publish()`` has returned the mid to us (0.6 ms round trips),
  and paho calls ``on_publish`` holding its own lock, so we cannot hold ours across
  ``publish()``. Early acks wait in ``early`` until the sender records the mid; the set is
  cleared before each batch so a mid from an unrelated publish (a reply) cannot linger.
* On a lost connection every in-flight row goes back to pending (the cursor rewinds) and the
  epoch changes, so acks of the old connection can never delete a row of the new one. The MQTT
  link also purges paho's own in-memory resend queue, so replays come from SQLite only.
  Duplicates on the wire are expected (the cloud dedupes on ``event_id``); losses are not.
* Acked rows are deleted in batches (one transaction per wake-up), which is what lets a
  Raspberry-class box sustain thousands of events per second.
* Wake-ups are coalesced while the pipe is busy: with rows in flight, a new event or a PUBACK
  does not wake the thread (their acks will); it wakes when ``ack_batch`` acks have piled up,
  when nothing is in flight any more, or on a refusal/reconnect. So each wake-up deletes and
  refills a chunk (one SQLite transaction + one read per chunk instead of per event), while an
  event on an idle link is still sent at once.
* Sending is gated on the cloud's retained ``cloud/state`` (``require_cloud_online``): replaying
  a day of weights into a broker nobody drains only moves the backlog somewhere less durable.
* The window honours the broker's MQTT 5 Receive Maximum (:meth:`OutboxSender.broker_limits`,
  called by the link on every connect): ``min(window, receive_maximum)``; a 3.1.1 broker (or a 5
  one that advertises none) gets the configured window. The refill chunk (``ack_batch``) follows
  the window: the thread wakes when half the window is free again, so a small window (20) still
  keeps the pipe full with one delete transaction per 10 acks. The rows to send are normally
  served from the outbox's in-memory tail (:class:`~gateway.outbox.Outbox`), not read back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gateway.errors import StorageError
from gateway.outbox import Outbox

log = logging.getLogger(__name__)

PublishFn = Callable[[str, bytes], "int | None"]
"""Publish QoS 1 and return paho's mid, or ``None`` if not connected."""


class OutboxSender:
    """A thread draining :class:`Outbox` through ``publish`` whenever ``may_send()`` is true."""

    def __init__(
        self,
        outbox: Outbox,
        publish: PublishFn,
        *,
        session: Callable[[], int],
        may_send: Callable[[], bool],
        window: int = 256,
        prune_every_s: float = 60.0,
        ack_batch: int | None = None,
    ) -> None:
        self.outbox = outbox
        self._publish = publish
        self._session = session
        self._may_send = may_send
        self.configured_window = window
        self._ack_batch_setting = ack_batch
        self.window = window
        self.ack_batch = 1
        self._size(None)
        self._prune_every_s = prune_every_s
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._epoch = 0
        self._cursor = 0
        self._inflight: dict[int, int] = {}
        self._early: set[int] = set()
        self._acked: list[int] = []
        self._backoff_until = 0.0
        self.sent = 0
        self.acked_total = 0
        self.replays = 0

    def _size(self, receive_maximum: int | None) -> None:
        self.window = min(self.configured_window, receive_maximum) if receive_maximum else self.configured_window
        setting = self._ack_batch_setting
        self.ack_batch = max(1, min(setting, self.window) if setting is not None else self.window // 2)

    # Hooks from the MQTT link (paho's thread: cheap, never raise) ----------------------------
    def broker_limits(self, receive_maximum: int | None) -> None:
        """On every connect: the broker's Receive Maximum (``None``: it set none, or MQTT 3.1.1)."""
        with self._lock:
            self._size(receive_maximum)
        if receive_maximum is not None and receive_maximum < self.configured_window:
            log.info("broker accepts %d unacknowledged publishes: outbox window %d", receive_maximum, self.window)

    def connection_lost(self) -> None:
        """Every in-flight row is pending again; acks of the old connection are void."""
        with self._lock:
            self._epoch += 1
            if self._inflight:
                self.replays += len(self._inflight)
            self._inflight.clear()
            self._early.clear()
            self._cursor = 0
        self._wake.set()

    def on_publish(self, mid: int, ok: bool = True) -> None:
        """PUBACK for ``mid``: its row may now be deleted (refused → resend after a pause)."""
        with self._lock:
            seq = self._inflight.pop(mid, None)
            if seq is None:
                self._early.add(mid)
                urgent = True
            elif ok:
                self._acked.append(seq)
                urgent = self.window - len(self._inflight) >= self.ack_batch or not self._inflight
            else:
                self._cursor = min(self._cursor, seq - 1)
                self._backoff_until = time.monotonic() + 1.0
                urgent = True
        if urgent:
            self._wake.set()

    def wake(self) -> None:
        """Something to send (a new event, the cloud came online, we reconnected).

        While rows are in flight their acks wake the thread (see the module doc), so this only
        sets the event when nothing is in flight.
        """
        if not self._inflight:
            self._wake.set()

    # Thread ------------------------------------------------------------------------------
    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._flush_acked()

    def _run(self) -> None:
        next_prune = 0.0
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._flush_acked()
                now = time.monotonic()
                if now >= next_prune:
                    next_prune = now + self._prune_every_s
                    self.outbox.prune_expired()
                if now >= self._backoff_until and self._may_send():
                    self._send_batch()
            except StorageError:
                log.exception("outbox storage failed; retrying in 1 s")
                self._stop.wait(1.0)
            except Exception:
                log.exception("outbox sender iteration failed; retrying in 1 s")
                self._stop.wait(1.0)

    def _flush_acked(self) -> None:
        with self._lock:
            acked, self._acked = self._acked, []
        if acked:
            try:
                self.outbox.delete(acked)
            except StorageError:
                with self._lock:  # keep them: deleting later is safe, forgetting is a resend
                    self._acked.extend(acked)
                raise
            self.acked_total += len(acked)

    def _send_batch(self) -> None:
        with self._lock:
            room = self.window - len(self._inflight)
            epoch, cursor = self._epoch, self._cursor
            self._early.clear()
            if self._inflight and room < self.ack_batch:
                return  # busy: refill by chunks, when more acks came back
        rows = self.outbox.pending_after(cursor, room)
        session = self._session()
        for row in rows:
            if not self._may_send():
                return
            mid = self._publish(row.topic, row.payload_for(session))
            with self._lock:
                if mid is None or epoch != self._epoch:
                    return  # not connected, or the connection changed: replay from the cursor
                self._cursor = row.seq
                if mid in self._early:
                    self._early.discard(mid)
                    self._acked.append(row.seq)
                else:
                    self._inflight[mid] = row.seq
            self.sent += 1
        if len(rows) == room:
            self._wake.set()  # more may be waiting
