from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.onec import (
    BadValue,
    DuplicateField,
    Encoding,
    FileFormatError,
    MalformedLine,
    NotBankExchangeFile,
    UnknownEncoding,
    UnsupportedVersion,
    UnterminatedSection,
    WriteError,
    detect_encoding,
    parse_statement,
    write_statement,
)
from protocols.onec.bank_exchange import _split_lines
from tests.protocols.onec.vectors import ACC_MAIN, ACC_SECOND, STATEMENT, encode, statement_bytes

ENCODINGS = [
    ("Windows", "cp1251", Encoding.WINDOWS),
    ("DOS", "cp866", Encoding.DOS),
    ("UTF-8", "utf-8", Encoding.UTF8),
]


def test_key_bytes_differ_per_code_page() -> None:
    # The detection relies on this: the Cyrillic key has a different byte form in each.
    assert "Кодировка=".encode("cp1251") == b"\xca\xee\xe4\xe8\xf0\xee\xe2\xea\xe0="
    assert "Кодировка=".encode("cp866") == b"\x8a\xae\xa4\xa8\xe0\xae\xa2\xaa\xa0="
    assert "Кодировка=".encode().startswith(b"\xd0\x9a\xd0\xbe")


@pytest.mark.parametrize(("declared", "codec", "expected"), ENCODINGS)
def test_parses_each_code_page_to_the_same_values(declared: str, codec: str, expected: Encoding) -> None:
    parsed = parse_statement(statement_bytes(declared, codec))
    assert parsed.header.encoding is expected
    assert parsed.warnings == ()
    reference = parse_statement(statement_bytes("Windows", "cp1251"))
    assert parsed.documents == reference.documents
    assert parsed.accounts == reference.accounts


def test_header_and_account_sections() -> None:
    st = parse_statement(statement_bytes("Windows", "cp1251"))
    h = st.header
    assert (h.format_version, h.sender, h.created_on, h.created_at) == (
        "1.03",
        "СберБизнес",
        dt.date(2026, 3, 3),
        dt.time(9, 15, 2),
    )
    assert h.accounts == (ACC_MAIN, ACC_SECOND)
    assert h.document_kinds == ("Платежное поручение", "Банковский ордер")
    main, second = st.accounts
    assert main.account == ACC_MAIN and main.opening_balance == Decimal("1250000.00")
    assert main.total_outflow == Decimal("266700.50") and main.closing_balance == Decimal("1333299.50")
    assert second.opening_balance == Decimal("10000.00") and second.line == 23


def test_document_fields() -> None:
    st = parse_statement(statement_bytes("DOS", "cp866"))
    kinds = [d.kind for d in st.documents]
    assert kinds == ["Платежное поручение"] * 3 + [
        "Банковский ордер",
        "Платежное поручение",
        "Мемориальный ордер",
    ]
    supplier = st.documents[1]
    assert supplier.number == "000215" and supplier.amount == Decimal("120450.50")
    assert supplier.payee.inn == "5024112233" and supplier.payee.name == 'ООО "Молочный край"'
    assert supplier.payee.bic == "044525593" and supplier.payee.kpp == "502401001"
    assert supplier.debited_on == dt.date(2026, 3, 2) and supplier.credited_on is None
    assert supplier.payment_kind == "электронно" and supplier.priority == "5"
    assert supplier.purpose.startswith("Оплата по счету № 123")
    assert supplier.tax.is_empty
    acquiring = st.documents[0]
    assert acquiring.payer.full_name == "ИНН 7707083893 ПАО СБЕРБАНК"
    assert acquiring.payer.display_name == "ПАО СБЕРБАНК"
    tax = st.documents[2]
    assert tax.tax.kbk == "18201061201010000510" and tax.tax.drafter_status == "01" and tax.tax.oktmo == "0"
    assert tax.uin == "0"
    fee = st.documents[3]
    assert fee.purpose == "" and fee.purpose_text == "Комиссия за ведение счета за февраль 2026 г. Без НДС"
    assert ("КвитанцияСодержание", "статус документа: Внешний") in fee.extra
    assert fee.line == _line_of("СекцияДокумент=Банковский ордер")


