"""Handheld count tasks on a real database: the task built from the count's snapshot, and the
``task_line``/``task_completed`` events (stored as the bus consumer stores them) turned into
counted lines — once per ``line_id``, weights in kg, one unit per marking code."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from cloud.base import utcnow
from cloud.catalog import service as catalog
from cloud.catalog.models import BarcodeCreate, UnitIn
from cloud.errors import Conflict
from cloud.inventory import handheld_counts as hc
from cloud.inventory import service
from cloud.inventory.models import DocType, DocumentIn
from cloud.registry.models import Device, Event, Gateway
from tests.cloud.inventory.helpers import World, at

MILK = "4601234567893"
BOX = "14601234567890"  # ITF-14 of a box of 12 milk
WATER_GTIN = "04600000000008"


@pytest.fixture
def shop(world: World) -> dict[str, Any]:
    """A count of the main warehouse with milk (pcs), cheese (kg, PLU) and marked water in stock."""
    milk = world.product("MILK", name="Молоко", barcode=MILK, units=[UnitIn(unit="box", factor=Decimal(12))])
    with world.s() as s:
        catalog.add_barcode(s, world.tenant_id, milk, BarcodeCreate(code=BOX, unit="box"))
    cheese = world.product("CHEESE", name="Сыр", base_unit="kg", weighed=True, plu=123)
    water = world.product("WATER", name="Вода", marking="water", barcode="4600000000008")
    bare = world.product("BARE", name="Без штрихкода")
    for product, qty in ((milk, "10"), (cheese, "2.5"), (bare, "1")):
        world.receipt(product, qty, "100.00", at(0))
    world.receipt(water, "3", "100.00", at(0), line={"codes": [f"01{WATER_GTIN}21{s}\x1d93AbCd" for s in "XYZ"]})
    with world.s() as s:
        gw = Gateway(tenant_id=world.tenant_id, store_id=world.store, code="gw1", online=True, status="online")
        s.add(gw)
        s.flush()
        pool = Device(tenant_id=world.tenant_id, gateway_id=gw.id or 0, code="handhelds", kind="handheld",
                      driver="pool", present=True)
        tsd = Device(tenant_id=world.tenant_id, gateway_id=gw.id or 0, code="tsd1", kind="handheld", driver="web",
                     present=True)
        s.add(pool)
        s.add(tsd)
        s.commit()
        count = service.start_count(s, world.tenant_id, None, DocumentIn(store_id=world.store, warehouse_id=world.wh,
                                                                         posted_at=at(1)))
    return {"milk": milk, "cheese": cheese, "water": water, "bare": bare, "count": count.id, "gateway": gw.id,
            "tsd": tsd.id}


class Events:
    """Stores task events the way the bus consumer does (one row per gateway and event id)."""

    def __init__(self, world: World, shop: dict[str, Any], task_id: str) -> None:
        self.world, self.shop, self.task_id, self.seq = world, shop, task_id, 0

    def add(self, event_type: str, received_ago_s: float = 120, **data: Any) -> None:
        self.seq += 1
        now = utcnow()
        with self.world.s() as s:
            s.add(Event(tenant_id=self.world.tenant_id, gateway_id=self.shop["gateway"], device_id=self.shop["tsd"],
                        event_id=str(uuid.uuid4()), type=event_type, seq=self.seq, session=1, ts=now,
                        received_at=now - timedelta(seconds=received_ago_s),
                        data={"task_id": self.task_id, "kind": "count", **data}))
            s.commit()

    def line(self, line_id: str, qty: str, unit: str = "pcs", product: int | None = None, barcode: str = "",
             marking: str | None = None, **kw: Any) -> None:
        self.add("task_line", line_id=line_id, product_id=None if product is None else str(product), qty=qty,
                 unit=unit, barcode=barcode, marking=marking, user="Орлова", scanned_at=at(0.5).isoformat(), **kw)


def counted(world: World, count_id: int) -> dict[int, Decimal]:
    with world.s() as s:
        doc = service.get_document(s, world.tenant_id, count_id)
    return {ln.product_id: ln.quantity for ln in doc.lines if ln.counted_at is not None}


def test_task_spec_from_the_snapshot(world: World, shop: dict[str, Any]) -> None:
    with world.s() as s:
        prepared = hc.prepare_task(s, world.tenant_id, shop["count"], hc.HandheldCountIn())
        again = hc.prepare_task(s, world.tenant_id, shop["count"], hc.HandheldCountIn())
    assert prepared.task_id == f"count-{shop['count']}" and again.args == prepared.args
    args = prepared.args
    assert args["kind"] == "count" and args["allow_unexpected"] is True
    lines = {ln["product_id"]: ln for ln in args["lines"]}
    assert set(lines) == {str(shop["milk"]), str(shop["cheese"]), str(shop["water"])}
    assert lines[str(shop["milk"])]["barcodes"] == [MILK]  # the box barcode would count a box as one
    assert lines[str(shop["cheese"])]["plu"] == 123 and lines[str(shop["cheese"])]["unit"] == "kg"
    assert lines[str(shop["water"])]["gtin"] == WATER_GTIN and lines[str(shop["water"])]["marked"] is True
    assert all("expected_qty" not in ln for ln in args["lines"])  # a blind count by default
    assert prepared.skipped == [{"product_id": shop["bare"], "line_no": 4,
                                 "reason": "нет штрихкода, ПЛУ или GTIN — ТСД не узнает товар"}]
    with world.s() as s:
        shown = hc.prepare_task(s, world.tenant_id, shop["count"], hc.HandheldCountIn(part="b", show_expected=True))
    assert shown.task_id == f"count-{shop['count']}-b"
    assert {ln["product_id"]: ln["expected_qty"] for ln in shown.args["lines"]}[str(shop["cheese"])] == "2.500"


def test_lines_become_counted_quantities_once_each(world: World, shop: dict[str, Any]) -> None:
    with world.s() as s:
        prepared = hc.prepare_task(s, world.tenant_id, shop["count"], hc.HandheldCountIn())
    ev = Events(world, shop, prepared.task_id)
    milk, cheese, water = shop["milk"], shop["cheese"], shop["water"]
    ev.line("l-0001", "1.000", product=milk, barcode=MILK)
    ev.line("l-0001", "1.000", product=milk, barcode=MILK)  # the same line redelivered as another event
    ev.line("l-0002", "2.000", product=milk, barcode=MILK)
    ev.line("l-0003", "1.234", unit="kg", product=cheese, barcode="2200123012343")
    ev.line("l-0004", "0.500", unit="kg", product=cheese, barcode="2200123005000")
    ev.line("l-0005", "1.000", product=water, marking=f"01{WATER_GTIN}21AAA", code_type="marking")
    ev.line("l-0006", "1.000", product=water, marking=f"01{WATER_GTIN}21BBB", code_type="marking")
    ev.line("l-0007", "1.000", barcode=BOX)  # unexpected: a box of 12 milk
    ev.line("l-0008", "1.000", barcode="4600000000022")  # unexpected and unknown
    assert hc.sync_open_tasks(world.sessions) == 8
    assert counted(world, shop["count"]) == {milk: Decimal("15.000"), cheese: Decimal("1.734"),
                                             water: Decimal("2.000")}
    assert hc.sync_open_tasks(world.sessions) == 0  # re-running changes nothing

    # a second task of the same count scans a water code already counted: one unit per code
    with world.s() as s:
        second = hc.prepare_task(s, world.tenant_id, shop["count"], hc.HandheldCountIn(part="2"))
    ev2 = Events(world, shop, second.task_id)
    ev2.line("m-0001", "1.000", product=water, marking=f"01{WATER_GTIN}21AAA", code_type="marking")
    ev2.line("m-0002", "1.000", product=water, marking=f"01{WATER_GTIN}21CCC", code_type="marking")
    ev.add("task_completed", user="Орлова", completed_at=at(0.9).isoformat(), lines=8)
    assert hc.sync_open_tasks(world.sessions) == 2
    assert counted(world, shop["count"])[water] == Decimal("3.000")
    with world.s() as s:
        tasks = hc.tasks_of(s, world.tenant_id, shop["count"])
    first, other = tasks.tasks
    assert (first.lines_received, first.lines_applied, first.lines_rejected) == (8, 7, {"unknown_product": 1})
    assert first.completed_at == at(0.9) and first.completed_by == "Орлова"
    assert other.lines_rejected == {"duplicate_marking": 1} and other.completed_at is None
    assert not tasks.counting_finished
    ev2.add("task_completed", user="Орлова", completed_at=at(0.95).isoformat(), lines=2)
    hc.sync_open_tasks(world.sessions)
    with world.s() as s:
        assert hc.tasks_of(s, world.tenant_id, shop["count"]).counting_finished

    # recent events are re-read until they settle (another consumer may commit a lower id late)
    ev.line("l-0009", "1.000", product=milk, barcode=MILK, received_ago_s=0)
    assert hc.sync_open_tasks(world.sessions) == 1
    assert hc.sync_open_tasks(world.sessions) == 0
    assert counted(world, shop["count"])[milk] == Decimal("16.000")

    with world.s() as s:  # posting closes the tasks: a late line is kept, not applied
        posted = service.post_document(s, world.tenant_id, shop["count"])
    assert posted.status == "posted"
    ev.line("l-0010", "1.000", product=milk, barcode=MILK)
    assert hc.sync_open_tasks(world.sessions) == 1
    with world.s() as s:
        assert hc.tasks_of(s, world.tenant_id, shop["count"]).tasks[0].lines_rejected == {"unknown_product": 1,
                                                                                          "late": 1}
        with pytest.raises(Conflict):
            hc.prepare_task(s, world.tenant_id, shop["count"], hc.HandheldCountIn(part="3"))
    # milk: surplus 6; cheese: shortage 0.766 kg; water as counted; the line nobody counted is left as it was
    assert world.balance(milk)[0] == Decimal("16") and world.balance(cheese)[0] == Decimal("1.734")
    assert world.balance(water)[0] == Decimal("3") and world.balance(shop["bare"])[0] == Decimal("1")


def test_not_a_count(world: World, shop: dict[str, Any]) -> None:
    doc = world.doc(DocType.WRITE_OFF, [{"product_id": shop["milk"], "quantity": Decimal(1), "reason": "spoilage"}],
                    at(2), post=False)
    with world.s() as s, pytest.raises(Exception) as err:
        hc.prepare_task(s, world.tenant_id, doc.id, hc.HandheldCountIn())
    assert getattr(err.value, "code", None) == "count_not_found"
