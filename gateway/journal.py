"""The command journal: at most one execution per ``command_id``, across restarts.

Odoo's IoT box deduplicated actions in an in-memory LRU, so a restart or a long-poll retry
printed twice. Here a command is written ``running`` (and fsynced: ``synchronous=FULL``,
commands are rare and a lost ``running`` row would let a receipt print twice after a power
cut) *before* the device is touched, and its final reply is stored when it ends. A repeat
of a finished command gets the stored reply (answered as ``duplicate``); a repeat of a
running one gets ``accepted`` again.

A row still ``running`` at startup means the gateway died mid-command: the outcome is unknown.
The runtime hands such rows to the device binding's ``recover`` hook (a fiscal register asks for
its last document) and stores what it returns with :meth:`Journal.finish`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import StorageError
from gateway.sqlite import connect
from protocols.bus import Reply, ReplyStatus

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    command_id  TEXT PRIMARY KEY,
    device      TEXT NOT NULL,
    action      TEXT NOT NULL,
    args_hash   TEXT NOT NULL,
    reply_to    TEXT,
    args        TEXT NOT NULL DEFAULT '{}',
    started_at  REAL NOT NULL,
    finished_at REAL,
    reply       TEXT
);
CREATE INDEX IF NOT EXISTS commands_running ON commands (finished_at) WHERE finished_at IS NULL;
"""

GATEWAY_TARGET = "$gw"
"""The ``device`` column value of gateway commands (``$`` can never be a device id)."""


def args_hash(args: dict[str, Any]) -> str:
    """Stable digest of a command's args, to notice a ``command_id`` reused for other work."""
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class StoredReply:
    """What the journal knows about one command. ``reply`` is ``None`` while it runs."""

    command_id: str
    device: str
    action: str
    args_hash: str
    reply_to: str | None
    args: dict[str, Any]
    reply: Reply | None

    @property
    def running(self) -> bool:
        return self.reply is None

    @property
    def status(self) -> ReplyStatus | None:
        return None if self.reply is None else self.reply.status


class Journal:
    """SQLite journal of commands. Thread-safe."""

    def __init__(self, path: Path, *, clock: Any = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._conn = connect(path, "full")
        try:
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open journal {path}: {exc}") from exc

    def lookup(self, command_id: str) -> StoredReply | None:
        with self._lock:
            return self._lookup(command_id)

    def begin(
        self,
        command_id: str,
        device: str,
        action: str,
        args_hash: str,
        *,
        reply_to: str | None = None,
        args: dict[str, Any] | None = None,
    ) -> StoredReply | None:
        """Record a command as running; ``None`` if it is new, else what is already stored.

        Commits before returning: the caller may touch the device only after ``None``.
        """
        with self._lock:
            existing = self._lookup(command_id)
            if existing is not None:
                return existing
            self._write(
                "INSERT INTO commands (command_id, device, action, args_hash, reply_to, args, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (command_id, device, action, args_hash, reply_to, json.dumps(args or {}, default=str), self._clock()),
            )
            return None

    def finish(self, command_id: str, reply: Reply) -> None:
        """Store the final reply of a command started with :meth:`begin`."""
        if not reply.status.is_final:
            raise ValueError(f"finish() needs a final reply, got {reply.status}")
        with self._lock:
            self._write(
                "UPDATE commands SET finished_at = ?, reply = ? WHERE command_id = ?",
                (self._clock(), reply.model_dump_json(), command_id),
            )

    def record(
        self, command_id: str, device: str, action: str, args_hash: str, reply: Reply, *, reply_to: str | None = None
    ) -> None:
        """Store a command that ended without running (``expired``): a retry gets the same answer."""
        now = self._clock()
        with self._lock:
            self._write(
                "INSERT OR IGNORE INTO commands (command_id, device, action, args_hash, reply_to, started_at,"
                " finished_at, reply) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (command_id, device, action, args_hash, reply_to, now, now, reply.model_dump_json()),
            )

    def running(self) -> list[StoredReply]:
        """Commands started and never finished (the gateway died while they ran)."""
        with self._lock:
            try:
                ids = [r[0] for r in self._conn.execute("SELECT command_id FROM commands WHERE finished_at IS NULL")]
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read journal {self.path}: {exc}") from exc
            found = [self._lookup(i) for i in ids]
        return [f for f in found if f is not None]

    def prune(self, keep_days: float) -> int:
        """Forget finished commands older than ``keep_days`` (senders stop retrying long before)."""
        cutoff = self._clock() - keep_days * 86400.0
        with self._lock:
            return self._write("DELETE FROM commands WHERE finished_at IS NOT NULL AND finished_at < ?", (cutoff,))

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error as exc:
                log.warning("closing journal %s: %s", self.path, exc)

    # Internals ---------------------------------------------------------------------------
    def _lookup(self, command_id: str) -> StoredReply | None:
        try:
            row = self._conn.execute(
                "SELECT command_id, device, action, args_hash, reply_to, args, reply FROM commands WHERE command_id = ?",
                (command_id,),
            ).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read journal {self.path}: {exc}") from exc
        if row is None:
            return None
        reply = Reply.model_validate_json(row[6]) if row[6] else None
        return StoredReply(row[0], row[1], row[2], row[3], row[4], json.loads(row[5] or "{}"), reply)

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
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
            raise StorageError(f"cannot write journal {self.path}: {exc}") from exc
