"""Marking codes through receipts, boxes, write-offs, sales and cancels; each transition once."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cloud.errors import Conflict, Invalid
from cloud.inventory import service
from cloud.inventory.models import DocType
from cloud.marking import service as marking
from cloud.marking.models import TRANSITIONS, CodeEvent, CodeState
from protocols.barcodes import GS, ean13, with_check_digit
from tests.cloud.inventory.helpers import World, at

EAN = ean13("460123456789")
GTIN = "0" + EAN


def km(serial: str, gtin: str = GTIN) -> str:
    return f"01{gtin}21{serial}{GS}93ab{serial[-2:]}"


SSCC = with_check_digit("14601234567890123")


def milk(world: World) -> int:
    return world.product("milk", marking="milk", barcode=EAN)


def test_receipt_of_marked_goods_needs_one_code_per_unit(world: World) -> None:
    p = milk(world)
    with pytest.raises(Invalid, match="кодов маркировки 1, а количество 2") as err:
        world.receipt(p, "2", "100.00", at(0), line={"codes": [km("AAA001")]})
    assert err.value.code == "marking_count_mismatch"
    with pytest.raises(Invalid, match="указан дважды"):
        world.receipt(p, "2", "100.00", at(0), line={"codes": [km("AAA001"), km("AAA001")]})
    with pytest.raises(Invalid, match="не разобран") as err:
        world.receipt(p, "1", "100.00", at(0), line={"codes": ["01" + GTIN[:-1] + "021AAA001"]})
    assert "строка 1, товар milk" in err.value.message
    other = "0" + ean13("460999999999")
    with pytest.raises(Invalid, match="другого товара"):
        world.receipt(p, "1", "50.00", at(0), line={"codes": [km("AAA009", other)]})
    doc = world.receipt(p, "2", "100.00", at(0), line={"codes": [km("AAA001"), km("AAA002")]})
    with world.s() as s:
        code = marking.get_code(s, world.tenant_id, km("AAA001"))
    assert code.state == "in_stock" and code.receipt_id == doc.id and code.product_id == p


def test_a_code_is_never_received_twice_nor_sold_twice(world: World) -> None:
    p = milk(world)
    world.receipt(p, "1", "50.00", at(0), line={"codes": [km("AAA001")]})
    with pytest.raises(Conflict, match="уже принят") as err:
        world.receipt(p, "1", "50.00", at(1), line={"codes": [km("AAA001")]})
    assert err.value.code == "marking_code_received_twice"
    assert world.balance(p) == (D("1"), D("50.00"))  # the second receipt did not post any of it
    with world.s() as s:
        marking.sell(s, world.tenant_id, [km("AAA001")])
        s.commit()
    with world.s() as s, pytest.raises(Conflict, match="продан") as err:
        marking.sell(s, world.tenant_id, [km("AAA001")])
    assert err.value.code == "marking_state_conflict"
    with world.s() as s:
        history = [h.event for h in marking.history(s, world.tenant_id, km("AAA001"))]
    assert history == ["receive", "post_receipt", "sell"]


def test_boxes_are_expanded_into_their_children(world: World) -> None:
    p = milk(world)
    box = {"code": "00" + SSCC, "children": [km("BOX001"), km("BOX002"), km("BOX003")]}
    world.receipt(p, "4", "200.00", at(0), line={"codes": [km("LOOSE1")], "boxes": [box]})
    with world.s() as s:
        codes = marking.list_codes(s, world.tenant_id, product_id=p)
    boxes = [c for c in codes if c.is_box]
    assert len(codes) == 5 and len(boxes) == 1
    assert sorted(c.identity for c in codes if c.parent_id == boxes[0].id) == [
        f"01{GTIN}21BOX00{i}" for i in (1, 2, 3)]
    with pytest.raises(Invalid, match="код единицы товара, а не коробки"):
        world.receipt(p, "1", "1.00", at(1), line={"boxes": [{"code": km("X00001"), "children": [km("X00002")]}]})


def test_write_off_and_cancel_move_codes_and_cancelled_receipt_frees_them(world: World) -> None:
    p = milk(world)
    r = world.receipt(p, "2", "100.00", at(0), line={"codes": [km("AAA001"), km("AAA002")]})
    w = world.doc(DocType.WRITE_OFF, [{"product_id": p, "quantity": D("1"), "reason": "expiry",
                                      "codes": [km("AAA001")]}], at(1))
    with world.s() as s:
        assert marking.get_code(s, world.tenant_id, km("AAA001")).state == "written_off"
    with pytest.raises(Conflict, match="списан"):  # written off: cannot be written off again
        world.doc(DocType.WRITE_OFF, [{"product_id": p, "quantity": D("1"), "reason": "expiry",
                                      "codes": [km("AAA001")]}], at(2))
    world.cancel(w.id)
    with world.s() as s:
        assert marking.get_code(s, world.tenant_id, km("AAA001")).state == "in_stock"
    world.cancel(r.id)
    with world.s() as s:
        assert marking.get_code(s, world.tenant_id, km("AAA002")).state == "void"
    world.receipt(p, "1", "50.00", at(3), line={"codes": [km("AAA002")]})  # a cancelled receipt's code may come again


def test_unmarked_product_refuses_codes_and_every_transition_is_in_the_table(world: World) -> None:
    p = world.product("bread")
    with pytest.raises(Invalid, match="не маркируется"):
        world.receipt(p, "1", "1.00", at(0), line={"codes": [km("AAA001")]})
    reachable = {CodeState.VOID} | set(TRANSITIONS.values())
    assert reachable == set(CodeState)
    assert (CodeState.SOLD, CodeEvent.SELL) not in TRANSITIONS
    with world.s() as s:
        assert service.list_documents(s, world.tenant_id) == []
