"""Typed Shtrih M5 scale requests and answers; each knows its frame body.

Bodies (inside ``protocols.shtrih.frames``' ``STX LEN BODY LRC``; integers little-endian,
as ``IntToBin``/``BinToInteger`` in ``shtrih-m/opos`` ``Source/SmScale/Units/M5ScaleDevice.pas``)::

    host → scale   CMD  [PASSWORD u32]  params            (E8h, EAh, FCh carry no password)
    scale → host   CMD  ERR  data                          (ERR 0 = done; data only then)

    30h zero            → —
    31h tare            → —
    32h set tare        TARE u16 → —
    3Ah status          → FLAGS u16, WEIGHT i32, TARE u16
    EAh channel number  → NUMBER u8
    E8h read channel    NUMBER u8 → FLAGS u16, DP u8, POWER i8, MAX u16, MIN u16, MAXTARE u16,
                                    RANGE1..3 u16, DISCRETENESS1..4 u8, POINTS u8, CALIBRATIONS u8
    FCh device type     → MAJOR u8, MINOR u8, VER u8, SUBVER u8, MODEL u8, LANG u8, NAME (cp1251)

Weights and tares are in the channel's units: ``value / 10**decimal_point`` kg (OPOS:
``WeightFactor = 1000 / 10**DecimalPoint`` grams per unit). Answers may be longer than listed
(newer firmware appends fields); the extra bytes are ignored as the vendor driver does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import ClassVar, Final

from protocols.shtrih_m5.errors import (
    LocalProtocolError,
    MalformedMessage,
    ScaleRefused,
    UnknownCommand,
    refusal,
)

DEFAULT_PASSWORD: Final = 30
"""The factory administrator password (``DefPassword`` in ScaleParameters.pas)."""

NAME_ENCODING: Final = "cp1251"


class Command(IntEnum):
    ZERO = 0x30
    TARE = 0x31
    SET_TARE = 0x32
    READ_STATUS = 0x3A
    READ_CHANNEL = 0xE8
    CHANNEL_NUMBER = 0xEA
    DEVICE_INFO = 0xFC


class StatusFlag(IntFlag):
    """Flags of the 3Ah answer (``TM5StatusFlags`` in M5ScaleTypes.pas)."""

    FIXED = 1 << 0
    AUTO_ZERO = 1 << 1
    CHANNEL_ON = 1 << 2
    TARE_SET = 1 << 3
    STABLE = 1 << 4
    AUTO_ZERO_ERROR = 1 << 5
    OVERLOAD = 1 << 6
    READ_ERROR = 1 << 7
    UNDERLOAD = 1 << 8
    NO_ADC = 1 << 9


def _u(value: int, size: int, what: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << (8 * size):
        raise LocalProtocolError(f"{what} должно быть целым 0..{(1 << (8 * size)) - 1}, а не {value!r}")
    return value.to_bytes(size, "little")


def _check_password(password: int) -> None:
    _u(password, 4, "Пароль весов")


# --- requests -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PasswordRequest:
    password: int = DEFAULT_PASSWORD
    CODE: ClassVar[Command]

    def __post_init__(self) -> None:
        _check_password(self.password)

    def encode(self) -> bytes:
        return bytes([self.CODE]) + self.password.to_bytes(4, "little")


@dataclass(frozen=True, slots=True)
class Zero(_PasswordRequest):
    """30h: set zero (the load must be stable and within the zero range)."""

    CODE: ClassVar[Command] = Command.ZERO


@dataclass(frozen=True, slots=True)
class Tare(_PasswordRequest):
    """31h: take the load on the platform as the tare."""

    CODE: ClassVar[Command] = Command.TARE


@dataclass(frozen=True, slots=True)
class ReadStatus(_PasswordRequest):
    """3Ah: flags, weight and tare of the current channel."""

    CODE: ClassVar[Command] = Command.READ_STATUS


@dataclass(frozen=True, slots=True)
class SetTare:
    """32h: preset the tare to ``tare`` channel units (0 clears it)."""

    tare: int
    password: int = DEFAULT_PASSWORD
    CODE: ClassVar[Command] = Command.SET_TARE

    def __post_init__(self) -> None:
        _check_password(self.password)
        _u(self.tare, 2, "Тара")

    def encode(self) -> bytes:
        return bytes([self.CODE]) + self.password.to_bytes(4, "little") + self.tare.to_bytes(2, "little")


@dataclass(frozen=True, slots=True)
class ReadChannelNumber:
    """EAh: the number of the current weighing channel (no password)."""

    CODE: ClassVar[Command] = Command.CHANNEL_NUMBER

    def encode(self) -> bytes:
        return bytes([self.CODE])


@dataclass(frozen=True, slots=True)
class ReadChannel:
    """E8h: characteristics of channel ``number`` (no password)."""

    number: int = 0
    CODE: ClassVar[Command] = Command.READ_CHANNEL

    def __post_init__(self) -> None:
        _u(self.number, 1, "Номер канала")

    def encode(self) -> bytes:
        return bytes([self.CODE, self.number])


@dataclass(frozen=True, slots=True)
class ReadDeviceInfo:
    """FCh: device type, version and name (no password)."""

    CODE: ClassVar[Command] = Command.DEVICE_INFO

    def encode(self) -> bytes:
        return bytes([self.CODE])


Request = Zero | Tare | SetTare | ReadStatus | ReadChannelNumber | ReadChannel | ReadDeviceInfo


def decode_request(body: bytes) -> Request:
    """The scale's view of a command body. ``UnknownCommand``/``MalformedMessage`` name what
    the scale answers (codes 120 and 121)."""
    if not body:
        raise MalformedMessage("пустой кадр команды", body)
    code = body[0]
    try:
        cmd = Command(code)
    except ValueError:
        raise UnknownCommand(f"неизвестная команда {code:02X}h", body) from None
    expected = {
        Command.ZERO: 5,
        Command.TARE: 5,
        Command.READ_STATUS: 5,
        Command.SET_TARE: 7,
        Command.CHANNEL_NUMBER: 1,
        Command.READ_CHANNEL: 2,
        Command.DEVICE_INFO: 1,
    }[cmd]
    if len(body) != expected:
        raise MalformedMessage(f"команда {code:02X}h: {len(body)} байт вместо {expected}", body)
    password = int.from_bytes(body[1:5], "little") if expected >= 5 else 0
    if cmd is Command.ZERO:
        return Zero(password)
    if cmd is Command.TARE:
        return Tare(password)
    if cmd is Command.READ_STATUS:
        return ReadStatus(password)
    if cmd is Command.SET_TARE:
        return SetTare(int.from_bytes(body[5:7], "little"), password)
    if cmd is Command.CHANNEL_NUMBER:
        return ReadChannelNumber()
    if cmd is Command.READ_CHANNEL:
        return ReadChannel(body[1])
    return ReadDeviceInfo()


# --- answers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Done:
    """A command with no answer data succeeded (30h, 31h, 32h)."""

    command: Command

    def data(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class Status:
    """3Ah answer. ``weight`` (signed) and ``tare`` are in channel units."""

    flags: StatusFlag
    weight: int
    tare: int
    command: ClassVar[Command] = Command.READ_STATUS

    def __post_init__(self) -> None:
        _u(int(self.flags), 2, "Флаги состояния")
        if (
            isinstance(self.weight, bool)
            or not isinstance(self.weight, int)
            or not -(2**31) <= self.weight < 2**31
        ):
            raise LocalProtocolError(f"Вес не помещается в 4 байта со знаком: {self.weight!r}")
        _u(self.tare, 2, "Тара")

    @property
    def stable(self) -> bool:
        return StatusFlag.STABLE in self.flags

    @property
    def overload(self) -> bool:
        return StatusFlag.OVERLOAD in self.flags

    @property
    def underload(self) -> bool:
        return StatusFlag.UNDERLOAD in self.flags

    def data(self) -> bytes:
        return struct.pack("<HiH", int(self.flags), self.weight, self.tare)


@dataclass(frozen=True, slots=True)
class ChannelNumber:
    """EAh answer."""

    number: int
    command: ClassVar[Command] = Command.CHANNEL_NUMBER

    def __post_init__(self) -> None:
        _u(self.number, 1, "Номер канала")

    def data(self) -> bytes:
        return bytes([self.number])


_CHANNEL = struct.Struct("<HBbHHHHHHBBBBBB")


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """E8h answer (``TScaleChannel``). Weights in channel units; ``decimal_point`` 0..6."""

    flags: int = 0
    decimal_point: int = 3
    power: int = 0
    max_weight: int = 15000
    min_weight: int = 40
    max_tare: int = 6000
    ranges: tuple[int, int, int] = (6000, 15000, 15000)
    discreteness: tuple[int, int, int, int] = (2, 5, 5, 5)
    points: int = 3
    calibrations: int = 0
    command: ClassVar[Command] = Command.READ_CHANNEL

    def __post_init__(self) -> None:
        if not 0 <= self.decimal_point <= 6:
            raise LocalProtocolError(f"Положение десятичной точки 0..6, а не {self.decimal_point!r}")
        self.data()  # validates every field's range

    def data(self) -> bytes:
        try:
            return _CHANNEL.pack(
                self.flags,
                self.decimal_point,
                self.power,
                self.max_weight,
                self.min_weight,
                self.max_tare,
                *self.ranges,
                *self.discreteness,
                self.points,
                self.calibrations,
            )
        except (struct.error, TypeError) as exc:
            raise LocalProtocolError(f"Характеристики канала не кодируются: {exc}") from exc


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """FCh answer (``TDeviceMetrics``); the name is cp1251 (assumed: the driver's default
    encoding is Windows, ``DefEncoding`` in ScaleParameters.pas)."""

    major_type: int
    minor_type: int
    major_version: int
    minor_version: int
    model: int
    language: int
    name: str
    command: ClassVar[Command] = Command.DEVICE_INFO

    def __post_init__(self) -> None:
        self.data()

    def data(self) -> bytes:
        head = (
            self.major_type,
            self.minor_type,
            self.major_version,
            self.minor_version,
            self.model,
            self.language,
        )
        for value in head:
            _u(value, 1, "Поле типа устройства")
        try:
            name = self.name.encode(NAME_ENCODING)
        except UnicodeEncodeError as exc:
            raise LocalProtocolError(
                f"Имя устройства не кодируется в {NAME_ENCODING}: {self.name!r}"
            ) from exc
        if len(name) > 255 - 8:
            raise LocalProtocolError("Имя устройства длиннее кадра")
        return bytes(head) + name


@dataclass(frozen=True, slots=True)
class Refused:
    """Any command answered with a non-zero error byte."""

    command: int
    code: int

    def __post_init__(self) -> None:
        _u(self.command, 1, "Код команды")
        if not 1 <= self.code <= 255:
            raise LocalProtocolError(f"Код ошибки 1..255, а не {self.code!r}")

    def data(self) -> bytes:
        return b""

    def error(self) -> ScaleRefused:
        return refusal(self.code, self.command)


Answer = Done | Status | ChannelNumber | ChannelInfo | DeviceInfo | Refused


def encode_answer(answer: Answer) -> bytes:
    """The scale's answer body: ``CMD ERR data``."""
    if isinstance(answer, Refused):
        return bytes([answer.command, answer.code])
    return bytes([answer.command, 0]) + answer.data()


