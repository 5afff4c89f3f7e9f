"""JSON encoding and strict decoding of bus payloads.

Decoding never raises anything but :class:`PayloadError` subclasses, each with a code and a
message short enough for a ``failed`` reply, so a malformed payload is answered, not crashed on.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from protocols.bus.errors import MalformedJSON, PayloadError, UnsupportedVersion
from protocols.bus.schemas import CONTRACT_VERSION

M = TypeVar("M", bound=BaseModel)


def encode(message: BaseModel) -> bytes:
    """Compact UTF-8 JSON of a payload."""
    return message.model_dump_json(exclude_none=False).encode()


def load_object(payload: bytes | str) -> dict[str, Any]:
    """Parse JSON and check it is an object of contract v1."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedJSON(f"payload is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError(f"payload must be a JSON object, got {type(data).__name__}")
    version = data.get("v")
    if version != CONTRACT_VERSION:
        raise UnsupportedVersion(f"unsupported contract version v={version!r}, expected {CONTRACT_VERSION}")
    return data


def decode(model: type[M], payload: bytes | str) -> M:
    """Decode ``payload`` as ``model`` or raise a :class:`PayloadError` that says what is wrong."""
    data = load_object(payload)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(f"invalid {model.__name__}: {describe(exc)}") from exc


def describe(exc: ValidationError) -> str:
    """One line naming each bad field, e.g. ``args.amount: Input should be a valid integer``."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - 5
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def peek(payload: bytes | str, field: str) -> str | None:
    """Best-effort read of one string field from an undecodable payload (to address an error reply)."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return None
    value = data.get(field) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None
