"""Typed MT-SICS commands (host → device) and replies (device → host).

Commands are imperative (``Tare``), frozen, and encode themselves; ``parse_command`` is the
device side's way back. Replies are frozen values that validate when built; ``parse_reply``
turns one line into one of them. Weights stay exact ``Decimal`` in the device's unit: unit
conversion and rounding to 3 decimals belong to the driver, which knows what the caller wants.

Reply shapes (MT-SICS reference manual, level 0/1)::

    S S      1.234 kg      stable weight        (S, and SI when stable)
    S D      1.230 kg      dynamic weight       (SI only)
    S I / S + / S -        not executable / overload / underload
    Z A / Z I / Z + / Z -  zeroed / not executable / above / below the zero-setting range
    T S      0.500 kg      tare taken (T + / T - / T I as for Z)
    TA A     0.500 kg      tare value (query or preset; TA L: preset out of range)
    TAC A                  tare cleared
    I4 A "0123456789"      serial number (also the answer to @)
    I2 A "PBA430 15 kg"    type, capacity and unit in one quoted string
    ES / ET / EL           syntax / transmission / logical error, no identifier
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import ClassVar, Literal

from protocols.mtsics.errors import LocalProtocolError, MalformedLine
from protocols.mtsics.frames import decode_line, encode_line

_IDENT = re.compile(r"@|[A-Z][A-Z0-9]{0,4}")
_NUMBER = re.compile(r"[+-]?\d{1,9}(?:\.\d{1,9})?")
_UNIT = re.compile(r"[A-Za-z%/]{1,5}")
_QUOTED = re.compile(r'"([^"]*)"')
_QUOTED_LIST = re.compile(r'"[^"]*"(?: +"[^"]*")*')

# Identifiers whose data replies carry "<value> <unit>".
WEIGHT_IDS: frozenset[str] = frozenset({"S", "SI", "SIR", "SR", "SC", "T", "TI", "TC", "TA"})


class Status(StrEnum):
    """The one-character status after the identifier."""

    EXECUTED = "A"
    MORE = "B"
    STABLE = "S"
    DYNAMIC = "D"
    NOT_EXECUTABLE = "I"
    PARAMETER_ERROR = "L"
    ABOVE = "+"
    BELOW = "-"


def format_decimal(value: Decimal) -> str:
    """Plain notation (``Decimal('1E+1')`` would print as ``1E+1``, which no scale parses)."""
    return format(value, "f")


def _check_decimal(value: Decimal, what: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise LocalProtocolError(f"{what} must be a finite Decimal, got {value!r}")


def _check_unit(unit: str) -> None:
    if not _UNIT.fullmatch(unit):
        raise LocalProtocolError(f"bad MT-SICS unit {unit!r}")


# --- commands -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """Base of host commands. ``reply_ids``: identifiers a reply to it may carry."""

    ident: ClassVar[str] = ""
    reply_ids: ClassVar[frozenset[str]] = frozenset()

    def params(self) -> tuple[str, ...]:
        return ()

    def encode(self) -> bytes:
        return encode_line(" ".join((self.ident, *self.params())))


@dataclass(frozen=True, slots=True)
class SendStableWeight(Command):
    """``S``: the next stable net weight (``S I`` if the scale cannot get one)."""

    ident: ClassVar[str] = "S"
    reply_ids: ClassVar[frozenset[str]] = frozenset({"S"})


@dataclass(frozen=True, slots=True)
class SendImmediateWeight(Command):
    """``SI``: the current net weight, stable or not; the reply's identifier is ``S``."""

    ident: ClassVar[str] = "SI"
    reply_ids: ClassVar[frozenset[str]] = frozenset({"S"})


@dataclass(frozen=True, slots=True)
class Zero(Command):
    """``Z``: set zero once the weight is stable."""

    ident: ClassVar[str] = "Z"
    reply_ids: ClassVar[frozenset[str]] = frozenset({"Z"})


