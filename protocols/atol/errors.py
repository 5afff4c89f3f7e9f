"""ATOL JSON-task errors: one base, split into our fault and the peer's fault."""

from __future__ import annotations


class AtolError(Exception):
    """Base of every ``protocols.atol`` error. The message is Russian, for the staff."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class LocalProtocolError(AtolError, ValueError):
    """Our fault: a task that must not be sent (a value the JSON schema cannot carry)."""


class RemoteProtocolError(AtolError):
    """The peer's fault: a body from the web server that is not JSON or not ATOL's schema."""
