"""Shtrih M5 scale errors: one base, split into our fault, the peer's fault and a refusal.

- ``LocalProtocolError``: we asked for something the protocol cannot carry (a tare over
  65535 units, a password over 4 bytes) or drove the connection out of order.
- ``RemoteProtocolError``: the peer sent bytes that are not the protocol (an answer too
  short for its command, an answer to another command, a request the device cannot parse).
- ``ScaleRefused``: a well-formed answer whose error byte is not 0. The code table is data:
  the vendor's codes and Russian texts from ``shtrih-m/opos``
  ``Source/SmScale/Units/M5ScaleTypes.pas`` (``S_ERROR_17`` … ``S_ERROR_186``; the codes
  are decimal there), each mapped to a typed subclass so callers catch meanings, not numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType
from typing import Final


class ShtrihM5Error(Exception):
    """Base of every Shtrih M5 protocol error."""


class LocalProtocolError(ShtrihM5Error):
    """Our fault: a value that cannot be encoded, or a call in the wrong state."""


class RemoteProtocolError(ShtrihM5Error):
    """The peer's fault: bytes that do not parse. ``data`` is the offending frame body."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class MalformedMessage(RemoteProtocolError):
    """A frame body that does not parse as the command it names."""


class UnknownCommand(MalformedMessage):
    """A request whose command byte this scale does not know (it answers code 120)."""


class UnexpectedAnswer(RemoteProtocolError):
    """A well-formed answer to a command other than the one pending."""


class ErrorCode(IntEnum):
    """The scale's error byte (decimal in the vendor source)."""

    OK = 0
    TARE_VALUE = 17
    UNKNOWN_COMMAND = 120
    BAD_LENGTH = 121
    WRONG_PASSWORD = 122
    NOT_IN_MODE = 123
    BAD_PARAMETER = 124
    ZERO_FAILED = 150
    TARE_FAILED = 151
    WEIGHT_NOT_FIXED = 152
    NVRAM_FAULT = 166
    NOT_IN_INTERFACE = 167
    PASSWORD_LOCKOUT = 170
    CALIBRATION_LOCKED = 180
    KEYBOARD_LOCKED = 181
    CHANNEL_TYPE_FIXED = 182
    CHANNEL_CANNOT_DISABLE = 183
    CHANNEL_UNUSABLE = 184
    BAD_CHANNEL = 185
    NO_ADC = 186


class ScaleRefused(ShtrihM5Error):
    """The scale answered with a non-zero error byte."""

    def __init__(self, code: int, command: int = 0) -> None:
        self.code = code
        self.command = command
        self.message = error_message(code)
        super().__init__(f"{self.message} (код {code}, команда {command:02X}h)")


class BadRequest(ScaleRefused):
    """Unknown command, bad length or bad parameter: a driver bug or a model without it."""


class WrongPassword(ScaleRefused):
    """The administrator password is wrong (or too many wrong tries)."""


class NotAllowedNow(ScaleRefused):
    """Not in this mode: calibration switch, locked keyboard, interface restriction."""


class ZeroRefused(ScaleRefused):
    """Zero could not be set (load outside the zero range, or not stable)."""


class TareRefused(ScaleRefused):
    """Tare could not be set or its value is out of range."""


class WeightNotFixed(ScaleRefused):
    """The weight is not fixed (still moving): try again when it settles."""


class HardwareFault(ScaleRefused):
    """The scale's memory or ADC failed."""


_C = ErrorCode
_E: dict[int, tuple[str, type[ScaleRefused]]] = {
    _C.TARE_VALUE: ("Ошибка в значении тары", TareRefused),
    _C.UNKNOWN_COMMAND: ("Неизвестная команда", BadRequest),
    _C.BAD_LENGTH: ("Неверная длина данных команды", BadRequest),
    _C.WRONG_PASSWORD: ("Неверный пароль", WrongPassword),
    _C.NOT_IN_MODE: ("Команда не реализуется в данном режиме", NotAllowedNow),
    _C.BAD_PARAMETER: ("Неверное значение параметра", BadRequest),
    _C.ZERO_FAILED: ("Ошибка при попытке установки нуля", ZeroRefused),
    _C.TARE_FAILED: ("Ошибка при установке тары", TareRefused),
    _C.WEIGHT_NOT_FIXED: ("Вес не фиксирован", WeightNotFixed),
    _C.NVRAM_FAULT: ("Сбой энергонезависимой памяти", HardwareFault),
    _C.NOT_IN_INTERFACE: ("Команда не реализуется интерфейсом", NotAllowedNow),
    _C.PASSWORD_LOCKOUT: ("Исчерпан лимит попыток обращения с неверным паролем", WrongPassword),
    _C.CALIBRATION_LOCKED: ("Режим градуировки блокирован градуировочным переключателем", NotAllowedNow),
    _C.KEYBOARD_LOCKED: ("Клавиатура заблокирована", NotAllowedNow),
    _C.CHANNEL_TYPE_FIXED: ("Нельзя поменять тип текущего канала", BadRequest),
    _C.CHANNEL_CANNOT_DISABLE: ("Нельзя выключить текущий канал", BadRequest),
    _C.CHANNEL_UNUSABLE: ("С данным каналом ничего нельзя делать", BadRequest),
    _C.BAD_CHANNEL: ("Неверный номер канала", BadRequest),
    _C.NO_ADC: ("Нет ответа от АЦП", HardwareFault),
}

ERROR_TABLE: Final[Mapping[int, tuple[str, type[ScaleRefused]]]] = MappingProxyType(_E)
"""Error byte → (the vendor's Russian message, the typed error raised for it)."""


def error_message(code: int) -> str:
    entry = ERROR_TABLE.get(code)
    return entry[0] if entry else f"Неизвестная ошибка весов (код {code})"


def refusal(code: int, command: int = 0) -> ScaleRefused:
    """The typed error for a non-zero error byte (``ScaleRefused`` itself for unknown codes)."""
    if code == ErrorCode.OK:
        raise ValueError("code 0 is not an error")
    entry = ERROR_TABLE.get(code)
    cls = entry[1] if entry else ScaleRefused
    return cls(code, command)