@dataclass(frozen=True, slots=True)
class Tare(Command):
    """``T``: tare the stable weight on the platform."""

    ident: ClassVar[str] = "T"
    reply_ids: ClassVar[frozenset[str]] = frozenset({"T"})


@dataclass(frozen=True, slots=True)
class QueryTare(Command):
    """``TA``: the current tare value."""

    ident: ClassVar[str] = "TA"
    reply_ids: ClassVar[frozenset[str]] = frozenset({"TA"})


@dataclass(frozen=True, slots=True)
class PresetTare(Command):
    """``TA <value> <unit>``: a known tare (a container's weight) without weighing it."""

    ident: ClassVar[str] = "TA"
    reply_ids: ClassVar[frozenset[str]] = frozenset({"TA"})
    value: Decimal
    unit: str = "kg"

    def __post_init__(self) -> None:
        _check_decimal(self.value, "tare value")
        _check_unit(self.unit)

    def params(self) -> tuple[str, ...]:
        return (format_decimal(self.value), self.unit)


@dataclass(frozen=True, slots=True)
class ClearTare(Command):
    """``TAC``: clear the tare memory."""

    ident: ClassVar[str] = "TAC"
    reply_ids: ClassVar[frozenset[str]] = frozenset({"TAC"})


@dataclass(frozen=True, slots=True)
class Reset(Command):
    """``@``: back to the power-on state (tare cleared, zero kept); answers ``I4 A "<serial>"``."""

    ident: ClassVar[str] = "@"
    reply_ids: ClassVar[frozenset[str]] = frozenset({"I4"})


@dataclass(frozen=True, slots=True)
class QueryBalanceData(Command):
    """``I2``: type, capacity and unit."""

    ident: ClassVar[str] = "I2"
    reply_ids: ClassVar[frozenset[str]] = frozenset({"I2"})


@dataclass(frozen=True, slots=True)
class QuerySoftwareVersion(Command):
    """``I3``: software version and type definition number."""

    ident: ClassVar[str] = "I3"
    reply_ids: ClassVar[frozenset[str]] = frozenset({"I3"})


@dataclass(frozen=True, slots=True)
class QuerySerialNumber(Command):
    """``I4``: serial number."""

    ident: ClassVar[str] = "I4"
    reply_ids: ClassVar[frozenset[str]] = frozenset({"I4"})


_NO_ARG_COMMANDS: dict[str, type[Command]] = {
    cls.ident: cls
    for cls in (
        SendStableWeight,
        SendImmediateWeight,
        Zero,
        Tare,
        QueryTare,
        ClearTare,
        Reset,
        QueryBalanceData,
        QuerySoftwareVersion,
        QuerySerialNumber,
    )
}


def parse_command(line: bytes) -> Command:
    """Device side: one command line (without CR LF) → a command, or ``MalformedLine``."""
    text = decode_line(line)
    tokens = text.split()
    if not tokens:
        raise MalformedLine("empty MT-SICS command line", line)
    ident, args = tokens[0], tokens[1:]
    if ident == "TA" and len(args) == 2:
        if not _NUMBER.fullmatch(args[0]) or not _UNIT.fullmatch(args[1]):
            raise MalformedLine(f"bad tare preset {text!r}", line)
        return PresetTare(Decimal(args[0]), args[1])
    cls = _NO_ARG_COMMANDS.get(ident)
    if cls is None:
        raise MalformedLine(f"unknown MT-SICS command {ident!r}", line)
    if args:
        raise MalformedLine(f"MT-SICS command {ident} takes no parameters: {text!r}", line)
    return cls()


# --- replies --------------------------------------------------------------------------


def _check_ident(command: str) -> None:
    if not _IDENT.fullmatch(command):
        raise LocalProtocolError(f"bad MT-SICS identifier {command!r}")


