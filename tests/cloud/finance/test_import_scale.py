"""Bank-statement imports stay linear: statements per import and re-import cost do not grow
with the file (PostgreSQL or SQLite, whichever the run has).

The re-import of 100k lines once took 22 s against 0.8 s for 5k: the dedupe lookup ran one
``IN (1000 keys)`` query per chunk, and once prepared the server could settle on a plan that
compared every stored row with every key. A return to per-chunk or per-line statements shows
in the statement counts; a plan that is quadratic in the stored rows shows in the timing ratio.
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import Engine, delete, event, func, select
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from cloud.catalog.units import to_kop
from cloud.db import unit_of_work
from cloud.errors import Invalid
from cloud.finance import imports, ingest, setup
from cloud.finance.allocation import Status
from cloud.finance.models import (
    AccountIn,
    CfoIn,
    FinImport,
    FinOperation,
    FinOperationPart,
    FinRule,
    FinTotal,
    ImportPublic,
    LegalEntityIn,
)
from cloud.finance.rules import load_rules
from cloud.finance.totals import CHUNK
from protocols.onec import (
    AccountSection,
    BankDocument,
    Encoding,
    FileHeader,
    Party,
    StatementFile,
    write_statement,
)

OWN_INN = "7701000001"
ACCOUNT = "40702810000000000001"
PARTIES = 60


def statement(lines: int, first: int = 0) -> bytes:
    """``lines`` outgoing payments to ``PARTIES`` suppliers over 2026 (numbers from ``first + 1``)."""
    own = Party(account=ACCOUNT, inn=OWN_INN, name="ООО Тест")
    docs = []
    total = Decimal(0)
    for i in range(first, first + lines):
        k = 1000 + i % PARTIES
        other = Party(account=f"40702810{k:012d}", inn=f"77{k:08d}", name=f"ООО Поставщик {k}")
        day = dt.date(2026, 1, 1) + dt.timedelta(days=(i * 7) % 365)
        amount = Decimal(1000 + (i * 7919) % 5_000_000) / 100
        total += amount
        purpose = f"Оплата по счету {i % 997} за товар" + (" договор 3x" if i % 5 == 0 else "")
        docs.append(BankDocument("Платежное поручение", str(i + 1), day, amount, own, other, purpose, debited_on=day))
    opening = Decimal("1000000000.00")
    section = AccountSection(ACCOUNT, dt.date(2026, 1, 1), dt.date(2026, 12, 31), opening, Decimal(0), total, opening - total)
    header = FileHeader("1.03", Encoding.WINDOWS, "Банк", "Тест", dt.date(2026, 12, 31), None, dt.date(2026, 1, 1),
                        dt.date(2026, 12, 31), (ACCOUNT,), ("Платежное поручение",))
    return write_statement(StatementFile(header, (section,), tuple(docs)))


@pytest.fixture
def fin(sessions: sessionmaker[Session], tenant: tuple[int, str, str]) -> tuple[sessionmaker[Session], int]:
    """A tenant with the template, two ЦФО, the account and rules: per supplier for 40 of the 60
    (two with a split), one phrase rule and a suggest-only one for big payments."""
    tid = tenant[0]
    with unit_of_work(sessions) as s:
        setup.load_template(s, tid)
        for code in ("S1", "S2"):
            setup.save_cfo(s, tid, CfoIn(code=code, name=f"Магазин {code}"))
        setup.create_entity(s, tid, LegalEntityIn(name="ООО Тест", inn=OWN_INN, accounts=[
            AccountIn(number=ACCOUNT, balance_date=dt.date(2026, 1, 1), opening_balance=Decimal("1000000000.00"))]))
        for i in range(40):
            shares = ([{"article": "D.1.2.1", "percent": 60, "cfo": "S1"}, {"article": "D.1.2.1", "percent": 40, "cfo": "S2"}]
                      if i < 2 else [{"article": "D.1.2.2", "cfo": "S1" if i % 2 else "S2"}])
            s.add(FinRule(tenant_id=tid, name=f"Поставщик {i}", priority=60,
                          condition={"direction": "outflow", "counterparty_inns": [f"77{1000 + i:08d}"]}, shares=shares))
        s.add(FinRule(tenant_id=tid, name="Договор 3", priority=90,
                      condition={"direction": "outflow", "purpose_contains": ["договор 3x"]}, shares=[{"article": "D.1.2.19"}]))
        s.add(FinRule(tenant_id=tid, name="Крупные", priority=50, suggest_only=True,
                      condition={"direction": "outflow", "amount_min": "49000"}, shares=[{"article": "D.1.2.11"}]))
        s.commit()
    return sessions, tid


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    """SQL statements sent through SQLAlchemy (an executemany counts once; COPY is on the driver)."""
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement.split(None, 3)[0] + " " + statement[:60])

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def run(sessions: sessionmaker[Session], tid: int, content: bytes) -> ImportPublic:
    with unit_of_work(sessions) as s:
        row = imports.start_import(s, tid, None, "onec", "st.txt", content)
    assert row.id is not None
    result = imports.run_import(sessions, row.id)
    assert result.state == "done", result
    return result


def test_statements_per_import_do_not_grow_with_the_file(fin, engine: Engine) -> None:
    sessions, tid = fin
    counts = {}
    for lines, first in ((300, 0), (2400, 300)):
        with counting(engine) as seen:
            first_run = run(sessions, tid, statement(lines, first))
        with counting(engine) as again:
            second = run(sessions, tid, statement(lines, first))
        assert first_run.created == lines and second.created == 0 and second.duplicates == lines
        counts[lines] = (len(seen), len(again))
    small, big = counts[300], counts[2400]
    if engine.dialect.name == "postgresql":
        # One query for the known keys, one COPY + INSERT … SELECT for the operations, one COPY
        # for the parts, one upsert of the totals: the same handful at 300 lines and at 2400.
        assert big == small, counts
    else:  # SQLite: chunks of CHUNK rows (lookup, insert … returning, parts, totals)
        chunks = math.ceil(2400 / CHUNK)
        assert big[0] - small[0] <= 4 * chunks and big[1] - small[1] <= chunks, counts


def test_reimport_cost_is_linear_in_the_file(fin) -> None:
    """Dedupe of all-duplicate batches of 1k and 8k lines: linear is ×8, the old plan was ×64."""
    sessions, tid = fin
    run(sessions, tid, statement(8000))
    with unit_of_work(sessions) as s:
        n = setup.names(s, tid)
        ops = {size: imports.parse_file("onec", statement(size), {}, n)[0] for size in (1000, 8000)}
    best = {}
    for size, new_ops in ops.items():
        times = []
        for _ in range(3):
            with unit_of_work(sessions) as s:
                t0 = time.perf_counter()
                result = ingest.ingest(s, tid, new_ops)
                times.append(time.perf_counter() - t0)
                assert result.created == 0 and result.duplicates == size
        best[size] = min(times)
    assert best[8000] / best[1000] < 20, best


def test_bulk_insert_skips_rows_a_concurrent_import_stored_first(fin, monkeypatch) -> None:
    """The lookup of known keys is bypassed (as if another import committed them meanwhile):
    ON CONFLICT skips those rows, their parts are not written and the totals stay exact."""
    sessions, tid = fin
    run(sessions, tid, statement(250))  # the "concurrent" import: lines 1–250
    monkeypatch.setattr(ingest, "_existing_keys", lambda *args: set())
    result = run(sessions, tid, statement(500))  # lines 1–500
    assert result.created == 250 and result.duplicates == 250
    with unit_of_work(sessions) as s:
        ops = s.scalar(select(func.count()).select_from(FinOperation).where(FinOperation.tenant_id == tid))
        op_sum = s.scalar(select(func.sum(FinOperation.amount_kop)).where(FinOperation.tenant_id == tid))
        orphan_free = s.scalar(select(func.count()).select_from(FinOperationPart).where(
            FinOperationPart.tenant_id == tid, FinOperationPart.operation_id.not_in(select(FinOperation.id))))  # type: ignore[attr-defined]
        per_op = s.execute(select(FinOperationPart.operation_id, func.sum(FinOperationPart.amount_kop)).where(
            FinOperationPart.tenant_id == tid).group_by(FinOperationPart.operation_id)).all()
        amounts = dict(s.execute(select(FinOperation.id, FinOperation.amount_kop).where(FinOperation.tenant_id == tid)).all())
        totals = s.scalar(select(func.sum(FinTotal.amount_kop)).where(FinTotal.tenant_id == tid))
    assert ops == 500 and orphan_free == 0
    assert all(amounts[op_id] == kop for op_id, kop in per_op)  # parts sum to their operation
    assert totals == -op_sum  # all outflows: allocated parts plus the unallocated rest


# ---------------------------------------------------------------- added with the streamed import


@contextmanager
def server_statements(engine: Engine) -> Iterator[list[int]]:
    """Statements the PostgreSQL server completed on the engine's connections inside the block
    (its ``CommandComplete`` messages in libpq's protocol trace), put in the list on exit.

    Counted on the wire, not in SQLAlchemy: an executemany, which psycopg sends as one
    statement per row, counts each, and so does what goes straight to the driver (COPY).
    """
    from psycopg import pq

    found: list[int] = []
    traced: dict[int, object] = {}
    with tempfile.TemporaryFile("w+") as log:

        def checkout(dbapi_connection, record, proxy) -> None:  # type: ignore[no-untyped-def]
            pgconn = dbapi_connection.pgconn
            if id(pgconn) not in traced:  # once: a second trace() would drop the first one's buffer
                pgconn.trace(log.fileno())
                pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
                traced[id(pgconn)] = pgconn

        event.listen(engine, "checkout", checkout)
        try:
            yield found
        finally:
            event.remove(engine, "checkout", checkout)
            for pgconn in traced.values():
                pgconn.untrace()  # type: ignore[attr-defined]
            log.seek(0)
            found.append(sum(1 for line in log if line.startswith("B\t") and "\tCommandComplete\t" in line))


def test_statements_the_server_runs_do_not_grow_with_the_file(fin, engine: Engine, monkeypatch) -> None:
    """A return to statements per line (or per chunk of lines) shows here, on the wire.

    300 and 2400 lines, then the same again re-imported: the same count. Then streamed in many
    chunks (made small here): at most two COPY statements more per chunk, and never more
    chunks than ``1 + STREAM_CHUNKS`` whatever the size.
    """
    if engine.dialect.name != "postgresql":
        pytest.skip("the protocol trace is libpq's; SQLite is counted by the test above")
    sessions, tid = fin
    counts = {}
    for lines, first in ((300, 0), (2400, 300)):
        with server_statements(engine) as new:
            run(sessions, tid, statement(lines, first))
        with server_statements(engine) as again:
            run(sessions, tid, statement(lines, first))
        counts[lines] = (new[0], again[0])
    assert counts[300] == counts[2400], counts
    monkeypatch.setattr(ingest, "STREAM_FIRST", 50)
    monkeypatch.setattr(ingest, "STREAM_CHUNK_MIN", 50)
    streamed = {}
    for lines, first in ((300, 10_000), (2400, 20_000)):
        with server_statements(engine) as new:
            run(sessions, tid, statement(lines, first))
        streamed[lines] = new[0]
    chunks = {lines: len(ingest._chunk_ends(lines, True)) for lines in streamed}
    assert chunks[300] > 1 and chunks[2400] == 1 + ingest.STREAM_CHUNKS, chunks
    assert streamed[2400] - streamed[300] == 2 * (chunks[2400] - chunks[300]), (streamed, chunks)


def _snapshot(sessions: sessionmaker[Session], tid: int) -> tuple[dict, dict, dict]:
    """Operations and their parts by dedupe key, and the totals, without the ids of the rows."""
    with unit_of_work(sessions) as s:
        ops = {o.dedupe_key: (o.booked_on, o.direction, o.amount_kop, o.status, o.origin, o.suggestion, o.doc_number,
                              o.counterparty_inn, o.counterparty_name, o.counterparty_account, o.purpose)
               for o in s.scalars(select(FinOperation).where(FinOperation.tenant_id == tid))}
        keys = {o.id: o.dedupe_key for o in s.scalars(select(FinOperation).where(FinOperation.tenant_id == tid))}
        parts: dict[str, list[tuple]] = {}
        for p in s.scalars(select(FinOperationPart).where(FinOperationPart.tenant_id == tid)):
            parts.setdefault(keys[p.operation_id], []).append(
                (p.article_id, p.cfo_id, p.project_id, p.accrual_month, p.amount_kop, p.origin, p.rule_id,
                 p.account_id, p.booked_on, p.direction))
        totals = {(t.article_id, t.cfo_id, t.project_id, t.account_id, t.cash_month, t.accrual_month): (t.amount_kop, t.parts)
                  for t in s.scalars(select(FinTotal).where(FinTotal.tenant_id == tid))}
    return ops, {k: sorted(v) for k, v in parts.items()}, totals


def _forget(sessions: sessionmaker[Session], tid: int) -> None:
    with unit_of_work(sessions) as s:
        for model in (FinOperationPart, FinOperation, FinTotal):
            s.execute(delete(model).where(model.tenant_id == tid))  # type: ignore[arg-type]
        s.commit()


def test_streamed_import_stores_what_the_plain_one_does(fin, monkeypatch) -> None:
    """The same file imported streamed in many chunks, and in one plain insert: the same
    operations, parts, rules and totals (on SQLite both are the plain one)."""
    sessions, tid = fin
    content = statement(1200)
    monkeypatch.setattr(ingest, "STREAM_FIRST", 100)
    monkeypatch.setattr(ingest, "STREAM_CHUNK_MIN", 100)
    streamed = run(sessions, tid, content)
    after_stream = _snapshot(sessions, tid)
    _forget(sessions, tid)
    monkeypatch.setattr(ingest, "BULK_MIN", 10**9)
    plain = run(sessions, tid, content)
    after_plain = _snapshot(sessions, tid)
    assert (streamed.created, streamed.allocated, streamed.duplicates) == (plain.created, plain.allocated, plain.duplicates)
    assert streamed.created == 1200 and 0 < streamed.allocated < 1200
    for got, want, what in zip(after_stream, after_plain, ("operations", "parts", "totals"), strict=True):
        assert got == want, what
    ops, parts, _totals = after_plain
    assert {o[3] for o in ops.values()} == {"allocated", "unallocated", "suggested"}
    assert any(len(p) == 2 for p in parts.values())  # the 60/40 splits


def test_concurrent_import_met_in_a_later_chunk(fin, monkeypatch) -> None:
    """Streamed in chunks of 100, a line another import stored after the lookup turns up in
    the third chunk: nothing streamed is kept, the batch goes the slow road that skips it, and
    every count, part and total is exact."""
    sessions, tid = fin
    run(sessions, tid, statement(100, 250))  # the "concurrent" import: lines 251–350
    monkeypatch.setattr(ingest, "STREAM_FIRST", 100)
    monkeypatch.setattr(ingest, "STREAM_CHUNK_MIN", 100)
    monkeypatch.setattr(ingest, "_existing_keys", lambda *args: set())
    result = run(sessions, tid, statement(500))  # lines 1–500
    assert result.created == 400 and result.duplicates == 100 and result.total == 500
    with unit_of_work(sessions) as s:
        ops = s.scalar(select(func.count()).select_from(FinOperation).where(FinOperation.tenant_id == tid))
        op_sum = s.scalar(select(func.sum(FinOperation.amount_kop)).where(FinOperation.tenant_id == tid))
        per_op = s.execute(select(FinOperationPart.operation_id, func.sum(FinOperationPart.amount_kop),
                                  func.count()).where(FinOperationPart.tenant_id == tid).group_by(FinOperationPart.operation_id)).all()
        ops_by_id = {o.id: o for o in s.scalars(select(FinOperation).where(FinOperation.tenant_id == tid))}
        totals = s.execute(select(func.sum(FinTotal.amount_kop), func.sum(FinTotal.parts)).where(FinTotal.tenant_id == tid)).one()
    assert ops == 500
    assert all(op_id in ops_by_id and ops_by_id[op_id].amount_kop == kop for op_id, kop, _n in per_op)
    assert {op_id for op_id, _kop, _n in per_op} == {i for i, o in ops_by_id.items() if o.status == "allocated"}
    assert totals[0] == -op_sum and totals[1] == sum(n for _op, _kop, n in per_op)


def test_check_stores_the_file_or_nothing(fin) -> None:
    """A file the check refuses leaves no import row (the row sent meanwhile is rolled back);
    one it accepts is stored whole, with its count and balance differences."""
    sessions, tid = fin
    good = statement(300)
    cut = good[: good.rindex("КонецДокумента".encode("cp1251"))]  # the last document never ends
    unknown = good.replace(ACCOUNT.encode(), b"40702810999999999999")
    for bad, code in ((cut, "unterminated_section"), (unknown, "unknown_account"), (b"garbage", "not_client_bank_exchange")):
        with unit_of_work(sessions) as s, pytest.raises(Invalid) as info:
            imports.start_import(s, tid, None, "onec", "bad.txt", bad)
        assert info.value.code == code, info.value.message
        assert info.value.message.startswith("выписка не загружена")
    with unit_of_work(sessions) as s:
        assert s.scalar(select(func.count()).select_from(FinImport).where(FinImport.tenant_id == tid)) == 0
        row = imports.start_import(s, tid, None, "onec", "good.txt", good)
    imports._PARSED.clear()  # as a worker process would: the file is read back from the row
    with unit_of_work(sessions) as s:
        stored = s.get(FinImport, row.id)
        assert stored is not None and stored.content == good and stored.total == 300 and stored.state == "pending"
        assert stored.balance_differences == []
    result = imports.run_import(sessions, row.id)
    assert result.state == "done" and result.created == 300


def test_gc_pause_nests_and_restores() -> None:
    assert gc.isenabled()
    with imports.gc_paused():
        with imports.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with imports.gc_paused():
            pass
        assert not gc.isenabled()  # off before: left off
    finally:
        gc.enable()


def test_planner_allocates_as_the_rule_set_does(fin) -> None:
    """The import's planner (no Allocation objects, a single share taken whole) gives each
    line the status, parts, kopecks, months, rule and suggestion that RuleSet.allocate gives,
    with splits into three, month shifts and suggest-only rules among the rules."""
    sessions, tid = fin
    with unit_of_work(sessions) as s:
        s.add(FinRule(tenant_id=tid, name="Три магазина", priority=55,
                      condition={"direction": "outflow", "counterparty_inns": ["7700001041", "7700001042"]},
                      shares=[{"article": "D.1.2.3", "percent": "33.33", "cfo": "S1", "month_shift": 1},
                              {"article": "D.1.2.3", "percent": "33.33", "cfo": "S2", "month_shift": 1},
                              {"article": "D.1.2.4", "percent": "33.34", "month_shift": -1}]))
        s.add(FinRule(tenant_id=tid, name="Аренда вперёд", priority=56,
                      condition={"direction": "outflow", "counterparty_inns": ["7700001043"]},
                      shares=[{"article": "D.1.2.3", "cfo": "S2", "month_shift": 2}]))
        s.commit()
    with unit_of_work(sessions) as s:
        n = setup.names(s, tid)
        rules = load_rules(s, tid, n)
        new_ops = imports.parse_file("onec", statement(2400), {}, n)[0]
    planner = ingest._Planner(rules, n, tid)
    seen = set()
    for item in new_ops:
        status, origin, suggestion, parts = planner.plan(item, to_kop(item.op.amount))
        a = rules.ruleset.allocate(item.op)
        want_parts = [(n.articles[p.article].id, n.cfos.get(p.cfo) if p.cfo else None,
                       n.projects.get(p.project) if p.project else None, p.accrual_month, to_kop(p.amount))
                      for p in a.parts]
        if a.status is Status.AUTO:
            assert (status, origin, suggestion, parts) == ("allocated", "rule", None, want_parts), item.op
            assert planner.rule_ids[item.op.key] == rules.ids[a.rule or ""]
        elif a.status is Status.SUGGESTED:
            assert (status, origin, parts) == ("suggested", "", None) and suggestion == ingest._suggestion(a, rules)
        else:
            assert (status, origin, suggestion, parts) == ("unallocated", "", None, None)
        seen.add((a.status, len(a.parts)))
    assert {(Status.AUTO, 1), (Status.AUTO, 2), (Status.AUTO, 3), (Status.SUGGESTED, 1), (Status.UNALLOCATED, 0)} <= seen
