"""Read and write 1CClientBankExchange files (bank statements and payment orders for 1C).

``parse_statement(bytes)`` finds the code page (see :mod:`protocols.onec.encoding`), walks
the lines with a four-state machine (header → sections → end) and returns a frozen
:class:`StatementFile`. It never returns half a file: a document without ``КонецДокумента``
or a file cut before ``КонецФайла`` raises, naming the line, because importing the first
half of a cut download would silently lose payments.

``write_statement(StatementFile)`` produces the bytes 1C and bank clients read: CRLF, the
header's code page, mandatory fields even when empty (some banks reject a payment order
without ``ПлательщикКПП=``), the rest only when filled, unknown fields kept. What it writes,
``parse_statement`` reads back to an equal value (a property test holds it to that).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from enum import Enum
from itertools import repeat

from protocols.onec.bank_models import (
    AccountSection,
    BankDocument,
    FileHeader,
    Party,
    StatementFile,
    TaxFields,
)
from protocols.onec.encoding import MAGIC, Encoding, detect_encoding, parse_declared
from protocols.onec.errors import (
    BadValue,
    DuplicateField,
    MalformedLine,
    UnknownEncoding,
    UnsupportedVersion,
    UnterminatedSection,
    WriteError,
)
from protocols.onec.fields import (
    ACCOUNT_FIELDS,
    DOCUMENT_DATES,
    DOCUMENT_FIELDS,
    DOCUMENT_SCALARS,
    HEADER_MULTI,
    HEADER_SINGLE,
    KNOWN_VERSIONS,
    PARTY_SUFFIXES,
    PAYEE,
    PAYER,
    TAX_FIELDS,
    SectionFields,
    format_amount,
    format_date,
    format_time,
    read_amount,
    read_date,
)

ACCOUNT_START, ACCOUNT_END = "СекцияРасчСчет", "КонецРасчСчет"
DOCUMENT_START, DOCUMENT_END = "СекцияДокумент", "КонецДокумента"
FILE_END = "КонецФайла"
_SECTION_MARKERS = (ACCOUNT_START, FILE_END, DOCUMENT_START)
_DOCUMENT_TYPED = frozenset(DOCUMENT_FIELDS)
# A document of at most this many lines is read as a block (see _Parser._document_end).
_FAST_DOCUMENT_LINES = 200
_EQUALS, _ONCE = repeat("="), repeat(1)
# What 1C and every bank write (``12354.00``): read straight into a Decimal; anything else
# (comma, one decimal, spaces, a sign) goes through read_amount and its error messages.
_PLAIN_AMOUNT = re.compile(r"[0-9]+\.[0-9]{2}")
_SUFFIX_OF = dict(PARTY_SUFFIXES)
# The keys of each party and of the tax block in the dataclasses' field order, so a value is
# built positionally from the section's dict.
_PARTY_KEYS = {
    prefix: tuple(prefix + _SUFFIX_OF[f.name] for f in dataclasses.fields(Party)) for prefix in (PAYER, PAYEE)
}
_PAYER_KEYS, _PAYEE_KEYS = _PARTY_KEYS[PAYER], _PARTY_KEYS[PAYEE]
_BLANKS = ("",) * max(len(_PAYER_KEYS), len(TAX_FIELDS))  # the default of each value.get(key, "")
_TAX_KEY_OF = dict(TAX_FIELDS)
_TAX_KEYS = tuple(_TAX_KEY_OF[f.name] for f in dataclasses.fields(TaxFields))
_EMPTY_TAX = TaxFields()


class _State(Enum):
    HEADER = "header"
    BETWEEN = "between sections"
    ACCOUNT = "account section"
    DOCUMENT = "document section"
    END = "after end of file"


def parse_statement(data: bytes) -> StatementFile:
    """Parse a whole file from its bytes; raise a :class:`~protocols.onec.errors.FileFormatError`."""
    detected = detect_encoding(data)
    body = data[3:] if detected.has_bom else data
    try:
        text = body.decode(detected.actual.codec)
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise UnknownEncoding(
            f"байты не читаются в кодировке {detected.actual.value} ({detected.actual.codec})", line=line
        ) from exc
    warnings: list[str] = []
    if detected.mismatch:
        warnings.append(
            f"строка {detected.line}: в заголовке Кодировка={detected.declared.value}, "
            f"но файл записан в {detected.actual.value}; прочитан как {detected.actual.value}"
        )
    return _Parser(text, detected.actual, warnings).run()


def _split_lines(text: str) -> list[str]:
    """Lines split at CRLF, LF or a lone CR (left to right, as ``\\r\\n|\\n|\\r`` would)."""
    breaks = text.count("\n")
    if text.count("\r") == breaks:
        lines = text.split("\r\n")  # CRLF only, as 1C writes it: no copy of the text with LF
        if len(lines) == breaks + 1:  # every CR was followed by an LF
            return lines
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


class _Parser:
    """One pass over the lines; the state says which section collects the next ``Key=Value``.

    Documents are nearly all of a statement, so their lines take a short path: a dict of the
    typed values (a repeat is an error) and a list of the rest. Line numbers of single fields
    are not stored; an error finds its line again by rescanning the document's few lines.
    """

    def __init__(self, text: str, encoding: Encoding, warnings: list[str]) -> None:
        self._lines = _split_lines(text)
        self._encoding = encoding
        self._warnings = warnings
        self._header = SectionFields(HEADER_SINGLE, 1, multi=HEADER_MULTI)
        self._accounts: list[AccountSection] = []
        self._documents: list[BankDocument] = []
        self._dates: dict[str, dt.date] = {}
        self._parties: dict[tuple[str, ...], Party] = {}
        self._block: dict[str, str] = {}
        self._block_plain = True  # the block has typed fields only (no extra)

    def run(self) -> StatementFile:
        header, accounts, documents = self._header, self._accounts, self._documents
        build = self._build_document
        typed = _DOCUMENT_TYPED
        state = _State.HEADER
        account: SectionFields | None = None
        values: dict[str, str] = {}
        extra: list[tuple[str, str]] = []
        kind, start = "", 0
        lines, count, index, fast = self._lines, len(self._lines), 1, True  # line 1: the magic, checked
        while index < count:
            raw = lines[index]
            index += 1
            number = index
            line = raw.strip()
            if not line:
                continue
            key, sep, value = raw.partition("=")
            if state is _State.DOCUMENT:
                if sep:
                    key = key.strip()
                    if key in typed:
                        if key in values:
                            first = self._line_of(start, number, key)
                            raise DuplicateField(
                                f"поле повторяется (первый раз в строке {first})", line=number, field=key
                            )
                        values[key] = value
                        continue
                    if not key:
                        raise MalformedLine("пустое имя поля перед «=»", line=number)
                    if key != DOCUMENT_START:
                        extra.append((key, value))
                        continue
                    raise self._open_document(kind, values, start, number)
                if line == DOCUMENT_END:
                    documents.append(build(kind, values, extra, start, number))
                    values, extra = {}, []
                    state = _State.BETWEEN
                    continue
                if line in _SECTION_MARKERS:
                    raise self._open_document(kind, values, start, number)
                raise _misplaced(line, number)
            if state is _State.END:
                self._warnings.append(f"строка {number}: текст после КонецФайла пропущен")
                break
            if not sep:
                if line == ACCOUNT_START and state is not _State.ACCOUNT:
                    account, state = SectionFields(ACCOUNT_FIELDS, number), _State.ACCOUNT
                elif line == ACCOUNT_END and state is _State.ACCOUNT:
                    assert account is not None
                    accounts.append(self._build_account(account))
                    state = _State.BETWEEN
                elif line == FILE_END and state is not _State.ACCOUNT:
                    state = _State.END
                elif line in _SECTION_MARKERS and state is _State.ACCOUNT:
                    assert account is not None
                    raise _open_account(account, before=number)
                else:
                    raise _misplaced(line, number)
                continue
            key = key.strip()
            if key == DOCUMENT_START:
                if state is _State.ACCOUNT:
                    assert account is not None
                    raise _open_account(account, before=number)
                kind = value.strip()
                if not kind:
                    raise MalformedLine("у секции документа не указан вид", line=number, field=DOCUMENT_START)
                start, state = number, _State.DOCUMENT
                if fast:
                    end = self._document_end(index)
                    if end is None:
                        continue
                    if end < 0:
                        fast = False  # no plain КонецДокумента ahead: line by line from here on
                        continue
                    documents.append(self._fast_document(kind, start, end))
                    index, state = end, _State.BETWEEN
            elif not key:
                raise MalformedLine("пустое имя поля перед «=»", line=number)
            elif state is _State.HEADER:
                header.add(number, key, value)
            elif state is _State.ACCOUNT:
                assert account is not None
                account.add(number, key, value)
            else:
                raise MalformedLine(
                    "поле вне секции (после КонецДокумента или КонецРасчСчет)", line=number, field=key
                )
        if state is _State.DOCUMENT:
            raise self._open_document(kind, values, start, None)
        if state is _State.ACCOUNT:
            assert account is not None
            raise _open_account(account, before=None)
        if state is not _State.END:
            raise UnterminatedSection(
                "файл оборван: нет строки КонецФайла (загрузите выписку заново)", line=len(self._lines)
            )
        return StatementFile(self._build_header(), tuple(accounts), tuple(documents), tuple(self._warnings))

    def _document_end(self, index: int) -> int | None:
        """The number of the ``КонецДокумента`` line closing the document whose first field is
        ``lines[index]``, when every line between is a plain ``Key=Value`` with no repeated key;
        ``None`` when the document needs the line-by-line path (which finds the fault, if any);
        -1 when no plain ``КонецДокумента`` is near, so the fast path is not worth trying again."""
        lines = self._lines
        try:
            end = lines.index(DOCUMENT_END, index, index + _FAST_DOCUMENT_LINES)
        except ValueError:
            return -1 if index + _FAST_DOCUMENT_LINES >= len(lines) else None
        block = lines[index:end]
        try:
            values = dict(map(str.split, block, _EQUALS, _ONCE))  # line.split("=", 1) each
        except ValueError:  # a line without "=" (blank, a marker, garbage)
            return None
        if len(values) != len(block):
            return None  # a repeated key: an error if typed, and kept twice in extra if not
        plain = values.keys() <= _DOCUMENT_TYPED
        if not plain:
            for key in values.keys() - _DOCUMENT_TYPED:
                if not key or key != key.strip() or key == DOCUMENT_START:
                    return None
        self._block, self._block_plain = values, plain
        return end + 1

    def _fast_document(self, kind: str, start: int, end: int) -> BankDocument:
        values = self._block
        extra = [] if self._block_plain else [(k, v) for k, v in values.items() if k not in _DOCUMENT_TYPED]
        return self._build_document(kind, values, extra, start, end)

    def _line_of(self, start: int, end: int, key: str) -> int:
        """The line of ``key``'s first occurrence in the document begun at ``start`` (else ``start``)."""
        for number in range(start + 1, end):
            name, sep, _ = self._lines[number - 1].partition("=")
            if sep and name.strip() == key:
                return number
        return start

    def _open_document(self, kind: str, values: dict[str, str], start: int, before: int | None) -> UnterminatedSection:
        what = f"документ «{kind}» № {values.get('Номер', '') or '?'}"
        return _unterminated(what, start, DOCUMENT_END, before)

    def _build_header(self) -> FileHeader:
        h = self._header
        version = h.text("ВерсияФормата").strip()
        if not version:
            self._warnings.append("в заголовке нет ВерсияФормата; читается как 1.03")
            version = "1.03"
        elif version not in KNOWN_VERSIONS:
            raise UnsupportedVersion(
                f"версия формата {version} не поддерживается (поддерживаются 1.01–1.03)",
                line=h.line_of("ВерсияФормата"),
                field="ВерсияФормата",
            )
        # Validates the declared value even though the bytes decided the code page.
        if "Кодировка" in h.values:
            parse_declared(h.text("Кодировка"), h.line_of("Кодировка"))
        return FileHeader(
            format_version=version,
            encoding=self._encoding,
            sender=h.text("Отправитель"),
            receiver=h.text("Получатель"),
            created_on=h.date("ДатаСоздания"),
            created_at=h.time("ВремяСоздания"),
            date_from=h.date("ДатаНачала"),
            date_to=h.date("ДатаКонца"),
            accounts=tuple(h.repeated["РасчСчет"]),
            document_kinds=tuple(h.repeated["Документ"]),
            extra=tuple(h.extra),
        )

    def _build_account(self, s: SectionFields) -> AccountSection:
        return AccountSection(
            account=s.required("РасчСчет").strip(),
            date_from=s.date("ДатаНачала"),
            date_to=s.date("ДатаКонца"),
            opening_balance=s.amount("НачальныйОстаток", signed=True),
            total_inflow=s.amount("ВсегоПоступило"),
            total_outflow=s.amount("ВсегоСписано"),
            closing_balance=s.amount("КонечныйОстаток", signed=True),
            extra=tuple(s.extra),
            line=s.start_line,
        )

    def _date(self, value: str, start: int, end: int, key: str) -> dt.date:
        """A non-blank date value; the few distinct dates of a statement are parsed once each."""
        found = self._dates.get(value)
        if found is None:
            found = read_date(value, line=self._line_of(start, end, key), field=key)
            self._dates[value] = found
        return found

    def _party(self, values: tuple[str, ...]) -> Party:
        """One frozen Party per distinct set of values: a statement names the same few
        counterparties (and its own company) over and over."""
        party = self._parties.get(values)
        if party is None:
            party = self._parties[values] = Party(*values)
        return party

    def _build_document(
        self, kind: str, values: dict[str, str], extra: list[tuple[str, str]], start: int, end: int
    ) -> BankDocument:
        # Checks run in the order the fields were always checked in: Дата, Сумма, the
        # debit/credit dates, Номер; so a document with several faults reports the same one.
        get = values.get
        text = get("Дата", "")
        if not text.strip():
            raise _required(self._line_of(start, end, "Дата"), "Дата")
        date = self._date(text, start, end, "Дата")
        text = get("Сумма", "")
        if _PLAIN_AMOUNT.fullmatch(text):
            amount = Decimal(text)
        elif not text.strip():
            raise _required(self._line_of(start, end, "Сумма"), "Сумма")
        else:
            amount = read_amount(text, line=self._line_of(start, end, "Сумма"), field="Сумма")
        text = get("ДатаСписано", "")
        debited_on = self._date(text, start, end, "ДатаСписано") if text.strip() else None
        text = get("ДатаПоступило", "")
        credited_on = self._date(text, start, end, "ДатаПоступило") if text.strip() else None
        number = get("Номер", "")
        if not number.strip():
            raise _required(self._line_of(start, end, "Номер"), "Номер")
        tax = _EMPTY_TAX
        for key in _TAX_KEYS:
            if key in values:
                tax = TaxFields(*map(get, _TAX_KEYS, _BLANKS))
                break
        return BankDocument(
            kind=kind,
            number=number.strip(),
            date=date,
            amount=amount,
            payer=self._party(tuple(map(get, _PAYER_KEYS, _BLANKS))),
            payee=self._party(tuple(map(get, _PAYEE_KEYS, _BLANKS))),
            purpose=get("НазначениеПлатежа", ""),
            payment_kind=get("ВидПлатежа", ""),
            operation_kind=get("ВидОплаты", ""),
            priority=get("Очередность", ""),
            uin=get("Код", ""),
            purpose_code=get("КодНазПлатежа", ""),
            tax=tax,
            extra=tuple(extra),
            debited_on=debited_on,
            credited_on=credited_on,
            line=start,
        )


