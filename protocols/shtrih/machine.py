"""The Shtrih-M link handshake as two sans-I/O state machines: the host's and the device's.

Host side (PrinterProtocol1.pas / pyshtrih protocol.py)::

    IDLE ──start──▶ PROBING: send ENQ
    PROBING ─NAK─▶ device idle: send the command frame ─▶ SENT
    PROBING ─ACK─▶ device holds an answer: ours if the command went out (─▶ AWAITING),
                   else a stale one left by a previous host (─▶ DRAINING: read, ACK, ENQ again)
    SENT ─ACK─▶ AWAITING (the device is executing; printing may take seconds)
    SENT ─NAK─▶ resend the frame;     SENT ─timeout─▶ ENQ (did it arrive?) ─▶ PROBING
    AWAITING ─frame─▶ ACK, ``AnswerReceived`` ─▶ IDLE
    AWAITING ─bad LRC─▶ NAK + ENQ ─▶ PROBING (the device resends after its ACK)
    any ─timeout─▶ ENQ, up to ``attempts``; then ``LinkLost`` ─▶ FAILED (sticky until reset)

Probing with ENQ before resending is what keeps a command from running twice: a command whose
ACK was lost is answered (ACK + answer), not executed again.

Time is passed in: the I/O layer reads until ``deadline`` then calls ``handle_timeout(now)``;
it writes whatever ``data_to_send()`` returns. Transitions live in one table.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from protocols.shtrih.errors import BadChecksum, LinkFailed, LocalProtocolError
from protocols.shtrih.frames import Control, Frame, FrameDecoder, encode_frame


class NeedData:
    """Sentinel type: no event until more bytes arrive or a timeout fires."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


@dataclass(frozen=True)
class AnswerReceived:
    """The answer frame body to the pending command."""

    body: bytes


@dataclass(frozen=True)
class StaleAnswerDropped:
    """An answer nobody waited for (left by an earlier host, or for another command)."""

    body: bytes


@dataclass(frozen=True)
class LinkLost:
    """No answer after every attempt. ``command_sent``: the device may have executed it."""

    reason: str
    command_sent: bool


HostEvent = AnswerReceived | StaleAnswerDropped | LinkLost


class HostState(Enum):
    IDLE = "idle"
    PROBING = "probing"
    SENT = "sent"
    AWAITING = "awaiting"
    DRAINING = "draining"
    FAILED = "failed"


class _In(Enum):
    START = "start"
    ACK = "ACK"
    NAK = "NAK"
    FRAME = "frame"
    BAD_FRAME = "bad frame"
    TIMEOUT = "timeout"


_S, _I = HostState, _In
_HOST_TABLE: Final[dict[tuple[HostState, _In], str]] = {
    (_S.IDLE, _I.START): "_probe",
    (_S.IDLE, _I.FRAME): "_drop_stale",
    (_S.PROBING, _I.NAK): "_send_frame",
    (_S.PROBING, _I.ACK): "_answer_pending",
    (_S.PROBING, _I.FRAME): "_take_answer",
    (_S.PROBING, _I.BAD_FRAME): "_nak_and_probe",
    (_S.PROBING, _I.TIMEOUT): "_retry_probe",
    (_S.SENT, _I.ACK): "_await",
    (_S.SENT, _I.NAK): "_resend_frame",
    (_S.SENT, _I.FRAME): "_take_answer",
    (_S.SENT, _I.BAD_FRAME): "_nak_and_probe",
    (_S.SENT, _I.TIMEOUT): "_retry_probe",
    (_S.AWAITING, _I.FRAME): "_take_answer",
    (_S.AWAITING, _I.BAD_FRAME): "_nak_and_probe",
    (_S.AWAITING, _I.TIMEOUT): "_retry_probe",
    (_S.DRAINING, _I.FRAME): "_drop_stale_and_probe",
    (_S.DRAINING, _I.BAD_FRAME): "_nak_and_probe",
    (_S.DRAINING, _I.TIMEOUT): "_retry_probe",
}
"""(state, input) → handler. Peer inputs missing here are ignored (a stray ACK/NAK);
host inputs missing here (START while busy) raise ``LocalProtocolError``."""


def _command_of(body: bytes) -> int:
    if body[0] == 0xFF and len(body) >= 2:
        return 0xFF00 | body[1]
    return body[0]


