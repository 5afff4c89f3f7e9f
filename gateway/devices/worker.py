"""One thread and one queue per device: commands, polls and reconnects never overlap.

The worker owns the device's state machine: ``offline`` until the driver opens, ``online``
while calls succeed, back to ``offline`` (driver closed, file descriptor released — a held FD
is how a replugged USB scale became ``ttyUSB1`` in mqmgateway #9) on ``DeviceUnavailable`` or
after ``MAX_SILENT_POLLS`` polls in a row without an answer, then reopened with exponential
backoff. A misconfigured device (``DriverConfigError``) is ``error`` and retried slowly.

Commands that arrive while the device is offline fail at once with ``device_offline``: a
command is a live request, and running it minutes later when the device comes back would
surprise the person who sent it (the sender retries with the same ``command_id`` if it wants).
Status is reported through ``on_status`` only when it changed. While the device is online the
binding may add to it (:meth:`~gateway.devices.base.DeviceBinding.report_status`: ``error`` with
"нет бумаги", ``busy`` while a payment runs); that is published at once, even from inside a
long command; back to ``online`` is published after the job at hand (so a payment's final reply
precedes the terminal's ``online``); forgotten when the device goes down.

A recovery that needs the device waits (deferred) while the device is unreachable;
:meth:`DeviceWorker.recovery_pending` tells the dispatcher so, to answer a repeat of that command
``unknown_outcome`` instead of "already running".
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from drivers.errors import (
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnavailable,
    DriverConfigError,
    DriverError,
)
from gateway.devices.base import DeviceBinding, Outcome, StatusSnapshot
from gateway.errors import GatewayError
from gateway.journal import StoredReply
from protocols.bus import DeviceState, ReplyCode

log = logging.getLogger(__name__)

MAX_SILENT_POLLS = 3


@dataclass
class CommandJob:
    """Run ``action`` with parsed ``args``; ``done`` receives the outcome (worker thread)."""

    command_id: str
    action: str
    args: BaseModel
    done: Callable[[Outcome], None]


@dataclass
class RecoveryJob:
    """Resolve a command the journal found running at startup."""

    entry: StoredReply
    done: Callable[[Outcome], None]


@dataclass
class _Wake:
    reason: str = ""


@dataclass
class _Stop:
    pass


_Job = CommandJob | RecoveryJob | _Wake | _Stop


@dataclass
class _Backoff:
    minimum: float
    maximum: float
    current: float = field(default=0.0)

    def next_delay(self) -> float:
        self.current = self.minimum if self.current == 0 else min(self.current * 2, self.maximum)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


class DeviceWorker:
    """Supervises one binding on its own thread."""

    def __init__(
        self,
        binding: DeviceBinding,
        *,
        on_status: Callable[[str, StatusSnapshot], None],
        backoff_min: float = 0.5,
        backoff_max: float = 15.0,
    ) -> None:
        self.binding = binding
        self._on_status = on_status
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._backoff = _Backoff(backoff_min, backoff_max)
        self._thread: threading.Thread | None = None
        self._open = False
        self._next_open = 0.0
        self._next_poll = 0.0
        self._silent_polls = 0
        self._deferred: list[RecoveryJob] = []
        self._deferred_lock = threading.Lock()
        self._state = DeviceState.OFFLINE
        self._detail = "not opened yet"
        self._published: StatusSnapshot | None = None
        self._status_lock = threading.Lock()
        self._report_lock = threading.RLock()
        self.executed = 0
        binding.attach_status_listener(self._binding_reported)

    @property
    def id(self) -> str:
        return self.binding.id

    @property
    def state(self) -> DeviceState:
        return self._state

    @property
    def is_open(self) -> bool:
        return self._open

    def snapshot(self) -> StatusSnapshot:
        data = self._safe_status_data()  # first: the binding may report while it computes its data
        with self._status_lock:
            state, detail = self._state, self._detail
        reported = self.binding.reported_status
        if state is DeviceState.ONLINE and reported is not None:
            state, detail = reported
        return StatusSnapshot(state.value, detail, data)

    def recovery_pending(self, command_id: str) -> bool:
        """True while the recovery of ``command_id`` waits for the device to answer (any thread)."""
        with self._deferred_lock:
            return any(job.entry.command_id == command_id for job in self._deferred)

    # Control -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"device-{self.id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the job at hand, close the driver, end the thread."""
        self._queue.put(_Stop())
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("device %s did not stop within %.1f s", self.id, timeout)
            self._thread = None

    def validate(self, action: str, args: dict[str, Any]) -> BaseModel:
        """Parse a command's args (dispatcher thread; the binding's schemas are immutable)."""
        return self.binding.validate(action, args)

    def submit(self, job: CommandJob | RecoveryJob) -> None:
        self._queue.put(job)

    def kick(self) -> None:
        """Try to reopen now (``rescan``) instead of waiting for the backoff."""
        self._next_open = 0.0
        self._backoff.reset()
        self._queue.put(_Wake("rescan"))

    # Thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        self._report()
        try:
            while True:
                now = time.monotonic()
                if not self._open and now >= self._next_open:
                    self._try_open()
                    now = time.monotonic()
                try:
                    job = self._queue.get(timeout=self._wait_time(now))
                except queue.Empty:
                    job = None
                if isinstance(job, _Stop):
                    break
                try:
                    if isinstance(job, CommandJob):
                        self._run_command(job)
                    elif isinstance(job, RecoveryJob):
                        self._run_recovery(job)
                    elif job is None and self._open and time.monotonic() >= self._next_poll:
                        self._poll()
                except Exception:  # a binding bug must not kill the device thread
                    log.exception("device %s: unexpected error", self.id)
                self._report()
        finally:
            self._close("gateway stopping")

    def _wait_time(self, now: float) -> float:
        if not self._open:
            return max(0.0, self._next_open - now)
        if self.binding.poll_interval is None:
            return 1.0
        return max(0.0, self._next_poll - now)

    def _try_open(self) -> None:
        try:
            self.binding.open()
        except DriverConfigError as exc:
            self._went_down(DeviceState.ERROR, f"configuration: {exc.message}", slow=True)
            return
        except DriverError as exc:
            self._went_down(DeviceState.OFFLINE, exc.message)
            return
        except Exception as exc:
            log.exception("device %s: open failed unexpectedly", self.id)
            self._went_down(DeviceState.ERROR, f"open failed: {exc}", slow=True)
            return
        self._open = True
        self._silent_polls = 0
        self._backoff.reset()
        self._set(DeviceState.ONLINE, "")
        self._next_poll = time.monotonic()
        log.info("device %s online (%s %s)", self.id, self.binding.config.driver, self.binding.config.url)
        with self._deferred_lock:
            deferred, self._deferred = self._deferred, []
        for job in deferred:
            self._run_recovery(job)

    def _went_down(self, state: DeviceState, detail: str, *, slow: bool = False) -> None:
        self._close(detail)
        delay = self._backoff.next_delay()
        if slow:
            delay = max(delay, self._backoff.maximum)
        self._next_open = time.monotonic() + delay
        if (state, detail) != (self._state, self._detail):
            log.warning("device %s %s: %s (retry in %.1f s)", self.id, state.value, detail, delay)
        self._set(state, detail)

    def _close(self, reason: str) -> None:
        self.binding.clear_reported_status()
        if self._open:
            self._open = False
            try:
                self.binding.close()
            except Exception:
                log.exception("device %s: close failed", self.id)

    def _poll(self) -> None:
        interval = self.binding.poll_interval or 1.0
        self._next_poll = time.monotonic() + interval
        try:
            self.binding.poll()
            self._silent_polls = 0
            if self._state != DeviceState.ONLINE:
                self._set(DeviceState.ONLINE, "")
        except DeviceUnavailable as exc:
            self._went_down(DeviceState.OFFLINE, exc.message)
        except (DeviceTimeout, DeviceProtocolError) as exc:
            self._silent_polls += 1
            if self._silent_polls >= MAX_SILENT_POLLS:
                self._went_down(DeviceState.OFFLINE, f"no valid answer to {self._silent_polls} polls: {exc.message}")
        except DriverError as exc:
            log.warning("device %s poll: %s", self.id, exc.message)

    def _run_command(self, job: CommandJob) -> None:
        if not self._open:
            outcome = Outcome.failed(ReplyCode.DEVICE_OFFLINE, f"устройство {self.id!r} не в сети: {self._detail}")
        else:
            outcome = self._execute(job)
            self.executed += 1
        self._deliver(job.done, outcome)

    def _execute(self, job: CommandJob) -> Outcome:
        try:
            return Outcome.done(self.binding.execute(job.action, job.args))
        except DeviceUnavailable as exc:
            self._went_down(DeviceState.OFFLINE, exc.message)
            return Outcome.failed(exc.code, exc.message)
        except DriverError as exc:
            last = getattr(exc, "last", None)
            result = {"last": last.as_dict()} if last is not None and hasattr(last, "as_dict") else None
            return Outcome.failed(exc.code, exc.message, result)
        except GatewayError as exc:
            return Outcome.failed(exc.code, exc.message)
        except Exception as exc:
            log.exception("device %s: %s failed unexpectedly", self.id, job.action)
            return Outcome.failed(ReplyCode.INTERNAL, f"{type(exc).__name__}: {exc}")

    def _run_recovery(self, job: RecoveryJob) -> None:
        if self.binding.recover_needs_device and not self._open:
            self._defer(job)
            return
        try:
            outcome = self.binding.recover(job.entry)
        except DriverError as exc:
            if isinstance(exc, DeviceUnavailable):
                self._went_down(DeviceState.OFFLINE, exc.message)
            self._defer(job)  # ask again once the device answers
            return
        except Exception as exc:
            log.exception("device %s: recovery of %s failed", self.id, job.entry.command_id)
            outcome = Outcome.failed(ReplyCode.UNKNOWN_OUTCOME, f"recovery failed: {exc}")
        self._deliver(job.done, outcome)

    def _defer(self, job: RecoveryJob) -> None:
        with self._deferred_lock:
            self._deferred.append(job)

    def _deliver(self, done: Callable[[Outcome], None], outcome: Outcome) -> None:
        try:
            done(outcome)
        except Exception:
            log.exception("device %s: reply delivery failed", self.id)

    # Status --------------------------------------------------------------------------------
    def _set(self, state: DeviceState, detail: str) -> None:
        with self._status_lock:
            self._state, self._detail = state, detail

    def _safe_status_data(self) -> dict[str, Any]:
        try:
            return self.binding.status_data()
        except Exception:
            log.exception("device %s: status_data failed", self.id)
            return {}

    def _binding_reported(self) -> None:
        """The binding said ``error``/``busy`` (published at once, even mid-command) or cleared it
        (published after the job at hand, like every other change: its reply goes out first)."""
        if self.binding.reported_status is not None:
            self._report()

    def _report(self) -> None:
        with self._report_lock:  # in order, whichever thread reports
            snap = self.snapshot()
            if snap == self._published:
                return
            self._published = snap
            try:
                self._on_status(self.id, snap)
            except Exception:
                log.exception("device %s: status publish failed", self.id)
