"""The lanes' durable record: every step of a sale, return, shift or cash move, before its effect.

One SQLite file (``checkout.db``, WAL, ``synchronous=FULL``: committed means on disk — a sale's
step must survive a power cut, not only a ``kill -9``). ``ops`` holds one row per operation (its
state and its whole document as JSON); ``steps`` is the append-only history, written in the same
transaction as the row it changes. ``lanes`` keeps each lane's shift and cashier.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import StorageError
from gateway.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ops (
    id            TEXT PRIMARY KEY,
    lane          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    state         TEXT NOT NULL,
    doc           TEXT NOT NULL,
    shift_id      TEXT,
    event_pending INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ops_lane_state ON ops (lane, state);
CREATE INDEX IF NOT EXISTS ops_shift ON ops (shift_id);
CREATE TABLE IF NOT EXISTS steps (
    n       INTEGER PRIMARY KEY AUTOINCREMENT,
    op_id   TEXT NOT NULL,
    step    TEXT NOT NULL,
    state   TEXT NOT NULL,
    data    TEXT NOT NULL,
    at      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS steps_op ON steps (op_id);
CREATE TABLE IF NOT EXISTS lanes (
    lane  TEXT PRIMARY KEY,
    doc   TEXT NOT NULL
);
"""

KIND_SALE = "sale"
KIND_RETURN = "return"
KIND_FISCALIZE = "fiscalize"
KIND_SHIFT_OPEN = "shift_open"
KIND_SHIFT_CLOSE = "shift_close"
KIND_CASH = "cash"


@dataclass
class Op:
    id: str
    lane: str
    kind: str
    state: str
    doc: dict[str, Any] = field(default_factory=dict)
    shift_id: str | None = None
    event_pending: bool = False
    created_at: float = 0.0


class CheckoutStore:
    """Thread-safe (one connection, one lock)."""

    def __init__(self, path: Path, *, clock: Any = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._conn = connect(path, "full")
        try:
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open checkout store {path}: {exc}") from exc

    # Writing -------------------------------------------------------------------------------
    def save(self, op: Op, step: str, data: dict[str, Any] | None = None) -> Op:
        """Write ``op`` as it is now and append ``step`` to its history (one durable transaction)."""
        now = self._clock()
        if not op.created_at:
            op.created_at = now
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute(
                    "INSERT INTO ops (id, lane, kind, state, doc, shift_id, event_pending, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state,"
                    " doc = excluded.doc, shift_id = excluded.shift_id, event_pending = excluded.event_pending,"
                    " updated_at = excluded.updated_at",
                    (op.id, op.lane, op.kind, op.state, json.dumps(op.doc, ensure_ascii=False), op.shift_id,
                     int(op.event_pending), op.created_at, now),
                )
                self._conn.execute(
                    "INSERT INTO steps (op_id, step, state, data, at) VALUES (?, ?, ?, ?, ?)",
                    (op.id, step, op.state, json.dumps(data or {}, ensure_ascii=False), now),
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(f"cannot write checkout store {self.path}: {exc}") from exc
        return op

    def set_lane(self, lane: str, doc: dict[str, Any]) -> None:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute(
                    "INSERT INTO lanes (lane, doc) VALUES (?, ?) ON CONFLICT(lane) DO UPDATE SET doc = excluded.doc",
                    (lane, json.dumps(doc, ensure_ascii=False)),
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(f"cannot write checkout store {self.path}: {exc}") from exc

    # Reading -------------------------------------------------------------------------------
    def lane(self, lane: str) -> dict[str, Any]:
        row = self._one("SELECT doc FROM lanes WHERE lane = ?", (lane,))
        return json.loads(row[0]) if row else {}

    def get(self, op_id: str) -> Op | None:
        row = self._one(f"SELECT {_COLS} FROM ops WHERE id = ?", (op_id,))
        return _op(row) if row else None

    def unfinished(self, lane: str, finals: frozenset[str]) -> list[Op]:
        """Operations of ``lane`` not in a final state, or whose event is not stored yet, oldest first."""
        marks = ",".join("?" * len(finals))
        rows = self._all(
            f"SELECT {_COLS} FROM ops WHERE lane = ? AND (state NOT IN ({marks}) OR event_pending = 1)"
            " ORDER BY created_at", (lane, *finals),
        )
        return [_op(r) for r in rows]

    def in_shift(self, shift_id: str) -> list[Op]:
        return [_op(r) for r in self._all(f"SELECT {_COLS} FROM ops WHERE shift_id = ? ORDER BY created_at",
                                          (shift_id,))]

    def recent(self, lane: str, kind: str, limit: int = 20) -> list[Op]:
        rows = self._all(f"SELECT {_COLS} FROM ops WHERE lane = ? AND kind = ? ORDER BY created_at DESC LIMIT ?",
                         (lane, kind, limit))
        return [_op(r) for r in rows]

    def steps(self, op_id: str) -> list[tuple[str, str, dict[str, Any]]]:
        rows = self._all("SELECT step, state, data FROM steps WHERE op_id = ? ORDER BY n", (op_id,))
        return [(s, st, json.loads(d)) for s, st, d in rows]

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass

    # Internals -----------------------------------------------------------------------------
    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchone()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read checkout store {self.path}: {exc}") from exc

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read checkout store {self.path}: {exc}") from exc

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


_COLS = "id, lane, kind, state, doc, shift_id, event_pending, created_at"


def _op(row: Any) -> Op:
    return Op(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], bool(row[6]), float(row[7]))
