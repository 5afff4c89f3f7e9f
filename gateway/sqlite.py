"""Opening the gateway's SQLite files the same careful way (WAL, busy timeout, one lock)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

from gateway.errors import StorageError


def connect(path: Path, synchronous: Literal["normal", "full"]) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with autocommit off only inside explicit transactions.

    ``isolation_level=None`` so that every transaction is an explicit ``BEGIN IMMEDIATE`` …
    ``COMMIT`` (the default driver mode opens transactions implicitly and hides when a row
    is durable). ``check_same_thread=False`` because callers serialise access with their own lock.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(f"cannot open database {path}: {exc}") from exc
