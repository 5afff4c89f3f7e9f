"""Command dispatch: every payload on a command topic gets a specific answer or is logged.

Order of checks, and why:

1. Topic not ours / not a command → ignored (we only subscribe to our own filters).
2. Empty payload → ignored: that is how a retained message is cleared, not a command.
3. ``command_id`` and ``reply_to`` are *peeked* first so that even an undecodable payload
   gets a ``failed`` reply the sender can match. ``peek`` needs valid JSON; for broken JSON a
   strict regex finds ``"command_id": "…"`` in the raw bytes (a truncated payload usually still
   has its id), so ``malformed_json`` is answered too, not only logged.
4. Retained → ``failed``/``retained_command``, never executed, and the retained copy is cleared
   (Tasmota #2424: a retained "power on" fired on every reconnect). MQTT marks a message
   retained only when the broker replays it from storage, which is exactly the dangerous case.
5. Decode → ``malformed_json`` / ``unsupported_version`` / ``invalid_schema``.
6. Unknown device → ``unknown_device``; unknown action → ``unknown_action`` (with the list);
   bad args → ``invalid_args``. None of these are journaled: nothing ran, and a retry after a
   config fix should be able to run.
7. Journal lookup: a repeat is answered from the journal (``duplicate`` with the original
   status and result, or ``accepted`` while it still runs) — *before* the expiry check, so a
   late retry of a finished command learns its result instead of ``expired``.
8. Expired → ``expired``, journaled so every retry gets the same answer, never executed.
9. Busy: an action whose policy is ``when_busy="refuse"`` (a payment terminal) is answered
   ``failed``/``busy`` at once while any command of its device is in flight — never queued
   behind a card operation that may take minutes. Not journaled: nothing ran. Commands the
   journal found ``running`` at startup count as in flight until their recovery ends.
10. Journal ``running`` (durable) → the target's thread runs it while ``accepted`` is published
    (``progress`` replies on the way for actions that take a
    :class:`~gateway.devices.base.CommandContext`) → final reply journaled → published, never
    before ``accepted``.

A repeat whose stored reply is ``failed`` with a code in the action's ``rerun_on`` (the device
proved nothing happened, e.g. a purchase the terminal has no record of) runs again instead of
getting a ``duplicate`` of that failure, with the stored reply in ``CommandContext.previous``.
The row goes back to ``running`` first (:meth:`~gateway.journal.Journal.reopen`, a durable
compare-and-set): of two repeats at once exactly one re-runs and the other is answered
``accepted``/"already running", and a crash during the re-run leaves a ``running`` row that the
next start hands to the binding's ``recover`` like a first run.

A repeat of a command interrupted by a crash whose recovery waits for an unreachable device is
answered ``failed``/``unknown_outcome`` (the binding's ``unresolved_message``), not journaled: the
row stays ``running`` and the recovered outcome is published when the device answers.

A payload without a usable ``command_id`` cannot be answered. It is logged and counted
(``rejected_unaddressable`` in ``ping``), not turned into an outbox event: a broken or hostile
publisher could otherwise flood the bounded outbox and evict real events.

Replies are published directly (QoS 1, not retained), never through the outbox: they answer a
live request, and a lost reply is repaired by the sender's retry hitting the journal. A final
reply that could not be published because the link was down (above all the outcomes of
recoveries, which run at startup before the first connect) is held in memory — bounded,
``MAX_HELD_REPLIES``, oldest dropped — and published on the next connect (:meth:`Dispatcher.connected`)
with the new session, so the cloud learns a recovered outcome without retrying. Holding is
enough: the journal already has every final reply durably; a held one lost with the process is
still answered to a retry.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from pydantic import BaseModel

from gateway.devices.base import Action, CommandContext, Invocation, Outcome
from gateway.devices.supervisor import BrokenDevice
from gateway.devices.worker import CommandJob, DeviceWorker
from gateway.errors import CommandRejected, StorageError
from gateway.journal import GATEWAY_TARGET, Journal, StoredReply, args_hash
from gateway.targets import CommandTarget
from protocols.bus import (
    Command,
    GatewayAddress,
    PayloadError,
    Reply,
    ReplyCode,
    ReplyStatus,
    TopicError,
    TopicKind,
    check_id,
    decode,
    encode,
    parse_topic,
    peek,
    utcnow,
)

log = logging.getLogger(__name__)

COMMAND_ID_REUSED = "command_id_reused"
MAX_REPLY_TOPIC = 512
ACCEPTED_WAIT_S = 5.0
"""How long a command's later replies wait for its ``accepted`` to be handed to paho (which never
blocks for long: a reply that cannot go out is dropped or held at once)."""
MAX_HELD_REPLIES = 1000
"""Final replies kept for the next connect at most (the journal holds them all anyway)."""
_SNIFF = {
    name: re.compile(rb'"' + name.encode() + rb'"\s*:\s*"([^"\\\x00-\x1f]{1,512})"')
    for name in ("command_id", "reply_to")
}


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message from a command topic, as paho delivered it."""

    topic: str
    payload: bytes
    retain: bool = False
    response_topic: str | None = None
    correlation: bytes | None = None


