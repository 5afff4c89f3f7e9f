"""Errors of the handheld server. ``message`` is Russian: it is shown on the handheld as is.

``HandheldRefused`` is the handheld's (or its user's) fault and becomes a 4xx with
``{"detail", "code"}``; ``HandheldServerError`` is ours (the port is taken, the database
failed) and is logged and reported in the pool device's status.
"""

from __future__ import annotations

from gateway.errors import GatewayError


class HandheldError(GatewayError):
    """Base of the handheld server's errors."""

    code = "handheld_error"


class HandheldRefused(HandheldError):
    """A request refused with a message for the person holding the handheld."""

    status = 400

    def __init__(self, message: str, *, code: str, status: int = 400, extra: dict[str, object] | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.extra = extra or {}


class HandheldServerError(HandheldError):
    """The server cannot run (port taken, bad address)."""

    code = "handheld_server"


def refused(message: str, code: str, status: int = 400, **extra: object) -> HandheldRefused:
    return HandheldRefused(message, code=code, status=status, extra=dict(extra))
