"""The page fast path: a page of sales in a constant number of statements, with the per-event path's
behaviour kept for what it cannot write (one bad sale among good ones, duplicates within a page,
cancel/complete in one page), and rejected events retried exactly once."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from cloud.db import unit_of_work
from cloud.errors import Conflict, NotFound
from cloud.inventory import service as inventory
from cloud.inventory.models import ClosePeriodIn
from cloud.marking import service as marking
from cloud.sales import bulk
from cloud.sales import ingest as ingestion
from cloud.sales.models import Sale, SaleLine, SaleReturn, SalesCursor, SalesProblem
from cloud.tenancy.service import create_tenant
from tests.cloud.inventory.helpers import World, at, make_world
from tests.cloud.inventory.test_perf import counting
from tests.cloud.sales.helpers import Lane, code, line, make_lane, refund, sale

MAX_PAGE_STATEMENTS = 30
"""Cursor, events, devices, existing sales, products, floors, settings, closed periods, products again,
the ledger posting (5), sale ids, sales, lines, payments, resolved rejections, the cursor's update,
savepoints and commit: whatever the number of sales in the page."""


def _sales(world: World) -> dict[str, Sale]:
    with world.s() as s:
        return {x.sale_id: x for x in s.exec(select(Sale).where(Sale.tenant_id == world.tenant_id))}


def _lines(world: World, sale_pk: int | None) -> list[SaleLine]:
    with world.s() as s:
        return list(s.exec(select(SaleLine).where(SaleLine.sale_pk == sale_pk).order_by(col(SaleLine.line_no))))


def _problems(world: World) -> list[SalesProblem]:
    with world.s() as s:
        return list(s.exec(select(SalesProblem).where(SalesProblem.tenant_id == world.tenant_id)
                           .order_by(col(SalesProblem.id))))


def _five_lines(lane: Lane, products: list[int], sale_id: str, hours: float, fd: int) -> dict[str, Any]:
    return sale(sale_id, [line(k + 1, p, "1", 1000 + k, 1000 + k) for k, p in enumerate(products)], at(hours), fd=fd,
                card=True)


@pytest.fixture
def shelf(world: World, lane: Lane) -> list[int]:
    """Five products with 1,000 pieces each on the sales floor."""
    products = [world.product(f"SHELF{k}", name=f"Полка {k}") for k in range(5)]
    for p in products:
        world.receipt(p, "1000", "10000.00", at(0), warehouse=world.floor)
    lane.ingest(settle_s=0)  # whatever other tests left in the shared database
    return products


def _ingest_counted(world: World, lane: Lane) -> tuple[int, dict[str, int]]:
    with counting(world) as seen:
        counts = lane.ingest(settle_s=0)
    return len(seen), counts


def test_a_page_of_sales_takes_the_same_few_statements_for_5_or_60_sales(world: World, lane: Lane,
                                                                         shelf: list[int]) -> None:
    for i in range(5):
        lane.send("sale_completed", _five_lines(lane, shelf, f"A-{i}", 1 + i / 100, i + 1))
    small, counts = _ingest_counted(world, lane)
    assert counts == {"stored": 5}
    for i in range(60):
        lane.send("sale_completed", _five_lines(lane, shelf, f"B-{i}", 2 + i / 100, 100 + i))
    big, counts = _ingest_counted(world, lane)
    assert counts == {"stored": 60}
    assert small <= MAX_PAGE_STATEMENTS, small
    assert big == small, (small, big)
    sales = _sales(world)
    assert len(sales) == 65 and not any(x.flagged for x in sales.values())
    assert [(ln.status, ln.qty_m, ln.move_id is not None) for ln in _lines(world, sales["B-59"].id)] == [
        ("posted", 1000, True)] * 5
    assert world.balance(shelf[0], warehouse=world.floor) == (Decimal("935"), Decimal("9350.00"))
    assert _problems(world) == []


def test_one_bad_sale_in_a_page_is_rolled_back_alone_and_the_rest_posts(world: World, lane: Lane,
                                                                        shelf: list[int],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    sell = marking.sell

    def buggy(session: Any, tenant_id: int, raw_codes: Any, document_id: int | None = None) -> None:
        if code("C") in raw_codes:
            raise RuntimeError("ошибка в коде")
        sell(session, tenant_id, raw_codes, document_id)

    monkeypatch.setattr(marking, "sell", buggy)
    lane.send("sale_completed", sale("S-1", [line(1, lane.milk, "2", 8000, 16000)], at(1)))
    lane.send("sale_completed", sale("S-2", [line(1, lane.milk, "9", 8000, 72000),  # 8 left: negative stock
                                             line(2, lane.cheese, "0.500", 90000, 45000, measure="kg")], at(1.1), fd=2))
    lane.send("sale_completed", sale("S-3", [line(1, lane.water, "1", 15000, 15000, codes=(code("C"),))], at(1.2), fd=3))
    lane.send("sale_completed", {"sale_id": "S-4", "lane": "lane1", "total": "много"})  # a bad payload
    for i in range(12):
        lane.send("sale_completed", _five_lines(lane, shelf, f"G-{i}", 1.3 + i / 100, 10 + i))
    lane.send("sale_completed", sale("S-5", [line(1, lane.milk, "1", 8000, 8000),
                                             line(2, lane.water, "1", 15000, 15000, codes=(code("A"),))], at(2), fd=5))
    counts = lane.ingest(settle_s=0)

    assert counts == {"stored": 15, "rejected": 2}
    sales = _sales(world)
    assert sorted(sales) == sorted(["S-1", "S-2", "S-5", *(f"G-{i}" for i in range(12))])
    assert [(ln.status, ln.move_id is None) for ln in _lines(world, sales["S-2"].id)] == [
        ("not_posted", True), ("posted", False)]  # the per-event path: the line refused, the rest posted
    assert sales["S-2"].flagged and not sales["S-1"].flagged and not sales["S-5"].flagged
    assert world.balance(lane.milk, warehouse=world.floor) == (Decimal("7"), Decimal("350"))  # S-1 and S-5
    assert world.balance(lane.cheese, warehouse=world.floor) == (Decimal("1.5"), Decimal("750"))
    assert world.balance(lane.water, warehouse=world.floor) == (Decimal("2"), Decimal("200"))  # S-3 rolled back
    assert world.balance(shelf[4], warehouse=world.floor) == (Decimal("988"), Decimal("9880.00"))
    assert lane.code_state(code("A")) == "sold" and lane.code_state(code("C")) == "in_stock"
    problems = [(p.code, p.ref) for p in _problems(world)]
    assert sorted(problems) == sorted([("not_posted", "S-2#1"), ("error", "S-3"), ("bad_payload", "S-4")])


def test_closed_period_and_no_sales_floor_go_the_per_event_way(world: World, lane: Lane) -> None:
    lane.ingest(settle_s=0)
    with world.s() as s:
        inventory.close_period(s, world.tenant_id, ClosePeriodIn(store_id=world.store, closed_through=at(1)))
    lane.send("sale_completed", sale("S-1", [line(1, lane.milk, "1", 8000, 8000)], at(0.5)))  # in the closed period
    lane.send("sale_completed", sale("S-2", [line(1, lane.milk, "1", 8000, 8000)], at(2), fd=2))
    assert lane.ingest(settle_s=0) == {"stored": 2}
    sales = _sales(world)
    [l1], [l2] = _lines(world, sales["S-1"].id), _lines(world, sales["S-2"].id)
    assert (l1.status, l2.status) == ("not_posted", "posted") and "закрыт" in l1.detail
    assert [(p.code, p.ref) for p in _problems(world)] == [("not_posted", "S-1#1")]
    assert world.balance(lane.milk, warehouse=world.floor) == (Decimal("9"), Decimal("450"))


def test_duplicates_within_a_page_and_against_stored_sales(world: World, lane: Lane) -> None:
    lane.ingest(settle_s=0)
    s1 = sale("S-1", [line(1, lane.milk, "1", 8000, 8000)], at(1))
    lane.send("sale_completed", s1)
    assert lane.ingest(settle_s=0) == {"stored": 1}
    cancelled = {"sale_id": "S-3", "lane": "lane1", "shift_id": "sh-1", "cashier": {"name": "Иванова"},
                 "state": "cancelled", "reason": "сбой", "total": 8000, "lines": [line(1, lane.milk, "1", 8000, 8000)],
                 "cancelled_at": at(2).isoformat()}
    s2 = sale("S-2", [line(1, lane.milk, "2", 8000, 16000)], at(2), fd=2)
    s3 = sale("S-3", [line(1, lane.milk, "1", 8000, 8000)], at(2.1), fd=3)
    s4 = sale("S-4", [line(1, lane.cheese, "1", 90000, 90000)], at(2.2), fd=4)
    lane.send("sale_completed", s1)  # stored before: a duplicate
    lane.send("sale_completed", s2)
    lane.send("sale_completed", {**s2, "total": "много"})  # a bad copy: rejected, the good one stands
    lane.send("sale_completed", s2)  # the same sale twice in the page: once
    lane.send("sale_cancelled", cancelled)  # cancelled, then completed in the same page: completed, reported
    lane.send("sale_completed", s3)
    lane.send("sale_completed", s4)
    lane.send("sale_cancelled", {**cancelled, "sale_id": "S-4"})  # completed, then cancelled: stays completed
    lane.send("return_completed", refund("R-1", "S-2", [line(1, lane.milk, "1", 8000, 8000)], at(3)))  # its sale
    lane.send("sale_completed", s2)  # and once more after the return                      # came in this page
    counts = lane.ingest(settle_s=0)

    assert counts == {"stored": 5, "duplicate": 4, "rejected": 1}
    sales = _sales(world)
    assert {k: v.status for k, v in sales.items()} == {"S-1": "completed", "S-2": "returned_partially",
                                                       "S-3": "completed", "S-4": "completed"}
    assert [(ln.status, ln.move_id is not None) for ln in _lines(world, sales["S-3"].id)] == [("posted", True)]
    with world.s() as s:
        ret = s.exec(select(SaleReturn).where(SaleReturn.tenant_id == world.tenant_id)).one()
        assert ret.sale_pk == sales["S-2"].id and not ret.flagged
    assert sorted((p.code, p.ref) for p in _problems(world)) == [("bad_payload", "S-2"),
                                                                 ("completed_after_cancel", "S-3")]
    # S-1, S-2, S-3 (milk 1 + 2 + 1, 1 back); S-4 cheese
    assert world.balance(lane.milk, warehouse=world.floor) == (Decimal("7"), Decimal("350"))
    assert world.balance(lane.cheese, warehouse=world.floor) == (Decimal("1"), Decimal("500"))


def test_a_rejected_event_is_retried_exactly_once_after_a_fix(world: World, lane: Lane,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    lane.ingest(settle_s=0)
    monkeypatch.setattr(bulk, "_day", _broken)  # a bug in the fast path: the page goes per event…
    monkeypatch.setattr(ingestion._Ctx, "day", _broken)  # …where it is a bug too: rejected
    lane.send("sale_completed", sale("S-1", [line(1, lane.milk, "2", 8000, 16000)], at(1)))
    lane.send("sale_completed", sale("S-2", [line(1, lane.milk, "1", 8000, 8000)], at(1.5), fd=2),
              received_ago_s=0)  # not settled yet: read again by the next poll
    assert lane.ingest() == {"rejected": 2}
    [p1, p2] = _problems(world)
    assert (p1.code, p1.ref, p1.resolved_at, p2.ref) == ("error", "S-1", None, "S-2")
    assert _sales(world) == {} and world.balance(lane.milk, warehouse=world.floor) == (Decimal("10"), Decimal("500"))
    with world.s() as s:  # the cursor passed the settled one: the poll will not read it again
        assert s.exec(select(SalesCursor.event_cursor)).one() >= p1.event_id

    again = ingestion.retry(world.sessions, world.tenant_id, p1.id or 0)  # not fixed yet: rejected again
    assert (again.outcome, again.applied, again.problem.retries, again.problem.resolved_at) == ("rejected", True, 1,
                                                                                               None)
    monkeypatch.undo()  # the fix is deployed
    done = ingestion.retry(world.sessions, world.tenant_id, p1.id or 0)
    assert (done.outcome, done.applied, done.problem.resolution) == ("stored", True, "stored")
    twice = ingestion.retry(world.sessions, world.tenant_id, p1.id or 0)
    assert (twice.outcome, twice.applied) == ("stored", False)
    lane.ingest()  # the unsettled one is read again by the poll: applied, and its rejection resolved
    sales = _sales(world)
    assert sorted(sales) == ["S-1", "S-2"] and sales["S-1"].event_id == p1.event_id
    assert world.balance(lane.milk, warehouse=world.floor) == (Decimal("7"), Decimal("350"))
    assert [(p.ref, p.resolution) for p in _problems(world)] == [("S-1", "stored"), ("S-2", "stored")]
    assert ingestion.retry_rejected(world.sessions, world.tenant_id) == {}

    with world.s() as s:  # a problem that is not a rejection, and another tenant's: nothing to retry
        s.add(SalesProblem(tenant_id=world.tenant_id, store_id=world.store, event_id=p1.event_id,
                           event_type="sale_completed", ref="S-1#1", code="not_posted", detail="тест"))
        s.commit()
        other = s.exec(select(SalesProblem.id).where(SalesProblem.code == "not_posted",
                                                     SalesProblem.ref == "S-1#1",
                                                     SalesProblem.tenant_id == world.tenant_id)).one()
    with pytest.raises(Conflict):
        ingestion.retry(world.sessions, world.tenant_id, other or 0)
    with pytest.raises(NotFound):
        ingestion.retry(world.sessions, world.tenant_id + 10_000, p1.id or 0)


def test_a_page_of_two_tenants_with_the_same_sale_ids(world: World, lane: Lane, sessions: Any) -> None:
    with unit_of_work(sessions) as s:
        other, _user, _token = create_tenant(s, f"other{uuid.uuid4().hex[:8]}", "Другая сеть")
    world2 = make_world(sessions, other.id or 0)
    lane2 = make_lane(world2)
    lane.ingest(settle_s=0)
    for i in range(3):
        lane.send("sale_completed", sale(f"S-{i}", [line(1, lane.milk, "1", 8000, 8000)], at(1 + i), fd=i + 1))
        lane2.send("sale_completed", sale(f"S-{i}", [line(1, lane2.milk, "2", 8000, 16000)], at(1 + i), fd=i + 1))
    lane2.send("sale_completed", sale("S-0", [line(1, lane2.milk, "2", 8000, 16000)], at(1)))
    assert lane.ingest(settle_s=0) == {"stored": 6, "duplicate": 1}
    assert sorted(_sales(world)) == sorted(_sales(world2)) == ["S-0", "S-1", "S-2"]
    assert world.balance(lane.milk, warehouse=world.floor) == (Decimal("7"), Decimal("350"))
    assert world2.balance(lane2.milk, warehouse=world2.floor) == (Decimal("4"), Decimal("200"))


def test_a_failure_of_the_fast_path_itself_sends_its_sales_one_by_one(world: World, lane: Lane,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    lane.ingest(settle_s=0)

    def failing_query(session: Any, *_args: Any) -> Any:
        return session.execute(text("SELECT * FROM no_such_table"))  # refused: the transaction needs its savepoint

    monkeypatch.setattr(bulk, "_products", failing_query)
    s1 = sale("S-1", [line(1, lane.milk, "1", 8000, 8000)], at(1))
    lane.send("sale_completed", s1)
    lane.send("sale_completed", s1)
    lane.send("sale_completed", sale("S-2", [line(1, lane.cheese, "0.500", 90000, 45000, measure="kg")], at(2), fd=2))
    assert lane.ingest(settle_s=0) == {"stored": 2, "duplicate": 1}
    assert sorted(_sales(world)) == ["S-1", "S-2"] and _problems(world) == []
    assert world.balance(lane.milk, warehouse=world.floor) == (Decimal("9"), Decimal("450"))
    assert world.balance(lane.cheese, warehouse=world.floor) == (Decimal("1.5"), Decimal("750"))


def _broken(*_args: Any) -> Any:
    raise RuntimeError(f"ошибка {uuid.uuid4().hex[:4]}")