@dataclass(frozen=True, slots=True)
class WeightReply:
    """``<id> <S|D|A> <value> <unit>``: a weight, a tare taken or a tare value."""

    command: str
    status: Status
    value: Decimal
    unit: str

    def __post_init__(self) -> None:
        _check_ident(self.command)
        _check_decimal(self.value, "weight value")
        _check_unit(self.unit)

    @property
    def stable(self) -> bool:
        return self.status is not Status.DYNAMIC

    def encode(self) -> bytes:
        # The manual right-aligns the value in a 10-character field.
        return encode_line(f"{self.command} {self.status.value} {format_decimal(self.value):>10} {self.unit}")


@dataclass(frozen=True, slots=True)
class StatusReply:
    """``<id> <status>`` with no data: ``Z A``, ``S I``, ``S +``, ``TAC A``…"""

    command: str
    status: Status

    def __post_init__(self) -> None:
        _check_ident(self.command)

    def encode(self) -> bytes:
        return encode_line(f"{self.command} {self.status.value}")


@dataclass(frozen=True, slots=True)
class TextReply:
    """``<id> <status> "<text>" ...``: identification strings (quotes removed)."""

    command: str
    status: Status
    fields: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_ident(self.command)
        if not self.fields or any('"' in f for f in self.fields):
            raise LocalProtocolError(f"bad MT-SICS text fields {self.fields!r}")

    @property
    def text(self) -> str:
        return self.fields[0]

    def encode(self) -> bytes:
        quoted = " ".join(f'"{f}"' for f in self.fields)
        return encode_line(f"{self.command} {self.status.value} {quoted}")


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """``ES`` syntax error, ``ET`` transmission error, ``EL`` logical error."""

    code: Literal["ES", "ET", "EL"]

    def __post_init__(self) -> None:
        if self.code not in ("ES", "ET", "EL"):
            raise LocalProtocolError(f"bad MT-SICS error code {self.code!r}")

    def encode(self) -> bytes:
        return encode_line(self.code)


Reply = WeightReply | StatusReply | TextReply | ErrorReply


def parse_reply(line: bytes) -> Reply:
    """Host side: one reply line (without CR LF) → a typed reply, or ``MalformedLine``."""
    text = decode_line(line)
    if text in ("ES", "ET", "EL"):
        return ErrorReply(text)  # type: ignore[arg-type]  # narrowed by the membership test
    ident, _, rest = text.partition(" ")
    if not _IDENT.fullmatch(ident) or not rest:
        raise MalformedLine(f"not an MT-SICS reply: {text[:40]!r}", line)
    try:
        status = Status(rest[0])
    except ValueError:
        raise MalformedLine(f"unknown MT-SICS status {rest[0]!r} in {text[:40]!r}", line) from None
    params = rest[1:]
    if params and not params.startswith(" "):
        raise MalformedLine(f"no space after the status in {text[:40]!r}", line)
    params = params.strip(" ")
    if not params:
        return StatusReply(ident, status)
    if ident in WEIGHT_IDS:
        return _parse_weight(ident, status, params, line)
    if params.startswith('"'):
        if not _QUOTED_LIST.fullmatch(params):
            raise MalformedLine(f"bad quoted string in {text[:40]!r}", line)
        return TextReply(ident, status, tuple(_QUOTED.findall(params)))
    return TextReply(ident, status, tuple(params.split()))


def _parse_weight(ident: str, status: Status, params: str, line: bytes) -> WeightReply:
    if status not in (Status.STABLE, Status.DYNAMIC, Status.EXECUTED):
        raise MalformedLine(f"status {status.value!r} carries no weight: {params[:30]!r}", line)
    parts = params.split()
    if len(parts) != 2 or not _NUMBER.fullmatch(parts[0]) or not _UNIT.fullmatch(parts[1]):
        raise MalformedLine(f"bad MT-SICS weight {params[:30]!r}", line)
    try:
        value = Decimal(parts[0])
    except InvalidOperation:  # pragma: no cover - the regex admits only plain numbers
        raise MalformedLine(f"bad MT-SICS number {parts[0]!r}", line) from None
    return WeightReply(ident, status, value, parts[1])
