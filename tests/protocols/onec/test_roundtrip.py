"""Property tests: write → parse is the identity; garbage parses or raises our error, nothing else."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.onec import (
    AccountSection,
    BankDocument,
    Encoding,
    FileHeader,
    OneCError,
    Party,
    StatementFile,
    TaxFields,
    parse_statement,
    write_statement,
)
from tests.protocols.onec.vectors import statement_bytes

# Characters every supported code page can hold (cp866 lacks «», №… so stay in the common set).
_ALPHABET = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ0123456789 .,-/()\"'%:;=abcXYZ"
text = st.text(alphabet=_ALPHABET, max_size=40)
digits = st.text(alphabet="0123456789", min_size=1, max_size=20)
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))
amounts = st.decimals(min_value=0, max_value=Decimal("999999999.99"), places=2)
balances = st.decimals(min_value=Decimal("-99999999.99"), max_value=Decimal("999999999.99"), places=2)
keys = st.text(alphabet="АБВЖКабвжкXYZ", min_size=1, max_size=12).map(lambda k: "Доп" + k)
extras = st.lists(st.tuples(keys, text), max_size=3).map(tuple)

parties = st.builds(
    Party,
    account=digits,
    inn=digits,
    kpp=digits,
    full_name=text,
    name=text,
    settlement_account=digits,
    bank_name=text,
    bank_city=text,
    bic=digits,
    corr_account=digits,
)
taxes = st.builds(
    TaxFields,
    drafter_status=digits,
    kbk=digits,
    oktmo=digits,
    basis=text,
    period=text,
    number=text,
    date=text,
    kind=text,
) | st.just(TaxFields())
documents = st.builds(
    BankDocument,
    kind=st.sampled_from(
        [
            "Платежное поручение",
            "Банковский ордер",
            "Платежное требование",
            "Мемориальный ордер",
            "Инкассовое поручение",
        ]
    ),
    number=digits,
    date=dates,
    amount=amounts,
    payer=parties,
    payee=parties,
    purpose=text,
    debited_on=st.none() | dates,
    credited_on=st.none() | dates,
    payment_kind=text,
    operation_kind=digits,
    priority=digits,
    uin=digits,
    purpose_code=digits,
    tax=taxes,
    extra=extras,
)
accounts = st.builds(
    AccountSection,
    account=digits,
    date_from=st.none() | dates,
    date_to=st.none() | dates,
    opening_balance=st.none() | balances,
    total_inflow=st.none() | amounts,
    total_outflow=st.none() | amounts,
    closing_balance=st.none() | balances,
    extra=extras,
)
headers = st.builds(
    FileHeader,
    format_version=st.sampled_from(["1.02", "1.03"]),
    encoding=st.sampled_from(list(Encoding)),
    sender=text,
    receiver=text,
    created_on=st.none() | dates,
    created_at=st.none() | st.times().map(lambda t: t.replace(microsecond=0)),
    date_from=st.none() | dates,
    date_to=st.none() | dates,
    accounts=st.lists(digits, max_size=3).map(tuple),
    document_kinds=st.lists(text.filter(bool), max_size=2).map(tuple),
    extra=extras,
)
statements = st.builds(
    StatementFile,
    header=headers,
    accounts=st.lists(accounts, max_size=3).map(tuple),
    documents=st.lists(documents, max_size=5).map(tuple),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements)
def test_write_then_parse_is_identity(statement: StatementFile) -> None:
    back = parse_statement(write_statement(statement))
    assert back == statement


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_files_parse_or_raise_our_error(data: st.DataObject) -> None:
    raw = bytearray(statement_bytes("Windows", "cp1251"))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "drop", "dup"]))
        if op == "flip":
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == "drop":
            del raw[pos : pos + data.draw(st.integers(1, 40))]
        else:
            raw[pos:pos] = raw[pos : pos + data.draw(st.integers(1, 40))]
    try:
        parse_statement(bytes(raw))
    except OneCError:
        pass
