"""The family's durable record of every print job: how many labels of a command came out.

The journal stores one reply per ``command_id``; it cannot say "3 of 5 printed, go on with
2". This table can. One row per command id, written (SQLite WAL, ``synchronous=FULL``:
committed means on disk) *before* labels go to the printer and again when the driver says
how the batch ended:

``new`` → ``sending`` (a batch of ``in_flight`` labels is on the wire) → ``stopped`` (a fault
stopped it; ``confirmed`` is exact, the rest was cancelled with ``~JA``) or ``done`` or
``unknown`` (the link was lost while printing: ``confirmed`` is only a lower bound).

A row found ``sending`` when a job starts means the previous process died mid-batch: the
count is unknown and the binding refuses to guess (``unknown``). Rows are forgotten after
``keep_days`` like the journal's.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import StorageError
from gateway.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS label_jobs (
    command_id  TEXT PRIMARY KEY,
    args_hash   TEXT NOT NULL,
    requested   INTEGER NOT NULL,
    confirmed   INTEGER NOT NULL DEFAULT 0,
    in_flight   INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL DEFAULT 'new',
    reason      TEXT,
    updated_at  REAL NOT NULL
);
"""

NEW = "new"
SENDING = "sending"
STOPPED = "stopped"
DONE = "done"
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Job:
    command_id: str
    args_hash: str
    requested: int
    confirmed: int
    in_flight: int
    attempts: int
    state: str
    reason: str | None

    @property
    def remaining(self) -> int:
        return self.requested - self.confirmed

    def as_dict(self) -> dict[str, Any]:
        """What a reply carries (``result`` of ``done``, ``result.last`` of ``failed``)."""
        return {
            "copies_requested": self.requested,
            "copies_confirmed": self.confirmed,
            "copies_remaining": self.remaining,
            "attempts": self.attempts,
            "state": self.state,
            "reason": self.reason,
        }


class ProgressStore:
    """SQLite table of label jobs by command id. Thread-safe (used from the worker thread)."""

    def __init__(self, path: Path, *, clock: Any = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._conn = connect(path, "full")
        try:
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open label job table {path}: {exc}") from exc

    def get(self, command_id: str) -> Job | None:
        with self._lock:
            try:
                row = self._conn.execute(
                    "SELECT command_id, args_hash, requested, confirmed, in_flight, attempts, state, reason"
                    " FROM label_jobs WHERE command_id = ?",
                    (command_id,),
                ).fetchone()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read {self.path}: {exc}") from exc
        return None if row is None else Job(*row)

    def create(self, command_id: str, args_hash: str, requested: int) -> Job:
        self._write(
            "INSERT OR IGNORE INTO label_jobs (command_id, args_hash, requested, updated_at) VALUES (?, ?, ?, ?)",
            (command_id, args_hash, requested, self._clock()),
        )
        job = self.get(command_id)
        assert job is not None
        return job

    def sending(self, command_id: str, copies: int) -> None:
        """Before the batch goes out: a crash from here on leaves the count unknown."""
        self._write(
            "UPDATE label_jobs SET state = ?, in_flight = ?, attempts = attempts + 1, reason = NULL,"
            " updated_at = ? WHERE command_id = ?",
            (SENDING, copies, self._clock(), command_id),
        )

    def ended(self, command_id: str, state: str, printed: int, reason: str | None) -> Job:
        """The batch ended: add ``printed`` to the confirmed count, set the state."""
        self._write(
            "UPDATE label_jobs SET state = ?, confirmed = MIN(requested, confirmed + ?), in_flight = 0,"
            " reason = ?, updated_at = ? WHERE command_id = ?",
            (state, printed, reason, self._clock(), command_id),
        )
        job = self.get(command_id)
        assert job is not None
        return job

    def prune(self, keep_days: float) -> int:
        cutoff = self._clock() - keep_days * 86400.0
        return self._write("DELETE FROM label_jobs WHERE updated_at < ?", (cutoff,))

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                cur = self._conn.execute(sql, params)
                self._conn.execute("COMMIT")
                return cur.rowcount
            except sqlite3.Error as exc:
                try:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise StorageError(f"cannot write {self.path}: {exc}") from exc