def test_utf8_file_declaring_windows_is_read_by_its_bytes_with_a_warning() -> None:
    data = statement_bytes("Windows", "utf-8")
    detected = detect_encoding(data)
    assert detected.actual is Encoding.UTF8 and detected.declared is Encoding.WINDOWS and detected.mismatch
    st = parse_statement(data)
    assert st.documents[1].payee.name == 'ООО "Молочный край"'
    assert len(st.warnings) == 1 and "Кодировка=Windows" in st.warnings[0] and "строка 3" in st.warnings[0]


def test_utf8_bom_is_accepted_even_without_a_declaration() -> None:
    st = parse_statement(b"\xef\xbb\xbf" + statement_bytes("UTF-8", "utf-8"))
    assert st.header.encoding is Encoding.UTF8 and len(st.documents) == 6
    bare = STATEMENT.replace("Кодировка={enc}\n", "")
    st = parse_statement(b"\xef\xbb\xbf" + encode(bare, "utf-8"))
    assert st.header.encoding is Encoding.UTF8 and st.documents[1].payee.name == 'ООО "Молочный край"'


def test_lf_only_and_blank_lines_are_accepted() -> None:
    text = STATEMENT.replace("{enc}", "Windows").replace("КонецДокумента\n", "КонецДокумента\n\n")
    st = parse_statement(text.encode("cp1251"))
    assert len(st.documents) == 6


@given(st.lists(st.sampled_from(["a", "=", "\r", "\n", "\r\n", "Ж"]), max_size=40).map("".join))
def test_lines_split_as_crlf_lf_or_lone_cr(text: str) -> None:
    """The CRLF-only shortcut and the general road split as ``\\r\\n|\\n|\\r`` does."""
    assert _split_lines(text) == re.split(r"\r\n|\n|\r", text)


def test_documents_share_equal_parties_and_read_the_same() -> None:
    """A counterparty named by many documents is one Party object; the values are unchanged."""
    st = parse_statement(statement_bytes("Windows", "cp1251"))
    again = parse_statement(statement_bytes("Windows", "cp1251"))
    assert st.documents == again.documents
    parties = [p for d in st.documents for p in (d.payer, d.payee)]
    pairs = [(a, b) for i, a in enumerate(parties) for b in parties[i + 1:] if a == b]
    assert pairs and all(a is b for a, b in pairs)


# --- malformed files: the error names the line and the field ---------------------------


def _cp1251(text: str) -> bytes:
    return encode(text.replace("{enc}", "Windows"), "cp1251")


def _broken(old: str, new: str) -> bytes:
    assert old in STATEMENT
    return _cp1251(STATEMENT.replace(old, new, 1))


def _line_of(fragment: str) -> int:
    return STATEMENT.split("\n").index(fragment) + 1


