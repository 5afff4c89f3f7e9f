from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from protocols.onec import (
    Direction,
    check_balances,
    dedupe_key,
    merge_operations,
    operations,
    own_sides,
    parse_statement,
    unassigned_documents,
)
from tests.protocols.onec.vectors import ACC_MAIN, ACC_SECOND, statement_bytes


def _statement():
    return parse_statement(statement_bytes("Windows", "cp1251"))


def test_directions_relative_to_own_accounts() -> None:
    ops = list(operations(_statement()))
    summary = [(op.account, op.direction, op.document.number) for op in ops]
    assert summary == [
        (ACC_MAIN, Direction.INFLOW, "784512"),
        (ACC_MAIN, Direction.OUTFLOW, "000215"),
        (ACC_MAIN, Direction.OUTFLOW, "216"),
        (ACC_MAIN, Direction.OUTFLOW, "55001"),
        (ACC_MAIN, Direction.OUTFLOW, "217"),  # transfer between own accounts: out of one…
        (ACC_SECOND, Direction.INFLOW, "217"),  # …and into the other
        (ACC_SECOND, Direction.INFLOW, "9001"),
    ]
    assert ops[1].counterparty.inn == "5024112233"
    assert ops[0].counterparty.inn == "7707083893"


def test_consistent_statement_has_no_differences() -> None:
    assert check_balances(_statement()) == []


def test_differences_are_reported_not_raised() -> None:
    st = _statement()
    main = replace(st.accounts[0], closing_balance=Decimal("1333300.00"))
    docs = st.documents[:-1]  # the cash collection is missing from the documents
    diffs = check_balances(replace(st, accounts=(main, st.accounts[1]), documents=docs))
    by_code = {(d.account, d.code): d for d in diffs}
    assert set(by_code) == {
        (ACC_MAIN, "closing_mismatch"),
        (ACC_MAIN, "documents_closing_mismatch"),
        (ACC_SECOND, "documents_closing_mismatch"),
        (ACC_SECOND, "inflow_total_mismatch"),
    }
    missing = by_code[(ACC_SECOND, "inflow_total_mismatch")]
    assert missing.expected == Decimal("100000.00") and missing.actual == Decimal("185300.00")
    assert missing.delta == Decimal("85300.00")
    assert "ВсегоПоступило" in missing.message and ACC_SECOND in missing.message


def test_missing_totals_skip_their_checks() -> None:
    st = _statement()
    bare = tuple(replace(a, opening_balance=None, total_inflow=None, total_outflow=None) for a in st.accounts)
    assert check_balances(replace(st, accounts=bare)) == []


def test_dedupe_key_survives_reexport_of_an_overlapping_period() -> None:
    st = _statement()
    # The bank re-exports: another order, padded number, other receipt fields and debit date.
    doc = st.documents[1]
    again = replace(doc, number="215", debited_on=None, extra=(("КвитанцияДата", "05.03.2026"),))
    second = replace(st, documents=(st.documents[4], again))
    merged = merge_operations([operations(st), operations(second)])
    assert len(merged) == 7
    keys = {op.dedupe_key for op in merged}
    assert len(keys) == 7 and all(k.startswith("1c:") for k in keys)


def test_dedupe_key_separates_real_differences() -> None:
    st = _statement()
    doc = st.documents[1]
    variants = [
        replace(doc, amount=doc.amount + Decimal("0.01")),
        replace(doc, number="216"),
        replace(doc, date=doc.date.replace(day=3)),
        replace(doc, payee=replace(doc.payee, account="40702810600000007778")),
    ]
    keys = {op.dedupe_key for v in variants for op in operations(replace(st, documents=(v,)))}
    base = next(operations(replace(st, documents=(doc,)))).dedupe_key
    assert len(keys) == 4 and base not in keys


def test_documents_of_foreign_accounts_are_flagged() -> None:
    st = _statement()
    foreign = replace(st.documents[1], payer=replace(st.documents[1].payer, account="40702810000000000000"))
    assert unassigned_documents(replace(st, documents=(foreign,))) == [foreign]
    assert unassigned_documents(st) == []


def test_own_sides_are_the_operations_with_their_keys() -> None:
    st = _statement()
    sides = own_sides(st)
    ops = list(operations(st))
    assert [(s.account, s.direction, s.document) for s in sides] == [(o.account, o.direction, o.document) for o in ops]
    assert [s.key for s in sides] == [dedupe_key(o) for o in ops]
    assert [s.counterparty for s in sides] == [o.counterparty for o in ops]
    broken = replace(st, accounts=(replace(st.accounts[0], total_outflow=Decimal("1.00")), st.accounts[1]))
    assert check_balances(broken, own_sides(broken)) == check_balances(broken) != []
