"""How a lane uses the other devices: the same journal, worker and recovery path as a bus command.

A lane asks the fiscal register to ``sell`` and the card terminal to ``pay`` exactly as the cloud
would, minus MQTT: the call is written ``running`` in the gateway's command journal (under an id
derived from the sale id) *before* it is queued on the device's worker, and its final outcome is
journaled when it ends. So the families' own exactly-once machinery applies unchanged:

- the gateway dies mid-call → at the next start the runtime hands the ``running`` row to the
  family's ``recover`` (the FN is read for the receipt, the terminal is asked with ``find``) and
  journals what it finds; :meth:`DeviceCalls.outcome` waits for that answer;
- a call whose stored failure proves nothing happened (``rerun_on``) runs again under the same id
  with ``CommandContext.previous`` set, so the family asks the device first (``_already_made``,
  ``find``) and never prints or charges twice;
- any other stored outcome is returned as stored, never re-run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.devices.base import CommandContext, Invocation, Outcome
from gateway.devices.worker import CommandJob, DeviceWorker
from gateway.errors import CommandRejected, StorageError
from gateway.journal import Journal, StoredReply, args_hash
from protocols.bus import ReplyCode, ReplyStatus

if TYPE_CHECKING:  # the supervisor imports the family registry, which imports the lane family
    from gateway.devices.supervisor import DeviceSupervisor

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, str], None]

CODE_PENDING = "pending"
"""``outcome``: the call is still running (a recovery the device has not answered yet)."""


CODE_NOT_STARTED = "not_started"
"""``outcome``: the journal has no such call: the device was never asked."""


def _none(stage: str, message: str) -> None:
    return None


def stored_outcome(entry: StoredReply) -> Outcome | None:
    """The journaled final outcome of a call, or ``None`` while it runs."""
    reply = entry.reply
    if reply is None:
        return None
    status = reply.original if reply.status is ReplyStatus.DUPLICATE and reply.original else reply.status
    return Outcome(status, reply.result, reply.code, reply.message)


class DeviceCalls:
    """Journaled calls from a lane to the device workers (thread-safe; calls block)."""

    def __init__(self, journal: Journal, devices: DeviceSupervisor | None = None, *, timeout: float = 300.0) -> None:
        self.journal = journal
        self.devices = devices
        self.timeout = timeout

    def call(
        self, device_id: str, action: str, command_id: str, args: dict[str, Any], *,
        progress: ProgressFn = _none, journaled: bool = True, timeout: float | None = None,
    ) -> Outcome:
        """Run ``action`` on ``device_id`` once per ``command_id`` (see the module doc)."""
        worker = self.devices.get(device_id) if self.devices is not None else None
        if not isinstance(worker, DeviceWorker):
            why = getattr(worker, "detail", None) or "нет в конфигурации шлюза"
            return Outcome.failed(ReplyCode.DEVICE_OFFLINE, f"устройство {device_id!r}: {why}")
        try:
            parsed = worker.validate(action, args)
        except CommandRejected as exc:
            return Outcome.failed(exc.code, exc.message, exc.result)
        spec = worker.binding.actions()[action]
        previous = None
        if journaled:
            try:
                existing = self.journal.lookup(command_id)
                if existing is not None:
                    if existing.running:
                        return self.outcome(command_id, timeout=timeout)
                    stored = existing.reply
                    assert stored is not None
                    if stored.status is ReplyStatus.FAILED and stored.code in spec.rerun_on:
                        previous = stored
                    else:
                        found = stored_outcome(existing)
                        assert found is not None
                        return found
                else:
                    self.journal.begin(command_id, device_id, action, args_hash(args), args=args)
            except StorageError as exc:
                return Outcome.failed(ReplyCode.INTERNAL, exc.message)
        return self._run(worker, action, command_id, parsed, spec.context, previous, progress, journaled, timeout)

    def _run(
        self, worker: DeviceWorker, action: str, command_id: str, parsed: Any, with_context: bool,
        previous: Any, progress: ProgressFn, journaled: bool, timeout: float | None,
    ) -> Outcome:
        box: list[Outcome] = []
        ended = threading.Event()
        context = CommandContext(command_id, progress, previous)

        def done(outcome: Outcome) -> None:
            if journaled:
                try:
                    self.journal.finish(command_id, outcome.to_reply(command_id, 0))
                except StorageError as exc:
                    log.error("cannot journal %s: %s", command_id, exc)
            for hook in context.journaled:
                try:
                    hook()
                except Exception:
                    log.exception("%s: after-journal hook failed", command_id)
            box.append(outcome)
            ended.set()

        job_args = Invocation.model_construct(args=parsed, context=context) if with_context else parsed
        worker.submit(CommandJob(command_id, action, job_args, done))
        if not ended.wait(timeout or self.timeout):
            return Outcome.failed(CODE_PENDING, f"{worker.id}: {action} не завершилась за отведённое время")
        return box[0]

    def outcome(self, command_id: str, *, timeout: float | None = None) -> Outcome:
        """Wait for the journaled outcome of ``command_id`` (a recovery in progress), or ``pending``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            entry = self.journal.lookup(command_id)
            if entry is None:
                return Outcome.failed(CODE_NOT_STARTED, f"{command_id}: не запускалась")
            found = stored_outcome(entry)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                return Outcome.failed(CODE_PENDING, f"{command_id}: устройство ещё не ответило после перезапуска")
            time.sleep(0.05)

    def started(self, command_id: str) -> bool:
        """Whether the journal has ``command_id`` (the device may have been asked)."""
        return self.journal.lookup(command_id) is not None
