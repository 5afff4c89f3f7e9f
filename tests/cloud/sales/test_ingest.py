"""Lane events → sales exactly once, sold goods off the sales floor at cost, returns at original cost."""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import col, select

from cloud.inventory import ledger
from cloud.registry.models import Event
from cloud.sales.models import (
    CashMovement,
    Sale,
    SaleLine,
    SalePayment,
    SaleReturn,
    SalesCursor,
    SalesProblem,
    Shift,
)
from tests.cloud.inventory.helpers import World, at
from tests.cloud.sales.helpers import Lane, code, fiscal, line, refund, sale


def _sales(world: World) -> list[Sale]:
    with world.s() as s:
        return list(s.exec(select(Sale).where(Sale.tenant_id == world.tenant_id).order_by(col(Sale.id))))


def _lines(world: World, sale_pk: int) -> list[SaleLine]:
    with world.s() as s:
        return list(s.exec(select(SaleLine).where(SaleLine.sale_pk == sale_pk).order_by(col(SaleLine.line_no))))


def _problems(world: World) -> list[tuple[str, str]]:
    with world.s() as s:
        return [(p.code, p.ref) for p in s.exec(select(SalesProblem).where(SalesProblem.tenant_id == world.tenant_id)
                                                 .order_by(col(SalesProblem.id)))]


def test_a_sale_is_stored_once_and_written_off_the_floor_at_cost(world: World, lane: Lane) -> None:
    payload = sale("S-1", [line(1, lane.milk, "2", 8000, 16000), line(2, lane.cheese, "0.500", 90000, 45000,
                                                                          measure="kg"),
                           line(3, lane.water, "1", 15000, 15000, codes=(code("A"),))], at(1), card=True)
    lane.send("sale_completed", payload)
    lane.send("sale_completed", payload)  # the gateway died between sending and recording it: sent again
    lane.ingest(settle_s=0)
    lane.send("sale_completed", payload)  # and once more after it was ingested
    lane.ingest(settle_s=0)
    lane.ingest(settle_s=0)  # and the same events read again

    sales = _sales(world)
    assert len(sales) == 1
    s1 = sales[0]
    assert (s1.sale_id, s1.status, s1.total_kop, s1.cashier, s1.fd_number, s1.fiscal_sign) == (
        "S-1", "completed", 76000, "Иванова", 1, 3000000001)
    assert s1.flagged is False and s1.business_date.isoformat() == "2026-03-01"
    lines = _lines(world, s1.id or 0)
    assert [(ln.line_no, ln.product_id, ln.qty_m, ln.amount_kop, ln.status) for ln in lines] == [
        (1, lane.milk, 2000, 16000, "posted"), (2, lane.cheese, 500, 45000, "posted"),
        (3, lane.water, 1000, 15000, "posted")]
    with world.s() as s:
        payments = s.exec(select(SalePayment).where(SalePayment.sale_pk == s1.id)).all()
        assert [(p.type, p.amount_kop, p.rrn, p.auth_code) for p in payments] == [
            ("card", 76000, "123456789012", "A1B2C3")]
        costs = [s.get_one(ledger.StockMove, ln.move_id).value_kop for ln in lines]  # type: ignore[attr-defined]
    assert costs == [-10000, -25000, -10000]  # 2 × 50.00, 0.5 kg × 500.00, 1 × 100.00
    assert world.balance(lane.milk, warehouse=world.floor) == (Decimal("8"), Decimal("400"))
    assert world.balance(lane.cheese, warehouse=world.floor) == (Decimal("1.5"), Decimal("750"))
    assert world.balance(lane.water, warehouse=world.floor) == (Decimal("2"), Decimal("200"))
    assert world.balance(lane.milk) == (Decimal("0"), Decimal("0"))  # the back room is untouched
    assert lane.code_state(code("A")) == "sold" and lane.code_state(code("B")) == "in_stock"
    assert _problems(world) == []


