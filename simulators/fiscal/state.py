"""The simulated fiscal storage (ФН) and register counters, persisted atomically to JSON.

A real ФН keeps its documents through power loss; so does this file: it is rewritten whole
to ``<file>.tmp`` then ``os.replace``d after every fiscal document and shift change, so a kill
at any instant leaves either the old or the new state, never half of one.

Fiscal sign (ФПД, tag 1077): HMAC-SHA256 keyed with the FN's secret over the document's
canonical bytes ``fd_number(4 LE) | doc_type(1) | YY MM DD HH MM | operation(1) | total(5 LE)``,
truncated to its first 4 bytes read big-endian. Deterministic (the same document always gets
the same sign, so tests can recompute it) and different per FN key, which is all a tester
needs from the real FN's GOST-based MAC.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

KEEP_DOCUMENTS = 500
"""Documents kept for FF0A look-ups (the real archive keeps all; tests need the last few)."""


@dataclass
class StoredDocument:
    fd_number: int
    doc_type: int
    issued_at: str  # ISO, register local time, minutes
    fiscal_sign: int
    operation: int = 0
    total: int = 0  # kopecks
    shift_number: int = 0
    receipt_number: int = 0


@dataclass
class FnState:
    fn_number: str = "9999078900012345"
    key_hex: str = "76697472696e612d73696d2d666e2d6b6579"
    capacity: int = 250_000
    expires: str = "2027-12-31"
    last_fd: int = 0
    shift_open: bool = False
    shift_number: int = 0
    shift_opened_at: str | None = None
    receipt_number: int = 0
    document_number: int = 0  # the register's own counter (full status)
    sales_total: int = 0
    returns_total: int = 0
    documents: list[StoredDocument] = field(default_factory=list)

    def sign(self, fd_number: int, doc_type: int, issued_at: dt.datetime, operation: int, total: int) -> int:
        msg = (
            fd_number.to_bytes(4, "little")
            + bytes([doc_type])
            + bytes((issued_at.year - 2000, issued_at.month, issued_at.day, issued_at.hour, issued_at.minute))
            + bytes([operation])
            + total.to_bytes(5, "little")
        )
        return int.from_bytes(hmac.new(bytes.fromhex(self.key_hex), msg, hashlib.sha256).digest()[:4], "big")

    def find(self, fd_number: int) -> StoredDocument | None:
        for doc in reversed(self.documents):
            if doc.fd_number == fd_number:
                return doc
        return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FnState:
        docs = [StoredDocument(**d) for d in data.pop("documents", [])]
        return cls(**data, documents=docs)


class StateFile:
    """Load/save ``FnState``; ``path`` None keeps it in memory only."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None

    def load(self) -> FnState:
        if self.path is None or not self.path.exists():
            return FnState()
        return FnState.from_json(json.loads(self.path.read_text(encoding="utf-8")))

    def save(self, state: FnState) -> None:
        if self.path is None:
            return
        state.documents = state.documents[-KEEP_DOCUMENTS:]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state.to_json(), fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