def _need(body: bytes, size: int) -> None:
    if len(body) < 2 + size:
        raise MalformedMessage(f"ответ на {body[0]:02X}h: {len(body) - 2} байт данных, нужно {size}", body)


def decode_answer(body: bytes) -> Answer:
    """The host's view of an answer body. ``MalformedMessage`` when it does not parse."""
    if len(body) < 2:
        raise MalformedMessage(f"ответ короче 2 байт: {body.hex(' ')}", body)
    code, err = body[0], body[1]
    try:
        cmd = Command(code)
    except ValueError:
        raise MalformedMessage(f"ответ на неизвестную команду {code:02X}h", body) from None
    if err:
        return Refused(code, err)
    data = body[2:]
    if cmd in (Command.ZERO, Command.TARE, Command.SET_TARE):
        return Done(cmd)
    if cmd is Command.READ_STATUS:
        _need(body, 8)
        flags, weight, tare = struct.unpack_from("<HiH", data)
        return Status(StatusFlag(flags), weight, tare)
    if cmd is Command.CHANNEL_NUMBER:
        _need(body, 1)
        return ChannelNumber(data[0])
    if cmd is Command.READ_CHANNEL:
        _need(body, _CHANNEL.size)
        f = _CHANNEL.unpack_from(data)
        if f[1] > 6:
            raise MalformedMessage(f"положение десятичной точки {f[1]} вне 0..6", body)
        return ChannelInfo(
            f[0], f[1], f[2], f[3], f[4], f[5], (f[6], f[7], f[8]), (f[9], f[10], f[11], f[12]), f[13], f[14]
        )
    _need(body, 6)
    name = data[6:].rstrip(b"\x00").decode(NAME_ENCODING, errors="replace")
    return DeviceInfo(data[0], data[1], data[2], data[3], data[4], data[5], name)
