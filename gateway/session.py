"""The bus ``session`` counter: +1 on every MQTT connect, kept on disk across restarts.

The cloud pairs a gateway's Will (``online=false, session=N``) with the birth that follows
(``online=true, session=N+1``) and ignores late messages of an older session, so the value must
never go back, even after a crash or a power loss. It is written to a temporary file, fsynced
and renamed over the old one, so a reader always finds either the old or the new number.
A corrupt or missing-but-expected file restarts the counter from the clock in seconds, which is
larger than any count of reconnects and so still monotonic.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from gateway.errors import StorageError

log = logging.getLogger(__name__)


class SessionCounter:
    """Thread-safe persistent counter; ``advance()`` is called right before each connect."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._value = self._load()

    @property
    def current(self) -> int:
        return self._value

    def advance(self) -> int:
        """Increment, persist, and return the new session number."""
        with self._lock:
            value = self._value + 1
            self._store(value)
            self._value = value
            return value

    def _load(self) -> int:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise StorageError(f"cannot read session counter {self.path}: {exc}") from exc
        try:
            value = int(text)
            if value < 0:
                raise ValueError(text)
            return value
        except ValueError:
            fallback = int(time.time())
            log.error("session counter %s is corrupt (%r); restarting it at %d", self.path, text[:32], fallback)
            return fallback

    def _store(self, value: int) -> None:
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="ascii") as fh:
                fh.write(f"{value}\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise StorageError(f"cannot write session counter {self.path}: {exc}") from exc