def _required(line: int, key: str) -> BadValue:
    return BadValue("обязательное поле отсутствует или пусто", line=line, field=key)


def _misplaced(line: str, number: int) -> MalformedLine:
    return MalformedLine(f"строка «{line[:60]}» не на своём месте и не вида Ключ=Значение", line=number)


def _open_account(section: SectionFields, before: int | None) -> UnterminatedSection:
    return _unterminated("секция РасчСчет", section.start_line, ACCOUNT_END, before)


def _unterminated(what: str, start: int, end: str, before: int | None) -> UnterminatedSection:
    tail = f" до строки {before}" if before is not None else " до конца файла"
    return UnterminatedSection(f"{what}, начатый в строке {start}, не закрыт строкой {end}{tail}", line=start, field=end)


# --- writer ---------------------------------------------------------------------------

# Written even when empty: the payment-order fields banks' import checks insist on.
_MANDATORY_PARTY = frozenset(
    {"account", "full_name", "inn", "name", "settlement_account", "bank_name", "bic", "corr_account", "kpp"}
)
_MANDATORY_SCALARS = frozenset({"purpose", "operation_kind", "priority"})


def write_statement(statement: StatementFile, encoding: Encoding | None = None) -> bytes:
    """Serialise ``statement`` in ``encoding`` (default: the header's); raise :class:`WriteError`."""
    enc = encoding or statement.header.encoding
    lines = [MAGIC, *_header_lines(statement.header, enc)]
    for section in statement.accounts:
        lines.extend(_account_lines(section))
    for document in statement.documents:
        lines.extend(_document_lines(document))
    lines.append(FILE_END)
    text = "\r\n".join(lines) + "\r\n"
    try:
        return text.encode(enc.codec)
    except UnicodeEncodeError as exc:
        line = text[: exc.start].count("\n") + 1
        raise WriteError(
            f"символ «{text[exc.start]}» не записывается в кодировке {enc.value} ({enc.codec})", line=line
        ) from exc