class HostLink:
    """The host's side of one Shtrih-M link, one command at a time."""

    def __init__(
        self,
        *,
        enq_timeout: float = 0.5,
        ack_timeout: float = 0.5,
        frame_timeout: float = 1.0,
        attempts: int = 5,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.enq_timeout = enq_timeout
        self.ack_timeout = ack_timeout
        self.frame_timeout = frame_timeout
        self.attempts = attempts
        self.state = HostState.IDLE
        self.deadline: float | None = None
        self._decoder = FrameDecoder()
        self._out = bytearray()
        self._events: deque[HostEvent] = deque()
        self._body = b""
        self._answer_timeout = 0.0
        self._sent = False
        self._tries = 0

    # --- API ----------------------------------------------------------------------------

    def start(self, body: bytes, now: float, *, answer_timeout: float = 5.0) -> None:
        """Begin sending a command frame body; ``answer_timeout`` covers printing."""
        if self.state is HostState.FAILED:
            raise LinkFailed("link failed earlier: call reset() first")
        encode_frame(body)
        self._body, self._answer_timeout = body, answer_timeout
        self._sent, self._tries = False, 0
        self._dispatch(_In.START, now, None)

    def receive_data(self, data: bytes, now: float) -> None:
        self._decoder.feed(data)
        while True:
            try:
                item = self._decoder.next_item()
            except BadChecksum:
                self._dispatch(_In.BAD_FRAME, now, None)
                continue
            if item is None:
                return
            if isinstance(item, Frame):
                self._dispatch(_In.FRAME, now, item)
            elif item is Control.ACK:
                self._dispatch(_In.ACK, now, None)
            elif item is Control.NAK:
                self._dispatch(_In.NAK, now, None)
            # a host ignores ENQ from the device

    def handle_timeout(self, now: float) -> None:
        """Call when ``now >= deadline`` and nothing arrived that settled the state."""
        if self.deadline is None or now < self.deadline:
            return
        self._decoder.reset()
        self._dispatch(_In.TIMEOUT, now, None)

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> HostEvent | NeedData:
        return self._events.popleft() if self._events else NEED_DATA

    def reset(self) -> None:
        """Leave FAILED (or abandon a command) and start clean."""
        self.state = HostState.IDLE
        self.deadline = None
        self._decoder.reset()
        self._out.clear()

    @property
    def command_sent(self) -> bool:
        return self._sent

    # --- table dispatch --------------------------------------------------------------

    def _dispatch(self, event: _In, now: float, frame: Frame | None) -> None:
        name = _HOST_TABLE.get((self.state, event))
        if name is None:
            if event is _In.START:
                raise LocalProtocolError(f"cannot start a command in state {self.state.value}")
            if event is _In.FRAME and frame is not None:
                self._out.append(Control.ACK)
                self._events.append(StaleAnswerDropped(frame.body))
            return
        handler: Callable[[float, Frame | None], None] = getattr(self, name)
        handler(now, frame)

    def _enq(self, now: float) -> None:
        self._out.append(Control.ENQ)
        self.state, self.deadline = HostState.PROBING, now + self.enq_timeout

    def _probe(self, now: float, _: Frame | None) -> None:
        self._enq(now)

    def _retry_probe(self, now: float, _: Frame | None) -> None:
        self._tries += 1
        if self._tries >= self.attempts:
            self.state, self.deadline = HostState.FAILED, None
            self._events.append(LinkLost("ККТ не отвечает", self._sent))
            return
        self._enq(now)

    def _send_frame(self, now: float, _: Frame | None) -> None:
        self._out += encode_frame(self._body)
        self._sent = True
        self.state, self.deadline = HostState.SENT, now + self.ack_timeout

    def _resend_frame(self, now: float, frame: Frame | None) -> None:
        self._tries += 1
        if self._tries >= self.attempts:
            self.state, self.deadline = HostState.FAILED, None
            self._events.append(LinkLost("ККТ отвергает кадр команды (NAK)", True))
            return
        self._send_frame(now, frame)

    def _answer_pending(self, now: float, _: Frame | None) -> None:
        if self._sent:
            self.state, self.deadline = HostState.AWAITING, now + self._answer_timeout
        else:
            self.state, self.deadline = HostState.DRAINING, now + self.frame_timeout

    def _await(self, now: float, _: Frame | None) -> None:
        self.state, self.deadline = HostState.AWAITING, now + self._answer_timeout

    def _take_answer(self, now: float, frame: Frame | None) -> None:
        assert frame is not None
        self._out.append(Control.ACK)
        if self._sent and _command_of(frame.body) == _command_of(self._body):
            self.state, self.deadline = HostState.IDLE, None
            self._events.append(AnswerReceived(frame.body))
        else:
            self._events.append(StaleAnswerDropped(frame.body))

    def _drop_stale(self, now: float, frame: Frame | None) -> None:
        assert frame is not None
        self._out.append(Control.ACK)
        self._events.append(StaleAnswerDropped(frame.body))

    def _drop_stale_and_probe(self, now: float, frame: Frame | None) -> None:
        self._drop_stale(now, frame)
        self._tries += 1
        if self._tries >= self.attempts * 2:
            self.state, self.deadline = HostState.FAILED, None
            self._events.append(LinkLost("ККТ повторяет старые ответы", False))
            return
        self._enq(now)

    def _nak_and_probe(self, now: float, _: Frame | None) -> None:
        self._out.append(Control.NAK)
        self._retry_probe(now, None)


# --- device side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandReceived:
    """A command frame body that passed its LRC (already ACKed)."""

    body: bytes


class DeviceLink:
    """The device's side: ACK/NAK frames, answer ENQ, keep the last answer until ACKed."""

    def __init__(self) -> None:
        self._decoder = FrameDecoder()
        self._out = bytearray()
        self._events: deque[CommandReceived] = deque()
        self._pending: bytes | None = None

    @property
    def answer_pending(self) -> bool:
        return self._pending is not None

    def receive_data(self, data: bytes) -> None:
        self._decoder.feed(data)
        while True:
            try:
                item = self._decoder.next_item()
            except BadChecksum:
                self._out.append(Control.NAK)
                continue
            if item is None:
                return
            if isinstance(item, Frame):
                self._pending = None  # a new command: the host gave up on the old answer
                self._out.append(Control.ACK)
                self._events.append(CommandReceived(item.body))
            elif item is Control.ENQ:
                if self._pending is None:
                    self._out.append(Control.NAK)
                else:
                    self._out.append(Control.ACK)
                    self._out += encode_frame(self._pending)
            elif item is Control.ACK:
                self._pending = None
            # NAK: keep the answer; the host follows with ENQ

    def next_event(self) -> CommandReceived | NeedData:
        return self._events.popleft() if self._events else NEED_DATA

    def send_answer(self, body: bytes) -> None:
        self._out += encode_frame(body)
        self._pending = body

    def forget(self) -> None:
        """Power loss: the unsent answer and partial input are gone."""
        self._pending = None
        self._decoder.reset()
        self._events.clear()

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out
