"""Typed Shtrih-M commands (host → device) and answers (device → host).

Every message is a frozen dataclass whose ``FIELDS`` table is its byte layout after the
command code (requests: after the 4-byte password; answers: after the ERR byte). Building a
message validates every field (``LocalProtocolError``); decoding a body that does not fit its
layout raises ``MalformedMessage``. Money is integer kopecks (5 bytes LE), FF46 quantities
are ×10⁶ (6 bytes), legacy 80/82 quantities ×1000 (5 bytes), text cp1251.

Sources: Shtrih-M protocol v1 as reproduced in ``shtrih-m/opos`` (FiscalPrinterDevice.pas),
``shtrih-m/javapos`` command classes (FSFindDocument, FSReadStatus, FSCheckMC, FF45/FF46/FF4A
comments) and ``oleg-golovanov/pyshtrih`` (handlers/commands.py). Marked [K] where the layout
was not found in a vendor text and is the best reading of secondary sources.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from protocols.shtrih.errors import DeviceRefused, LocalProtocolError, MalformedMessage, refusal
from protocols.shtrih.fields import (
    MONEY,
    U8,
    U16,
    U32,
    Ascii,
    Date3,
    DateTime5,
    Field,
    LegacyText,
    SInt,
    Tail,
    Text,
    Time3,
    UInt,
)

DEFAULT_PASSWORD = 30
"""System administrator password of a factory-fresh register (``1E 00 00 00``)."""


class MoneyArray(Field):
    """``count`` money fields in a row (FF45 payment slots and tax sums)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.size = 5 * count

    def check(self, value: Any) -> None:
        if not isinstance(value, tuple) or len(value) != self.count:
            raise ValueError(f"a tuple of {self.count} kopeck amounts expected")
        for v in value:
            MONEY.check(v)

    def encode(self, value: Any) -> bytes:
        return b"".join(MONEY.encode(v) for v in value)

    def decode(self, data: bytes, offset: int) -> tuple[Any, int]:
        out = []
        for _ in range(self.count):
            v, offset = MONEY.decode(data, offset)
            out.append(v)
        return tuple(out), offset


def command_bytes(code: int) -> bytes:
    """``10`` → ``b"\\x10"``; ``FF46`` → ``b"\\xFF\\x46"``."""
    if 0 <= code <= 0xFE:
        return bytes([code])
    if 0xFF00 <= code <= 0xFFFF:
        return code.to_bytes(2, "big")
    raise LocalProtocolError(f"no such command code {code:X}")


def split_command(body: bytes) -> tuple[int, bytes]:
    """The command code and the rest of a frame body."""
    if not body:
        raise MalformedMessage("empty frame body", body)
    if body[0] == 0xFF:
        if len(body) < 2:
            raise MalformedMessage("two-byte command cut short", body)
        return 0xFF00 | body[1], body[2:]
    return body[0], body[1:]


@dataclass(frozen=True)
class Message:
    CODE: ClassVar[int]
    FIELDS: ClassVar[tuple[tuple[str, Field], ...]] = ()
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()
    """Trailing answer fields older firmware leaves out (``None`` when absent)."""

    def __post_init__(self) -> None:
        for name, codec in self.FIELDS:
            value = getattr(self, name)
            if value is None and name in self.OPTIONAL:
                continue
            try:
                codec.check(value)
            except ValueError as exc:
                raise LocalProtocolError(f"{type(self).__name__}.{name}: {exc}") from exc

    def _encode_fields(self) -> bytes:
        return b"".join(
            codec.encode(getattr(self, name))
            for name, codec in self.FIELDS
            if getattr(self, name) is not None or name not in self.OPTIONAL
        )

    @classmethod
    def _decode_fields(cls, data: bytes, offset: int, *, strict: bool) -> dict[str, Any]:
        values: dict[str, Any] = {}
        try:
            for name, codec in cls.FIELDS:
                if offset >= len(data) and name in cls.OPTIONAL:
                    values[name] = None
                    continue
                values[name], offset = codec.decode(data, offset)
        except ValueError as exc:
            raise MalformedMessage(f"{cls.__name__}: {exc}", data) from exc
        if strict and offset != len(data):
            raise MalformedMessage(f"{cls.__name__}: {len(data) - offset} unexpected trailing bytes", data)
        return values

    @classmethod
    def _build(cls, values: dict[str, Any], data: bytes) -> Self:
        try:
            return cls(**values)
        except LocalProtocolError as exc:
            raise MalformedMessage(str(exc), data) from exc


