"""The command journal: at most one execution per ``command_id``, across restarts.

Odoo's IoT box deduplicated actions in an in-memory LRU, so a restart or a long-poll retry
printed twice. Here a command is written ``running`` (and fsynced: ``synchronous=FULL``,
commands are rare and a lost ``running`` row would let a receipt print twice after a power
cut) *before* the device is touched, and its final reply is stored when it ends. A repeat
of a finished command gets the stored reply (answered as ``duplicate``); a repeat of a
running one gets ``accepted`` again.

A finished command whose stored failure proves nothing happened (an action's ``rerun_on``) may be
run again under the same ``command_id``: :meth:`Journal.reopen` moves the row back to ``running``
in one ``BEGIN IMMEDIATE`` transaction (compare-and-set: only if it still holds that failure), keeps
the failure in ``previous`` and counts ``attempts``. A re-run is therefore protected exactly like a
first run: a concurrent repeat finds the row running, and a crash during the re-run leaves a
``running`` row that the next start hands to ``recover``.

A stored ``failed``/``unknown_outcome`` (nobody could tell whether a card was charged) stays the
answer to every repeat until someone settles it: :meth:`Journal.resolve` replaces it, compare-and-set
like ``reopen``, with the settled reply (the payment family's ``resolve`` command).

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
from protocols.bus import Reply, ReplyCode, ReplyStatus

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
    reply       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 1,
    previous    TEXT
);
CREATE INDEX IF NOT EXISTS commands_running ON commands (finished_at) WHERE finished_at IS NULL;
"""

_ADDED_COLUMNS = {
    "attempts": "ALTER TABLE commands ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1",
    "previous": "ALTER TABLE commands ADD COLUMN previous TEXT",
}
"""Columns a journal written by an older gateway lacks (added in place when it is opened)."""

