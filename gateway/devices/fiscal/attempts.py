"""The family's own durable record of every document attempt: what the FN looked like before.

The journal knows a command ran; it cannot know what a fiscal register did with it. Before the
first byte of a document goes to the register, the binding stores here (SQLite, WAL,
``synchronous=FULL``: committed means on disk) the FN's last FD number and the document's
fingerprint — kind, settlement sign, total, item count — with the raw args and their journal
``args_hash``. When the gateway dies mid-document, ``recover`` finds the attempt and reads the FN
for a document *after* that FD number with the same fingerprint: that is ours, never printed
again. A receipt found open is cancelled: then nothing was fiscalized.

An attempt is pinned to its command by ``claimed_by`` (the command id, from the action's
``CommandContext``) and matched to a journal entry by (command id, action, args_hash). It becomes
*delivered* once the dispatcher has journaled its reply (a ``journaled`` hook) or the worker calls
the binding again after a recovery; attempts left undelivered are retired when the next new
command reaches the register (every recovery of a start runs before it). ``claimed_by`` may be
empty for a binding run without a command context: then the newest undelivered attempt with the
same (action, args_hash) is taken.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import StorageError
from gateway.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    action      TEXT NOT NULL,
    args_hash   TEXT NOT NULL,
    args        TEXT NOT NULL,
    fd_before   INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    sign        INTEGER,
    total       INTEGER,
    items       INTEGER NOT NULL DEFAULT 0,
    started_at  REAL NOT NULL,
    state       TEXT NOT NULL DEFAULT 'prepared',
    document    TEXT,
    emitted     INTEGER NOT NULL DEFAULT 0,
    delivered   INTEGER NOT NULL DEFAULT 0,
    claimed_by  TEXT
);
CREATE INDEX IF NOT EXISTS attempts_open ON attempts (delivered) WHERE delivered = 0;
"""

PREPARED = "prepared"  # recorded; the register may or may not have the document
FISCALIZED = "fiscalized"  # the FN has it: ``document`` holds it
FAILED = "failed"  # the register refused: nothing fiscalized
UNKNOWN = "unknown"  # the link failed mid-document and the FN could not be read yet


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    action: str
    args_hash: str
    args: dict[str, Any]
    fd_before: int
    kind: str
    sign: int | None
    total: int | None
    items: int
    started_at: float
    state: str
    document: dict[str, Any] | None
    emitted: bool
    claimed_by: str | None


class AttemptStore:
    """SQLite table of document attempts. Thread-safe; used from the device's worker thread."""

    def __init__(self, path: Path, *, clock: Any = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._conn = connect(path, "full")
        try:
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open fiscal attempts {path}: {exc}") from exc

    def begin(
        self, action: str, args_hash: str, args: dict[str, Any], *, fd_before: int, kind: str,
        sign: int | None, total: int | None, items: int, claimed_by: str | None = None,
    ) -> int:
        """Record an attempt (durable on return): call before the first byte goes to the register."""
        return self._write(
            "INSERT INTO attempts (action, args_hash, args, fd_before, kind, sign, total, items, started_at,"
            " claimed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (action, args_hash, json.dumps(args, default=str), fd_before, kind, sign, total, items, self._clock(),
             claimed_by),
        )

    def settle(self, attempt_id: int, state: str, document: dict[str, Any] | None = None) -> None:
        self._write(
            "UPDATE attempts SET state = ?, document = COALESCE(?, document) WHERE id = ?",
            (state, json.dumps(document) if document is not None else None, attempt_id),
        )

    def mark_emitted(self, attempt_id: int) -> None:
        self._write("UPDATE attempts SET emitted = 1 WHERE id = ?", (attempt_id,))

    def mark_delivered(self, attempt_id: int) -> None:
        self._write("UPDATE attempts SET delivered = 1 WHERE id = ?", (attempt_id,))

    def retire_undelivered(self) -> int:
        """Every attempt still undelivered can no longer belong to a running command."""
        return self._write("UPDATE attempts SET delivered = 1 WHERE delivered = 0", ())

    def claim(self, action: str, args_hash: str, command_id: str) -> Attempt | None:
        """The newest undelivered attempt of this (action, args) not pinned to another command."""
        with self._lock:
            try:
                row = self._conn.execute(
                    f"SELECT {_COLUMNS} FROM attempts WHERE delivered = 0 AND action = ? AND args_hash = ?"
                    " AND (claimed_by IS NULL OR claimed_by = ?) ORDER BY id DESC LIMIT 1",
                    (action, args_hash, command_id),
                ).fetchone()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read fiscal attempts {self.path}: {exc}") from exc
        if row is None:
            return None
        attempt = _attempt(row)
        if attempt.claimed_by is None:
            self._write("UPDATE attempts SET claimed_by = ? WHERE id = ?", (command_id, attempt.id))
        return attempt

    def latest_for(self, command_id: str) -> Attempt | None:
        """The newest attempt made for ``command_id``."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM attempts WHERE claimed_by = ? ORDER BY id DESC LIMIT 1", (command_id,)
            ).fetchone()
        return None if row is None else _attempt(row)

    def get(self, attempt_id: int) -> Attempt | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
        return None if row is None else _attempt(row)

    def unresolved(self) -> list[Attempt]:
        """Attempts whose outcome is not known yet (``prepared`` or ``unknown``), oldest first."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM attempts WHERE state IN (?, ?) AND delivered = 0 ORDER BY id",
                (PREPARED, UNKNOWN),
            ).fetchall()
        return [_attempt(r) for r in rows]

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
            except sqlite3.Error as exc:
                try:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise StorageError(f"cannot write fiscal attempts {self.path}: {exc}") from exc
            return int(cur.lastrowid or 0) if sql.startswith("INSERT") else cur.rowcount


_COLUMNS = (
    "id, action, args_hash, args, fd_before, kind, sign, total, items, started_at, state, document, emitted,"
    " claimed_by"
)


def _attempt(row: tuple[Any, ...]) -> Attempt:
    return Attempt(
        id=row[0], action=row[1], args_hash=row[2], args=json.loads(row[3]), fd_before=row[4], kind=row[5],
        sign=row[6], total=row[7], items=row[8], started_at=row[9], state=row[10],
        document=json.loads(row[11]) if row[11] else None, emitted=bool(row[12]), claimed_by=row[13],
    )
