"""The durable event outbox: every event is committed to SQLite before anyone may send it.

An event is only forgotten after the broker acknowledged it (``OutboxSender`` deletes on PUBACK)
or when a bound drops it (``max_events``, ``max_age_days``) — and then it is counted, never
silently lost (ThingsBoard's memory storage and the "recreated on reconnect" SQLite store lost
data without telling anyone).

Durability choice — WAL with ``synchronous=NORMAL`` by default: a commit is durable against a
crash of the process (``kill -9``, an exception, the OOM killer), which is the failure that
actually happens on a store PC, and the file is never corrupted by a power cut; what a power cut
may cost is the last transactions since the previous WAL checkpoint. ``FULL`` fsyncs the WAL on
every commit (1–10 ms on store SSDs and SD cards), which caps one-by-one appends far below the
5,000 events/s target. Events whose loss would matter after a power cut (fiscal documents) can
always be re-read from the device's own fiscal storage; a site that still wants ``FULL`` sets
``[outbox] synchronous = "full"`` (and should batch with :meth:`Outbox.append_many`).

``seq`` is per gateway, strictly increasing and never reused: the table is ``AUTOINCREMENT``,
whose high-water mark survives deleting every row, and the next value is kept in memory under
the same lock as the insert so it is known before the payload is encoded.

Hot path (every device event goes through :meth:`Outbox.append`):

* **The event JSON is built once**: the contract's model is validated once and dumped once
  (pydantic-core, ≈ 20 µs an event); the stored bytes are what goes on the wire (re-encoded only
  to mark a replay ``historical``). A hand-built ``json.dumps`` envelope was tried and cost twice
  the CPU (pure Python string work plus ``model_construct`` for the returned event).
* **One long-lived connection, one fixed INSERT text** (``sqlite3`` keeps it prepared).
* **Group commit.** Appends from several threads that arrive while a commit is running are
  written together by the next one: the next caller to get the writer lock commits every
  queued caller's rows in one transaction, and each caller returns only after the commit that
  holds *its* rows returned (so, exactly as before, a returned event is in the file). A lone
  producer commits alone, as before, with no added wait.
* **A tail in memory.** The rows appended last (``TAIL_MAX``) are kept in memory as well, so the
  sender — which reads exactly those rows right after they were written — does not read them
  back from SQLite. Anything not provably covered by the tail (a replay from the start after a
  reconnect, rows dropped by a bound) is read from the file.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.errors import StorageError
from gateway.sqlite import connect
from protocols.bus import Event, encode

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL    NOT NULL,
    session    INTEGER NOT NULL,
    topic      TEXT    NOT NULL,
    payload    BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One pending event as stored: ``payload`` is the encoded :class:`Event`."""

    seq: int
    created_at: float
    session: int
    topic: str
    payload: bytes

    def payload_for(self, session: int) -> bytes:
        """The bytes to send in ``session``: marked ``historical`` when replayed in a later one."""
        if session == self.session:
            return self.payload
        data = json.loads(self.payload)
        data["historical"] = True
        return json.dumps(data, separators=(",", ":")).encode()


TAIL_MAX = 4096
_INSERT = "INSERT INTO outbox (seq, created_at, session, topic, payload) VALUES (?, ?, ?, ?, ?)"


@dataclass(slots=True)
class _Request:
    """One caller's events waiting for a group commit (``done``/``events``/``error`` are set
    under the writer lock by whichever caller commits them)."""

    items: Sequence[tuple[str, dict[str, Any]]]
    session: int
    now: float
    done: bool = False
    events: list[Event] = field(default_factory=list)
    error: Exception | None = None


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int
    dropped_overflow: int
    dropped_expired: int
    last_seq: int

    @property
    def dropped(self) -> int:
        return self.dropped_overflow + self.dropped_expired

    def as_dict(self) -> dict[str, int]:
        return {
            "depth": self.depth,
            "dropped": self.dropped,
            "dropped_overflow": self.dropped_overflow,
            "dropped_expired": self.dropped_expired,
            "last_seq": self.last_seq,
        }


