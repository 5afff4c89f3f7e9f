"""The two ends of an MT-SICS link, sans-I/O: ``HostConnection`` (drivers) and
``DeviceConnection`` (simulators).

MT-SICS is half-duplex in practice: the host sends one command and waits for its reply. The
host side tracks that in a two-state table; a reply is *final* unless its status is ``B``
(more lines follow). Error policy, chosen once for both ends: a line that does not parse is
**raised** as ``RemoteProtocolError`` after being consumed, so the caller logs it and calls
``next_event()`` again to continue with the next line (resynchronised on CR LF). The state is
not poisoned by garbage: a scale that hiccups on a noisy line must not need a reconnect.

The device side never raises on host garbage: a device answers it, so it returns a
``CommandRejected`` event carrying the ``ES``/``ET`` reply to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal

from protocols.mtsics.errors import LineTooLong, LocalProtocolError, MalformedLine, UnexpectedReply
from protocols.mtsics.frames import MAX_LINE, LineBuffer
from protocols.mtsics.messages import (
    Command,
    ErrorReply,
    Reply,
    Status,
    parse_command,
    parse_reply,
)


class _Sentinel(Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _Sentinel.NEED_DATA
"""``next_event()`` result when no complete line is buffered yet."""

NeedData = Literal[_Sentinel.NEED_DATA]


class HostState(Enum):
    IDLE = "idle"
    AWAITING_REPLY = "awaiting_reply"


# (state, event) → next state. Anything missing is an illegal transition.
_HOST_TRANSITIONS: dict[tuple[HostState, str], HostState] = {
    (HostState.IDLE, "send"): HostState.AWAITING_REPLY,
    (HostState.AWAITING_REPLY, "interim_reply"): HostState.AWAITING_REPLY,
    (HostState.AWAITING_REPLY, "final_reply"): HostState.IDLE,
    (HostState.AWAITING_REPLY, "abandon"): HostState.IDLE,
    (HostState.IDLE, "abandon"): HostState.IDLE,
}


class HostConnection:
    """Host side: ``send(command) -> bytes``, ``receive_data(bytes)``, ``next_event()``."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._lines = LineBuffer(max_line)
        self.state = HostState.IDLE
        self.pending: Command | None = None

    def _transition(self, event: str) -> None:
        try:
            self.state = _HOST_TRANSITIONS[(self.state, event)]
        except KeyError:
            raise LocalProtocolError(
                f"MT-SICS host: event {event!r} is illegal in state {self.state.value!r}"
                + (f" (waiting for the reply to {self.pending.ident!r})" if self.pending else "")
            ) from None

    def send(self, command: Command) -> bytes:
        """Bytes to write for ``command``; only one command may be outstanding."""
        data = command.encode()
        self._transition("send")
        self.pending = command
        return data

    def abandon(self) -> None:
        """Forget the outstanding command (the caller timed out) and drop buffered bytes.

        A late reply can still arrive; the caller should also flush its link, and any
        straggler is reported as ``UnexpectedReply`` rather than taken for the next answer.
        """
        self._transition("abandon")
        self.pending = None
        self._lines.clear()

    def receive_data(self, data: bytes) -> None:
        self._lines.feed(data)

    def next_event(self) -> Reply | NeedData:
        """The next reply, or ``NEED_DATA``. Raises ``RemoteProtocolError`` for a bad line
        (already consumed: call again to continue)."""
        line = self._lines.next_line()
        if line is None:
            return NEED_DATA
        reply = parse_reply(line)
        pending = self.pending
        if pending is None:
            raise UnexpectedReply(f"MT-SICS reply with no command pending: {line[:40]!r}", line)
        if isinstance(reply, ErrorReply):
            self._finish()
            return reply
        if reply.command not in pending.reply_ids:
            raise UnexpectedReply(
                f"MT-SICS reply {reply.command!r} does not answer {pending.ident!r}: {line[:40]!r}", line
            )
        if reply.status is Status.MORE:
            self._transition("interim_reply")
        else:
            self._finish()
        return reply

    def _finish(self) -> None:
        self._transition("final_reply")
        self.pending = None


@dataclass(frozen=True, slots=True)
class CommandRejected:
    """A host line the device cannot take; ``reply`` is what the device answers."""

    line: bytes
    reason: str
    reply: ErrorReply


class DeviceConnection:
    """Device side: host bytes in, ``Command`` or ``CommandRejected`` events out."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._lines = LineBuffer(max_line)

    def receive_data(self, data: bytes) -> None:
        self._lines.feed(data)

    def next_event(self) -> Command | CommandRejected | NeedData:
        try:
            line = self._lines.next_line()
        except LineTooLong as exc:
            return CommandRejected(exc.line, str(exc), ErrorReply("ES"))
        if line is None:
            return NEED_DATA
        try:
            return parse_command(line)
        except MalformedLine as exc:
            # Bytes outside printable ASCII are what a parity or baud mismatch produces: ET.
            code: Literal["ES", "ET"] = "ET" if any(b < 0x20 or b > 0x7E for b in line) else "ES"
            return CommandRejected(line, str(exc), ErrorReply(code))

    @staticmethod
    def send(reply: Reply) -> bytes:
        return reply.encode()
