"""Typed errors of the gateway layer.

One base (``GatewayError``) split the way the gateway must react: ``ConfigError`` is the
installer's fault (the CLI prints it on one line and exits 2), ``StorageError`` means a local
SQLite file failed (the command is refused rather than run without a durable record), and
``CommandRejected`` is the peer's fault (a command we answer ``failed`` before running it).
Each carries a machine-readable ``code`` that goes into a reply when one is sent.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every gateway error."""

    code = "gateway_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class ConfigError(GatewayError):
    """The gateway configuration is invalid; the message names the file and the field."""

    code = "config_error"


class StorageError(GatewayError):
    """A local database (outbox, journal) or the session file could not be read or written."""

    code = "internal_error"


class CommandRejected(GatewayError):
    """A command refused before it ran (unknown action, bad arguments, device offline)."""

    code = "invalid_args"

    def __init__(self, message: str, *, code: str | None = None, result: dict[str, object] | None = None) -> None:
        super().__init__(message, code=code)
        self.result = result


class InvalidArgs(CommandRejected):
    """The command's ``args`` do not fit the action."""

    code = "invalid_args"


class UnknownAction(CommandRejected):
    """The target has no such action; ``result`` lists the known ones."""

    code = "unknown_action"
