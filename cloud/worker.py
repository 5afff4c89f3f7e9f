"""The Celery app, and the in-process runner that replaces it when there is no Redis.

With ``redis_url`` set: Redis is broker and result backend, and beat schedules the periodic
tasks. Without it (the one-machine default): tasks run eagerly in the calling process, and
:class:`PeriodicRunner` — a daemon thread — calls the periodic ones on the same schedule.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery, Task

from cloud.config import CloudSettings, get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    """A task run every ``every_s``; ``kwargs`` picks its arguments from the runner's settings."""

    task: str
    every_s: float
    kwargs: Callable[[CloudSettings], dict[str, Any]] | None = None


def _stale_kwargs(settings: CloudSettings) -> dict[str, Any]:
    return {"database_url": settings.database_url, "stale_after_s": settings.gateway_stale_after_s}


def _database_kwargs(settings: CloudSettings) -> dict[str, Any]:
    return {"database_url": settings.database_url}


PERIODIC = (
    Periodic("cloud.registry.mark_stale_gateways", 30.0, _stale_kwargs),
    # Backdated postings too big to recompute inline leave their (product, warehouse) pairs
    # dirty with a cursor; this finishes them in chunks and resumes after a crash.
    Periodic("cloud.inventory.recompute_dirty", 15.0, _database_kwargs),
    Periodic("cloud.catalog.publish_due_price_lists", 60.0,  # price lists whose prices took effect
             lambda s: {"database_url": s.database_url, "mqtt_url": s.mqtt_url, "bus_root": s.bus_root}),
    Periodic("cloud.inventory.sync_handheld_counts", 5.0, _database_kwargs),  # handheld count lines → counts
    Periodic("cloud.sales.ingest", 5.0, _database_kwargs),  # lane events → sales, returns, shifts, ledger
)


def create_celery(settings: CloudSettings) -> Celery:
    """A Celery app for ``settings`` (Redis when configured, eager in-process otherwise)."""
    app = Celery("vitrina")
    if settings.redis_url:
        app.conf.update(
            broker_url=settings.redis_url,
            result_backend=settings.redis_url,
            task_acks_late=True,  # a worker killed mid-task leaves the task to another
            task_reject_on_worker_lost=True,
            timezone="UTC",
            beat_schedule={p.task: {"task": p.task, "schedule": p.every_s} for p in PERIODIC},
        )
    else:
        app.conf.update(
            broker_url="memory://",
            result_backend="cache+memory://",
            task_always_eager=True,
            task_eager_propagates=True,
            timezone="UTC",
        )
    # Register every module's tasks on the app being finalized (a worker knows only these).
    import cloud.catalog.tasks
    import cloud.finance.tasks
    import cloud.inventory.handheld_counts
    import cloud.inventory.tasks
    import cloud.registry.tasks
    import cloud.sales.ingest  # noqa: F401

    return app


celery_app = create_celery(get_settings())


class PeriodicRunner(threading.Thread):
    """Run the periodic tasks in this process (no Redis): each one every ``every_s`` seconds.

    A failing run is logged and retried on the next tick; it never stops the thread.
    """

    def __init__(
        self,
        settings: CloudSettings | None = None,
        periodic: tuple[Periodic, ...] = PERIODIC,
        app: Celery | None = None,
    ) -> None:
        super().__init__(name="periodic-tasks", daemon=True)
        self.settings = settings or get_settings()
        self.app = app or celery_app
        self.periodic = periodic
        self._stop_event = threading.Event()
        self.runs = 0

    def run(self) -> None:
        import time

        due = {p.task: 0.0 for p in self.periodic}
        while not self._stop_event.is_set():
            now = time.monotonic()
            for p in self.periodic:
                if now >= due[p.task]:
                    due[p.task] = now + p.every_s
                    self._run_one(p)
            self._stop_event.wait(max(0.05, min(due.values()) - time.monotonic()))

    def _run_one(self, periodic: Periodic) -> None:
        task: Task = self.app.tasks[periodic.task]
        kwargs = periodic.kwargs(self.settings) if periodic.kwargs else {}
        try:
            task.apply(kwargs=kwargs, throw=True)
            self.runs += 1
        except Exception:
            log.exception("periodic task %s failed; retrying on the next tick", periodic.task)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        self.join(timeout)
