"""N handhelds at once, each running a count task, with resends and a reconnect mid-task.

Each handheld ``i`` logs in, connects, opens its task, scans ``scans`` lines (the barcodes of
the task in turn), resends every ``resend_every``-th line with the same ``line_id`` (a lost
answer), drops and reopens its WebSocket halfway (a handheld leaving Wi-Fi), and completes.
The result lists what each handheld believes it sent, to compare with what the gateway
published.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from simulators.handheld.client import HandheldClient, Scan


@dataclass(frozen=True)
class LoadConfig:
    base_url: str
    terminals: tuple[str, ...]
    tasks: tuple[str, ...]
    """One task id per terminal (the same id twice: two handhelds share a task, left open)."""
    barcodes: tuple[str, ...]
    scans: int = 10
    user: str = "Кладовщик"
    pin: str = "2580"
    resend_every: int = 3
    reconnect: bool = True


@dataclass
class LoadResult:
    sent: dict[str, list[str]] = field(default_factory=dict)
    """terminal → the line ids the gateway accepted (resends counted once)."""
    duplicates_answered: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_load(config: LoadConfig) -> LoadResult:
    result = LoadResult()
    lock = threading.Lock()
    start = threading.Barrier(len(config.terminals))

    def one(index: int, terminal: str, task_id: str) -> None:
        client = HandheldClient(config.base_url, terminal, battery=0.5 + index / 100)
        accepted: list[str] = []
        duplicates = 0
        try:
            client.login(f"{config.user} {index}", config.pin)
            client.connect()
            start.wait(10)
            client.open(task_id)
            for n in range(config.scans):
                line_id = f"{terminal}-{n:04d}-line"
                scan = Scan(config.barcodes[n % len(config.barcodes)], line_id=line_id)
                client.scan(task_id, scan)
                accepted.append(line_id)
                if config.resend_every and n % config.resend_every == 0:
                    duplicates += bool(client.scan(task_id, scan)["duplicate"])
                if config.reconnect and n == config.scans // 2:
                    client.disconnect()
                    client.connect()
                    client.open(task_id)
            if config.tasks.count(task_id) == 1:  # a shared task is left open: its handhelds still scan
                client.complete(task_id)
        except Exception as exc:
            with lock:
                result.errors.append(f"{terminal}: {type(exc).__name__}: {exc}")
        finally:
            client.close()
            with lock:
                result.sent[terminal] = accepted
                result.duplicates_answered += duplicates

    began = time.monotonic()
    threads = [
        threading.Thread(target=one, args=(i, t, task), name=f"handheld-{t}")
        for i, (t, task) in enumerate(zip(config.terminals, config.tasks, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    result.seconds = time.monotonic() - began
    return result
