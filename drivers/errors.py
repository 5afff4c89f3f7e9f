"""Errors every driver raises, whatever the device family.

Split as the gateway needs to act on them: ``DeviceUnavailable`` means "mark the device
offline and reconnect", ``DeviceTimeout`` means "the device did not answer in time" (the
outcome of a side effect is unknown), ``DeviceProtocolError`` means the peer sent bytes we
cannot parse (the driver resynchronises), ``DeviceRejected`` means the device understood and
refused (its own error code and message, to be shown to a person).
"""

from __future__ import annotations


class DriverError(Exception):
    """Base of every driver error. ``code`` is copied into a ``failed`` reply on the bus."""

    code = "device_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class DriverConfigError(DriverError):
    """Our fault: the device configuration is wrong (unknown driver, bad URL, bad option)."""

    code = "driver_config"


class DeviceUnavailable(DriverError):
    """The transport cannot be opened or was lost (unplugged, connection refused)."""

    code = "device_offline"


class DeviceTimeout(DriverError):
    """The device did not answer within the timeout."""

    code = "device_timeout"


class DeviceProtocolError(DriverError):
    """The device sent bytes that do not parse as its protocol."""

    code = "device_protocol"


class DeviceRejected(DriverError):
    """The device understood the request and answered with an error of its own."""

    code = "device_rejected"
