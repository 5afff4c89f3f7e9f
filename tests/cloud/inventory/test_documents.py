"""Transfers with discrepancies, stock counts, background recompute, and the ledger property."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.errors import Conflict
from cloud.inventory import ledger, service
from cloud.inventory.models import CountLineIn, DocType, DocumentIn, ReceiveIn, ReceiveLineIn
from cloud.inventory.tasks import run_recompute
from tests.cloud.inventory.helpers import World, at


def test_transfer_ships_to_transit_and_receives_with_short_and_over(world: World) -> None:
    a = world.product("a")
    b = world.product("b")
    world.receipt(a, "10", "1000.00", at(0))
    world.receipt(b, "10", "500.00", at(0))
    doc = world.doc(DocType.TRANSFER, [{"product_id": a, "quantity": D("4")}, {"product_id": b, "quantity": D("2")}],
                    at(1), dest_warehouse_id=world.wh2)
    assert doc.status == "posted"
    assert world.balance(a) == (D("6"), D("600.00"))
    assert world.balance(a, warehouse=world.wh2, store=world.store2) == (D("0"), D("0.00"))
    with world.s() as s:
        got = service.receive_transfer(s, world.tenant_id, doc.id, ReceiveIn(
            received_at=at(2), lines=[ReceiveLineIn(line_no=1, quantity=D("3")), ReceiveLineIn(line_no=2, quantity=D("3"))]))
    assert got.status == "received"
    assert world.balance(a, warehouse=world.wh2, store=world.store2) == (D("3"), D("300.00"))
    assert world.balance(b, warehouse=world.wh2, store=world.store2) == (D("3"), D("150.00"))  # 1 over, at 50
    transit = got.lines[0]  # the transit warehouse ends empty for both products
    with world.s() as s:
        totals = ledger.balances_at(s, world.tenant_id, at(3), store_id=world.store2)
    transit_rows = [r for r in totals if r[2] != world.wh2]
    assert transit_rows and all(r[3] == 0 and r[4] == 0 for r in transit_rows), transit
    shortage = [m for m in world.moves(a, transit_rows[0][2]) if m.reason == "transfer_shortage"]
    assert len(shortage) == 1 and shortage[0].qty_m == -1000 and shortage[0].value_kop == -10000
    # a backdated receipt at the source revalues the shipment, and the value follows to the destination
    world.receipt(a, "10", "3000.00", at(0.5))  # average at the source becomes 200
    assert world.balance(a, warehouse=world.wh2, store=world.store2) == (D("3"), D("600.00"))
    # cancelling the whole transfer puts everything back
    world.cancel(doc.id)
    assert world.balance(a) == (D("20"), D("4000.00"))
    assert world.balance(b, warehouse=world.wh2, store=world.store2) == (D("0"), D("0.00"))


def test_stock_count_snapshot_outdated_flag_and_differences(world: World) -> None:
    a = world.product("a")
    b = world.product("b")
    world.receipt(a, "10", "1000.00", at(0))
    world.receipt(b, "5", "50.00", at(0))
    with world.s() as s:
        count = service.start_count(s, world.tenant_id, None, DocumentIn(store_id=world.store, warehouse_id=world.wh,
                                                                         posted_at=at(5)))
    assert {(ln.product_id, ln.expected_quantity) for ln in count.lines} == {(a, D("10.000")), (b, D("5.000"))}
    with world.s() as s:
        service.add_counted(s, world.tenant_id, count.id, [CountLineIn(product_id=a, quantity=D("8"), counted_at=at(4)),
                                                           CountLineIn(product_id=b, quantity=D("6"), counted_at=at(5))])
    world.sale(a, "1", at(4.5))  # a moved after it was counted
    with world.s() as s:
        posted = service.post_document(s, world.tenant_id, count.id)
    flags = {ln.product_id: ln.outdated for ln in posted.lines}
    assert flags == {a: True, b: False}
    assert world.balance(a) == (D("8"), D("800.00"))  # book 9 at the count's moment → shortage of 1 at cost
    assert world.balance(b) == (D("6"), D("60.00"))  # surplus of 1 at the current cost 10
    reasons = {m.reason for m in world.moves(a) + world.moves(b)}
    assert {"count_shortage", "count_surplus"} <= reasons


def test_write_off_reasons_are_data_with_pnl_articles(world: World) -> None:
    with world.s() as s:
        found = {r.code: r.pnl_article for r in service.reasons(s, world.tenant_id)}
    assert {"spoilage", "expiry", "damage", "tasting", "own_needs"} <= set(found)
    assert found["tasting"] == "marketing.tasting"


def test_big_backdated_posting_recomputes_in_resumable_chunks(world: World) -> None:
    world.configure("fifo", inline=10)
    p = world.product("p")
    world.receipt(p, "100", "1000.00", at(0))
    for i in range(40):
        world.sale(p, "1", at(1 + i))
    world.receipt(p, "10", "500.00", at(0.5))  # 40 later rows > inline limit 10
    with world.s() as s:
        dirty = service.pending_recomputes(s, world.tenant_id)
    assert [(d["product_id"], d["warehouse_id"]) for d in dirty] == [(p, world.wh)]
    # one chunk, then a "crash": the cursor is committed and the next run resumes from it
    assert run_recompute(world.sessions, p, world.wh, chunk=7, max_chunks=1) == 1
    with world.s() as s:
        cursor = service.pending_recomputes(s, world.tenant_id)[0]["from_move_id"]
    assert cursor != dirty[0]["from_move_id"]
    run_recompute(world.sessions, p, world.wh, chunk=7)
    with world.s() as s:
        assert service.pending_recomputes(s, world.tenant_id) == []
    assert world.balance(p) == (D("70"), D("1100.00"))  # FIFO: 40 sales at 10 from the first layer, 60@10 + 10@50 left
    assert world.balance(p, at(0.7)) == (D("110"), D("1500.00"))
    # a forbidden backdated write-off that would make a later row negative is refused up front
    with pytest.raises(Conflict):
        world.write_off(p, "75", at(0.6))


def test_posting_into_a_dirty_pair_finishes_its_recompute_first(world: World) -> None:
    world.configure("average", inline=3)
    p = world.product("p")
    world.receipt(p, "10", "100.00", at(0))
    for i in range(6):
        world.sale(p, "1", at(1 + i))
    world.receipt(p, "10", "300.00", at(0.5))
    world.sale(p, "1", at(20))  # must see exact totals
    assert world.balance(p) == (D("13"), D("260.00"))
    with world.s() as s:
        assert service.pending_recomputes(s, world.tenant_id) == []


OPS = st.lists(
    st.tuples(st.sampled_from(["in", "out", "cancel"]), st.integers(1, 20), st.integers(0, 5000), st.integers(0, 30)),
    min_size=1, max_size=14,
)


@pytest.mark.parametrize("method", ["fifo", "average"])
def test_property_balance_is_the_sum_of_movements_and_value_never_negative(world: World, method: str) -> None:
    world.configure(method)

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(OPS)
    def run(ops: list[tuple[str, int, int, int]]) -> None:
        p = world.product(f"p{world.counter}")
        world.counter += 1
        posted: list[int] = []
        for op, qty, amount, hour in ops:
            try:
                if op == "in":
                    posted.append(world.receipt(p, str(qty), f"{amount}.00", at(hour)).id)
                elif op == "out":
                    posted.append(world.write_off(p, str(qty), at(hour)).id)
                elif posted:
                    world.cancel(posted.pop(amount % len(posted)))
            except Conflict as exc:
                assert exc.code == "negative_stock"
        rows = world.moves(p)
        live = [m for m in rows if not m.cancelled]
        assert sum(m.qty_m for m in rows) == sum(m.qty_m for m in live)
        running_q = running_v = 0
        for m in rows:
            if not m.cancelled:
                running_q += m.qty_m
                running_v += m.value_kop + m.correction_kop
            assert (m.qty_after_m, m.value_after_kop) == (running_q, running_v)
            assert m.qty_after_m >= 0 and m.value_after_kop >= 0
            assert m.qty_after_m > 0 or m.value_after_kop == 0
        assert world.balance(p) == (D(running_q) / 1000, D(running_v) / 100)

    world.counter = 0
    run()
