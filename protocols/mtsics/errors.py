"""MT-SICS errors: one base, split into our fault (``LocalProtocolError``) and the peer's
fault (``RemoteProtocolError``), as h11 does.

A ``RemoteProtocolError`` raised by a parser has always consumed the offending line, so the
caller may log it and call ``next_event()`` again: the link has resynchronised on the next
CR LF. Drivers translate these to ``drivers.errors`` at their boundary.
"""

from __future__ import annotations


class MtSicsError(Exception):
    """Base of every MT-SICS protocol error."""


class LocalProtocolError(MtSicsError):
    """Our fault: a command that cannot be encoded, or sent in the wrong state."""


class RemoteProtocolError(MtSicsError):
    """The peer's fault: bytes that are not an MT-SICS line. ``line`` is what was dropped."""

    def __init__(self, message: str, line: bytes = b"") -> None:
        super().__init__(message)
        self.line = line


class LineTooLong(RemoteProtocolError):
    """More than the line limit without CR LF: the rest up to the next CR LF is skipped."""


class MalformedLine(RemoteProtocolError):
    """A complete line that does not parse (bad bytes, unknown shape, bad number)."""


class UnexpectedReply(RemoteProtocolError):
    """A well-formed reply that answers no pending command (stale or unsolicited)."""
