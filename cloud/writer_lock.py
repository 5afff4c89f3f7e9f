"""One writer at a time on an SQLite file, across threads *and* processes, woken promptly.

SQLite lets one transaction write at a time; a second writer meets ``SQLITE_BUSY`` and its busy
handler sleeps 1, 2, 5, 10 … ms between tries, however soon the first one commits. Between two
processes on one file (the API and the bus consumer run as processes of their own) that cost the
command path several milliseconds whenever the consumer was storing a reply at the same moment.
So a writer first takes this lock: a ``threading.Lock`` inside the process and an advisory
``flock`` on ``<database>-writer.lock`` across processes, tried every 50 µs growing to 1 ms, so
it gets in within a millisecond of the holder's commit (a process that dies holding it releases
it with its file descriptor). It only orders writers: SQLite's own lock stays the real guard, and
a writer that cannot get this lock within its timeout goes on without it and meets
``busy_timeout`` as before. Without ``fcntl`` (Windows) it is the thread lock alone.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_FIRST_WAIT_S = 0.00005
_LONGEST_WAIT_S = 0.001


class WriterLock:
    """``acquire(timeout)`` / ``release()`` like ``threading.Lock``, across processes too."""

    def __init__(self, database: Path | None) -> None:
        self._thread_lock = threading.Lock()
        self._path = None if database is None else database.with_name(database.name + "-writer.lock")
        self._fd: int | None = None
        self._pid = 0  # the process that opened ``_fd``: a forked child opens its own

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self._thread_lock.acquire(timeout=max(timeout, 0.0)):
            return False
        if self._path is None or fcntl is None:
            return True
        try:
            if self._file_lock(deadline):
                return True
        except OSError:
            pass  # no lock file (read-only directory…): SQLite's busy_timeout orders the writers
        self._thread_lock.release()
        return False

    def release(self) -> None:
        if self._fd is not None and fcntl is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            except OSError:
                pass
        self._thread_lock.release()

    def _file_lock(self, deadline: float) -> bool:
        assert fcntl is not None and self._path is not None
        if self._fd is None or self._pid != os.getpid():  # a flock is shared with a fork's parent
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
        wait = _FIRST_WAIT_S
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(wait)
                wait = min(wait * 2, _LONGEST_WAIT_S)
