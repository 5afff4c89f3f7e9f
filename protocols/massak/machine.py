"""The two ends of a Massa-K Protocol 100 link, sans-I/O: ``HostConnection`` (drivers) and
``DeviceConnection`` (simulators).

The host sends one request and waits for its reply. Which replies answer which request is
data (``ANSWERS``); ``CMD_ERROR`` and ``CMD_NACK`` answer any request. The host state is a
two-state table; garbage is raised as ``RemoteProtocolError`` after being consumed and does
not change the state (the framer has resynchronised on the next header), so a noisy line
needs no reconnect. A reply that answers nothing pending is ``UnexpectedReply``.

The device side never raises on host bytes: a frame it cannot parse becomes a
``RequestRejected`` event carrying the ``CMD_ERROR``/``CMD_NACK`` the device answers;
broken frames (bad CRC, garbage) are dropped silently, as a real scale does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal

from protocols.massak.errors import LocalProtocolError, MalformedMessage, RemoteProtocolError, UnexpectedReply
from protocols.massak.frames import MAX_BODY, FrameParser, encode_frame
from protocols.massak.messages import (
    Cmd,
    ErrorCode,
    ErrorReply,
    Nack,
    Reply,
    Request,
    parse_reply,
    parse_request,
)


class _Sentinel(Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _Sentinel.NEED_DATA
NeedData = Literal[_Sentinel.NEED_DATA]

ANSWERS: dict[Cmd, frozenset[Cmd]] = {
    Cmd.GET_MASSA: frozenset({Cmd.ACK_MASSA}),
    Cmd.SET_ZERO: frozenset({Cmd.ACK_SET}),
    Cmd.SET_TARE: frozenset({Cmd.ACK_SET_TARE, Cmd.NACK_TARE}),
    Cmd.GET_SCALE_PAR: frozenset({Cmd.ACK_SCALE_PAR}),
}
ANY_REQUEST: frozenset[Cmd] = frozenset({Cmd.ERROR, Cmd.NACK})


class HostState(Enum):
    IDLE = "idle"
    AWAITING_REPLY = "awaiting_reply"


_HOST_TRANSITIONS: dict[tuple[HostState, str], HostState] = {
    (HostState.IDLE, "send"): HostState.AWAITING_REPLY,
    (HostState.AWAITING_REPLY, "reply"): HostState.IDLE,
    (HostState.AWAITING_REPLY, "abandon"): HostState.IDLE,
    (HostState.IDLE, "abandon"): HostState.IDLE,
}


class HostConnection:
    """Host side: ``send(request) -> bytes``, ``receive_data(bytes)``, ``next_event()``."""

    def __init__(self, max_body: int = MAX_BODY) -> None:
        self._frames = FrameParser(max_body)
        self.state = HostState.IDLE
        self.pending: Request | None = None

    def _transition(self, event: str) -> None:
        try:
            self.state = _HOST_TRANSITIONS[(self.state, event)]
        except KeyError:
            pending = f" (ждём ответ на {self.pending.code.name})" if self.pending else ""
            raise LocalProtocolError(
                f"Massa-K host: event {event!r} is illegal in state {self.state.value!r}{pending}"
            ) from None

    def send(self, request: Request) -> bytes:
        data = encode_frame(request.encode())
        self._transition("send")
        self.pending = request
        return data

    def abandon(self) -> None:
        """Forget the outstanding request (timed out) and drop buffered bytes."""
        self._transition("abandon")
        self.pending = None
        self._frames.clear()

    def receive_data(self, data: bytes) -> None:
        self._frames.feed(data)

    def next_event(self) -> Reply | NeedData:
        """The reply to the pending request, or ``NEED_DATA``; raises ``RemoteProtocolError``
        for dropped bytes (consumed: call again)."""
        body = self._frames.next_body()
        if body is None:
            return NEED_DATA
        reply = parse_reply(body)
        pending = self.pending
        if pending is None:
            raise UnexpectedReply(f"Ответ Massa-K {reply.code.name} без запроса", body[:32])
        if reply.code not in ANSWERS[pending.code] | ANY_REQUEST:
            raise UnexpectedReply(f"Ответ Massa-K {reply.code.name} не отвечает на {pending.code.name}", body[:32])
        self._transition("reply")
        self.pending = None
        return reply


@dataclass(frozen=True, slots=True)
class RequestRejected:
    """A host frame the device cannot take; ``reply`` is what the device answers."""

    body: bytes
    reason: str
    reply: Reply


class DeviceConnection:
    """Device side: host bytes in, ``Request`` or ``RequestRejected`` events out."""

    def __init__(self, max_body: int = MAX_BODY) -> None:
        self._frames = FrameParser(max_body)
        self.dropped = 0
        """Broken frames and garbage dropped so far (diagnostics)."""

    def receive_data(self, data: bytes) -> None:
        self._frames.feed(data)

    def next_event(self) -> Request | RequestRejected | NeedData:
        while True:
            try:
                body = self._frames.next_body()
            except RemoteProtocolError:
                self.dropped += 1
                continue
            if body is None:
                return NEED_DATA
            try:
                return parse_request(body)
            except MalformedMessage as exc:
                known = body[0] in Cmd._value2member_map_
                reply: Reply = ErrorReply(ErrorCode.BAD_INPUT) if known else Nack()
                return RequestRejected(body, str(exc), reply)

    @staticmethod
    def send(reply: Reply) -> bytes:
        return encode_frame(reply.encode())
