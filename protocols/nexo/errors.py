"""nexo errors: one base split into our fault and the peer's fault (as h11 does)."""

from __future__ import annotations


class NexoError(Exception):
    """Base of every nexo protocol error."""


class LocalProtocolError(NexoError):
    """Our fault: a message that cannot be encoded (too large, invalid field)."""


class RemoteProtocolError(NexoError):
    """The peer's fault. ``fatal``: the stream lost its framing and the link must be closed."""

    fatal = False


class FrameTooLarge(RemoteProtocolError):
    """A length prefix beyond the limit: garbage or a different protocol; close the link."""

    fatal = True


class MalformedMessage(RemoteProtocolError):
    """A complete frame that is not a nexo message (bad JSON, unknown message, invalid field).

    The frame was consumed: the next one parses normally.
    """