@dataclass(frozen=True)
class Request(Message):
    """A command: ``CMD PASSWORD(4) params``."""

    password: int = field(default=DEFAULT_PASSWORD, kw_only=True)
    HAS_PASSWORD: ClassVar[bool] = True
    """False for the one command sent without a password (FCh); ``password`` is then unused."""

    def __post_init__(self) -> None:
        try:
            U32.check(self.password)
        except ValueError as exc:
            raise LocalProtocolError(f"password: {exc}") from exc
        super().__post_init__()

    def encode(self) -> bytes:
        """The frame body."""
        return command_bytes(self.CODE) + U32.encode(self.password) + self._encode_params()

    def _encode_params(self) -> bytes:
        return self._encode_fields()

    @classmethod
    def decode_params(cls, data: bytes) -> Self:
        """From the bytes after the command code (device side)."""
        if len(data) < 4:
            raise MalformedMessage(f"{cls.__name__}: no password", data)
        password = int.from_bytes(data[:4], "little")
        values = cls._decode_params(data, 4)
        return cls._build({**values, "password": password}, data)

    @classmethod
    def _decode_params(cls, data: bytes, offset: int) -> dict[str, Any]:
        return cls._decode_fields(data, offset, strict=True)


@dataclass(frozen=True)
class Answer(Message):
    """A successful answer: ``CMD 00 data``."""

    def encode(self) -> bytes:
        return command_bytes(self.CODE) + b"\x00" + self._encode_fields()

    @classmethod
    def decode_data(cls, data: bytes) -> Self:
        """From the bytes after ERR; extra trailing bytes (newer firmware) are ignored."""
        return cls._build(cls._decode_fields(data, 0, strict=False), data)


@dataclass(frozen=True)
class Refused:
    """An answer with a non-zero ERR byte."""

    command: int
    code: int

    def __post_init__(self) -> None:
        if not 1 <= self.code <= 0xFF:
            raise LocalProtocolError("a refusal needs an error code 01..FF")

    def error(self) -> DeviceRefused:
        return refusal(self.code, self.command)

    def encode(self) -> bytes:
        return command_bytes(self.command) + bytes([self.code])


# --- answers shared by many commands ------------------------------------------------


@dataclass(frozen=True)
class OperatorAnswer(Answer):
    """``ERR operator``: most printing commands."""

    CODE: ClassVar[int] = 0
    FIELDS = (("operator", U8),)
    operator: int = DEFAULT_PASSWORD


@dataclass(frozen=True)
class EmptyAnswer(Answer):
    """``ERR`` only (FN commands)."""

    CODE: ClassVar[int] = 0


# --- status ---------------------------------------------------------------------------


class Mode:
    """Low nibble of the mode byte (pyshtrih ``FRMode``)."""

    DATA_OUTPUT = 1
    SHIFT_OPEN = 2
    SHIFT_EXPIRED = 3
    SHIFT_CLOSED = 4
    DOCUMENT_OPEN = 8


class SubMode:
    """Printer submode (paper state)."""

    IDLE = 0
    PAPER_OUT_PASSIVE = 1
    PAPER_OUT_ACTIVE = 2
    AWAIT_CONTINUE = 3
    PRINTING_REPORT = 4
    PRINTING = 5


