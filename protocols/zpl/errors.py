"""ZPL errors: one base, split into our fault (``LocalProtocolError``: bad template data, a
command we cannot encode) and the printer's fault (``RemoteProtocolError``: bytes that are not
a ``~HS``/``~HI`` answer). Drivers translate these to ``drivers.errors`` at their boundary.
"""

from __future__ import annotations


class ZplError(Exception):
    """Base of every ZPL protocol error."""


class LocalProtocolError(ZplError):
    """Our fault: data that cannot be put on a label, or a command that cannot be encoded."""


class TemplateDataError(LocalProtocolError):
    """Label data failed validation. ``field`` names the offending field (Russian message)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class RemoteProtocolError(ZplError):
    """The printer's fault: an answer that does not parse. ``data`` is what was dropped."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data