@pytest.mark.parametrize(
    ("old", "new", "error", "field"),
    [
        ("Сумма=120450.5", "Сумма=120 450,50", BadValue, "Сумма"),
        ("Сумма=120450.5", "Сумма=12.345", BadValue, "Сумма"),
        ("Сумма=120450.5", "Сумма=-5.00", BadValue, "Сумма"),
        ("Сумма=120450.5", "Сумма=", BadValue, "Сумма"),
        ("НачальныйОстаток=10000", "НачальныйОстаток=десять", BadValue, "НачальныйОстаток"),
        (
            "ДатаСписано=02.03.2026\nПлательщик=ИНН",
            "ДатаСписано=31.02.2026\nПлательщик=ИНН",
            BadValue,
            "ДатаСписано",
        ),
        ("ДатаСоздания=03.03.2026", "ДатаСоздания=2026-03-03", BadValue, "ДатаСоздания"),
        ("ВремяСоздания=09:15:02", "ВремяСоздания=25:00:00", BadValue, "ВремяСоздания"),
        ("ВерсияФормата=1.03", "ВерсияФормата=2.00", UnsupportedVersion, "ВерсияФормата"),
        ("Номер=000215", "Номер=000215\nНомер=000216", DuplicateField, "Номер"),
    ],
)
def test_bad_values_name_line_and_field(old: str, new: str, error: type[Exception], field: str) -> None:
    with pytest.raises(error) as info:
        parse_statement(_broken(old, new))
    exc = info.value
    assert isinstance(exc, FileFormatError)
    assert exc.field == field
    changed = STATEMENT.replace(old, new, 1).split("\n")
    target = next(
        i
        for i, line in enumerate(changed, start=1)
        if line.startswith(field + "=") and line in new.split("\n")
    )
    if isinstance(exc, DuplicateField):
        target += 1
    assert exc.line == target
    assert f"строка {target}" in str(exc) and f"поле {field}" in str(exc)


def test_missing_end_of_document_names_where_it_started() -> None:
    text = STATEMENT.replace("{enc}", "Windows")
    start = _line_of("СекцияДокумент=Банковский ордер")
    cut = text.replace("Код=0\nКонецДокумента\n", "Код=0\n", 1)
    with pytest.raises(UnterminatedSection) as info:
        parse_statement(encode(cut, "cp1251"))
    assert info.value.line == _line_of("Номер=216") - 1  # the tax payment's own СекцияДокумент line
    assert "№ 216" in str(info.value) and f"до строки {start - 1}" in str(info.value)


def test_missing_end_of_account_section() -> None:
    with pytest.raises(UnterminatedSection) as info:
        parse_statement(
            _broken("КонечныйОстаток=1333299.50\nКонецРасчСчет\n", "КонечныйОстаток=1333299.50\n")
        )
    assert info.value.line == _line_of("СекцияРасчСчет") and info.value.field == "КонецРасчСчет"


def test_cut_file_without_end_of_file_is_rejected() -> None:
    with pytest.raises(UnterminatedSection, match="КонецФайла"):
        parse_statement(_broken("КонецФайла\n", ""))
    at_line = _cp1251(STATEMENT.split("Сумма=85300.00")[0] + "Сумма=85300.00\n")
    with pytest.raises(UnterminatedSection, match="Мемориальный ордер"):
        parse_statement(at_line)
    mid_line = _cp1251(STATEMENT)[:-300]
    with pytest.raises(FileFormatError):
        parse_statement(mid_line)


def test_not_a_bank_exchange_file() -> None:
    with pytest.raises(NotBankExchangeFile) as info:
        parse_statement(b"%PDF-1.4\n...")
    assert info.value.line == 1 and info.value.code == "not_client_bank_exchange"
    with pytest.raises(NotBankExchangeFile):
        parse_statement(b"")


def test_unknown_or_missing_encoding() -> None:
    with pytest.raises(UnknownEncoding) as info:
        parse_statement(_broken("Кодировка={enc}", "Кодировка=KOI8-R"))
    assert info.value.line == 3 and info.value.field == "Кодировка" and "KOI8-R" in str(info.value)
    with pytest.raises(UnknownEncoding, match="Кодировка="):
        parse_statement(_broken("Кодировка={enc}\n", ""))


def test_bytes_that_do_not_decode_name_the_line() -> None:
    data = statement_bytes("UTF-8", "utf-8").replace("Молочный".encode(), b"\xff\xfe", 1)
    with pytest.raises(UnknownEncoding) as info:
        parse_statement(data)
    assert info.value.line == _line_of('Получатель=ООО "Молочный край"')