class Flag:
    """Bits of the 2-byte register flags [K beyond bit 1: pyshtrih handle_fr_flags]."""

    JOURNAL_ROLL = 1 << 0
    RECEIPT_ROLL = 1 << 1
    RECEIPT_OPTICAL = 1 << 7
    COVER_OPEN = 1 << 10


@dataclass(frozen=True)
class ShortStatus(Request):
    CODE: ClassVar[int] = 0x10


@dataclass(frozen=True)
class ShortStatusAnswer(Answer):
    CODE: ClassVar[int] = 0x10
    FIELDS = (
        ("operator", U8),
        ("flags", U16),
        ("mode_byte", U8),
        ("submode", U8),
        ("ops_low", U8),
        ("battery_voltage", U8),
        ("power_voltage", U8),
        ("fp_error", U8),
        ("eklz_error", U8),
        ("ops_high", U8),
        ("reserved", UInt(3)),
    )
    operator: int
    flags: int
    mode_byte: int
    submode: int
    ops_low: int = 0
    battery_voltage: int = 0
    power_voltage: int = 0
    fp_error: int = 0
    eklz_error: int = 0
    ops_high: int = 0
    reserved: int = 0

    @property
    def mode(self) -> int:
        return self.mode_byte & 0x0F

    @property
    def operations_in_receipt(self) -> int:
        return self.ops_high << 8 | self.ops_low

    @property
    def paper_present(self) -> bool:
        return bool(self.flags & Flag.RECEIPT_ROLL)

    @property
    def cover_open(self) -> bool:
        return bool(self.flags & Flag.COVER_OPEN)


@dataclass(frozen=True)
class FullStatus(Request):
    CODE: ClassVar[int] = 0x11


@dataclass(frozen=True)
class FullStatusAnswer(Answer):
    CODE: ClassVar[int] = 0x11
    FIELDS = (
        ("operator", U8),
        ("fw_version", U16),
        ("fw_build", U16),
        ("fw_date", Date3()),
        ("hall_number", U8),
        ("document_number", U16),
        ("flags", U16),
        ("mode_byte", U8),
        ("submode", U8),
        ("port", U8),
        ("fp_version", U16),
        ("fp_build", U16),
        ("fp_date", Date3()),
        ("date", Date3()),
        ("time", Time3()),
        ("fp_flags", U8),
        ("serial_number", U32),
        ("last_shift", U16),
        ("free_fp_records", U16),
        ("registrations", U8),
        ("registrations_left", U8),
        ("inn", UInt(6)),
    )
    operator: int
    fw_version: int
    fw_build: int
    fw_date: dt.date
    hall_number: int
    document_number: int
    flags: int
    mode_byte: int
    submode: int
    port: int
    fp_version: int
    fp_build: int
    fp_date: dt.date
    date: dt.date
    time: dt.time
    fp_flags: int
    serial_number: int
    last_shift: int
    free_fp_records: int
    registrations: int
    registrations_left: int
    inn: int

    @property
    def mode(self) -> int:
        return self.mode_byte & 0x0F


class DeviceKind:
    """FCh device type (byte 1): 0 is a fiscal register (ККТ)."""

    FISCAL_REGISTER = 0


@dataclass(frozen=True)
class GetDeviceType(Request):
    """FCh "Получить тип устройства": the only command without a password ("FCH. Длина
    сообщения: 1 байт"); every vendor host (OPOS, pyshtrih ``connect``) sends it first."""

    CODE: ClassVar[int] = 0xFC
    HAS_PASSWORD: ClassVar[bool] = False

    def encode(self) -> bytes:
        return command_bytes(self.CODE)

    @classmethod
    def decode_params(cls, data: bytes) -> Self:
        if data:
            raise MalformedMessage("FCh: the command takes no password or parameters", data)
        return cls()


