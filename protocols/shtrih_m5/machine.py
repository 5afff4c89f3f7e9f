"""The Shtrih M5 link: the Shtrih-M ENQ/ACK/NAK handshake with M5 messages on top.

The scale speaks the fiscal register's link protocol unchanged (``shtrih-m/opos``
``Source/SmScale/Units/LocalConnection.pas``: ENQ first — NAK means idle, ACK means an unread
answer to drain; the command frame is ACKed or NAKed and resent; the answer frame is ACKed,
or NAKed and fetched again with ENQ). So this module wraps ``protocols.shtrih.machine``'s
``HostLink``/``DeviceLink`` and only adds typed messages:

host:   ``send(request, now)`` → write ``data_to_send()``, feed ``receive_data(data, now)``
        and ``handle_timeout(now)`` at ``deadline`` → ``next_event()``:
        ``Answered(request, answer)`` | ``LinkLost`` | ``NEED_DATA``
device: ``receive_data(data)`` → ``next_event()``: ``RequestReceived`` | ``BadRequest`` |
        ``NEED_DATA``; ``send(answer)``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from protocols.shtrih.machine import (
    NEED_DATA,
    AnswerReceived,
    CommandReceived,
    DeviceLink,
    HostLink,
    HostState,
    LinkLost,
    NeedData,
)
from protocols.shtrih_m5.errors import (
    ErrorCode,
    LocalProtocolError,
    MalformedMessage,
    UnexpectedAnswer,
    UnknownCommand,
)
from protocols.shtrih_m5.messages import (
    Answer,
    Refused,
    Request,
    decode_answer,
    decode_request,
    encode_answer,
)

__all__ = [
    "NEED_DATA",
    "Answered",
    "BadRequest",
    "DeviceConnection",
    "HostConnection",
    "LinkLost",
    "NeedData",
    "RequestReceived",
]


@dataclass(frozen=True)
class Answered:
    """The typed answer to the pending request (``Refused`` included: check it)."""

    request: Request
    answer: Answer


class HostConnection:
    """The host side: one request at a time over ``HostLink``."""

    def __init__(
        self,
        *,
        enq_timeout: float = 0.3,
        ack_timeout: float = 0.3,
        frame_timeout: float = 0.5,
        attempts: int = 3,
    ) -> None:
        self.link = HostLink(
            enq_timeout=enq_timeout, ack_timeout=ack_timeout, frame_timeout=frame_timeout, attempts=attempts
        )
        self._pending: Request | None = None
        self._events: deque[Answered | LinkLost] = deque()

    @property
    def deadline(self) -> float | None:
        return self.link.deadline

    def send(self, request: Request, now: float, *, answer_timeout: float = 1.0) -> None:
        if self._pending is not None:
            raise LocalProtocolError(f"команда {self._pending.CODE:02X}h ещё ждёт ответа")
        if self.link.state is not HostState.IDLE:
            self.link.reset()
        self.link.start(request.encode(), now, answer_timeout=answer_timeout)
        self._pending = request

    def receive_data(self, data: bytes, now: float) -> None:
        self.link.receive_data(data, now)

    def handle_timeout(self, now: float) -> None:
        self.link.handle_timeout(now)

    def data_to_send(self) -> bytes:
        return self.link.data_to_send()

    def next_event(self) -> Answered | LinkLost | NeedData:
        """Raises ``RemoteProtocolError`` for an answer that does not parse or does not
        belong to the pending request (the request is abandoned)."""
        while True:
            event = self.link.next_event()
            if isinstance(event, NeedData):
                return NEED_DATA
            if isinstance(event, LinkLost):
                self._pending = None
                self.link.reset()
                return event
            if isinstance(event, AnswerReceived):
                request, self._pending = self._pending, None
                if request is None:
                    continue
                answer = decode_answer(event.body)
                if answer.command != request.CODE:
                    raise UnexpectedAnswer(
                        f"ответ на команду {answer.command:02X}h вместо {request.CODE:02X}h", event.body
                    )
                return Answered(request, answer)
            # StaleAnswerDropped: an answer left over from an earlier host; already ACKed

    def abandon(self) -> None:
        """Forget the pending request and any partial input (after a link error)."""
        self._pending = None
        self.link.reset()


@dataclass(frozen=True)
class RequestReceived:
    request: Request


@dataclass(frozen=True)
class BadRequest:
    """A frame the scale cannot execute; ``reply`` is the error answer it sends."""

    reply: Refused
    reason: str


class DeviceConnection:
    """The scale side: ACK/NAK, ENQ handling and the unread answer, over ``DeviceLink``."""

    def __init__(self) -> None:
        self.link = DeviceLink()

    def receive_data(self, data: bytes) -> None:
        self.link.receive_data(data)

    def next_event(self) -> RequestReceived | BadRequest | NeedData:
        event = self.link.next_event()
        if not isinstance(event, CommandReceived):
            return NEED_DATA
        try:
            return RequestReceived(decode_request(event.body))
        except UnknownCommand as exc:
            return BadRequest(Refused(event.body[0], ErrorCode.UNKNOWN_COMMAND), str(exc))
        except MalformedMessage as exc:
            return BadRequest(Refused(event.body[0], ErrorCode.BAD_LENGTH), str(exc))

    def send(self, answer: Answer) -> bytes:
        """Queue ``answer``; returns its frame body (the bytes go out via ``data_to_send``)."""
        body = encode_answer(answer)
        self.link.send_answer(body)
        return body

    def data_to_send(self) -> bytes:
        return self.link.data_to_send()

    def forget(self) -> None:
        self.link.forget()