def test_a_return_puts_goods_back_at_their_original_cost(world: World, lane: Lane) -> None:
    lane.send("sale_completed", sale("S-1", [line(1, lane.milk, "3", 8000, 24000),
                                             line(2, lane.water, "1", 15000, 15000, codes=(code("B"),))], at(1)))
    lane.ingest(settle_s=0)
    world.receipt(lane.milk, "7", "1050.00", at(2), warehouse=world.floor)  # now 14 pcs for 1400.00: 100.00 each
    ret = refund("R-1", "S-1", [line(1, lane.milk, "1", 8000, 8000),
                                line(2, lane.water, "1", 15000, 15000, codes=(code("B"),))], at(3))
    lane.send("return_completed", ret)
    lane.send("return_completed", ret)
    lane.ingest(settle_s=0)
    lane.ingest(settle_s=0)

    moves = world.moves(lane.milk, warehouse=world.floor)
    assert [(m.qty_m, m.value_kop) for m in moves][-2:] == [(7000, 105000), (1000, 5000)]  # back at 50.00, not 100.00
    assert world.balance(lane.milk, warehouse=world.floor) == (Decimal("15"), Decimal("1450"))
    assert lane.code_state(code("B")) == "in_stock"
    with world.s() as s:
        returns = s.exec(select(SaleReturn).where(SaleReturn.tenant_id == world.tenant_id)).all()
        assert [(r.return_id, r.total_kop, r.flagged) for r in returns] == [("R-1", 23000, False)]
    s1 = _sales(world)[0]
    assert (s1.status, s1.returned_kop) == ("returned_partially", 23000)
    assert [ln.returned_m for ln in _lines(world, s1.id or 0)] == [1000, 1000]

    # returning more than is left of the line is stored, flagged, and nothing is posted
    lane.send("return_completed", refund("R-2", "S-1", [line(1, lane.milk, "3", 8000, 24000)], at(4), fd=51))
    lane.ingest(settle_s=0)
    assert world.balance(lane.milk, warehouse=world.floor) == (Decimal("15"), Decimal("1450"))
    assert ("return_exceeds_sale", "R-2#1") in _problems(world)


def test_unknown_product_is_flagged_and_the_rest_posts_cancelled_posts_nothing(world: World, lane: Lane) -> None:
    lane.send("sale_completed", sale("S-1", [line(1, "999999", "1", 5000, 5000),
                                             line(2, lane.milk, "1", 8000, 8000)], at(1)))
    lane.send("sale_cancelled", {"sale_id": "S-2", "lane": "lane1", "shift_id": "sh-1", "cashier": {"name": "Иванова"},
                                 "state": "cancelled_refunded", "reason": "покупатель передумал", "total": 8000,
                                 "voided": [{"type": "card", "amount": 8000, "rrn": "1"}],
                                 "lines": [line(1, lane.milk, "1", 8000, 8000)], "cancelled_at": at(1.5).isoformat()})
    lane.send("sale_completed", {"sale_id": "S-3", "lane": "lane1", "total": "много"})  # a bad payload
    lane.send("shift_closed", {"fd_number": 9})  # the fiscal register's own shift event: not a lane event
    lane.send("sale_completed", sale("S-4", [line(1, lane.milk, "1", 8000, 8000)], at(2), fd=4))
    counts = lane.ingest(settle_s=0)
    assert counts["stored"] >= 3

    s1, s2, s4 = _sales(world)
    assert (s1.sale_id, s1.flagged, s2.sale_id, s2.status, s4.sale_id) == ("S-1", True, "S-2", "cancelled", "S-4")
    assert [(ln.product_id, ln.status) for ln in _lines(world, s1.id or 0)] == [(None, "unknown_product"),
                                                                                 (lane.milk, "posted")]
    assert [ln.move_id for ln in _lines(world, s2.id or 0)] == [None]
    assert world.balance(lane.milk, warehouse=world.floor) == (Decimal("8"), Decimal("400"))  # S-1 and S-4 only
    problems = _problems(world)
    assert ("unknown_product", "S-1#1") in problems and ("bad_payload", "S-3") in problems
    assert len(problems) == 2