_UNKNOWN_OUTCOME = ReplyCode.UNKNOWN_OUTCOME.value

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
    attempts: int = 1
    """How many times the command was started (``begin`` and every :meth:`Journal.reopen`)."""
    previous: Reply | None = None
    """The failure a re-run started from (:meth:`Journal.reopen`), or the ``unknown_outcome`` a
    :meth:`Journal.resolve` replaced, else ``None``."""

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
        self._durable = True  # the connection's current ``synchronous``: FULL
        try:
            self._conn.executescript(_SCHEMA)
            present = {row[1] for row in self._conn.execute("PRAGMA table_info(commands)")}
            for column, ddl in _ADDED_COLUMNS.items():
                if column not in present:
                    self._conn.execute(ddl)
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
        """Store the final reply of a command started with :meth:`begin`.

        Committed without its own fsync (``synchronous=NORMAL`` for this transaction): it is in
        the WAL, so it survives the process being killed, and the next durable commit (any
        ``begin``) or checkpoint flushes it. Only a power cut or OS crash in between can lose it,
        and then the row is still ``running``: the next start hands it to the binding's
        ``recover``, as for a crash mid-command. What must be on disk before the device is
        touched is the ``running`` row, and :meth:`begin` fsyncs that. One fsync per command, not
        two: the second one cost as much as the scale's own answer.
        """
        if not reply.status.is_final:
            raise ValueError(f"finish() needs a final reply, got {reply.status}")
        with self._lock:
            self._write(
                "UPDATE commands SET finished_at = ?, reply = ? WHERE command_id = ?",
                (self._clock(), reply.model_dump_json(), command_id),
                durable=False,
            )

    def reopen(self, command_id: str, expected_status: ReplyStatus, expected_code: str | None) -> bool:
        """Move a finished command back to ``running`` if it still holds the expected final reply.

        A compare-and-set in one ``BEGIN IMMEDIATE`` transaction (``synchronous=FULL``: durable on
        return): ``True`` only for the caller that found the row finished with ``expected_status``
        and ``expected_code``; the stored reply moves to ``previous`` and ``attempts`` grows by one.
        ``False`` when the row is missing, running, or holds another reply (someone else re-ran it):
        the caller then answers the repeat from :meth:`lookup` and must not touch the device.
        """
        with self._lock:
            try:
                self._begin(durable=True)
                row = self._conn.execute(
                    "SELECT reply FROM commands WHERE command_id = ? AND finished_at IS NOT NULL", (command_id,)
                ).fetchone()
                stored = Reply.model_validate_json(row[0]) if row is not None and row[0] else None
                if stored is None or (stored.status, stored.code) != (expected_status, expected_code):
                    self._conn.execute("ROLLBACK")
                    return False
                self._conn.execute(
                    "UPDATE commands SET previous = reply, reply = NULL, finished_at = NULL, started_at = ?,"
                    " attempts = attempts + 1 WHERE command_id = ?",
                    (self._clock(), command_id),
                )
                self._conn.execute("COMMIT")
                return True
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(f"cannot write journal {self.path}: {exc}") from exc

    def resolve(self, command_id: str, reply: Reply) -> bool:
        """Replace a stored ``failed``/``unknown_outcome`` by ``reply``: a person (or the device, asked
        again later) settled what happened, and every repeat of ``command_id`` now gets that answer.

        A compare-and-set in one ``BEGIN IMMEDIATE`` transaction (``synchronous=FULL``: durable on
        return), like :meth:`reopen`: ``True`` only if the row still held ``unknown_outcome``; the
        replaced reply moves to ``previous`` (the record of what was unknown), ``finished_at`` becomes
        now. ``False`` when the row is missing, running, or holds any other reply (already resolved,
        or re-run): nothing is written.
        """
        if not reply.status.is_final:
            raise ValueError(f"resolve() needs a final reply, got {reply.status}")
        if reply.command_id != command_id:
            raise ValueError(f"resolve() of {command_id!r} got the reply of {reply.command_id!r}")
        with self._lock:
            try:
                self._begin(durable=True)
                row = self._conn.execute(
                    "SELECT reply FROM commands WHERE command_id = ? AND finished_at IS NOT NULL", (command_id,)
                ).fetchone()
                stored = Reply.model_validate_json(row[0]) if row is not None and row[0] else None
                if stored is None or (stored.status, stored.code) != (ReplyStatus.FAILED, _UNKNOWN_OUTCOME):
                    self._conn.execute("ROLLBACK")
                    return False
                self._conn.execute(
                    "UPDATE commands SET previous = reply, reply = ?, finished_at = ? WHERE command_id = ?",
                    (reply.model_dump_json(), self._clock(), command_id),
                )
                self._conn.execute("COMMIT")
                return True
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(f"cannot write journal {self.path}: {exc}") from exc

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
                "SELECT command_id, device, action, args_hash, reply_to, args, reply, attempts, previous"
                " FROM commands WHERE command_id = ?",
                (command_id,),
            ).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read journal {self.path}: {exc}") from exc
        if row is None:
            return None
        reply = Reply.model_validate_json(row[6]) if row[6] else None
        previous = Reply.model_validate_json(row[8]) if row[8] else None
        return StoredReply(
            row[0], row[1], row[2], row[3], row[4], json.loads(row[5] or "{}"), reply, int(row[7] or 1), previous
        )

    def _write(self, sql: str, params: tuple[Any, ...], *, durable: bool = True) -> int:
        """One statement in its own transaction; ``durable``: fsynced before returning."""
        try:
            self._begin(durable=durable)
            cur = self._conn.execute(sql, params)
            self._conn.execute("COMMIT")
            return cur.rowcount
        except sqlite3.Error as exc:
            self._rollback()
            raise StorageError(f"cannot write journal {self.path}: {exc}") from exc

    def _begin(self, *, durable: bool) -> None:
        """``BEGIN IMMEDIATE``, with ``synchronous`` FULL (fsync at commit) or NORMAL for it."""
        if durable != self._durable:  # a pragma: takes effect between transactions only
            self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._durable = durable
        self._conn.execute("BEGIN IMMEDIATE")

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
