"""Valuation worked examples on a real database, backdating, cancelling, negative stock, periods."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cloud.errors import Conflict, Invalid, NotFound
from cloud.inventory import service
from cloud.inventory.models import ClosePeriodIn, DocType
from tests.cloud.inventory.helpers import World, at


def test_fifo_layers_are_consumed_oldest_first(world: World) -> None:
    world.configure("fifo")
    p = world.product("milk")
    world.receipt(p, "10", "1000.00", at(0))  # 10 @ 100
    world.receipt(p, "10", "1200.00", at(1))  # 10 @ 120
    world.sale(p, "15", at(2))  # 10×100 + 5×120 = 1600
    sale = world.moves(p)[-1]
    assert sale.value_kop == -160000
    assert world.balance(p) == (D("5"), D("600.00"))
    assert sale.state["l"] == [[5000, 60000, world.moves(p)[1].id]]


def test_moving_average_and_rounding_to_kopecks(world: World) -> None:
    p = world.product("bread")
    world.receipt(p, "3", "100.00", at(0))  # 33.333… per unit
    world.sale(p, "1", at(1))
    assert world.moves(p)[-1].value_kop == -3333
    world.receipt(p, "2", "80.00", at(2))  # 2 @ 66.67 + 2 @ 40 → 14667 / 4
    world.sale(p, "3", at(3))
    assert world.moves(p)[-1].value_kop == -11000  # 14667 × 3 / 4 = 11000.25 → 11000
    world.sale(p, "1", at(4))  # the last unit takes exactly what is left: never a stray kopeck
    assert world.balance(p) == (D("0"), D("0.00"))
    assert world.moves(p)[-1].value_kop == -3667


def test_supplier_return_at_original_receipt_cost(world: World) -> None:
    world.configure("fifo")
    p = world.product("oil")
    world.receipt(p, "10", "1000.00", at(0))
    r2 = world.receipt(p, "10", "1500.00", at(1))
    ret = world.doc(DocType.SUPPLIER_RETURN, [{"product_id": p, "quantity": D("4"),
                                              "receipt_line_id": r2.lines[0].id}], at(2), return_of_id=r2.id)
    assert ret.status == "posted"
    move = world.moves(p)[-1]
    assert move.value_kop == -60000 and move.correction_kop == 0  # 4 × 150, taken from r2's own layer
    assert world.balance(p) == (D("16"), D("1900.00"))
    # more than received on that line (6 left) is refused with the numbers
    with pytest.raises(Invalid, match=r"к возврату 7\.000"):
        world.doc(DocType.SUPPLIER_RETURN, [{"product_id": p, "quantity": D("7"),
                                            "receipt_line_id": r2.lines[0].id}], at(3), return_of_id=r2.id)
    # the receipt cannot be cancelled while a posted return depends on it
    with pytest.raises(Conflict, match="возвраты поставщику"):
        world.cancel(r2.id)


def test_supplier_return_under_average_keeps_remaining_cost(world: World) -> None:
    p = world.product("sugar")
    world.receipt(p, "10", "1000.00", at(0))
    r2 = world.receipt(p, "10", "2000.00", at(1))  # average 150
    world.doc(DocType.SUPPLIER_RETURN, [{"product_id": p, "quantity": D("10"), "receipt_line_id": r2.lines[0].id}],
              at(2), return_of_id=r2.id)
    move = world.moves(p)[-1]
    assert move.value_kop == -200000  # returned at the receipt's 200 a unit
    assert move.correction_kop == 50000  # stock left at 150: the 500 difference is a price variance
    assert world.balance(p) == (D("10"), D("1500.00"))


def test_backdated_receipt_changes_cost_of_later_sales(world: World) -> None:
    p = world.product("cheese")
    world.receipt(p, "10", "1000.00", at(0))
    world.sale(p, "5", at(10))
    assert world.moves(p)[-1].value_kop == -50000
    world.receipt(p, "10", "3000.00", at(5))  # backdated before the sale: average becomes 200
    sale = world.moves(p)[-1]
    assert sale.value_kop == -100000
    assert world.balance(p) == (D("15"), D("3000.00"))
    assert world.balance(p, at(7)) == (D("20"), D("4000.00"))
    assert world.balance(p, at(1)) == (D("10"), D("1000.00"))


def test_forbid_negative_names_product_warehouse_and_quantities(world: World) -> None:
    p = world.product("salt", name="Соль")
    world.receipt(p, "2", "20.00", at(0))
    with pytest.raises(Conflict) as err:
        world.write_off(p, "3", at(1))
    assert "Соль" in err.value.message and "main" in err.value.message
    assert err.value.extra["available"] == "2.000" and err.value.extra["requested"] == "3.000"
    assert world.balance(p) == (D("2"), D("20.00"))


def test_cancelling_a_receipt_whose_stock_was_sold_is_refused(world: World) -> None:
    p = world.product("kefir")
    r = world.receipt(p, "5", "50.00", at(0))
    world.sale(p, "4", at(1))
    with pytest.raises(Conflict) as err:
        world.cancel(r.id)
    assert err.value.code == "negative_stock"
    assert world.balance(p) == (D("1"), D("10.00"))
    with world.s() as s:
        assert service.get_document(s, world.tenant_id, r.id).status == "posted"


def test_cancel_writes_reversals_and_never_deletes(world: World) -> None:
    p = world.product("tea")
    world.receipt(p, "5", "50.00", at(0))
    r = world.receipt(p, "5", "100.00", at(1))
    world.sale(p, "2", at(2))
    assert world.moves(p)[-1].value_kop == -3000  # average 15
    world.cancel(r.id)
    rows = world.moves(p)
    assert len(rows) == 4
    reversal = next(m for m in rows if m.reversal_of_id is not None)
    assert reversal.cancelled and reversal.qty_m == -5000 and reversal.value_kop == -10000
    assert rows[-1].value_kop == -2000  # the sale revalued at 10 once the dearer receipt is gone
    assert world.balance(p) == (D("3"), D("30.00"))
    assert sum(m.qty_m for m in rows) == 3000
    with pytest.raises(Conflict, match="нельзя отменить"):
        world.cancel(r.id)


def test_allowed_negative_stock_is_corrected_when_goods_arrive(world: World) -> None:
    world.configure("average", "allow")
    p = world.product("water")
    world.receipt(p, "2", "20.00", at(0))  # 10 a unit
    world.sale(p, "5", at(1))  # 2 at 10, 3 more at the last known 10 → -3 units, -30
    assert world.balance(p) == (D("-3"), D("-30.00"))
    world.receipt(p, "10", "150.00", at(2))  # arrives at 15: the deficit costs 15, not 10
    incoming = world.moves(p)[-1]
    assert incoming.correction_kop == -1500
    assert world.balance(p) == (D("7"), D("105.00"))


def test_closed_period_refuses_posting_and_cancelling(world: World) -> None:
    p = world.product("flour")
    r = world.receipt(p, "5", "50.00", at(0))
    with world.s() as s:
        service.close_period(s, world.tenant_id, ClosePeriodIn(store_id=world.store, closed_through=at(5)))
    with pytest.raises(Conflict, match="закрыт") as err:
        world.receipt(p, "1", "10.00", at(4))
    assert err.value.code == "period_closed"
    with pytest.raises(Conflict, match="закрыт"):
        world.cancel(r.id)
    world.receipt(p, "1", "10.00", at(6))  # after the close date is fine
    with world.s() as s:  # a tenant-wide close covers every store
        service.close_period(s, world.tenant_id, ClosePeriodIn(store_id=None, closed_through=at(8)))
    with pytest.raises(Conflict, match="закрыт"):
        world.receipt(p, "1", "10.00", at(7))


def test_document_posts_whole_or_not_at_all(world: World) -> None:
    a = world.product("a")
    b = world.product("b")
    world.receipt(a, "10", "100.00", at(0))
    world.receipt(b, "1", "10.00", at(0))
    lines = [{"product_id": a, "quantity": D("3"), "reason": "spoilage"},
             {"product_id": b, "quantity": D("5"), "reason": "spoilage"}]  # the last line fails
    draft = world.doc(DocType.WRITE_OFF, lines, at(1), post=False)
    with pytest.raises(Conflict), world.s() as s:
        service.post_document(s, world.tenant_id, draft.id)
    assert world.balance(a) == (D("10"), D("100.00"))
    assert len(world.moves(a)) == 1
    with world.s() as s:
        assert service.get_document(s, world.tenant_id, draft.id).status == "draft"


def test_bad_lines_say_what_and_where(world: World) -> None:
    p = world.product("rice", base_unit="kg", units=[{"unit": "g", "factor": D("0.001")}])
    with pytest.raises(NotFound, match="строка 1: товар 999999"):
        world.receipt(999999, "1", "1.00", at(0))
    with pytest.raises(Invalid, match=r"строка 1, товар rice .*больше нуля"):
        world.receipt(p, "-1", "1.00", at(0))
    with pytest.raises(Invalid, match="единица 'box' не задана") as err:
        world.receipt(p, "1", "1.00", at(0), line={"unit": "box"})
    assert err.value.code == "unknown_unit"
    world.receipt(p, "250", "25.00", at(0), line={"unit": "g"})
    assert world.balance(p) == (D("0.25"), D("25.00"))
    with pytest.raises(Invalid, match="причину списания"):
        world.write_off(p, "0.1", at(1), reason="stolen")


def test_extra_costs_spread_by_sum_and_by_weight(world: World) -> None:
    a = world.product("a", weight_g=1000)
    b = world.product("b", weight_g=3000)
    lines = [{"product_id": a, "quantity": D("1"), "amount": D("100.00")},
             {"product_id": b, "quantity": D("1"), "amount": D("200.00")}]
    doc = world.doc(DocType.RECEIPT, lines, at(0), extra_cost=D("10.00"))
    assert [ln.cost for ln in doc.lines] == [D("103.33"), D("206.67")]
    doc = world.doc(DocType.RECEIPT, lines, at(1), extra_cost=D("10.00"), extra_cost_split="weight")
    assert [ln.cost for ln in doc.lines] == [D("102.50"), D("207.50")]
    assert world.balance(a) == (D("2"), D("205.83"))


def test_numbers_are_per_store_and_type_without_gaps(world: World) -> None:
    p = world.product("x")
    numbers = [world.receipt(p, "1", "1.00", at(i)).number for i in range(3)]
    assert numbers == [1, 2, 3]
    assert world.write_off(p, "1", at(5)).number == 1
    other = world.receipt(p, "1", "1.00", at(0), warehouse=world.wh2, store=world.store2)
    assert other.number == 1
    with pytest.raises(Invalid):  # a failed create consumes no number
        world.receipt(p, "0", "1.00", at(6))
    assert world.receipt(p, "1", "1.00", at(7)).number == 4
