"""The store's price list on the gateway: the cloud's retained ``…/gw/pricelist``, kept in SQLite.

A list replaces the previous one whole, only if its ``version`` is higher (a replayed retained
message, or a late publish of an old list, changes nothing); the store keeps selling from the
last list it has while the cloud or the internet is down.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from gateway.errors import StorageError
from gateway.sqlite import connect
from protocols.bus import PayloadError, decode
from protocols.bus.sales import PriceItem, PriceList

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pricelist_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (product_id TEXT PRIMARY KEY, plu INTEGER, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS barcodes (code TEXT PRIMARY KEY, product_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS items_plu ON items (plu);
"""


class PriceStore:
    """Thread-safe; lookups by barcode, GTIN (a marking code's), PLU or product id."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn = connect(path, "full")
        try:
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open price list {path}: {exc}") from exc

    @property
    def version(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM pricelist_meta WHERE key = 'version'").fetchone()
        return int(row[0]) if row else 0

    def apply_payload(self, payload: bytes) -> str:
        """A message from ``…/gw/pricelist``: ``applied``, ``ignored`` (not newer) or ``invalid``."""
        if not payload:
            return "ignored"  # the retained list being cleared: keep selling from ours
        try:
            price_list = decode(PriceList, payload)
        except PayloadError as exc:
            log.error("price list refused: %s", exc.message)
            return "invalid"
        return "applied" if self.apply(price_list) else "ignored"

    def apply(self, price_list: PriceList) -> bool:
        """Replace the list if ``price_list.version`` is newer; True if it was."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                row = self._conn.execute("SELECT value FROM pricelist_meta WHERE key = 'version'").fetchone()
                current = int(row[0]) if row else 0
                if price_list.version <= current:
                    self._conn.execute("ROLLBACK")
                    log.info("price list v%d ignored: v%d is held", price_list.version, current)
                    return False
                self._conn.execute("DELETE FROM items")
                self._conn.execute("DELETE FROM barcodes")
                self._conn.executemany(
                    "INSERT INTO items (product_id, plu, doc) VALUES (?, ?, ?)",
                    [(i.product_id, i.plu, i.model_dump_json()) for i in price_list.items],
                )
                self._conn.executemany(
                    "INSERT INTO barcodes (code, product_id) VALUES (?, ?)",
                    [(_key(c), i.product_id) for i in price_list.items for c in i.barcodes],
                )
                self._conn.execute(
                    "INSERT INTO pricelist_meta (key, value) VALUES ('version', ?)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(price_list.version),),
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise StorageError(f"cannot store price list {self.path}: {exc}") from exc
        log.info("price list v%d applied: %d items", price_list.version, len(price_list.items))
        return True

    def by_barcode(self, code: str) -> PriceItem | None:
        return self._item("SELECT i.doc FROM barcodes b JOIN items i USING (product_id) WHERE b.code = ?",
                          (_key(code),))

    def by_plu(self, plu: int) -> PriceItem | None:
        return self._item("SELECT doc FROM items WHERE plu = ?", (plu,))

    def by_id(self, product_id: str) -> PriceItem | None:
        return self._item("SELECT doc FROM items WHERE product_id = ?", (product_id,))

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _item(self, sql: str, params: tuple[Any, ...]) -> PriceItem | None:
        with self._lock:
            try:
                row = self._conn.execute(sql, params).fetchone()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read price list {self.path}: {exc}") from exc
        return PriceItem.model_validate(json.loads(row[0])) if row else None


def _key(code: str) -> str:
    """Barcodes are matched as GTIN-14 when they are numeric GTINs (EAN-13 ``460…`` = ``0460…``)."""
    digits = code.strip()
    if digits.isdigit() and len(digits) in (8, 12, 13, 14):
        return digits.zfill(14)
    return digits