@dataclass(frozen=True)
class DeviceTypeAnswer(Answer):
    """FCh answer: type, subtype, protocol version and subversion, model, language (0 Russian),
    name in cp1251 taking the rest of the frame."""

    CODE: ClassVar[int] = 0xFC
    FIELDS = (
        ("device_type", U8),
        ("device_subtype", U8),
        ("protocol_version", U8),
        ("protocol_subversion", U8),
        ("model", U8),
        ("language", U8),
        ("name", Text(None, limit=247, pad=False)),
    )
    device_type: int
    device_subtype: int
    protocol_version: int
    protocol_subversion: int
    model: int
    language: int
    name: str


# --- shift and reports -----------------------------------------------------------------


@dataclass(frozen=True)
class OpenShift(Request):
    CODE: ClassVar[int] = 0xE0


@dataclass(frozen=True)
class XReport(Request):
    CODE: ClassVar[int] = 0x40


@dataclass(frozen=True)
class ZReport(Request):
    CODE: ClassVar[int] = 0x41


@dataclass(frozen=True)
class ContinuePrint(Request):
    CODE: ClassVar[int] = 0xB0


# --- legacy receipt commands --------------------------------------------------------


class ReceiptType:
    """8D receipt types."""

    SALE = 0
    BUY = 1
    SALE_RETURN = 2
    BUY_RETURN = 3


@dataclass(frozen=True)
class OpenReceipt(Request):
    CODE: ClassVar[int] = 0x8D
    FIELDS = (("receipt_type", U8),)
    receipt_type: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.receipt_type > 3:
            raise LocalProtocolError("receipt_type must be 0..3")


_LEGACY_ITEM = (
    ("quantity", UInt(5)),
    ("price", MONEY),
    ("department", U8),
    ("tax1", U8),
    ("tax2", U8),
    ("tax3", U8),
    ("tax4", U8),
    ("text", LegacyText()),
)


@dataclass(frozen=True)
class Sale(Request):
    """80: legacy sale line; quantity ×1000."""

    CODE: ClassVar[int] = 0x80
    FIELDS = _LEGACY_ITEM
    quantity: int
    price: int
    department: int = 1
    tax1: int = 0
    tax2: int = 0
    tax3: int = 0
    tax4: int = 0
    text: str = ""


@dataclass(frozen=True)
class ReturnSale(Sale):
    CODE: ClassVar[int] = 0x82


@dataclass(frozen=True)
class CloseReceipt(Request):
    """85: legacy close; 4 payment types, discount in hundredths of a per cent."""

    CODE: ClassVar[int] = 0x85
    FIELDS = (
        ("cash", MONEY),
        ("pay2", MONEY),
        ("pay3", MONEY),
        ("pay4", MONEY),
        ("discount", SInt(2)),
        ("tax1", U8),
        ("tax2", U8),
        ("tax3", U8),
        ("tax4", U8),
        ("text", LegacyText()),
    )
    cash: int
    pay2: int = 0
    pay3: int = 0
    pay4: int = 0
    discount: int = 0
    tax1: int = 0
    tax2: int = 0
    tax3: int = 0
    tax4: int = 0
    text: str = ""


@dataclass(frozen=True)
class CloseReceiptAnswer(Answer):
    CODE: ClassVar[int] = 0x85
    FIELDS = (("operator", U8), ("change", MONEY))
    operator: int
    change: int


@dataclass(frozen=True)
class CancelReceipt(Request):
    CODE: ClassVar[int] = 0x88


# --- FN ---------------------------------------------------------------------------------


class FnDocument:
    """FF01 "current document" values."""

    NONE = 0x00
    REGISTRATION = 0x01
    SHIFT_OPEN = 0x02
    RECEIPT = 0x04
    SHIFT_CLOSE = 0x08
    FISCAL_CLOSE = 0x10


class FnWarning:
    """FF01 warning flags."""

    CRYPTO_REPLACE_URGENT = 1 << 0
    CRYPTO_EXHAUSTION = 1 << 1
    MEMORY_90 = 1 << 2
    """Bit 2: "Переполнение памяти ФН (Архив ФН заполнен на 90 %)" (FN protocol, FF01)."""
    OFD_TIMEOUT = 1 << 3


