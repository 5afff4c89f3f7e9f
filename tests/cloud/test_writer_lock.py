"""The SQLite writer lock orders writers across processes and lets a waiter in promptly."""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cloud.writer_lock import WriterLock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")


def _hold(path: str, hold_s: float, held: Any, released: Any) -> None:
    lock = WriterLock(Path(path))
    assert lock.acquire(timeout=5)
    held.set()
    time.sleep(hold_s)
    released.value = time.monotonic()
    lock.release()


@contextmanager
def held_elsewhere(database: Path, hold_s: float) -> Iterator[Any]:
    """Another process takes the lock on ``database`` and holds it ``hold_s`` seconds; yields the
    shared value its release time (``time.monotonic``) is written to."""
    ctx = multiprocessing.get_context("spawn")
    held, released = ctx.Event(), ctx.Value("d", 0.0)
    other = ctx.Process(target=_hold, args=(str(database), hold_s, held, released))
    other.start()
    try:
        assert held.wait(30)
        yield released
    finally:
        other.join(10)


def test_a_writer_in_another_process_waits_and_gets_in_right_after_the_release(tmp_path: Path) -> None:
    with held_elsewhere(tmp_path / "v.db", 0.3) as released:
        lock = WriterLock(tmp_path / "v.db")
        assert lock.acquire(timeout=5)
        got = time.monotonic()
        assert released.value > 0, "got the lock while the other process held it"
        assert got - released.value < 0.05, "a waiter wakes within milliseconds of the release"
        lock.release()


def test_a_holder_that_never_lets_go_times_the_waiter_out(tmp_path: Path) -> None:
    with held_elsewhere(tmp_path / "v.db", 2.0):
        lock = WriterLock(tmp_path / "v.db")
        t0 = time.monotonic()
        assert not lock.acquire(timeout=0.2)
        assert 0.2 <= time.monotonic() - t0 < 1.0
        assert lock._thread_lock.acquire(blocking=False), "a failed acquire leaves the thread lock free"
        lock._thread_lock.release()


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    import threading

    lock = WriterLock(tmp_path / "v.db")
    inside: list[int] = []
    overlaps: list[int] = []

    def writer(i: int) -> None:
        for _ in range(50):
            assert lock.acquire(timeout=5)
            inside.append(i)
            if len(inside) > 1:
                overlaps.append(i)
            time.sleep(0.0001)
            inside.remove(i)
            lock.release()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []
