"""Typed Massa-K Protocol 100 requests (host → scale) and replies (scale → host).

Bodies (after the frame header and length; first byte = command code; integers LE)::

    CMD_GET_MASSA      23                                   request net, tare and flags
    CMD_ACK_MASSA      24 | weight i32 | division u8 | stable u8 | net u8 | zero u8 | tare i32
    CMD_SET_ZERO       72                                   zero the scale
    CMD_ACK_SET        27                                   zero done
    CMD_SET_TARE       A3 | tare i32                        tare in divisions (0 clears it)
    CMD_ACK_SET_TARE   12                                   tare set
    CMD_NACK_TARE      15                                   tare cannot be set
    CMD_GET_SCALE_PAR  75                                   metrological parameters
    CMD_ACK_SCALE_PAR  76 | ASCII lines separated by CR LF  max, min, e, max tare, …
    CMD_ERROR          28 | code u8                         see ``ErrorCode``
    CMD_NACK           F0                                   command not supported [K]

``division`` codes the unit of ``weight`` and ``tare``: 0 = 0.1 g, 1 = 1 g, 2 = 10 g,
3 = 100 g, 4 = 1 kg. Weights stay integers in that unit here; ``Decimal`` kilograms come from
``kg()``. Sources: the reference note (§5, [V] for the frame and 0x23/0x24/0x72/0xA3/0x75,
error codes), VladStandard/WeightService CmdQueries.cs for the request shapes. The order of
the parameter lines and the CMD_NACK code (F0) are not in a public source we found ([K]).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from typing import ClassVar

from protocols.massak.errors import LocalProtocolError, MalformedMessage


class Cmd(IntEnum):
    GET_MASSA = 0x23
    ACK_MASSA = 0x24
    SET_ZERO = 0x72
    ACK_SET = 0x27
    SET_TARE = 0xA3
    ACK_SET_TARE = 0x12
    NACK_TARE = 0x15
    GET_SCALE_PAR = 0x75
    ACK_SCALE_PAR = 0x76
    ERROR = 0x28
    NACK = 0xF0


class Division(IntEnum):
    """Unit of the integer weights in ``ACK_MASSA``."""

    D_0_1_G = 0
    D_1_G = 1
    D_10_G = 2
    D_100_G = 3
    D_1_KG = 4

    @property
    def kg(self) -> Decimal:
        return Decimal(1).scaleb(self.value - 4)


class ErrorCode(IntEnum):
    UNSUPPORTED = 0x07
    OVERLOAD = 0x08
    NOT_WEIGHING = 0x09
    BAD_INPUT = 0x0A
    ZERO_IMPOSSIBLE = 0x15
    NO_ADC_LINK = 0x17
    FAULTY = 0x19


ERROR_TEXT: dict[int, str] = {
    ErrorCode.UNSUPPORTED: "команда не поддерживается",
    ErrorCode.OVERLOAD: "перегрузка весов",
    ErrorCode.NOT_WEIGHING: "весы не в режиме взвешивания",
    ErrorCode.BAD_INPUT: "ошибка входных данных",
    ErrorCode.ZERO_IMPOSSIBLE: "установка нуля невозможна",
    ErrorCode.NO_ADC_LINK: "нет связи с модулем взвешивания (АЦП)",
    ErrorCode.FAULTY: "весы неисправны",
}

_INT32 = (-(2**31), 2**31 - 1)


def _check_i32(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not _INT32[0] <= value <= _INT32[1]:
        raise LocalProtocolError(f"{what} must be a 32-bit signed int, got {value!r}")


def _expect_size(body: bytes, size: int, name: str) -> None:
    if len(body) != size:
        raise MalformedMessage(f"{name}: тело {len(body)} байт, ожидалось {size}", body[:32])


# --- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetMassa:
    """Ask for net weight, tare and the stable/net/zero flags."""

    code: ClassVar[Cmd] = Cmd.GET_MASSA

    def encode(self) -> bytes:
        return bytes([self.code])


@dataclass(frozen=True, slots=True)
class SetZero:
    """Zero the scale (only within the zero range, when stable)."""

    code: ClassVar[Cmd] = Cmd.SET_ZERO

    def encode(self) -> bytes:
        return bytes([self.code])


@dataclass(frozen=True, slots=True)
class SetTare:
    """Set the tare to ``tare`` (in the scale's divisions, as ``ACK_MASSA`` reports them); 0 clears."""

    tare: int
    code: ClassVar[Cmd] = Cmd.SET_TARE

    def __post_init__(self) -> None:
        _check_i32(self.tare, "tare")

    def encode(self) -> bytes:
        return struct.pack("<Bi", self.code, self.tare)


@dataclass(frozen=True, slots=True)
class GetScalePar:
    """Ask for the metrological parameters."""

    code: ClassVar[Cmd] = Cmd.GET_SCALE_PAR

    def encode(self) -> bytes:
        return bytes([self.code])


Request = GetMassa | SetZero | SetTare | GetScalePar


def parse_request(body: bytes) -> Request:
    """A request body as the scale receives it; ``MalformedMessage`` otherwise."""
    code = body[0] if body else -1
    if code == Cmd.GET_MASSA:
        _expect_size(body, 1, "CMD_GET_MASSA")
        return GetMassa()
    if code == Cmd.SET_ZERO:
        _expect_size(body, 1, "CMD_SET_ZERO")
        return SetZero()
    if code == Cmd.SET_TARE:
        _expect_size(body, 5, "CMD_SET_TARE")
        return SetTare(struct.unpack_from("<i", body, 1)[0])
    if code == Cmd.GET_SCALE_PAR:
        _expect_size(body, 1, "CMD_GET_SCALE_PAR")
        return GetScalePar()
    raise MalformedMessage(f"Неизвестная команда Massa-K 0x{code & 0xFF:02X}", body[:32])


# --- replies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Massa:
    """``CMD_ACK_MASSA``: net weight and tare in ``division`` units, and the display flags."""

    weight: int
    division: Division
    stable: bool
    net: bool
    zero: bool
    tare: int
    code: ClassVar[Cmd] = Cmd.ACK_MASSA

    def __post_init__(self) -> None:
        _check_i32(self.weight, "weight")
        _check_i32(self.tare, "tare")
        if not isinstance(self.division, Division):
            raise LocalProtocolError(f"division must be a Division, got {self.division!r}")

    def encode(self) -> bytes:
        return struct.pack(
            "<BiBBBBi", self.code, self.weight, self.division, self.stable, self.net, self.zero, self.tare
        )

    @property
    def weight_kg(self) -> Decimal:
        return Decimal(self.weight) * self.division.kg

    @property
    def tare_kg(self) -> Decimal:
        return Decimal(self.tare) * self.division.kg


@dataclass(frozen=True, slots=True)
class ZeroSet:
    """``CMD_ACK_SET``: the zero was set."""

    code: ClassVar[Cmd] = Cmd.ACK_SET

    def encode(self) -> bytes:
        return bytes([self.code])


@dataclass(frozen=True, slots=True)
class TareSet:
    """``CMD_ACK_SET_TARE``."""

    code: ClassVar[Cmd] = Cmd.ACK_SET_TARE

    def encode(self) -> bytes:
        return bytes([self.code])


@dataclass(frozen=True, slots=True)
class TareRefused:
    """``CMD_NACK_TARE``: the tare cannot be set (out of range, unstable)."""

    code: ClassVar[Cmd] = Cmd.NACK_TARE

    def encode(self) -> bytes:
        return bytes([self.code])


PARAMETER_NAMES = ("max", "min", "e", "tare_max", "fix", "calibration_code", "firmware", "checksum")
"""Names of the ``CMD_ACK_SCALE_PAR`` lines in order [K]; further lines are kept unnamed."""


@dataclass(frozen=True, slots=True)
class ScaleParameters:
    """``CMD_ACK_SCALE_PAR``: printable ASCII lines (e.g. ``"15 kg"``, ``"0.04 kg"``, ``"5 g"``)."""

    lines: tuple[str, ...]
    code: ClassVar[Cmd] = Cmd.ACK_SCALE_PAR

    def __post_init__(self) -> None:
        for line in self.lines:
            if not line.isascii() or not line.isprintable():
                raise LocalProtocolError(f"scale parameter lines are printable ASCII: {line!r}")

    def encode(self) -> bytes:
        return bytes([self.code]) + b"".join(line.encode("ascii") + b"\r\n" for line in self.lines)

    def as_dict(self) -> dict[str, str]:
        return {name: value for name, value in zip(PARAMETER_NAMES, self.lines, strict=False)}


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """``CMD_ERROR`` with the scale's error code (unknown codes are kept as ints)."""

    error: int
    code: ClassVar[Cmd] = Cmd.ERROR

    def __post_init__(self) -> None:
        if isinstance(self.error, bool) or not isinstance(self.error, int) or not 0 <= self.error <= 0xFF:
            raise LocalProtocolError(f"error code must be a byte, got {self.error!r}")

    def encode(self) -> bytes:
        return bytes([self.code, self.error])

    @property
    def text(self) -> str:
        return ERROR_TEXT.get(self.error, f"ошибка 0x{self.error:02X}")


@dataclass(frozen=True, slots=True)
class Nack:
    """``CMD_NACK``: the scale does not support the command."""

    code: ClassVar[Cmd] = Cmd.NACK

    def encode(self) -> bytes:
        return bytes([self.code])


Reply = Massa | ZeroSet | TareSet | TareRefused | ScaleParameters | ErrorReply | Nack

_SIMPLE: dict[int, Reply] = {
    Cmd.ACK_SET: ZeroSet(),
    Cmd.ACK_SET_TARE: TareSet(),
    Cmd.NACK_TARE: TareRefused(),
    Cmd.NACK: Nack(),
}


def parse_reply(body: bytes) -> Reply:
    """A reply body as the host receives it; ``MalformedMessage`` otherwise."""
    code = body[0] if body else -1
    if code == Cmd.ACK_MASSA:
        _expect_size(body, 13, "CMD_ACK_MASSA")
        weight, division, stable, net, zero, tare = struct.unpack_from("<iBBBBi", body, 1)
        if division not in Division._value2member_map_:
            raise MalformedMessage(f"CMD_ACK_MASSA: неизвестный код дискретности {division}", body)
        for name, flag in (("stable", stable), ("net", net), ("zero", zero)):
            if flag not in (0, 1):
                raise MalformedMessage(f"CMD_ACK_MASSA: флаг {name}={flag}, ожидалось 0 или 1", body)
        return Massa(weight, Division(division), bool(stable), bool(net), bool(zero), tare)
    if code in _SIMPLE:
        _expect_size(body, 1, Cmd(code).name)
        return _SIMPLE[code]
    if code == Cmd.ERROR:
        _expect_size(body, 2, "CMD_ERROR")
        return ErrorReply(body[1])
    if code == Cmd.ACK_SCALE_PAR:
        raw = body[1:]
        if any(b > 0x7E or (b < 0x20 and b not in (0x0D, 0x0A)) for b in raw):
            raise MalformedMessage("CMD_ACK_SCALE_PAR: непечатаемые байты в параметрах", body[:32])
        text = raw.decode("ascii")
        if text.endswith("\r\n"):
            text = text[:-2]
        lines = tuple(text.split("\r\n")) if raw else ()
        if any("\r" in line or "\n" in line for line in lines):
            raise MalformedMessage("CMD_ACK_SCALE_PAR: строки должны разделяться CR LF", body[:32])
        return ScaleParameters(lines)
    raise MalformedMessage(f"Неизвестный ответ Massa-K 0x{code & 0xFF:02X}", body[:32])