def test_out_of_stock_line_is_flagged_not_blocking(world: World, lane: Lane) -> None:
    lane.send("sale_completed", sale("S-1", [line(1, lane.milk, "11", 8000, 88000),
                                             line(2, lane.cheese, "1", 90000, 90000)], at(1)))
    lane.ingest(settle_s=0)
    s1 = _sales(world)[0]
    assert [ln.status for ln in _lines(world, s1.id or 0)] == ["not_posted", "posted"]
    assert world.balance(lane.cheese, warehouse=world.floor) == (Decimal("1"), Decimal("500"))
    assert ("not_posted", "S-1#1") in _problems(world)


def test_cursor_waits_for_settled_events_and_a_return_for_its_sale(world: World, lane: Lane) -> None:
    lane.ingest(settle_s=0)  # whatever other tests left in the shared database
    ret = refund("R-1", "S-1", [line(1, lane.milk, "1", 8000, 8000)], at(3))
    lane.send("return_completed", ret, received_ago_s=0)  # arrived before its sale
    assert lane.ingest()["deferred"] == 1
    with world.s() as s:
        assert s.exec(select(SaleReturn).where(SaleReturn.tenant_id == world.tenant_id)).first() is None
    lane.send("sale_completed", sale("S-1", [line(1, lane.milk, "2", 8000, 16000)], at(1)), received_ago_s=0)
    lane.ingest()  # both read again (not settled): the sale, then its return retried at the end of the page
    with world.s() as s:
        r = s.exec(select(SaleReturn).where(SaleReturn.tenant_id == world.tenant_id)).one()
        assert r.sale_pk is not None and not r.flagged
        assert s.exec(select(SalesCursor.event_cursor)).one() < max(
            s.exec(select(col(Event.id)).where(Event.tenant_id == world.tenant_id)))  # not settled: not passed
    lane.ingest(settle_s=0)  # now settled: read once more (duplicates), and the cursor passes them
    with world.s() as s:
        assert s.exec(select(SalesCursor.event_cursor)).one() >= max(
            s.exec(select(col(Event.id)).where(Event.tenant_id == world.tenant_id)))
    assert world.balance(lane.milk, warehouse=world.floor) == (Decimal("9"), Decimal("450"))
    assert len(_sales(world)) == 1


def test_shifts_and_cash_movements_once(world: World, lane: Lane) -> None:
    opened = {"shift_id": "sh-1", "lane": "lane1", "cashier": {"name": "Иванова"}, "shift_number": 7,
              "fiscal": fiscal(1, at(0.5)), "opened_at": at(0.5).isoformat()}
    closed = {"shift_id": "sh-1", "lane": "lane1", "cashier": {"name": "Иванова"}, "shift_number": 7,
              "z_report": fiscal(9, at(8)), "totals": {"sales_count": 2, "sales_cash": 10000},
              "fiscal_receipts": 2, "fn_receipts": 2, "reconciliation": {"total": 0},
              "differences": [{"what": "sales_card", "lane": 5000, "other": 4000, "source": "terminal",
                               "message": "карта: касса 50.00, терминал 40.00"}],
              "closed_at": at(8).isoformat()}
    cash = {"move_id": "c-1", "lane": "lane1", "shift_id": "sh-1", "cashier": {"name": "Иванова"}, "direction": "in",
            "amount": 500000, "reason": "размен", "moved_at": at(0.6).isoformat()}
    for _ in range(2):
        lane.send("shift_closed", closed)  # out of order: closed before opened
        lane.send("shift_opened", opened)
        lane.send("cash_moved", cash)
    lane.ingest(settle_s=0)
    with world.s() as s:
        shift = s.exec(select(Shift).where(Shift.tenant_id == world.tenant_id)).one()
        assert (shift.opened_at, shift.closed_at, shift.shift_number) == (at(0.5), at(8), 7)
        assert shift.z_report and shift.z_report["fd_number"] == 9
        assert shift.differences[0]["what"] == "sales_card"
        moves = s.exec(select(CashMovement).where(CashMovement.tenant_id == world.tenant_id)).all()
        assert [(m.move_id, m.amount_kop) for m in moves] == [("c-1", 500000)]
    assert _problems(world) == [("shift_differences", "sh-1")]
