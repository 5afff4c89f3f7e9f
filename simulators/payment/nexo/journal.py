"""The POI's memory of Payment and Reversal exchanges, for TransactionStatus.

One row per (SaleID, MessageCategory, ServiceID), kept in the model's SQLite state file so a
restarted simulator still answers for what it did: ``running`` from the moment the request is
accepted, then ``done`` with the encoded response (what TransactionStatus repeats). A newer
request with the same key replaces the row, as a terminal keeps the latest use of a ServiceID.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RUNNING = "running"
DONE = "done"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nexo_journal (
    sale_id TEXT NOT NULL, category TEXT NOT NULL, service_id TEXT NOT NULL,
    state TEXT NOT NULL, request TEXT NOT NULL, response TEXT, started TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (sale_id, category, service_id)
)
"""


@dataclass(frozen=True)
class Row:
    sale_id: str
    category: str
    service_id: str
    state: str
    request: bytes
    response: bytes | None
    started: str


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with self._tx() as db:
            db.execute(_SCHEMA)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    @staticmethod
    def _next_seq(db: sqlite3.Connection) -> int:
        (last,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM nexo_journal").fetchone()
        return int(last) + 1

    def begin(self, sale_id: str, category: str, service_id: str, request: bytes, started: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO nexo_journal VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
                (sale_id, category, service_id, RUNNING, request.decode(), started, self._next_seq(db)),
            )

    def finish(self, sale_id: str, category: str, service_id: str, response: bytes) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE nexo_journal SET state = ?, response = ?, seq = ? "
                "WHERE sale_id = ? AND category = ? AND service_id = ?",
                (DONE, response.decode(), self._next_seq(db), sale_id, category, service_id),
            )

    def get(self, sale_id: str, category: str, service_id: str) -> Row | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT sale_id, category, service_id, state, request, response, started FROM nexo_journal "
                "WHERE sale_id = ? AND category = ? AND service_id = ?", (sale_id, category, service_id)
            ).fetchone()
        return None if row is None else self._row(row)

    def last_done(self, sale_id: str) -> Row | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT sale_id, category, service_id, state, request, response, started FROM nexo_journal "
                "WHERE sale_id = ? AND state = ? ORDER BY seq DESC LIMIT 1", (sale_id, DONE)
            ).fetchone()
        return None if row is None else self._row(row)

    def running(self) -> list[Row]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT sale_id, category, service_id, state, request, response, started FROM nexo_journal "
                "WHERE state = ? ORDER BY seq", (RUNNING,)
            ).fetchall()
        return [self._row(r) for r in rows]

    @staticmethod
    def _row(row: tuple[str, ...]) -> Row:
        sale_id, category, service_id, state, request, response, started = row
        return Row(sale_id, category, service_id, state, request.encode(),
                   None if response is None else response.encode(), started)