@dataclass(frozen=True)
class FnStatus(Request):
    CODE: ClassVar[int] = 0xFF01


@dataclass(frozen=True)
class FnStatusAnswer(Answer):
    CODE: ClassVar[int] = 0xFF01
    FIELDS = (
        ("life_phase", U8),
        ("current_document", U8),
        ("document_data", U8),
        ("shift_open", U8),
        ("warnings", U8),
        ("datetime", DateTime5()),
        ("fn_number", Ascii(16)),
        ("last_fd_number", U32),
    )
    life_phase: int
    current_document: int
    document_data: int
    shift_open: int
    warnings: int
    datetime: dt.datetime
    fn_number: str
    last_fd_number: int


@dataclass(frozen=True)
class FnExpiry(Request):
    CODE: ClassVar[int] = 0xFF03


@dataclass(frozen=True)
class FnExpiryAnswer(Answer):
    CODE: ClassVar[int] = 0xFF03
    FIELDS = (("expires", Date3(ymd=True)), ("registrations_left", U8), ("registrations_done", U8))
    expires: dt.date
    registrations_left: int
    registrations_done: int


class FnDocumentType:
    """FF0A document types (FN archive)."""

    REGISTRATION = 1
    SHIFT_OPEN = 2
    RECEIPT = 3
    BSO = 4
    SHIFT_CLOSE = 5
    FISCAL_CLOSE = 6
    CORRECTION = 31
    REREGISTRATION = 11


@dataclass(frozen=True)
class FindDocument(Request):
    """FF0A: find fiscal document by number (vector: shtrih-m javapos FSFindDocumentTests)."""

    CODE: ClassVar[int] = 0xFF0A
    FIELDS = (("fd_number", U32),)
    fd_number: int


@dataclass(frozen=True)
class FindDocumentAnswer(Answer):
    """``data`` for a receipt (type 3) or correction (31): operation type(1) + total(5)."""

    CODE: ClassVar[int] = 0xFF0A
    FIELDS = (
        ("document_type", U8),
        ("ofd_ticket", U8),
        ("issued_at", DateTime5()),
        ("fd_number", U32),
        ("fiscal_sign", U32),
        ("data", Tail()),
    )
    document_type: int
    ofd_ticket: int
    issued_at: dt.datetime
    fd_number: int
    fiscal_sign: int
    data: bytes = b""

    @property
    def receipt_operation(self) -> int | None:
        return self.data[0] if self.document_type in (3, 31) and len(self.data) >= 6 else None

    @property
    def receipt_total(self) -> int | None:
        if self.document_type in (3, 31) and len(self.data) >= 6:
            return int.from_bytes(self.data[1:6], "little")
        return None


@dataclass(frozen=True)
class WriteTlv(Request):
    """FF0C: pass an arbitrary TLV (1008 contact, 1021 cashier, 1203 cashier INN, 1174…)."""

    CODE: ClassVar[int] = 0xFF0C
    FIELDS = (("tlv", Tail(250)),)
    tlv: bytes


@dataclass(frozen=True)
class BeginCorrection(Request):
    """FF35: start a correction receipt (tags such as 1174 may follow by FF0C)."""

    CODE: ClassVar[int] = 0xFF35


@dataclass(frozen=True)
class ShiftParameters(Request):
    """FF40: current shift parameters [K: layout from secondary sources]."""

    CODE: ClassVar[int] = 0xFF40


@dataclass(frozen=True)
class ShiftParametersAnswer(Answer):
    CODE: ClassVar[int] = 0xFF40
    FIELDS = (("shift_open", U8), ("shift_number", U16), ("receipt_number", U16))
    shift_open: int
    shift_number: int
    receipt_number: int


