"""The whole-store stock read: both of its PostgreSQL plans equal the ledger at every moment.

``ledger.balances_at`` reads a recent moment ("now") from the balance rows first and probes only
the pairs they do not answer; an older moment takes one statement that probes as it scans. The
moment only chooses the plan, so each test below forces each plan (``ledger.RECENT``) over the
same moments and compares with a brute-force read of the ledger rows. On SQLite both runs take
the portable statement, and the comparison still holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from cloud.base import utcnow
from cloud.catalog.units import from_kop, from_milli
from cloud.inventory import ledger, reports, service
from cloud.inventory.models import DocType, DocumentIn, LineIn
from cloud.inventory.tasks import run_recompute
from tests.cloud.inventory.helpers import World, at
from tests.cloud.inventory.test_perf import _brute, _products

EVERY_MOMENT_RECENT = timedelta(days=365_000)
NO_MOMENT_RECENT = -timedelta(days=365_000)


def _both_plans(world: World, monkeypatch: pytest.MonkeyPatch, when: Any, **filters: Any) -> list[Any]:
    """``balances_at`` under each plan; asserts they agree and returns the result."""
    results = []
    for recent in (EVERY_MOMENT_RECENT, NO_MOMENT_RECENT):
        monkeypatch.setattr(ledger, "RECENT", recent)
        with world.s() as s:
            results.append(ledger.balances_at(s, world.tenant_id, when, **filters))
    assert results[0] == results[1], when
    return results[0]


def test_both_plans_equal_the_ledger_with_pending_recomputes_future_rows_and_cancels(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.configure("average", inline=2)
    a, b, c, d = (world.product(x) for x in "abcd")
    world.receipt(a, "10", "100.00", at(0))
    world.receipt(b, "5", "70.00", at(1), warehouse=world.floor)
    world.receipt(d, "7", "70.00", at(1), store=world.store2, warehouse=world.wh2)
    for i in range(4):
        world.sale(a, "1", at(2 + i))
    world.receipt(c, "3", "30.00", at(100))  # after every other pair's last row
    world.receipt(a, "10", "300.00", at(0.5))  # backdated past the inline limit: a's recompute is pending
    with world.s() as s:
        assert [r["product_id"] for r in service.pending_recomputes(s, world.tenant_id)] == [a]
    world.write_off(b, "1", at(3), warehouse=world.floor)
    world.cancel(world.receipt(c, "1", "11.00", at(50)).id)
    moments = [at(-1), at(0), at(0.5), at(1), at(2.5), at(3), at(50), at(60), at(100), at(100) + timedelta(days=1)]
    for recomputed in (False, True):
        if recomputed:
            run_recompute(world.sessions, a, world.wh)
        for when in moments:
            expected = _brute(world, when)
            assert _both_plans(world, monkeypatch, when) == expected, when
            assert _both_plans(world, monkeypatch, when, store_id=world.store) == [
                r for r in expected if r[0] == world.store]
            assert _both_plans(world, monkeypatch, when, store_id=world.store, warehouse_id=world.floor) == [
                r for r in expected if r[0] == world.store and r[2] == world.floor]
            assert _both_plans(world, monkeypatch, when, product_id=a) == [r for r in expected if r[1] == a]
            assert _both_plans(world, monkeypatch, when, store_id=world.store, product_ids=[a, c]) == [
                r for r in expected if r[1] in (a, c)]
            assert _both_plans(world, monkeypatch, when, product_ids=[]) == []
    assert world.balance(a) == (D("16"), D("320.00"))


@contextmanager
def _statements(world: World) -> Iterator[list[str]]:
    """The statements the read sends (on psycopg's cursor, below SQLAlchemy's events; no pool ping)."""
    import psycopg

    seen: list[str] = []
    execute = psycopg.Cursor.execute

    def spy(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if "stock_" in str(query):
            seen.append(str(query))
        return execute(self, query, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(psycopg.Cursor, "execute", spy)
        yield seen


def test_now_reads_balance_rows_alone_and_probes_only_the_pairs_they_do_not_answer(world: World) -> None:
    world.configure("average", inline=2)
    a, b, c = (world.product(x) for x in "abc")
    world.receipt(a, "10", "100.00", at(0))
    world.receipt(b, "4", "40.00", at(0))
    world.receipt(c, "2", "50.00", at(0))

    def now_read() -> tuple[list[Any], list[str]]:
        when = utcnow()
        with world.s() as s, _statements(world) as seen:
            rows = ledger.balances_at(s, world.tenant_id, when, store_id=world.store)
        assert rows == [r for r in _brute(world, when) if r[0] == world.store]
        return rows, seen

    rows, seen = now_read()
    assert [(r[1], r[3], r[4]) for r in rows] == [(a, 10_000, 10_000), (b, 4_000, 4_000), (c, 2_000, 5_000)]
    if world.sessions.kw["bind"].dialect.name == "postgresql":
        assert len(seen) == 1 and "stock_moves" not in seen[0], seen  # the balance rows alone

    for i in range(3):
        world.sale(a, "1", at(1 + i))
    world.receipt(a, "5", "100.00", at(0.5))  # backdated past the inline limit: a's balance row is not final
    world.receipt(b, "1", "10.00", utcnow() + timedelta(days=1))  # dated after "now": b's balance row is ahead
    with world.s() as s:
        assert [r["product_id"] for r in service.pending_recomputes(s, world.tenant_id)] == [a]
    rows, seen = now_read()
    # a: its last row's running totals, not yet recomputed (what the ledger says until the recompute ends)
    assert [(r[1], r[3]) for r in rows] == [(a, 7_000), (b, 4_000), (c, 2_000)]
    if world.sessions.kw["bind"].dialect.name == "postgresql":
        assert len(seen) == 2 and "stock_moves" in seen[1], seen  # a and b probed, c read from its row

    run_recompute(world.sessions, a, world.wh)
    rows, seen = now_read()
    assert [(r[1], r[3]) for r in rows] == [(a, 12_000), (b, 4_000), (c, 2_000)]


def test_stock_screen_numbers_are_those_of_from_milli_and_from_kop(world: World,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = (world.product(x) for x in "abc")
    world.configure("average", negative="allow")
    world.receipt(a, "3", "10.00", at(0))  # unit cost 3.333… → 3.33
    world.receipt(b, "0.007", "0.01", at(0))  # 1.428571… → 1.43
    world.write_off(c, "2.5", at(1))  # negative: no unit cost
    world.receipt(c, "2.5", "0.00", at(2))  # back to zero: left out unless nonzero=False
    for recent in (EVERY_MOMENT_RECENT, NO_MOMENT_RECENT):
        monkeypatch.setattr(ledger, "RECENT", recent)
        for when in (at(1.5), at(3)):
            with world.s() as s:
                rows = reports.stock_on(s, world.tenant_id, when, store_id=world.store, nonzero=False)
            book = {r[1]: r for r in _brute(world, when)}
            assert [r.product_id for r in rows] == sorted(book)
            for row in rows:
                _store, _pid, _wh, qty_m, value_kop = book[row.product_id]
                assert (str(row.quantity), str(row.value)) == (str(from_milli(qty_m)), str(from_kop(value_kop)))
                cost = None if qty_m <= 0 else (D(value_kop) / 100 / from_milli(qty_m)).quantize(D("0.01"))
                assert row.unit_cost == cost and str(row.unit_cost) == str(cost)
            with world.s() as s:
                shown = reports.stock_on(s, world.tenant_id, when, store_id=world.store)
            assert [r.product_id for r in shown] == [r.product_id for r in rows if r.quantity or r.value]
    assert [str(r.unit_cost) for r in rows] == ["3.33", "1.43", "None"]


@pytest.mark.parametrize("n", [0, 1, -1, 999, 1000, -1001, 123_456_789, -(10**15) - 7, 10**18 + 1])
def test_milli_and_cent_products_are_from_milli_and_from_kop_exactly(n: int) -> None:
    assert str(reports.MILLI * n) == str(from_milli(n))
    assert str(reports.CENT * n) == str(from_kop(n))


def test_a_store_read_filters_by_tenant_even_for_a_foreign_product_id(world: World,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    a = world.product("a")
    world.receipt(a, "1", "1.00", at(0))
    world.doc(DocType.WRITE_OFF, [{"product_id": a, "quantity": D(1), "reason": "spoilage"}], at(1))
    for recent in (EVERY_MOMENT_RECENT, NO_MOMENT_RECENT):
        monkeypatch.setattr(ledger, "RECENT", recent)
        with world.s() as s:
            assert ledger.balances_at(s, world.tenant_id + 10_000, at(5), product_id=a) == []
            assert ledger.balances_at(s, world.tenant_id, at(5), product_id=a) == [(world.store, a, world.wh, 0, 0)]


def test_a_whole_store_screen_names_every_product(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """More than 100 rows: the products are looked up through the balance rows, not by their ids."""
    products = _products(world, 120, "S")
    other = world.product("OTHER")
    data = DocumentIn(store_id=world.store, warehouse_id=world.wh, posted_at=at(0), supplier="ООО Поставщик",
                      lines=[LineIn(product_id=p, quantity=D(i + 1), amount=D(10 * (i + 1)))
                             for i, p in enumerate(products)])
    with world.s() as s:
        service.post_document(s, world.tenant_id, service.create_document(s, world.tenant_id, None,
                                                                          DocType.RECEIPT, data).id)
    world.receipt(other, "1", "5.00", at(0), store=world.store2, warehouse=world.wh2)
    for recent in (EVERY_MOMENT_RECENT, NO_MOMENT_RECENT):
        monkeypatch.setattr(ledger, "RECENT", recent)
        for store, expected in ((world.store, products), (None, [*products, other])):
            with world.s() as s:
                rows = reports.stock_on(s, world.tenant_id, at(1), store_id=store)
            assert [(r.product_id, r.sku, r.name) for r in rows] == [
                (p, f"S{i:04d}", f"Товар S{i}") for i, p in enumerate(products)] + (
                [(other, "OTHER", "Товар OTHER")] if store is None else [])
            assert [r.product_id for r in rows] == expected
            assert {r.unit_cost for r in rows} == ({D("10.00")} if store else {D("10.00"), D("5.00")})