class Outbox:
    """SQLite-backed FIFO of events with bounds. Thread-safe (one connection, one lock)."""

    def __init__(
        self,
        path: Path,
        *,
        max_events: int = 100_000,
        max_age_days: float = 7.0,
        synchronous: Literal["normal", "full"] = "normal",
        clock: Any = time.time,
    ) -> None:
        self.path = path
        self.max_events = max_events
        self.max_age_s = max_age_days * 86400.0
        self._clock = clock
        self._lock = threading.Lock()
        self._conn = connect(path, synchronous)
        try:
            self._conn.executescript(_SCHEMA)
            self._depth = int(self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
            row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
            high = int(self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0])
            self._last_seq = max(high, int(row[0]) if row else 0)
            self._dropped = {k: v for k, v in self._conn.execute("SELECT key, value FROM outbox_meta")}
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open outbox {path}: {exc}") from exc
        self._queue_lock = threading.Lock()
        self._waiting: list[_Request] = []
        # Rows with seq >= _tail_from are in _tail unless deleted; older ones only in the file.
        self._tail: OrderedDict[int, OutboxRow] = OrderedDict()
        self._tail_from = self._last_seq + 1

    # Writing -----------------------------------------------------------------------------
    def append(self, topic: str, data: dict[str, Any], *, session: int) -> Event:
        """Store one event and return it once it is committed (``seq`` and ``event_id`` set)."""
        return self.append_many([(topic, data)], session=session)[0]

    def append_many(self, items: Sequence[tuple[str, dict[str, Any]]], *, session: int) -> list[Event]:
        """Store several events in one transaction (one commit, so one fsync under ``FULL``).

        Returns once they are committed — possibly by another caller's group commit (see the
        module doc); raises :class:`StorageError` if that transaction failed, or the contract's
        validation error for an event it refuses (then nothing of this call is stored).
        """
        request = _Request(items, session, self._clock())
        with self._queue_lock:
            self._waiting.append(request)
        # Whoever holds the writer lock commits everything queued so far; a caller that gets
        # the lock and finds its request done (committed by the previous holder) just returns.
        with self._lock:
            if not request.done:
                with self._queue_lock:
                    group, self._waiting = self._waiting, []
                self._commit_group(group)
        assert request.done
        if request.error is not None:
            raise request.error
        return request.events

    def _commit_group(self, group: list[_Request]) -> None:
        """Write ``group`` in one transaction (the caller holds ``_lock``); settles every request."""
        seq = self._last_seq
        rows: list[tuple[int, float, int, str, bytes]] = []
        settled: list[_Request] = []
        for request in group:
            events: list[Event] = []
            first = len(rows)
            try:
                for topic, data in request.items:
                    event = Event(session=request.session, seq=seq + 1, data=data)
                    rows.append((seq + 1, request.now, request.session, topic, encode(event)))
                    events.append(event)
                    seq += 1
            except Exception as exc:  # the contract refused one of its events: it alone raises
                seq -= len(events)
                del rows[first:]
                request.error = exc
                request.done = True
                continue
            request.events = events
            settled.append(request)
        overflow = 0
        try:
            if rows:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(_INSERT, rows)
                overflow = self._depth + len(rows) - self.max_events
                if overflow > 0:
                    self._conn.execute(
                        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (overflow,)
                    )
                    self._bump("dropped_overflow", overflow)
                self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            self._dropped = {k: v for k, v in self._conn.execute("SELECT key, value FROM outbox_meta")}
            error = StorageError(f"cannot store event in outbox {self.path}: {exc}")
            for request in settled:
                request.events = []
                request.error = error
                request.done = True
            return
        self._last_seq = seq
        self._depth += len(rows) - max(overflow, 0)
        if overflow > 0:
            self._tail.clear()  # rows the tail holds may be gone: read the file until it refills
            self._tail_from = seq + 1
            log.warning("outbox full (%d events): dropped the %d oldest", self.max_events, overflow)
        else:
            for row in rows:
                self._tail[row[0]] = OutboxRow(*row)
            while len(self._tail) > TAIL_MAX:
                first_seq, _row = self._tail.popitem(last=False)
                self._tail_from = first_seq + 1
        for request in settled:
            request.done = True

    def delete(self, seqs: Iterable[int]) -> int:
        """Forget acknowledged events (one transaction for the whole batch)."""
        batch = [(s,) for s in seqs]
        if not batch:
            return 0
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                cur = self._conn.executemany("DELETE FROM outbox WHERE seq = ?", batch)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(f"cannot delete from outbox {self.path}: {exc}") from exc
            for (seq,) in batch:
                self._tail.pop(seq, None)
            self._depth -= cur.rowcount
            return cur.rowcount

    def prune_expired(self) -> int:
        """Drop (and count) events older than ``max_age_days``."""
        cutoff = self._clock() - self.max_age_s
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                cur = self._conn.execute("DELETE FROM outbox WHERE created_at < ?", (cutoff,))
                if cur.rowcount > 0:
                    self._bump("dropped_expired", cur.rowcount)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(f"cannot prune outbox {self.path}: {exc}") from exc
            self._depth -= cur.rowcount
            if cur.rowcount > 0:
                self._tail.clear()
                self._tail_from = self._last_seq + 1
                log.warning("outbox: dropped %d events older than %.1f days", cur.rowcount, self.max_age_s / 86400)
            return cur.rowcount

    # Reading -----------------------------------------------------------------------------
    def pending_after(self, seq: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` stored events with a ``seq`` above ``seq``, oldest first."""
        if limit <= 0:
            return []
        with self._lock:
            if seq + 1 >= self._tail_from:  # everything after ``seq`` is in the tail (or deleted)
                found: list[OutboxRow] = []
                start = max(seq + 1, next(iter(self._tail), seq + 1))  # below the first kept: deleted
                for n in range(start, self._last_seq + 1):
                    row = self._tail.get(n)
                    if row is not None:
                        found.append(row)
                        if len(found) >= limit:
                            break
                return found
            try:
                rows = self._conn.execute(
                    "SELECT seq, created_at, session, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                    (seq, limit),
                ).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read outbox {self.path}: {exc}") from exc
        return [OutboxRow(int(s), float(c), int(ss), str(t), bytes(p)) for s, c, ss, t, p in rows]

    def stats(self) -> OutboxStats:
        with self._lock:
            return OutboxStats(
                depth=self._depth,
                dropped_overflow=self._dropped.get("dropped_overflow", 0),
                dropped_expired=self._dropped.get("dropped_expired", 0),
                last_seq=self._last_seq,
            )

    @property
    def depth(self) -> int:
        return self._depth

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error as exc:
                log.warning("closing outbox %s: %s", self.path, exc)

    # Internals ---------------------------------------------------------------------------
    def _bump(self, key: str, by: int) -> None:
        self._conn.execute(
            "INSERT INTO outbox_meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            (key, by),
        )
        self._dropped[key] = self._dropped.get(key, 0) + by

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
