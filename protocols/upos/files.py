"""The files a UPOS operation leaves in its working directory, in CP866 with CR LF lines.

``e`` — the result, one value per line [first line V, the rest K]::

    1  <code>,<message>          e.g. "0,ОДОБРЕНО" / "4451,НЕДОСТАТОЧНО СРЕДСТВ"
    2  masked card                "************5678"
    3  expiry                     "12/27"
    4  authorisation code         "A1B2C3"
    5  operation number           "0007"      (on the control tape of the batch)
    6  card type                  "VISA"
    7  own-bank card flag         "1" / "0"
    8  terminal id                "00123456"
    9  date and time              "20260528120102"
    10 RRN                        "000000000007"
    11 card hash                  hex

Lines 2..10 are mandatory for an approved purchase or refund; a non-card operation or a
decline may stop after line 1. Every line ends in CR LF, so a file whose last line has no
terminator was cut mid-write (``TruncatedFile``).

``p`` — the slip printed for the customer (or the reconciliation report, the control tape, the
slip copy), ``Key: value`` lines between free text, ending with the cut mark ``~S`` [K].
``ОДОБРЕНО`` on the slip is what store integrations check (PyMASL); a reconciliation says
``Итоги совпали``. The control tape (op 9) carries one ``;``-separated line per approved
operation of the open batch and a count line, so a truncated tape is never mistaken for
"the operation is not there".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from protocols.upos.errors import MalformedFile, TruncatedFile, WrongEncoding

ENCODING: Final = "cp866"
CUT: Final = "~S"
APPROVED_MARK: Final = "ОДОБРЕНО"
TOTALS_MATCH: Final = "Итоги совпали"
TAPE_TITLE: Final = "КОНТРОЛЬНАЯ ЛЕНТА"
KIND_PURCHASE: Final = "ОПЛАТА"
KIND_REFUND: Final = "ВОЗВРАТ"
KIND_VOID: Final = "ОТМЕНА"
KINDS: Final = (KIND_PURCHASE, KIND_REFUND, KIND_VOID)
MAX_FILE: Final = 1 << 20
_AMOUNT_RE: Final = re.compile(r"(\d{1,9})\.(\d{2})")
_ALLOWED_CONTROL: Final = {0x09, 0x0A, 0x0D}


def kop_to_text(kop: int) -> str:
    return f"{kop // 100}.{kop % 100:02d}"


def text_to_kop(text: str, what: str) -> int:
    m = _AMOUNT_RE.fullmatch(text.strip())
    if m is None:
        raise MalformedFile(f"{what}: amount {text!r} is not roubles.kopecks")
    return int(m.group(1)) * 100 + int(m.group(2))


def decode(raw: bytes, what: str) -> str:
    """CP866 text of a UPOS file, refusing binary junk and text in another encoding.

    CP866 maps every byte, so a wrong encoding never fails to decode: it shows up as UTF-8
    that decodes cleanly with non-ASCII letters, or as CP1251 letters that land on CP866's
    pseudo-graphics block (U+2500..U+259F), which no UPOS file uses.
    """
    if len(raw) > MAX_FILE:
        raise MalformedFile(f"{what}: {len(raw)} bytes, more than {MAX_FILE}")
    bad = next((b for b in raw if b < 0x20 and b not in _ALLOWED_CONTROL), None)
    if bad is not None:
        raise MalformedFile(f"{what}: control byte 0x{bad:02X}: not a text file")
    if any(b >= 0x80 for b in raw):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise WrongEncoding(f"{what}: the file is UTF-8, CP866 expected")
    text = raw.decode(ENCODING)
    if any("\u2500" <= ch <= "\u259f" for ch in text):
        raise WrongEncoding(f"{what}: pseudo-graphics in the text: the file is CP1251, CP866 expected")
    return text


def _lines(raw: bytes, what: str) -> list[str]:
    text = decode(raw, what)
    if not text:
        raise TruncatedFile(f"{what}: empty file")
    if not text.endswith("\n"):
        raise TruncatedFile(f"{what}: the last line has no line end (cut mid-write)")
    return [line.rstrip("\r") for line in text[:-1].split("\n")]


def _encode(lines: list[str]) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode(ENCODING)


# --- e: the result file ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResultFile:
    code: int
    message: str = ""
    card_mask: str = ""
    expiry: str = ""
    auth_code: str = ""
    op_number: str = ""
    card_type: str = ""
    own_card: bool = False
    terminal_id: str = ""
    timestamp: str = ""
    rrn: str = ""
    card_hash: str = ""

    @property
    def has_card_data(self) -> bool:
        return bool(self.rrn)

    def encode(self) -> bytes:
        head = f"{self.code},{self.message}"
        if not self.has_card_data:
            return _encode([head])
        return _encode(
            [
                head,
                self.card_mask,
                self.expiry,
                self.auth_code,
                self.op_number,
                self.card_type,
                "1" if self.own_card else "0",
                self.terminal_id,
                self.timestamp,
                self.rrn,
                self.card_hash,
            ]
        )


_CARD_LINES: Final = 10


def parse_result(raw: bytes, *, card_operation: bool) -> ResultFile:
    """Parse an ``e`` file; ``card_operation`` demands lines 2..10 when the code is 0."""
    lines = _lines(raw, "e")
    code_text, sep, message = lines[0].partition(",")
    if not code_text.strip().lstrip("-").isdigit():
        raise MalformedFile(f"e: first line {lines[0][:40]!r} does not start with a result code")
    code = int(code_text.strip())
    if code == 0 and card_operation and len(lines) < _CARD_LINES:
        raise TruncatedFile(f"e: approved card operation with {len(lines)} of {_CARD_LINES} lines")
    if len(lines) < _CARD_LINES:
        return ResultFile(code, message.strip() if sep else "")
    mask, expiry, auth, op_no, ctype, own, term, ts, rrn = lines[1:10]
    if code == 0 and card_operation:
        if not re.fullmatch(r"[0-9]{12}", rrn):
            raise MalformedFile(f"e: RRN {rrn!r} is not 12 digits")
        if not re.fullmatch(r"[0-9*]{12,19}", mask):
            raise MalformedFile(f"e: card mask {mask!r} is not a masked PAN")
        if not re.fullmatch(r"[0-9A-Z]{1,6}", auth.strip()):
            raise MalformedFile(f"e: authorisation code {auth!r} is not 1..6 letters or digits")
    return ResultFile(
        code=code,
        message=message.strip(),
        card_mask=mask.strip(),
        expiry=expiry.strip(),
        auth_code=auth.strip(),
        op_number=op_no.strip(),
        card_type=ctype.strip(),
        own_card=own.strip() == "1",
        terminal_id=term.strip(),
        timestamp=ts.strip(),
        rrn=rrn.strip(),
        card_hash=lines[10].strip() if len(lines) > 10 else "",
    )


# --- p: slips ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slip:
    """A card operation's slip; ``fields`` are its ``Key: value`` lines."""

    text: str
    kind: str
    approved: bool
    amount_kop: int
    card_mask: str = ""
    auth_code: str = ""
    rrn: str = ""
    order: str = ""
    op_number: str = ""
    copy: bool = False
    fields: dict[str, str] = field(default_factory=dict)


