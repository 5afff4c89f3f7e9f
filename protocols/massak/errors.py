"""Massa-K Protocol 100 errors: one base, our fault vs the peer's fault (as h11 does).

A ``RemoteProtocolError`` raised by a parser has always consumed the offending bytes: the
caller logs it and calls ``next_event()`` again, and the parser has already resynchronised on
the next ``F8 55 CE`` header. Drivers translate these into ``drivers.errors`` at their boundary.
"""

from __future__ import annotations


class MassaKError(Exception):
    """Base of every Massa-K protocol error."""


class LocalProtocolError(MassaKError):
    """Our fault: a message that cannot be encoded, or sent in the wrong state."""


class RemoteProtocolError(MassaKError):
    """The peer's fault: bytes that are not a valid frame or message. ``data`` is what was dropped."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class BadCrc(RemoteProtocolError):
    """A frame whose CRC-16 does not match its body (noise on the line)."""


class BadLength(RemoteProtocolError):
    """A header followed by a body length beyond what the protocol allows."""


class Garbage(RemoteProtocolError):
    """Bytes before a frame header (a device on the wrong speed, a half frame after a replug)."""


class MalformedMessage(RemoteProtocolError):
    """A frame with a valid CRC whose body is not a message we know (or has the wrong size)."""


class UnexpectedReply(RemoteProtocolError):
    """A well-formed reply that answers no pending request."""
