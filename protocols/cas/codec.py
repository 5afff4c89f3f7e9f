"""CAS CL5000/CL5200/CL5500 label-scale protocol (ASCII headers, binary PLU fields), sans-I/O.

Learned from the device side, ``JeongJiMin-github/CL5200N-CL5500N-trunk`` (read, not copied):
``src/mode_commun.c`` (``serial_proc``: the header states, BCC = XOR of the data bytes after
``:``), ``src/mode_commun_recv.c`` (``commun_write`` → ``commun_recv_plu``: the field list),
``src/plu_manager.h`` (PTYPE numbers, ``PLU_INF`` field sizes)::

    write PLU   W02A<plu hex>,<dept hex>L<len hex>:<data><bcc>        [V header, BCC, fields]
                data = fields  F=<ptype hex>.<stype hex>,<len hex>:<len raw bytes>
                ptype  4 PLU type u8 (1 by weight)   6 unit price u32 LE (kopecks per kg)
                      10 name1 (40 bytes)            11 item code u32 LE
                      16 sell-by date u32 LE (days from packing = shelf life)
                      85 barcode number u16 LE (the scale's barcode format)
    read PLU    R02F<plu hex>,<dept hex>\\n  → the scale answers with a W02A… frame [K]
    delete PLU  C02F<plu hex>,<dept hex>\\n                                [K: command number assumed]
    reply       W<cmd hex>:O<code hex>\\n (done) | W<cmd hex>:E<code hex>\\n (refused)
                                                  [V "Wxx:<E|O>xx<0x0a>" shape; codes 82/84/97/99/FE]

``stype`` is sent as 0 (the scale looks its own up). Names are cp1251 (Russian firmware —
assumed from the ``USE_RUSSIA_*`` builds; not verified on a device).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Final

from protocols.cas.errors import LocalProtocolError, RemoteProtocolError, ScaleRefused

ENCODING: Final = "cp1251"
NAME_SIZE: Final = 40
MAX_PLU: Final = 999_999
MAX_DATA: Final = 2048
"""Longest data part accepted (the firmware's buffer bound is of the same order)."""

PTYPE_TYPE, PTYPE_PRICE, PTYPE_NAME1, PTYPE_ITEM_CODE, PTYPE_SELLBY, PTYPE_BARCODE_NO = 4, 6, 10, 11, 16, 85
CMD_PLU: Final = 0x02
OK_CODE: Final = 0x01


def _uint(value: int, bits: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise LocalProtocolError(f"{what}: ожидается целое 0..{(1 << bits) - 1}, получено {value!r}")


@dataclass(frozen=True, slots=True)
class Plu:
    """One PLU as the scale stores it. ``price`` is kopecks per kg; ``shelf_life_days`` 0 =
    no sell-by date; ``barcode_format`` is the scale's barcode number."""

    number: int
    name: str
    price: int
    shelf_life_days: int = 0
    item_code: int = 0
    barcode_format: int = 1
    department: int = 1
    by_weight: bool = True

    def __post_init__(self) -> None:
        if (
            isinstance(self.number, bool)
            or not isinstance(self.number, int)
            or not 1 <= self.number <= MAX_PLU
        ):
            raise LocalProtocolError(f"Номер ПЛУ 1..{MAX_PLU}, а не {self.number!r}")
        _uint(self.price, 32, f"ПЛУ {self.number}: цена в копейках")
        _uint(self.shelf_life_days, 32, f"ПЛУ {self.number}: срок годности")
        _uint(self.item_code, 32, f"ПЛУ {self.number}: код товара")
        _uint(self.barcode_format, 16, f"ПЛУ {self.number}: номер формата штрихкода")
        if not 1 <= self.department <= 99:
            raise LocalProtocolError(f"ПЛУ {self.number}: отдел 1..99, а не {self.department!r}")
        self.name_bytes()

    def name_bytes(self) -> bytes:
        try:
            raw = self.name.encode(ENCODING)
        except (UnicodeEncodeError, AttributeError) as exc:
            raise LocalProtocolError(f"ПЛУ {self.number}: название не кодируется в {ENCODING}") from exc
        if not raw or len(raw) > NAME_SIZE or b"\x00" in raw:
            raise LocalProtocolError(
                f"ПЛУ {self.number}: название — 1..{NAME_SIZE} байт {ENCODING}, а не {len(raw)}"
            )
        return raw


def _field(ptype: int, raw: bytes) -> bytes:
    return f"F={ptype:02X}.00,{len(raw):02X}:".encode("ascii") + raw


def _bcc(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def plu_data(plu: Plu) -> bytes:
    return b"".join(
        (
            _field(PTYPE_TYPE, bytes([1 if plu.by_weight else 2])),
            _field(PTYPE_NAME1, plu.name_bytes()),
            _field(PTYPE_PRICE, plu.price.to_bytes(4, "little")),
            _field(PTYPE_ITEM_CODE, plu.item_code.to_bytes(4, "little")),
            _field(PTYPE_SELLBY, plu.shelf_life_days.to_bytes(4, "little")),
            _field(PTYPE_BARCODE_NO, plu.barcode_format.to_bytes(2, "little")),
        )
    )


def encode_write_plu(plu: Plu) -> bytes:
    data = plu_data(plu)
    head = f"W{CMD_PLU:02X}A{plu.number:X},{plu.department:X}L{len(data):X}:".encode("ascii")
    return head + data + bytes([_bcc(data)])


def encode_read_plu(number: int, department: int = 1) -> bytes:
    return f"R{CMD_PLU:02X}F{number:X},{department:X}\n".encode("ascii")


def encode_delete_plu(number: int, department: int = 1) -> bytes:
    return f"C{CMD_PLU:02X}F{number:X},{department:X}\n".encode("ascii")


def encode_reply(code: int = OK_CODE, *, ok: bool = True, command: int = CMD_PLU) -> bytes:
    return f"W{command:02X}:{'O' if ok else 'E'}{code:02X}\n".encode("ascii")


def decode_plu_fields(number: int, department: int, data: bytes) -> Plu:
    """The PLU carried by a write's data part (unknown ptypes are skipped)."""
    fields: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        m = _FIELD.match(data, pos)
        if m is None:
            raise RemoteProtocolError(f"ПЛУ {number}: поле не разбирается с позиции {pos}", data)
        size = int(m.group(3), 16)
        start = m.end()
        if start + size > len(data):
            raise RemoteProtocolError(f"ПЛУ {number}: поле {m.group(1).decode()} длиннее посылки", data)
        fields[int(m.group(1), 16)] = data[start : start + size]
        pos = start + size

    def num(ptype: int, default: int = 0) -> int:
        raw = fields.get(ptype)
        return default if raw is None else int.from_bytes(raw, "little")

    name = fields.get(PTYPE_NAME1, b"").rstrip(b"\x00").decode(ENCODING, errors="replace")
    try:
        return Plu(
            number=number,
            name=name,
            price=num(PTYPE_PRICE),
            shelf_life_days=num(PTYPE_SELLBY),
            item_code=num(PTYPE_ITEM_CODE),
            barcode_format=num(PTYPE_BARCODE_NO, 1),
            department=department,
            by_weight=num(PTYPE_TYPE, 1) == 1,
        )
    except LocalProtocolError as exc:  # what the peer sent does not make a PLU
        raise RemoteProtocolError(f"ПЛУ {number}: {exc}", data) from exc


_FIELD = re.compile(rb"F=([0-9A-Fa-f]{1,4})\.([0-9A-Fa-f]{1,2}),([0-9A-Fa-f]{1,4}):")
_WRITE = re.compile(rb"W([0-9]{1,2})A([0-9A-Fa-f]{1,8}),([0-9A-Fa-f]{1,2})L([0-9A-Fa-f]{1,4}):")
_LINE = re.compile(rb"([RC])([0-9]{1,2})F([0-9A-Fa-f]{1,8}),([0-9A-Fa-f]{1,2})\n")
_REPLY = re.compile(rb"W([0-9A-Fa-f]{2}):([OE])([0-9A-Fa-f]{1,4})\n")
_HEADER_MAX = 32
_STARTS = b"WRC"


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WritePlu:
    plu: Plu


@dataclass(frozen=True, slots=True)
class ReadPlu:
    number: int
    department: int


@dataclass(frozen=True, slots=True)
class DeletePlu:
    number: int
    department: int


@dataclass(frozen=True, slots=True)
class Reply:
    command: int
    ok: bool
    code: int

    def error(self) -> ScaleRefused:
        return ScaleRefused(self.code, self.command)


@dataclass(frozen=True, slots=True)
class BadMessage:
    """A message that was framed but did not parse; ``reply`` is what the scale answers."""

    reason: str
    reply: bytes


Event = WritePlu | ReadPlu | DeletePlu | Reply | BadMessage


class Decoder:
    """Split a byte stream (either direction) into events. Garbage before a message start is
    dropped and counted; a header that does not complete within 32 bytes is dropped; the
    buffer never holds more than one header plus ``MAX_DATA`` + 1 bytes."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._events: deque[Event] = deque()
        self.discarded = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data
        while self._step():
            pass

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def _drop(self, count: int) -> None:
        self.discarded += count
        del self._buf[:count]

    def _step(self) -> bool:
        buf = self._buf
        start = next((i for i, b in enumerate(buf) if b in _STARTS), len(buf))
        if start:
            self._drop(start)
        if not buf:
            return False
        head = bytes(buf[:_HEADER_MAX])
        if m := _REPLY.match(head):
            self._events.append(Reply(int(m.group(1), 16), m.group(2) == b"O", int(m.group(3), 16)))
            del buf[: m.end()]
            return True
        if m := _LINE.match(head):
            number, dept = int(m.group(3), 16), int(m.group(4), 16)
            kind = ReadPlu if m.group(1) == b"R" else DeletePlu
            if int(m.group(2), 16) != CMD_PLU:
                self._events.append(BadMessage("неизвестная команда", encode_reply(0x84, ok=False)))
            else:
                self._events.append(kind(number, dept))
            del buf[: m.end()]
            return True
        if m := _WRITE.match(head):
            size = int(m.group(4), 16)
            if size > MAX_DATA:
                self._events.append(BadMessage(f"посылка {size} байт", encode_reply(0x97, ok=False)))
                self._drop(m.end())
                return True
            end = m.end() + size + 1
            if len(buf) < end:
                return False
            data = bytes(buf[m.end() : end - 1])
            bcc = buf[end - 1]
            del buf[:end]
            if _bcc(data) != bcc:
                self._events.append(BadMessage("контрольная сумма не сходится", encode_reply(0xFE, ok=False)))
                return True
            try:
                plu = decode_plu_fields(int(m.group(2), 16), int(m.group(3), 16), data)
            except RemoteProtocolError as exc:
                self._events.append(BadMessage(str(exc), encode_reply(0x84, ok=False)))
                return True
            self._events.append(WritePlu(plu))
            return True
        # An incomplete header: wait, unless it cannot be one any more.
        if len(head) >= _HEADER_MAX or b"\n" in head or (len(head) > 1 and not _could_be_header(head)):
            self._drop(1)
            return True
        return False


def _could_be_header(head: bytes) -> bool:
    return bool(re.fullmatch(rb"[WRC][0-9A-Fa-f]{0,2}([AF:][0-9A-Fa-f,LOE]*)?", head))
