"""Posting cost does not grow with the number of lines, and the fast stock read equals the ledger's.

Counts the SQL statements a posting sends (SQLAlchemy ``before_cursor_execute``; an executemany
counts once), so a regression to per-line queries fails here instead of in a benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal as D
from typing import Any

from sqlalchemy import Engine, event, select

from cloud.catalog.models import Product
from cloud.inventory import ledger, service
from cloud.inventory.models import CountLineIn, DocType, DocumentIn, LineIn
from tests.cloud.inventory.helpers import World, at

MAX_POST_STATEMENTS = 11
"""Document, closed period, settings, lines, line costs, balance upsert + lock, ids, rows, balances, status."""


@contextmanager
def counting(world: World) -> Iterator[list[str]]:
    engine: Engine = world.sessions.kw["bind"]
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's explicit BEGIN IMMEDIATE is transaction control
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _products(world: World, n: int, prefix: str) -> list[int]:
    with world.s() as s:
        for i in range(n):
            s.add(Product(tenant_id=world.tenant_id, sku=f"{prefix}{i:04d}", name=f"Товар {prefix}{i}"))
        s.commit()
        rows = s.execute(select(Product.id).where(Product.tenant_id == world.tenant_id,  # type: ignore[call-overload]
                                                  Product.sku.startswith(prefix))).scalars()  # type: ignore[attr-defined]
        return sorted(rows)


def _post_counted(world: World, products: list[int], when: Any, **header: Any) -> tuple[int, Any]:
    data = DocumentIn(store_id=world.store, warehouse_id=world.wh, posted_at=when, supplier="ООО Поставщик",
                      lines=[LineIn(product_id=p, quantity=D("2.5"), amount=D("101.01")) for p in products], **header)
    with world.s() as s:
        doc = service.create_document(s, world.tenant_id, None, DocType.RECEIPT, data)
    with world.s() as s, counting(world) as seen:
        posted = service.post_document(s, world.tenant_id, doc.id)
    return len(seen), posted


def test_posting_a_receipt_sends_the_same_few_statements_for_10_or_100_lines(world: World) -> None:
    products = _products(world, 100, "N")
    n10, _doc = _post_counted(world, products[:10], at(0))  # new pairs: balance rows are created
    n100, doc = _post_counted(world, products, at(1), extra_cost=D("10.00"))  # 10 existing pairs, 90 new
    n100_again, _doc = _post_counted(world, products, at(2))  # all existing: the plain append path
    assert n10 <= MAX_POST_STATEMENTS, n10
    assert n100 == n10 and n100_again == n10, (n10, n100, n100_again)
    # the response is built from what the posting holds, and it is what a re-read returns
    assert doc.status == "posted" and len(doc.lines) == 100
    assert sum((ln.cost for ln in doc.lines), D(0)) == D("10111.00")
    with world.s() as s:
        assert service.get_document(s, world.tenant_id, doc.id) == doc
    assert world.balance(products[0]) == (D("7.5"), D("303.13"))
    assert world.balance(products[99]) == (D("5"), D("202.12"))


def _brute(world: World, when: Any) -> list[tuple[int, int, int, int, int]]:
    """What ``balances_at`` must return: the running totals of each pair's last row at or before ``when``."""
    T = ledger.T
    with world.s() as s:
        rows = s.execute(select(T).where(T.c.tenant_id == world.tenant_id, T.c.posted_at <= when)
                         .order_by(T.c.posted_at, T.c.id)).all()
    last: dict[tuple[int, int], Any] = {}
    for r in rows:
        last[(r.product_id, r.warehouse_id)] = r
    return sorted((r.store_id, r.product_id, r.warehouse_id, r.qty_after_m, r.value_after_kop) for r in last.values())


def test_stock_read_from_balances_equals_the_ledger_at_every_moment(world: World) -> None:
    world.configure("average", inline=2)
    a, b, c = (world.product(x) for x in "abc")
    world.receipt(a, "10", "100.00", at(0))
    world.receipt(b, "5", "70.00", at(1), warehouse=world.floor)
    for i in range(4):
        world.sale(a, "1", at(2 + i))
    world.receipt(c, "3", "30.00", at(100))  # dated in the future of the other pairs
    world.receipt(a, "10", "300.00", at(0.5))  # backdated past the inline limit: a's recompute is pending
    with world.s() as s:
        assert [d["product_id"] for d in service.pending_recomputes(s, world.tenant_id)] == [a]
    world.doc(DocType.WRITE_OFF, [{"product_id": b, "quantity": D(1), "reason": "spoilage"}], at(3),
              warehouse=world.floor)
    cancelled = world.receipt(c, "1", "11.00", at(50))
    world.cancel(cancelled.id)
    moments = [at(-1), at(0), at(0.5), at(1), at(2.5), at(3), at(50), at(60), at(100), at(100) + timedelta(days=1)]
    for when in moments:
        expected = _brute(world, when)
        with world.s() as s:
            assert ledger.balances_at(s, world.tenant_id, when) == expected, when
            assert ledger.balances_at(s, world.tenant_id, when, store_id=world.store,
                                      product_ids=[a, c]) == [r for r in expected if r[1] in (a, c)]
    from cloud.inventory.tasks import run_recompute

    run_recompute(world.sessions, a, world.wh)
    for when in moments:
        expected = _brute(world, when)
        with world.s() as s:
            assert ledger.balances_at(s, world.tenant_id, when) == expected, when
    assert world.balance(a) == (D("16"), D("320.00"))


def test_stock_count_posts_in_statements_that_do_not_grow_with_its_lines(world: World) -> None:
    products = _products(world, 30, "C")
    _post_counted(world, products, at(0))

    def count_post(n: int, hours: float) -> int:
        with world.s() as s:
            doc = service.start_count(s, world.tenant_id, None, DocumentIn(store_id=world.store,
                                                                           warehouse_id=world.wh, posted_at=at(hours)))
            service.add_counted(s, world.tenant_id, doc.id, [
                CountLineIn(product_id=p, quantity=D(i % 4), counted_at=at(hours)) for i, p in
                enumerate(products[:n])])
        with world.s() as s, counting(world) as seen:
            service.post_document(s, world.tenant_id, doc.id)
        return len(seen)

    small, big = count_post(3, 1), count_post(30, 2)
    # counted lines are checked for "moved since counting" one query each; everything else is batched
    assert big - small <= 30 - 3, (small, big)
    assert world.balance(products[1]) == (D("1"), D("40.40"))