def encode_slip(
    *,
    merchant: str,
    terminal_id: str,
    kind: str,
    amount_kop: int,
    timestamp: str,
    op_number: str,
    card_mask: str = "",
    auth_code: str = "",
    rrn: str = "",
    order: str = "",
    result: str = APPROVED_MARK,
    copy: bool = False,
) -> bytes:
    lines = ["ПАО СБЕРБАНК"]
    if copy:
        lines.append("КОПИЯ")
    lines += [
        merchant,
        f"Терминал: {terminal_id}",
        f"Чек: {op_number}",
        f"Дата: {timestamp}",
        kind,
        f"Сумма (Руб): {kop_to_text(amount_kop)}",
    ]
    if card_mask:
        lines.append(f"Карта: {card_mask}")
    if auth_code:
        lines.append(f"Код авторизации: {auth_code}")
    if rrn:
        lines.append(f"RRN: {rrn}")
    if order:
        lines.append(f"Номер заказа: {order}")
    lines += [result, "Подпись клиента не требуется", CUT]
    return _encode(lines)


def _body(raw: bytes, what: str) -> tuple[str, list[str], dict[str, str]]:
    lines = _lines(raw, what)
    if CUT not in (line.strip() for line in lines):
        raise TruncatedFile(f"{what}: no cut mark {CUT!r}: the slip was cut short")
    body = lines[: [line.strip() for line in lines].index(CUT)]
    fields: dict[str, str] = {}
    for line in body:
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.strip()[0].isdigit():
            fields.setdefault(key.strip(), value.strip())
    return "\r\n".join(lines) + "\r\n", body, fields


def parse_slip(raw: bytes) -> Slip:
    """Parse a card operation's slip (purchase, refund, void, or a copy of one)."""
    text, body, fields = _body(raw, "p")
    stripped = [line.strip() for line in body]
    kind = next((k for k in KINDS if k in stripped), None)
    if kind is None:
        raise MalformedFile("p: no operation line (ОПЛАТА / ВОЗВРАТ / ОТМЕНА) on the slip")
    if "Сумма (Руб)" not in fields:
        raise MalformedFile("p: no amount on the slip")
    return Slip(
        text=text,
        kind=kind,
        approved=APPROVED_MARK in stripped,
        amount_kop=text_to_kop(fields["Сумма (Руб)"], "p"),
        card_mask=fields.get("Карта", ""),
        auth_code=fields.get("Код авторизации", ""),
        rrn=fields.get("RRN", ""),
        order=fields.get("Номер заказа", ""),
        op_number=fields.get("Чек", ""),
        copy="КОПИЯ" in stripped,
        fields=fields,
    )


