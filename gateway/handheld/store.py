"""The gateway's task store (``handheld.db``): tasks, scanned lines, sessions, pending events.

Everything a handheld did is committed here before it is answered, so a task stays workable
while the cloud is unreachable and survives a gateway restart. Events are written to the
``pending`` table in the same transaction as the change they describe and moved to the
outbox right after the commit (``Hub.flush``); a crash in between leaves them pending and they
are moved at the next start. A crash after the outbox append but before the pending row is
deleted sends the event twice: the cloud deduplicates ``task_line`` by ``line_id``.

Thread-safe: one connection, one lock (like the outbox).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.errors import StorageError
from gateway.handheld.models import TaskSpec, TaskStatus
from gateway.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL,
    digest TEXT NOT NULL,
    status TEXT NOT NULL,
    assigned_at REAL NOT NULL,
    completed_at REAL,
    completed_by TEXT,
    completed_on TEXT
);
CREATE TABLE IF NOT EXISTS task_terminals (
    task_id TEXT NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    terminal TEXT NOT NULL,
    user TEXT NOT NULL,
    opened_at REAL NOT NULL,
    PRIMARY KEY (task_id, terminal)
);
CREATE TABLE IF NOT EXISTS lines (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    line_id TEXT NOT NULL UNIQUE,
    task_id TEXT NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    data TEXT NOT NULL,
    line_no INTEGER,
    qty TEXT NOT NULL,
    marking TEXT,
    scanned_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS lines_task ON lines(task_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS lines_marking ON lines(task_id, marking) WHERE marking IS NOT NULL;
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY,
    terminal TEXT NOT NULL,
    user TEXT NOT NULL,
    name TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class TaskRow:
    spec: TaskSpec
    status: TaskStatus
    assigned_at: float
    completed_at: float | None
    completed_by: str | None


@dataclass(frozen=True)
class SessionRow:
    token: str
    terminal: str
    user: str
    name: str
    expires_at: float


@dataclass(frozen=True)
class PendingEvent:
    id: int
    device: str
    type: str
    data: dict[str, Any]


class TaskStore:
    """SQLite access for :class:`~gateway.handheld.hub.Hub`; callers hold ``lock`` for compound work."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._conn = connect(path, "full")
        try:
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open handheld task store {path}: {exc}") from exc

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back (and re-raised as ``StorageError``) on error."""
        with self.lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"handheld task store: {exc}") from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StorageError(f"handheld task store: {exc}") from exc
                raise

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self.lock:
            try:
                cur = self._conn.execute(sql, params)
                return list(cur.fetchall())
            except sqlite3.Error as exc:
                raise StorageError(f"handheld task store: {exc}") from exc

    # Tasks --------------------------------------------------------------------------------
    def task(self, task_id: str) -> TaskRow | None:
        rows = self._query(
            "SELECT spec, status, assigned_at, completed_at, completed_by FROM tasks WHERE task_id = ?", (task_id,)
        )
        return _task(rows[0]) if rows else None

    def tasks(self, statuses: tuple[TaskStatus, ...]) -> list[TaskRow]:
        marks = ",".join("?" * len(statuses))
        rows = self._query(
            f"SELECT spec, status, assigned_at, completed_at, completed_by FROM tasks "
            f"WHERE status IN ({marks}) ORDER BY assigned_at, task_id",
            tuple(s.value for s in statuses),
        )
        return [_task(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self._query("SELECT status, COUNT(*) FROM tasks GROUP BY status")
        return {str(status): int(n) for status, n in rows}

    def insert_task(self, conn: sqlite3.Connection, spec: TaskSpec, now: float) -> None:
        conn.execute(
            "INSERT INTO tasks (task_id, kind, spec, digest, status, assigned_at) VALUES (?, ?, ?, ?, ?, ?)",
            (spec.task_id, spec.kind.value, spec.model_dump_json(), spec.digest(), TaskStatus.NEW.value, now),
        )

    def digest(self, task_id: str) -> str | None:
        rows = self._query("SELECT digest FROM tasks WHERE task_id = ?", (task_id,))
        return str(rows[0][0]) if rows else None

    @staticmethod
    def set_status(conn: sqlite3.Connection, task_id: str, status: TaskStatus, now: float | None = None,
                   by: str | None = None, on: str | None = None) -> None:
        if status is TaskStatus.COMPLETED:
            conn.execute(
                "UPDATE tasks SET status = ?, completed_at = ?, completed_by = ?, completed_on = ? WHERE task_id = ?",
                (status.value, now, by, on, task_id),
            )
        else:
            conn.execute("UPDATE tasks SET status = ? WHERE task_id = ?", (status.value, task_id))

    def opened_on(self, task_id: str, terminal: str) -> bool:
        rows = self._query("SELECT 1 FROM task_terminals WHERE task_id = ? AND terminal = ?", (task_id, terminal))
        return bool(rows)

    @staticmethod
    def mark_opened(conn: sqlite3.Connection, task_id: str, terminal: str, user: str, now: float) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO task_terminals (task_id, terminal, user, opened_at) VALUES (?, ?, ?, ?)",
            (task_id, terminal, user, now),
        )

    def prune(self, before: float) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM tasks WHERE status IN ('completed', 'cancelled') AND COALESCE(completed_at, assigned_at) < ?",
                (before,),
            )
            return cur.rowcount

    # Lines ----------------------------------------------------------------------------------
    def line(self, line_id: str) -> tuple[str, dict[str, Any]] | None:
        rows = self._query("SELECT task_id, data FROM lines WHERE line_id = ?", (line_id,))
        return (str(rows[0][0]), json.loads(rows[0][1])) if rows else None

    def lines(self, task_id: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT data FROM lines WHERE task_id = ? ORDER BY seq", (task_id,))
        return [json.loads(r[0]) for r in rows]

    def totals(self, task_id: str) -> tuple[dict[int, Decimal], Decimal, int]:
        """Scanned quantity per expected ``line_no``, the quantity outside them, and the line count."""
        rows = self._query("SELECT line_no, qty FROM lines WHERE task_id = ?", (task_id,))
        per: dict[int, Decimal] = {}
        extra = Decimal("0")
        for line_no, qty in rows:
            if line_no is None:
                extra += Decimal(qty)
            else:
                per[int(line_no)] = per.get(int(line_no), Decimal("0")) + Decimal(qty)
        return per, extra, len(rows)

    def has_marking(self, task_id: str, marking: str) -> bool:
        return bool(self._query("SELECT 1 FROM lines WHERE task_id = ? AND marking = ?", (task_id, marking)))

    @staticmethod
    def insert_line(conn: sqlite3.Connection, task_id: str, data: dict[str, Any], line_no: int | None,
                    qty: str, marking: str | None, now: float) -> None:
        conn.execute(
            "INSERT INTO lines (line_id, task_id, data, line_no, qty, marking, scanned_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (data["line_id"], task_id, json.dumps(data, ensure_ascii=False), line_no, qty, marking, now),
        )

    # Pending events ----------------------------------------------------------------------------
    @staticmethod
    def add_pending(conn: sqlite3.Connection, device: str, event_type: str, data: dict[str, Any]) -> None:
        conn.execute(
            "INSERT INTO pending (device, type, data) VALUES (?, ?, ?)",
            (device, event_type, json.dumps(data, ensure_ascii=False)),
        )

    def pending(self, limit: int = 500) -> list[PendingEvent]:
        rows = self._query("SELECT id, device, type, data FROM pending ORDER BY id LIMIT ?", (limit,))
        return [PendingEvent(int(r[0]), str(r[1]), str(r[2]), json.loads(r[3])) for r in rows]

    def drop_pending(self, event_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM pending WHERE id = ?", (event_id,))

    # Sessions ------------------------------------------------------------------------------------
    def save_session(self, row: SessionRow) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sessions (token, terminal, user, name, expires_at) VALUES (?, ?, ?, ?, ?)",
                (row.token, row.terminal, row.user, row.name, row.expires_at),
            )

    def session(self, token: str) -> SessionRow | None:
        rows = self._query("SELECT token, terminal, user, name, expires_at FROM sessions WHERE token = ?", (token,))
        if not rows:
            return None
        r = rows[0]
        return SessionRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), float(r[4]))

    def drop_session(self, token: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE token = ?", (token,))

    def prune_sessions(self, now: float) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))


def _task(row: sqlite3.Row | tuple[Any, ...]) -> TaskRow:
    spec, status, assigned_at, completed_at, completed_by = row
    return TaskRow(TaskSpec.model_validate_json(spec), TaskStatus(status), float(assigned_at),
                   None if completed_at is None else float(completed_at), completed_by)