@dataclass(frozen=True, slots=True)
class _ReplyTo:
    command_id: str
    topic: str
    correlation: bytes | None


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A command submitted to a device and not finished yet (``target``: the worker it went to)."""

    device: str
    action: str
    target: object
    recovering: bool = False


@dataclass(frozen=True, slots=True)
class _Accepted:
    """Set once a command's ``accepted`` reply was handed to paho; its later replies wait for it."""

    sender: int = field(default_factory=threading.get_ident)
    """The thread that publishes ``accepted`` (never waits on itself)."""
    done: threading.Event = field(default_factory=threading.Event)

    def wait(self) -> None:
        if threading.get_ident() != self.sender:
            self.done.wait(ACCEPTED_WAIT_S)


ReplyPublisher = Callable[[str, bytes, "bytes | None"], bool]
"""``publish(topic, payload, correlation)`` QoS 1, not retained; False when not connected."""


def valid_reply_topic(topic: str | None) -> str | None:
    """``topic`` if it is a concrete topic we may publish to, else ``None``."""
    if not topic or len(topic) > MAX_REPLY_TOPIC or topic.startswith("$"):
        return None
    if any(c in topic for c in "+#\x00"):
        return None
    return topic


def _peek(payload: bytes, field: str) -> str | None:
    """``peek`` for valid JSON; a regex over the raw bytes for broken JSON (see module doc)."""
    value = peek(payload, field)
    if value is not None:
        return value
    match = _SNIFF[field].search(payload)
    if match is None:
        return None
    try:
        return match.group(1).decode("utf-8")
    except UnicodeDecodeError:
        return None


