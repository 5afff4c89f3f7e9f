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

import re
from collections.abc import Iterator
from enum import Enum
from typing import Any

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
)

ACCOUNT_START, ACCOUNT_END = "СекцияРасчСчет", "КонецРасчСчет"
DOCUMENT_START, DOCUMENT_END = "СекцияДокумент", "КонецДокумента"
FILE_END = "КонецФайла"
_LINE_BREAK = re.compile(r"\r\n|\n|\r")


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


class _Parser:
    """One pass over the lines; the state says which section collects the next ``Key=Value``."""

    def __init__(self, text: str, encoding: Encoding, warnings: list[str]) -> None:
        self._lines = _LINE_BREAK.split(text)
        self._encoding = encoding
        self._warnings = warnings
        self._state = _State.HEADER
        self._header = SectionFields(HEADER_SINGLE, 1, multi=HEADER_MULTI)
        self._section: SectionFields | None = None
        self._kind = ""
        self._accounts: list[AccountSection] = []
        self._documents: list[BankDocument] = []

    def run(self) -> StatementFile:
        for number, raw in enumerate(self._lines, start=1):
            if number == 1:
                continue  # the magic line, checked by detect_encoding
            line = raw.strip()
            if not line:
                continue
            if self._state is _State.END:
                self._warnings.append(f"строка {number}: текст после КонецФайла пропущен")
                break
            key, sep, value = raw.partition("=")
            key = key.strip()
            if not sep:
                self._marker(number, line)
            elif key == DOCUMENT_START:
                self._open_document(number, value.strip())
            else:
                self._field(number, key, value)
        if self._state is _State.DOCUMENT:
            self._unterminated(DOCUMENT_END)
        if self._state is _State.ACCOUNT:
            self._unterminated(ACCOUNT_END)
        if self._state is not _State.END:
            raise UnterminatedSection(
                "файл оборван: нет строки КонецФайла (загрузите выписку заново)", line=len(self._lines)
            )
        header = self._build_header()
        return StatementFile(header, tuple(self._accounts), tuple(self._documents), tuple(self._warnings))

    def _marker(self, number: int, line: str) -> None:
        state = self._state
        if line == ACCOUNT_START and state in (_State.HEADER, _State.BETWEEN):
            self._section, self._state = SectionFields(ACCOUNT_FIELDS, number), _State.ACCOUNT
        elif line == ACCOUNT_END and state is _State.ACCOUNT:
            self._accounts.append(self._build_account())
            self._state = _State.BETWEEN
        elif line == DOCUMENT_END and state is _State.DOCUMENT:
            self._documents.append(self._build_document())
            self._state = _State.BETWEEN
        elif line == FILE_END and state in (_State.HEADER, _State.BETWEEN):
            self._state = _State.END
        elif line in (ACCOUNT_START, FILE_END, DOCUMENT_START) and state is _State.DOCUMENT:
            self._unterminated(DOCUMENT_END, before=number)
        elif line in (ACCOUNT_START, FILE_END, DOCUMENT_START) and state is _State.ACCOUNT:
            self._unterminated(ACCOUNT_END, before=number)
        else:
            raise MalformedLine(
                f"строка «{line[:60]}» не на своём месте и не вида Ключ=Значение", line=number
            )

    def _open_document(self, number: int, kind: str) -> None:
        if self._state is _State.DOCUMENT:
            self._unterminated(DOCUMENT_END, before=number)
        if self._state is _State.ACCOUNT:
            self._unterminated(ACCOUNT_END, before=number)
        if not kind:
            raise MalformedLine("у секции документа не указан вид", line=number, field=DOCUMENT_START)
        self._section, self._kind, self._state = SectionFields(DOCUMENT_FIELDS, number), kind, _State.DOCUMENT

    def _field(self, number: int, key: str, value: str) -> None:
        if not key:
            raise MalformedLine("пустое имя поля перед «=»", line=number)
        if self._state is _State.HEADER:
            self._header.add(number, key, value)
        elif self._state in (_State.ACCOUNT, _State.DOCUMENT):
            assert self._section is not None
            self._section.add(number, key, value)
        else:
            raise MalformedLine(
                "поле вне секции (после КонецДокумента или КонецРасчСчет)", line=number, field=key
            )

    def _unterminated(self, end: str, before: int | None = None) -> None:
        assert self._section is not None
        start = self._section.start_line
        what = (
            f"документ «{self._kind}» № {self._section.text('Номер') or '?'}"
            if end == DOCUMENT_END
            else "секция РасчСчет"
        )
        tail = f" до строки {before}" if before is not None else " до конца файла"
        raise UnterminatedSection(
            f"{what}, начатый в строке {start}, не закрыт строкой {end}{tail}", line=start, field=end
        )

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

    def _build_account(self) -> AccountSection:
        s = self._section
        assert s is not None
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

    def _build_document(self) -> BankDocument:
        s = self._section
        assert s is not None
        date = s.date("Дата")
        if date is None:
            s.required("Дата")
        assert date is not None
        amount = read_amount(s.required("Сумма"), line=s.line_of("Сумма"), field="Сумма")
        scalars: dict[str, Any] = {attr: s.text(key) for attr, key in DOCUMENT_SCALARS}
        dates: dict[str, Any] = {attr: s.date(key) for attr, key in DOCUMENT_DATES}
        return BankDocument(
            kind=self._kind,
            number=s.required("Номер").strip(),
            date=date,
            amount=amount,
            payer=_party(s, PAYER),
            payee=_party(s, PAYEE),
            tax=TaxFields(**{attr: s.text(key) for attr, key in TAX_FIELDS}),
            extra=tuple(s.extra),
            line=s.start_line,
            **scalars,
            **dates,
        )


def _party(s: SectionFields, prefix: str) -> Party:
    return Party(**{attr: s.text(prefix + suffix) for attr, suffix in PARTY_SUFFIXES})


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