def _kv(key: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise WriteError("значение с переводом строки не записывается в построчный формат", field=key)
    if not key or "=" in key or key != key.strip() or "\r" in key or "\n" in key:
        raise WriteError(f"недопустимое имя поля «{key}»", field=key)
    return f"{key}={value}"


def _extra_lines(extra: tuple[tuple[str, str], ...], reserved: frozenset[str]) -> Iterator[str]:
    for key, value in extra:
        if key in reserved or key in (DOCUMENT_START,):
            raise WriteError("поле из extra совпадает с типизированным полем", field=key)
        yield _kv(key, value)


def _header_lines(h: FileHeader, enc: Encoding) -> Iterator[str]:
    yield _kv("ВерсияФормата", h.format_version)
    yield _kv("Кодировка", enc.value)
    yield _kv("Отправитель", h.sender)
    yield _kv("Получатель", h.receiver)
    if h.created_on is not None:
        yield _kv("ДатаСоздания", format_date(h.created_on))
    if h.created_at is not None:
        yield _kv("ВремяСоздания", format_time(h.created_at))
    if h.date_from is not None:
        yield _kv("ДатаНачала", format_date(h.date_from))
    if h.date_to is not None:
        yield _kv("ДатаКонца", format_date(h.date_to))
    for account in h.accounts:
        yield _kv("РасчСчет", account)
    for kind in h.document_kinds:
        yield _kv("Документ", kind)
    yield from _extra_lines(h.extra, frozenset(HEADER_SINGLE + HEADER_MULTI))


def _account_lines(a: AccountSection) -> Iterator[str]:
    yield ACCOUNT_START
    if a.date_from is not None:
        yield _kv("ДатаНачала", format_date(a.date_from))
    if a.date_to is not None:
        yield _kv("ДатаКонца", format_date(a.date_to))
    yield _kv("РасчСчет", a.account)
    for key, amount in (
        ("НачальныйОстаток", a.opening_balance),
        ("ВсегоПоступило", a.total_inflow),
        ("ВсегоСписано", a.total_outflow),
        ("КонечныйОстаток", a.closing_balance),
    ):
        if amount is not None:
            yield _kv(key, format_amount(amount))
    yield from _extra_lines(a.extra, frozenset(ACCOUNT_FIELDS))
    yield ACCOUNT_END


def _document_lines(d: BankDocument) -> Iterator[str]:
    if not d.kind or "\n" in d.kind or "\r" in d.kind:
        raise WriteError("у документа не указан вид", field=DOCUMENT_START)
    if d.amount < 0:
        raise WriteError(f"отрицательная сумма {d.amount} в документе № {d.number}", field="Сумма")
    yield _kv(DOCUMENT_START, d.kind)
    yield _kv("Номер", d.number)
    yield _kv("Дата", format_date(d.date))
    yield _kv("Сумма", format_amount(d.amount))
    for prefix, party in ((PAYER, d.payer), (PAYEE, d.payee)):
        for attr, suffix in PARTY_SUFFIXES:
            value = getattr(party, attr)
            if value or attr in _MANDATORY_PARTY:
                yield _kv(prefix + suffix, value)
    for attr, key in DOCUMENT_DATES:
        when = getattr(d, attr)
        if when is not None:
            yield _kv(key, format_date(when))
    for attr, key in DOCUMENT_SCALARS:
        value = getattr(d, attr)
        if value or attr in _MANDATORY_SCALARS:
            yield _kv(key, value)
    if not d.tax.is_empty:
        # A budget payment carries all of them; a bank rejects one with a gap.
        for attr, key in TAX_FIELDS:
            yield _kv(key, getattr(d.tax, attr))
    yield from _extra_lines(d.extra, frozenset(DOCUMENT_FIELDS))
    yield DOCUMENT_END
