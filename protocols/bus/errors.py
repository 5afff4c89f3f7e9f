"""Errors of the bus contract.

Every error is the peer's fault (a malformed topic or payload arrived), so each one carries
a stable machine-readable ``code`` that a gateway or the cloud copies into a ``failed`` reply.
"""

from __future__ import annotations


class BusError(Exception):
    """Base of every bus-contract error."""

    code = "bus_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class TopicError(BusError):
    """A topic that is not part of contract v1."""

    code = "bad_topic"


class PayloadError(BusError):
    """A payload that cannot be decoded: not JSON, not an object, wrong schema."""

    code = "invalid_schema"


class MalformedJSON(PayloadError):
    code = "malformed_json"


class UnsupportedVersion(PayloadError):
    code = "unsupported_version"
