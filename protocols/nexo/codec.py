"""Sans-I/O nexo connection: bytes in → ``Message`` events; ``Message`` → bytes.

``Connection.receive_data(bytes)``; ``next_event()`` → a ``Message`` or ``NEED_DATA``; a
``MalformedMessage`` consumes its frame (call again), a ``FrameTooLarge`` is fatal.
``send(message)`` → the framed bytes. Garbage never hangs the reader: every frame is bounded
by ``max_frame``, and a frame that is not a nexo message raises at once.

JSON numbers are read as ``Decimal`` and written from ``Decimal`` by our own serialiser, so an
amount never passes through a float.
"""

from __future__ import annotations

import json
from decimal import Decimal
from enum import Enum
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from protocols.nexo.errors import LocalProtocolError, MalformedMessage
from protocols.nexo.frames import MAX_FRAME, FrameBuffer, frame
from protocols.nexo.messages import BODIES, Message, MessageHeader, MessageType


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()


def dump_json(value: Any) -> str:
    """Compact JSON of dicts/lists/str/int/bool/None/Decimal; Decimals are written exactly."""
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise LocalProtocolError(f"amount {value} is not a finite number")
        return format(value, "f")
    if isinstance(value, Enum):
        return dump_json(value.value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(dump_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{dump_json(v)}" for k, v in value.items()) + "}"
    raise LocalProtocolError(f"cannot encode {type(value).__name__} as nexo JSON")


def to_dict(message: Message) -> dict[str, Any]:
    body = message.body
    assert isinstance(body, BaseModel)
    return {
        message.envelope: {
            "MessageHeader": message.MessageHeader.model_dump(exclude_none=True),
            message.body_name: body.model_dump(exclude_none=True),
        }
    }


def encode(message: Message) -> bytes:
    return dump_json(to_dict(message)).encode("utf-8")


def decode(payload: bytes) -> Message:
    try:
        data = json.loads(payload.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedMessage(f"not UTF-8 JSON: {exc}") from exc
    if not isinstance(data, dict) or len(data) != 1:
        raise MalformedMessage("expected one SaleToPOIRequest or SaleToPOIResponse object")
    ((envelope, inner),) = data.items()
    if envelope not in ("SaleToPOIRequest", "SaleToPOIResponse") or not isinstance(inner, dict):
        raise MalformedMessage(f"unknown envelope {str(envelope)[:40]!r}")
    try:
        header = MessageHeader.model_validate(inner.get("MessageHeader"))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise MalformedMessage(f"bad MessageHeader: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    is_response = header.MessageType is MessageType.RESPONSE
    if is_response != (envelope == "SaleToPOIResponse"):
        raise MalformedMessage(f"{header.MessageType.value} inside {envelope}")
    name = f"{header.MessageCategory.value}{header.MessageType.value}"
    cls = BODIES.get(name)
    if cls is None or name not in inner:
        raise MalformedMessage(f"no {name} body (or not supported)")
    try:
        body = cls.model_validate(inner[name])
    except ValidationError as exc:
        first = exc.errors()[0]
        raise MalformedMessage(f"bad {name}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    return Message(MessageHeader=header, body=body)


class Connection:
    """Either side of a Sale ⇄ POI link."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._frames = FrameBuffer(max_frame)
        self.max_frame = max_frame

    def receive_data(self, data: bytes) -> None:
        self._frames.feed(data)

    def next_event(self) -> Message | _NeedData:
        payload = self._frames.next_payload()
        if payload is None:
            return NEED_DATA
        return decode(payload)

    def send(self, message: Message) -> bytes:
        return frame(encode(message), self.max_frame)