class Operation:
    """1054 settlement sign as FF46/FF4A carry it."""

    INCOME = 1
    INCOME_RETURN = 2
    EXPENSE = 3
    EXPENSE_RETURN = 4


PAYMENT_SLOTS = 16
"""FF45 slots: 1 cash, 2..13 electronic, 14 prepayment offset, 15 credit, 16 counter provision."""
SLOT_CASH, SLOT_ELECTRONIC, SLOT_PREPAID, SLOT_CREDIT, SLOT_COUNTER = 0, 1, 13, 14, 15
TAX_SLOTS = 6
"""FF45/FF4A tax sums: VAT 20 (22 from 2026), VAT 10, turnover 0 %, turnover no VAT, 20/120, 10/110."""


@dataclass(frozen=True)
class CloseReceiptV2(Request):
    """FF45: extended close, variant 2 (182-byte frame body with a 64-byte text)."""

    CODE: ClassVar[int] = 0xFF45
    FIELDS = (
        ("payments", MoneyArray(PAYMENT_SLOTS)),
        ("rounding", U8),
        ("taxes", MoneyArray(TAX_SLOTS)),
        ("taxation", U8),
        ("text", Text(None, limit=64, pad=False)),
    )
    payments: tuple[int, ...]
    rounding: int = 0
    taxes: tuple[int, ...] = (0,) * TAX_SLOTS
    taxation: int = 1
    text: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rounding > 99:
            raise LocalProtocolError("rounding is 0..99 kopecks")
        if self.taxation == 0 or self.taxation & ~0x3F or self.taxation & (self.taxation - 1):
            raise LocalProtocolError("taxation must be one bit of 0x3F")


@dataclass(frozen=True)
class CloseReceiptV2Answer(Answer):
    CODE: ClassVar[int] = 0xFF45
    FIELDS = (("change", MONEY), ("fd_number", U32), ("fiscal_sign", U32), ("issued_at", DateTime5()))
    OPTIONAL = frozenset({"issued_at"})
    change: int
    fd_number: int
    fiscal_sign: int
    issued_at: dt.datetime | None = None


QUANTITY_SCALE = 1_000_000
"""FF46 quantities: 6 decimals."""


@dataclass(frozen=True)
class OperationV2(Request):
    """FF46: one item. ``amount``/``tax_amount`` = ``MONEY_UNKNOWN`` lets the register compute."""

    CODE: ClassVar[int] = 0xFF46
    FIELDS = (
        ("operation", U8),
        ("quantity", UInt(6)),
        ("price", MONEY),
        ("amount", MONEY),
        ("tax_amount", MONEY),
        ("tax_rate", U8),
        ("department", U8),
        ("payment_method", U8),
        ("item_type", U8),
        ("name", Text(None, limit=128, pad=False)),
    )
    operation: int
    quantity: int
    price: int
    amount: int
    tax_amount: int
    tax_rate: int
    department: int
    payment_method: int
    item_type: int
    name: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.operation <= 4:
            raise LocalProtocolError("operation must be 1..4 (tag 1054)")
        if not 1 <= self.payment_method <= 7:
            raise LocalProtocolError("payment_method must be 1..7 (tag 1214)")
        if not 1 <= self.item_type <= 33:
            raise LocalProtocolError("item_type must be 1..33 (tag 1212)")
        if self.tax_rate == 0:
            raise LocalProtocolError("tax_rate bitmask must not be 0")


@dataclass(frozen=True)
class CorrectionV2(Request):
    """FF4A: correction receipt V2 (69-byte frame body)."""

    CODE: ClassVar[int] = 0xFF4A
    FIELDS = (
        ("correction_type", U8),
        ("operation", U8),
        ("total", MONEY),
        ("cash", MONEY),
        ("electronic", MONEY),
        ("prepayment", MONEY),
        ("credit", MONEY),
        ("counter", MONEY),
        ("taxes", MoneyArray(TAX_SLOTS)),
        ("taxation", U8),
    )
    correction_type: int
    operation: int
    total: int
    cash: int = 0
    electronic: int = 0
    prepayment: int = 0
    credit: int = 0
    counter: int = 0
    taxes: tuple[int, ...] = (0,) * TAX_SLOTS
    taxation: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.correction_type not in (0, 1):
            raise LocalProtocolError("correction_type is 0 (self) or 1 (by order)")
        if self.operation not in (1, 3):
            raise LocalProtocolError("correction operation is 1 (income) or 3 (expense)")