def test_line_outside_sections_and_stray_markers() -> None:
    with pytest.raises(MalformedLine) as info:
        parse_statement(_broken("КонецДокумента\nКонецФайла", "КонецДокумента\nСумма=1.00\nКонецФайла"))
    assert info.value.field == "Сумма"
    with pytest.raises(MalformedLine):
        parse_statement(_broken("КонецФайла", "КонецДокумента\nКонецФайла"))
    with pytest.raises(MalformedLine):
        parse_statement(_broken("СекцияДокумент=Банковский ордер", "СекцияДокумент="))


def test_text_after_end_of_file_is_a_warning() -> None:
    st = parse_statement(_cp1251(STATEMENT + "мусор\n"))
    assert any("после КонецФайла" in w for w in st.warnings)


def test_real_world_sample_shape_from_1c_accounting() -> None:
    # Shape of a file exported by "Бухгалтерия предприятия 3.0" (header-only РасчСчет, no sections).
    text = (
        "1CClientBankExchange\nВерсияФормата=1.03\nКодировка=Windows\nОтправитель=Бухгалтерия предприятия, редакция 3.0\n"
        "Получатель=\nДатаСоздания=09.12.2025\nВремяСоздания=10:33:20\nДатаНачала=09.12.2025\nДатаКонца=09.12.2025\n"
        "РасчСчет=40702810300180001774\nДокумент=Платежное поручение\n"
        "СекцияДокумент=Платежное поручение\nНомер=105\nДата=09.12.2025\nСумма=12354.00\n"
        "ПлательщикСчет=40702810300180001774\nПлательщикИНН=7719617469\nПолучательСчет=40702810123111111114\n"
        "ПолучательИНН=7701325469\nНазначениеПлатежа=Оплата по договору\nНазначениеПлатежа1=Оплата по договору\n"
        "КонецДокумента\nКонецФайла"
    )
    st = parse_statement(encode(text, "cp1251"))
    assert st.own_accounts == frozenset({"40702810300180001774"})
    assert st.documents[0].extra == (("НазначениеПлатежа1", "Оплата по договору"),)


# --- writer ------------------------------------------------------------------------------


@pytest.mark.parametrize(("declared", "codec", "enc"), ENCODINGS)
def test_written_file_parses_back_equal(declared: str, codec: str, enc: Encoding) -> None:
    st = parse_statement(statement_bytes("Windows", "cp1251"))
    data = write_statement(st, enc)
    assert data.startswith("1CClientBankExchange\r\nВерсияФормата=1.03\r\n".encode(codec))
    assert data.endswith("КонецФайла\r\n".encode(codec))
    back = parse_statement(data)
    assert back.header.encoding is enc
    assert back.documents == st.documents and back.accounts == st.accounts
    assert back.header.accounts == st.header.accounts


def test_writer_writes_mandatory_fields_even_empty() -> None:
    st = parse_statement(statement_bytes("Windows", "cp1251"))
    text = write_statement(st).decode("cp1251")
    fee = text.split("СекцияДокумент=Банковский ордер")[1].split("КонецДокумента")[0]
    assert "\r\nПлательщикКПП=\r\n" in fee and "\r\nНазначениеПлатежа=\r\n" in fee
    assert "ПоказательКБК" not in fee  # tax block only when it is a budget payment


def test_writer_rejects_what_the_format_cannot_hold() -> None:
    from dataclasses import replace

    st = parse_statement(statement_bytes("Windows", "cp1251"))
    doc = replace(st.documents[1], purpose="строка\nдве")
    with pytest.raises(WriteError) as info:
        write_statement(replace(st, documents=(doc,)))
    assert info.value.field == "НазначениеПлатежа"
    emoji = replace(st.documents[1], purpose="Оплата «яблоки»")
    with pytest.raises(WriteError, match="DOS"):
        write_statement(replace(st, documents=(emoji,)), Encoding.DOS)
    clash = replace(st.documents[1], extra=(("Сумма", "1.00"),))
    with pytest.raises(WriteError):
        write_statement(replace(st, documents=(clash,)))
