"""JSON text ⇄ Python values with exact money: ``Decimal`` is written as a JSON number with its
own digits (``89.90`` stays ``89.90``, never a float round trip) and every JSON number with a
fraction is read back as ``Decimal``.

ATOL's JSON carries roubles as numbers with a fraction (``"price": 89.9``); the FN works in
kopecks, so the driver quantizes to 0.01 before sending and reads results back exactly.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from protocols.atol.errors import RemoteProtocolError


def dumps(value: Any) -> str:
    """Serialize dicts, lists, str, int, bool, None and finite ``Decimal`` (no floats)."""
    if value is None or isinstance(value, bool | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"non-finite number {value}")
        return format(value, "f")
    if isinstance(value, dict):
        parts = (f"{json.dumps(str(k), ensure_ascii=False)}:{dumps(v)}" for k, v in value.items())
        return "{" + ",".join(parts) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as ATOL JSON (floats are not money)")


def loads(text: str | bytes) -> Any:
    """Parse JSON with exact decimals; ``RemoteProtocolError`` when it is not JSON."""
    try:
        return json.loads(text, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RemoteProtocolError(f"ответ веб-сервера ДТО — не JSON: {exc}") from exc
