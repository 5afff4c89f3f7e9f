"""ESC/POS errors: our fault (``LocalProtocolError``: a document that cannot be printed as
given) and the peer's fault (``RemoteProtocolError``: bytes that are not a status answer, or
a command stream the printer side cannot take). Drivers translate at their boundary."""

from __future__ import annotations


class EscPosError(Exception):
    """Base of every ESC/POS protocol error."""


class LocalProtocolError(EscPosError):
    """Our fault: bad document data (``field`` names it when known)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class RemoteProtocolError(EscPosError):
    """The peer's fault: bytes that do not parse. ``data`` is what was dropped."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data