class Dispatcher:
    """Decodes, checks and routes commands; answers every addressable one."""

    def __init__(
        self,
        address: GatewayAddress,
        journal: Journal,
        *,
        devices: Callable[[str], CommandTarget | BrokenDevice | None],
        gateway: CommandTarget,
        known_devices: Callable[[], list[str]],
        publish_reply: ReplyPublisher,
        clear_retained: Callable[[str], None],
        session: Callable[[], int],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.address = address
        self.journal = journal
        self._devices = devices
        self._gateway = gateway
        self._known_devices = known_devices
        self._publish_reply = publish_reply
        self._clear_retained = clear_retained
        self._session = session
        self._clock = clock
        self._queue: queue.Queue[Incoming | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.rejected_unaddressable = 0
        self.last_rejection = ""
        self.handled = 0
        self._inflight_lock = threading.Lock()
        self._inflight: dict[str, _InFlight] = {}
        self._held_lock = threading.Lock()
        self._held: deque[tuple[_ReplyTo, Reply]] = deque()
        self.replies_dropped = 0
        for entry in journal.running():  # the runtime hands these to the devices' recover hooks
            found = devices(entry.device) if entry.device != GATEWAY_TARGET else None
            if isinstance(found, DeviceWorker):
                self._inflight[entry.command_id] = _InFlight(entry.device, entry.action, found, recovering=True)

    # Intake thread -------------------------------------------------------------------------
    def submit(self, message: Incoming) -> None:
        """From paho's thread: queue and return at once (never block the network loop)."""
        self._queue.put(message)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="command-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def connected(self) -> None:
        """The link is up: publish the held replies now (paho's thread; called before the births,
        so a cloud that waits for the gateway's ``online`` state has the recovered outcomes first)."""
        self._flush_held()

    @property
    def replies_held(self) -> int:
        with self._held_lock:
            return len(self._held)

    def _loop(self) -> None:
        while (message := self._queue.get()) is not None:
            self.handle(message)

    # Handling ------------------------------------------------------------------------------
    def handle(self, message: Incoming) -> None:
        """Process one message; never raises."""
        try:
            self._handle(message)
        except Exception:
            log.exception("command on %s: unexpected failure", message.topic)
        finally:
            self.handled += 1

    def _handle(self, message: Incoming) -> None:
        try:
            parsed = parse_topic(message.topic, self.address.root)
        except TopicError as exc:
            self._unaddressable(message, f"bad topic: {exc.message}")
            return
        if parsed.kind not in (TopicKind.COMMAND, TopicKind.GATEWAY_COMMAND) or parsed.address != self.address:
            log.debug("ignoring message on %s", message.topic)
            return
        if not message.payload:
            log.debug("ignoring empty payload on %s (a retained message being cleared)", message.topic)
            return
        to = self._reply_address(message)
        if message.retain:
            self._clear_retained(message.topic)
            self._fail(to, message, ReplyCode.RETAINED, "команды с флагом retain не выполняются; публикуйте с retain=0")
            return
        try:
            command = decode(Command, message.payload)
        except PayloadError as exc:
            self._fail(to, message, exc.code, exc.message)
            return
        if command.reply_to is not None and valid_reply_topic(command.reply_to) is None:
            self._fail(to, message, ReplyCode.INVALID_SCHEMA, f"reply_to: в этот топик нельзя публиковать: {command.reply_to!r}")
            return
        assert to is not None  # decode() validated command_id, so the address was built
        action = parsed.name or ""
        target_id = parsed.device if parsed.kind is TopicKind.COMMAND else GATEWAY_TARGET
        target = self._gateway if target_id == GATEWAY_TARGET else self._devices(target_id or "")
        if target is None:
            known = self._known_devices()
            self._fail(
                to, message, ReplyCode.UNKNOWN_DEVICE,
                f"на шлюзе {self.address.gateway} нет устройства {target_id!r}; есть: {', '.join(known) or 'нет'}",
                {"known_devices": known},
            )
            return
        if isinstance(target, BrokenDevice):
            self._fail(to, message, target.code, f"устройство {target.id!r} нельзя использовать: {target.detail}")
            return
        try:
            args = target.validate(action, command.args)
        except CommandRejected as exc:
            self._fail(to, message, exc.code, exc.message, exc.result)
            return
        self._run(to, command, target, target_id or GATEWAY_TARGET, action, args)

    def _run(
        self, to: _ReplyTo, command: Command, target: CommandTarget, target_id: str, action: str, args: BaseModel
    ) -> None:
        digest = args_hash(command.args)
        spec = target.binding.actions().get(action) if isinstance(target, DeviceWorker) else None
        previous: Reply | None = None
        try:
            existing = self.journal.lookup(command.command_id)
            expired = command.expired(self._clock())
            if existing is None and expired:
                reply = self._reply(
                    to, ReplyStatus.EXPIRED, code=ReplyCode.EXPIRED, message=f"срок команды истёк в {command.expires_at}"
                )
                self.journal.record(command.command_id, target_id, action, digest, reply, reply_to=command.reply_to)
                self._send(to, reply)
                return
            if existing is not None:
                if not self._may_rerun(existing, spec, target_id, action, digest, expired):
                    self._answer_repeat(to, existing, target_id, action, digest)
                    return
                previous = existing.reply
            if self._refuse_busy(to, target, target_id, spec, action):
                return
            if previous is None:
                existing = self.journal.begin(
                    command.command_id, target_id, action, digest, reply_to=command.reply_to, args=command.args
                )
                if existing is not None:
                    self._answer_repeat(to, existing, target_id, action, digest)
                    return
            elif not self.journal.reopen(command.command_id, previous.status, previous.code):
                # another repeat re-ran it first (or it changed meanwhile): answer from the journal
                assert existing is not None
                self._answer_repeat(to, self.journal.lookup(command.command_id) or existing, target_id, action, digest)
                return
        except StorageError as exc:
            log.error("journal unavailable, refusing %s: %s", command.command_id, exc)
            self._send(to, self._reply(to, ReplyStatus.FAILED, code=ReplyCode.INTERNAL, message=exc.message))
            return
        if isinstance(target, DeviceWorker):
            with self._inflight_lock:
                self._inflight[command.command_id] = _InFlight(target_id, action, target)
        # The device starts while ``accepted`` is being published (it waits on the wire anyway);
        # every later reply of this command waits for ``accepted`` to be handed to paho first, so
        # the sender still sees accepted → progress → final, in that order (one connection, QoS 1).
        accepted = _Accepted()
        context = CommandContext(command.command_id, partial(self._progress, to, accepted), previous)
        job_args: BaseModel = args
        if spec is not None and spec.context:
            job_args = Invocation.model_construct(args=args, context=context)
        target.submit(CommandJob(
            command.command_id, action, job_args, partial(self._finish, to, context=context, accepted=accepted)
        ))
        try:
            if previous is not None:
                log.info("command %s: running again, its first attempt did nothing (%s)",
                         command.command_id, previous.code)
                self._send(to, self._reply(to, ReplyStatus.ACCEPTED, message=f"running again: {previous.code}"))
            else:
                self._send(to, self._reply(to, ReplyStatus.ACCEPTED))
        finally:
            accepted.done.set()

    def _may_rerun(
        self, existing: StoredReply, spec: Action | None, target_id: str, action: str, digest: str, expired: bool
    ) -> bool:
        """A repeat of a command whose stored failure proves it did nothing runs again (module doc)."""
        stored = existing.reply
        return (
            spec is not None and not expired and stored is not None and stored.status is ReplyStatus.FAILED
            and stored.code in spec.rerun_on
            and (existing.device, existing.action, existing.args_hash) == (target_id, action, digest)
            and not self._is_in_flight(existing.command_id)
        )

    def _refuse_busy(
        self, to: _ReplyTo, target: CommandTarget, target_id: str, spec: Action | None, action: str
    ) -> bool:
        """Answer ``busy`` if ``action`` refuses to wait and its device has a command in flight."""
        if spec is None or spec.when_busy != "refuse" or not isinstance(target, DeviceWorker):
            return False
        with self._inflight_lock:
            running = [
                (cid, f) for cid, f in self._inflight.items() if f.device == target_id and f.target is target
            ]
        if not running:
            return False
        running_id, flight = running[0]
        text = target.binding.busy_message(action, flight.action, running_id)
        log.info("command %s on %s refused: busy with %s", to.command_id, target_id, running_id)
        self._send(to, self._reply(
            to, ReplyStatus.FAILED, code=ReplyCode.BUSY, message=text,
            result={"running": {"command_id": running_id, "action": flight.action}},
        ))
        return True

    def _is_in_flight(self, command_id: str) -> bool:
        with self._inflight_lock:
            return command_id in self._inflight

    def _progress(self, to: _ReplyTo, accepted: _Accepted, stage: str, message: str) -> None:
        """A ``progress`` reply (target thread): not journaled, a lost one is harmless."""
        accepted.wait()
        self._send(to, Reply(
            session=self._session(), command_id=to.command_id, status=ReplyStatus.PROGRESS, stage=stage,
            message=message or None,
        ))

    def _finish(self, to: _ReplyTo, outcome: Outcome, context: CommandContext | None = None,
                accepted: _Accepted | None = None) -> None:
        """A final outcome (target thread): journal it, then answer (after ``accepted``, if any)."""
        reply = outcome.to_reply(to.command_id, self._session())
        try:
            self.journal.finish(to.command_id, reply)
        except StorageError as exc:  # the reply is still true; a restart will call it interrupted
            log.error("cannot journal the reply of %s: %s", to.command_id, exc)
        for hook in context.journaled if context is not None else ():
            try:
                hook()
            except Exception:
                log.exception("command %s: after-journal hook failed", to.command_id)
        with self._inflight_lock:
            self._inflight.pop(to.command_id, None)
        if accepted is not None:
            accepted.wait()
        self._send(to, reply, hold=True)

    def finish_recovered(self, entry: StoredReply, outcome: Outcome) -> None:
        """Store and announce the outcome of a command interrupted by a crash."""
        topic = valid_reply_topic(entry.reply_to) or self.address.reply(entry.command_id)
        self._finish(_ReplyTo(entry.command_id, topic, None), outcome)

    def _answer_repeat(self, to: _ReplyTo, existing: StoredReply, target_id: str, action: str, digest: str) -> None:
        if (existing.device, existing.action, existing.args_hash) != (target_id, action, digest):
            self._send(to, self._reply(
                to, ReplyStatus.FAILED, code=COMMAND_ID_REUSED,
                message=f"command_id {to.command_id!r} was already used for {existing.device}/{existing.action}"
                " with other args; use a new command_id for new work",
            ))
            return
        stored = existing.reply
        if stored is None or self._is_in_flight(existing.command_id):
            unresolved = self._unresolved(existing) if stored is None else None
            if unresolved is not None:
                log.info("command %s repeated while its recovery waits for the device", to.command_id)
                self._send(to, self._reply(
                    to, ReplyStatus.FAILED, code=ReplyCode.UNKNOWN_OUTCOME, message=unresolved,
                    result={"recovering": True, "attempts": existing.attempts},
                ))
                return
            self._send(to, self._reply(to, ReplyStatus.ACCEPTED, message="already running"))
            return
        self._send(to, Reply(
            session=self._session(), command_id=to.command_id, status=ReplyStatus.DUPLICATE,
            original=stored.status, result=stored.result, code=stored.code, message=stored.message,
        ))

    def _unresolved(self, entry: StoredReply) -> str | None:
        """The binding's answer if ``entry`` is a crash's recovery waiting for its device, else ``None``."""
        with self._inflight_lock:
            flight = self._inflight.get(entry.command_id)
        if flight is None or not flight.recovering or not isinstance(flight.target, DeviceWorker):
            return None
        worker = flight.target
        if not worker.recovery_pending(entry.command_id):
            return None
        return worker.binding.unresolved_message(entry)

    # Replies -------------------------------------------------------------------------------
    def _reply_address(self, message: Incoming) -> _ReplyTo | None:
        command_id = _peek(message.payload, "command_id")
        if command_id is None:
            return None
        try:
            check_id(command_id, "command id")
        except TopicError:
            return None
        topic = valid_reply_topic(_peek(message.payload, "reply_to")) or valid_reply_topic(message.response_topic)
        return _ReplyTo(command_id, topic or self.address.reply(command_id), message.correlation)

    def _reply(
        self, to: _ReplyTo, status: ReplyStatus, *, code: str | None = None, message: str | None = None,
        result: dict[str, object] | None = None,
    ) -> Reply:
        return Reply(
            session=self._session(), command_id=to.command_id, status=status, code=code, message=message, result=result
        )

    def _fail(
        self, to: _ReplyTo | None, message: Incoming, code: str, text: str, result: dict[str, object] | None = None
    ) -> None:
        if to is None:
            self._unaddressable(message, f"{code}: {text}")
            return
        log.info("command %s on %s refused: %s: %s", to.command_id, message.topic, code, text)
        self._send(to, self._reply(to, ReplyStatus.FAILED, code=code, message=text, result=result))

    def _send(self, to: _ReplyTo, reply: Reply, *, hold: bool = False) -> None:
        """Publish ``reply``; a final one (``hold``) that cannot go now waits for the next connect."""
        if self._publish(to, reply):
            return
        if not hold:
            log.warning("reply %s/%s not sent: not connected", to.command_id, reply.status.value)
            return
        with self._held_lock:
            if len(self._held) >= MAX_HELD_REPLIES:
                lost, _ = self._held.popleft()
                self.replies_dropped += 1
                log.warning("reply of %s dropped from the held replies (a retry gets it from the journal)",
                            lost.command_id)
            self._held.append((to, reply))
        log.warning("reply %s/%s held until the link is up", to.command_id, reply.status.value)
        self._flush_held()  # the link may have come up meanwhile: its flush may have run already

    def _flush_held(self) -> None:
        """Publish the held replies, oldest first, with the current session; stop at the first failure.

        No lock is held while publishing (this runs on paho's thread too, which must never wait
        for a thread that is itself inside paho's ``publish``).
        """
        while True:
            with self._held_lock:
                if not self._held:
                    return
                to, reply = self._held.popleft()
            if not self._publish(to, reply.model_copy(update={"session": self._session()})):
                with self._held_lock:
                    self._held.appendleft((to, reply))
                return
            log.info("held reply %s/%s published", to.command_id, reply.status.value)

    def _publish(self, to: _ReplyTo, reply: Reply) -> bool:
        return self._publish_reply(to.topic, encode(reply), to.correlation or to.command_id.encode())

    def _unaddressable(self, message: Incoming, why: str) -> None:
        self.rejected_unaddressable += 1
        self.last_rejection = f"{message.topic}: {why}"[:300]
        log.warning("unanswerable message on %s: %s", message.topic, why)