# --- p after op 7: the reconciliation report ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Totals:
    count: int = 0
    amount_kop: int = 0


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    text: str
    batch: str
    purchases: Totals
    refunds: Totals
    voids: Totals
    matched: bool


def encode_reconciliation(
    *, merchant: str, terminal_id: str, batch: str, timestamp: str,
    purchases: Totals, refunds: Totals, voids: Totals,
) -> bytes:
    lines = [
        "ПАО СБЕРБАНК",
        merchant,
        f"Терминал: {terminal_id}",
        f"Дата: {timestamp}",
        "СВЕРКА ИТОГОВ",
        f"Пакет: {batch}",
    ]
    for name, t in ((KIND_PURCHASE, purchases), (KIND_REFUND, refunds), (KIND_VOID, voids)):
        lines.append(f"{name}: {t.count} {kop_to_text(t.amount_kop)}")
    lines += [TOTALS_MATCH, CUT]
    return _encode(lines)


def parse_reconciliation(raw: bytes) -> ReconciliationReport:
    text, body, fields = _body(raw, "p")
    if "СВЕРКА ИТОГОВ" not in (line.strip() for line in body):
        raise MalformedFile("p: not a reconciliation report (no СВЕРКА ИТОГОВ)")

    def totals(name: str) -> Totals:
        value = fields.get(name)
        if value is None:
            raise TruncatedFile(f"p: reconciliation report has no {name} line")
        count, _, amount = value.partition(" ")
        if not count.isdigit():
            raise MalformedFile(f"p: {name} count {count!r} is not a number")
        return Totals(int(count), text_to_kop(amount, "p"))

    return ReconciliationReport(
        text=text,
        batch=fields.get("Пакет", ""),
        purchases=totals(KIND_PURCHASE),
        refunds=totals(KIND_REFUND),
        voids=totals(KIND_VOID),
        matched=any(TOTALS_MATCH.lower() in line.lower() for line in body),
    )


# --- p after op 9: the control tape ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TapeEntry:
    op_number: str
    timestamp: str
    kind: str
    amount_kop: int
    card_mask: str
    auth_code: str
    rrn: str
    order: str
    voided: bool = False

    def line(self) -> str:
        status = "ОТМЕНЕНА" if self.voided else APPROVED_MARK
        return ";".join(
            [self.op_number, self.timestamp, self.kind, kop_to_text(self.amount_kop), self.card_mask,
             self.auth_code, self.rrn, self.order, status]
        )


@dataclass(frozen=True, slots=True)
class Tape:
    text: str
    batch: str
    entries: tuple[TapeEntry, ...]

    def by_order(self, order: str) -> list[TapeEntry]:
        return [e for e in self.entries if e.order == order]


def encode_tape(*, terminal_id: str, batch: str, entries: list[TapeEntry]) -> bytes:
    lines = [TAPE_TITLE, f"Терминал: {terminal_id}", f"Пакет: {batch}"]
    lines += [e.line() for e in entries]
    lines += [f"ВСЕГО ОПЕРАЦИЙ: {len(entries)}", CUT]
    return _encode(lines)


def parse_tape(raw: bytes) -> Tape:
    text, body, fields = _body(raw, "p")
    if not body or body[0].strip() != TAPE_TITLE:
        raise MalformedFile(f"p: not a control tape (no {TAPE_TITLE})")
    total = fields.get("ВСЕГО ОПЕРАЦИЙ")
    if total is None or not total.isdigit():
        raise TruncatedFile("p: control tape has no operation count line")
    entries: list[TapeEntry] = []
    for line in body:
        if ";" not in line:
            continue
        parts = line.strip().split(";")
        if len(parts) != 9:
            raise MalformedFile(f"p: tape line {line[:60]!r} has {len(parts)} fields, 9 expected")
        op_no, ts, kind, amount, mask, auth, rrn, order, status = parts
        if kind not in KINDS:
            raise MalformedFile(f"p: tape line with unknown operation {kind!r}")
        entries.append(
            TapeEntry(op_no, ts, kind, text_to_kop(amount, "p"), mask, auth, rrn, order, status == "ОТМЕНЕНА")
        )
    if len(entries) != int(total):
        raise TruncatedFile(f"p: control tape lists {len(entries)} operations, its count line says {total}")
    return Tape(text=text, batch=fields.get("Пакет", ""), entries=tuple(entries))
