"""One posting of many documents, each row at its own moment (sales ingestion posts a page of receipts
at once): the same ledger as posting them one by one, in a constant number of statements, and a
refusal that names every sale it concerns."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D
from typing import Any

import pytest

from cloud.inventory import ledger, service
from cloud.inventory.models import ClosePeriodIn, DocType
from tests.cloud.inventory.helpers import World, at
from tests.cloud.inventory.test_perf import _products, counting

MAX_BATCH_STATEMENTS = 8
"""Settings, closed periods, products, balance upsert + lock, ids, rows, balances."""


def _rows(world: World, product: int, warehouse: int) -> list[tuple[datetime, int, int, int, int]]:
    return [(m.posted_at, m.qty_m, m.value_kop, m.qty_after_m, m.value_after_kop)
            for m in world.moves(product, warehouse=warehouse)]


@pytest.mark.parametrize("valuation", ["average", "fifo"])
def test_rows_at_their_own_moments_equal_posting_them_one_by_one(world: World, valuation: str) -> None:
    world.configure(valuation)
    batched, single = world.product("P"), world.product("Q")
    for p in (batched, single):
        world.receipt(p, "10", "1000.00", at(0))
        world.receipt(p, "10", "2000.00", at(3))
    pair = ledger.Pair(world.tenant_id, world.store, batched, world.wh)

    def post(sales: list[tuple[datetime, int]]) -> list[int]:
        with world.s() as s:
            ids = ledger.post_moves(s, ledger.settings_of(s, world.tenant_id), DocType.SALE.value, None, at(99),
                                    [ledger.NewMove(pair, -q, posted_at=when) for when, q in sales])
            s.commit()
        for when, q in sales:
            world.sale(single, str(D(q) / 1000), when)
        assert _rows(world, batched, world.wh) == _rows(world, single, world.wh)
        by_id = {m.id: m.posted_at for m in world.moves(batched)}
        assert [by_id[i] for i in ids] == [when for when, _q in sales]  # ids in the order given
        assert sorted(ids, key=lambda i: (by_id[i], i)) == sorted(ids)  # numbered in time order, ties as given
        return ids

    post([(at(4), 3000), (at(1), 2000), (at(2), 4000), (at(5), 1000), (at(2), 500)])  # backdated: a walk
    post([(at(7), 1000), (at(6), 2000), (at(7), 500)])  # all after the last row: appended in time order
    assert world.balance(batched) == world.balance(single)
    assert world.balance(batched)[0] == D("6")


def test_a_page_of_sales_posts_in_the_same_statements_for_2_or_40_sales(world: World) -> None:
    products = _products(world, 5, "B")
    for p in products:
        world.receipt(p, "1000", "1000.00", at(0), warehouse=world.floor)

    def post(n: int, hours: float) -> tuple[int, list[list[int]]]:
        sales = [service.SaleWriteOff(world.store, world.floor, at(hours + i / 100), [(p, 1000) for p in products])
                 for i in range(n)]
        with world.s() as s, counting(world) as seen:
            ids = service.post_sales(s, world.tenant_id, sales)
            s.commit()
        return len(seen), ids

    small, ids2 = post(2, 1)
    big, ids40 = post(40, 2)
    assert small <= MAX_BATCH_STATEMENTS and big == small, (small, big)
    assert [len(x) for x in ids2 + ids40] == [5] * 42
    assert world.balance(products[0], warehouse=world.floor) == (D("958"), D("958.00"))
    moves = {m.id: m for m in world.moves(products[4], warehouse=world.floor)}
    assert moves[ids40[-1][4]].posted_at == at(2 + 39 / 100) and moves[ids40[-1][4]].qty_after_m == 958000


def test_a_refusal_names_every_sale_it_concerns(world: World) -> None:
    milk, bread = world.product("MILK"), world.product("BREAD")
    world.receipt(milk, "3", "30.00", at(0), warehouse=world.floor)
    world.receipt(bread, "10", "100.00", at(0), warehouse=world.floor)

    def sale(hours: float, *items: tuple[int, int]) -> Any:
        return service.SaleWriteOff(world.store, world.floor, at(hours), list(items))

    page = [sale(1, (milk, 2000)), sale(2, (bread, 1000)), sale(3, (milk, 2000), (bread, 1000)), sale(4, (milk, 1000))]
    with world.s() as s:
        with pytest.raises(service.SalesRefused) as refused:
            service.post_sales(s, world.tenant_id, page)
        assert refused.value.code == "negative_stock" and refused.value.sales == [0, 2, 3]  # every sale of milk
    with world.s() as s:
        service.close_period(s, world.tenant_id, ClosePeriodIn(store_id=world.store, closed_through=at(1.5)))
    with world.s() as s:
        with pytest.raises(service.SalesRefused) as refused:
            service.post_sales(s, world.tenant_id, page)
        assert refused.value.code == "period_closed" and refused.value.sales == [0]
        with pytest.raises(service.SalesRefused) as refused:
            service.post_sales(s, world.tenant_id, [page[1], sale(2, (999_999_999, 1000))])
        assert refused.value.code == "product_not_found" and refused.value.sales == [1]
        assert service.post_sales(s, world.tenant_id, [page[1], page[3]])[1] != []
        s.commit()
    assert world.balance(milk, warehouse=world.floor) == (D("2"), D("20.00"))