@dataclass(frozen=True)
class CorrectionV2Answer(Answer):
    CODE: ClassVar[int] = 0xFF4A
    FIELDS = (("receipt_number", U16), ("fd_number", U32), ("fiscal_sign", U32))
    receipt_number: int
    fd_number: int
    fiscal_sign: int


# --- marking ----------------------------------------------------------------------------


def _len_prefixed(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or not 1 <= len(value) <= 255:
        raise LocalProtocolError(f"{what} must be 1..255 bytes")


@dataclass(frozen=True)
class CheckMarkingCode(Request):
    """FF61: ``2003 planned status, 2102 mode, lenKM, lenTLV, KM, TLV``."""

    CODE: ClassVar[int] = 0xFF61
    planned_status: int
    code: bytes
    mode: int = 0
    tlv: bytes = b""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.planned_status not in (1, 2, 3, 4, 255):
            raise LocalProtocolError("planned_status (2003) must be 1..4 or 255")
        _len_prefixed(self.code, "marking code")
        if not isinstance(self.tlv, bytes) or len(self.tlv) > 255:
            raise LocalProtocolError("TLV list must be at most 255 bytes")
        U8.check(self.mode)

    def _encode_params(self) -> bytes:
        return bytes([self.planned_status, self.mode, len(self.code), len(self.tlv)]) + self.code + self.tlv

    @classmethod
    def _decode_params(cls, data: bytes, offset: int) -> dict[str, Any]:
        head = data[offset : offset + 4]
        if len(head) != 4:
            raise MalformedMessage("FF61: header cut short", data)
        status, mode, n_code, n_tlv = head
        rest = data[offset + 4 :]
        if len(rest) != n_code + n_tlv:
            raise MalformedMessage("FF61: lengths do not match the body", data)
        return {"planned_status": status, "mode": mode, "code": rest[:n_code], "tlv": rest[n_code:]}


class CheckResult:
    """Tag 2106 bits."""

    CODE_CHECKED = 1 << 0
    CODE_VALID = 1 << 1
    STATUS_CHECKED = 1 << 2
    STATUS_VALID = 1 << 3
    OFFLINE = 1 << 4
    ALL_GOOD_ONLINE = 0x0F


ONLINE_NO_CONNECTION = 0x11
"""FF61 online-check FN code when the marking server (via OFD) was unreachable."""


@dataclass(frozen=True)
class CheckMarkingCodeAnswer(Answer):
    CODE: ClassVar[int] = 0xFF61
    FIELDS = (
        ("local_result", U8),
        ("local_reason", U8),
        ("code_type", U8),
        ("extra_length", U8),
        ("online_code", U8),
        ("check_result", U8),
        ("server_tlv", Tail()),
    )
    local_result: int
    local_reason: int
    code_type: int
    extra_length: int = 0
    online_code: int = 0
    check_result: int = 0
    server_tlv: bytes = b""


@dataclass(frozen=True)
class AcceptMarkingCode(Request):
    """FF69: 0 reject, 1 accept, 2 clear the check buffer."""

    CODE: ClassVar[int] = 0xFF69
    FIELDS = (("decision", U8),)
    decision: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.decision > 2:
            raise LocalProtocolError("decision is 0 reject, 1 accept, 2 clear")


@dataclass(frozen=True)
class BindMarkingCode(Request):
    """FF67: bind the (checked) code to the next FF46 item."""

    CODE: ClassVar[int] = 0xFF67
    code: bytes

    def __post_init__(self) -> None:
        super().__post_init__()
        _len_prefixed(self.code, "marking code")

    def _encode_params(self) -> bytes:
        return bytes([len(self.code)]) + self.code

    @classmethod
    def _decode_params(cls, data: bytes, offset: int) -> dict[str, Any]:
        if len(data) <= offset or len(data) - offset - 1 != data[offset]:
            raise MalformedMessage("FF67: length does not match the body", data)
        return {"code": data[offset + 1 :]}


@dataclass(frozen=True)
class BindMarkingCodeAnswer(Answer):
    CODE: ClassVar[int] = 0xFF67
    FIELDS = (("code_kind", U16), ("datamatrix_kind", U8), ("rest", Tail()))
    code_kind: int
    datamatrix_kind: int
    rest: bytes = b""


# --- tables -------------------------------------------------------------------------------

REQUESTS: dict[int, type[Request]] = {
    cls.CODE: cls
    for cls in (
        GetDeviceType, ShortStatus, FullStatus, OpenShift, XReport, ZReport, ContinuePrint, OpenReceipt, Sale,
        ReturnSale, CloseReceipt, CancelReceipt, FnStatus, FnExpiry, FindDocument, WriteTlv,
        BeginCorrection, ShiftParameters, CloseReceiptV2, OperationV2, CorrectionV2,
        CheckMarkingCode, AcceptMarkingCode, BindMarkingCode,
    )
}  # fmt: skip
"""Command code → request type."""

ANSWERS: dict[int, type[Answer]] = {
    0xFC: DeviceTypeAnswer,
    0x10: ShortStatusAnswer,
    0x11: FullStatusAnswer,
    0xE0: OperatorAnswer,
    0x40: OperatorAnswer,
    0x41: OperatorAnswer,
    0xB0: OperatorAnswer,
    0x8D: OperatorAnswer,
    0x80: OperatorAnswer,
    0x82: OperatorAnswer,
    0x85: CloseReceiptAnswer,
    0x88: OperatorAnswer,
    0xFF01: FnStatusAnswer,
    0xFF03: FnExpiryAnswer,
    0xFF0A: FindDocumentAnswer,
    0xFF0C: EmptyAnswer,
    0xFF35: EmptyAnswer,
    0xFF40: ShiftParametersAnswer,
    0xFF45: CloseReceiptV2Answer,
    0xFF46: EmptyAnswer,
    0xFF4A: CorrectionV2Answer,
    0xFF61: CheckMarkingCodeAnswer,
    0xFF69: EmptyAnswer,
    0xFF67: BindMarkingCodeAnswer,
}
"""Command code → the answer type it gets on success."""


def decode_request(body: bytes) -> Request:
    """A host frame body → typed request (device side). Unknown codes: ``MalformedMessage``
    with ``data`` = body (the device answers 37h "not supported")."""
    code, rest = split_command(body)
    cls = REQUESTS.get(code)
    if cls is None:
        raise MalformedMessage(f"неизвестная команда {code:X}h", body)
    return cls.decode_params(rest)


@dataclass(frozen=True)
class Answered:
    """A decoded successful answer and the command it answers."""

    command: int
    answer: Answer


def decode_answer(body: bytes) -> Answered | Refused:
    """A device frame body → typed answer or refusal (host side)."""
    code, rest = split_command(body)
    if not rest:
        raise MalformedMessage(f"answer to {code:X}h has no error byte", body)
    err, data = rest[0], rest[1:]
    if err:
        return Refused(code, err)
    cls = ANSWERS.get(code)
    if cls is None:
        raise MalformedMessage(f"answer to unknown command {code:X}h", body)
    return Answered(code, cls.decode_data(data))


def encode_answer(command: int, answer: Answer) -> bytes:
    """A success answer body for ``command`` (shared answer types carry no code of their own)."""
    return command_bytes(command) + b"\x00" + answer._encode_fields()
