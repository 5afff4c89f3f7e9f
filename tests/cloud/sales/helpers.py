"""A store with stock on its sales floor and a checkout lane that "sends" events the way the bus
consumer stores them (rows of the events table, one per gateway and event id)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select

from cloud.base import utcnow
from cloud.marking.models import MarkingCodeRow
from cloud.registry.models import Device, Event, Gateway
from cloud.sales import ingest as ingestion
from tests.cloud.inventory.helpers import World, at

WATER_GTIN = "04600000000008"


def code(serial: str) -> str:
    return f"01{WATER_GTIN}21{serial}\x1d93AbCd"


@dataclass
class Lane:
    world: World
    gateway: int
    device: int
    milk: int
    cheese: int
    water: int
    seq: int = 0
    event_ids: list[str] = field(default_factory=list)

    def send(self, event_type: str, data: dict[str, Any], received_ago_s: float = 120,
             event_id: str | None = None) -> str:
        """Store one event row; the same ``event_id`` twice is what the consumer would refuse, so a
        replay here uses a new event id (the same payload sent twice by the gateway)."""
        self.seq += 1
        now = utcnow()
        eid = event_id or str(uuid.uuid4())
        with self.world.s() as s:
            s.add(Event(tenant_id=self.world.tenant_id, gateway_id=self.gateway, device_id=self.device,
                        event_id=eid, type=event_type, seq=self.seq, session=1, ts=now,
                        received_at=now - timedelta(seconds=received_ago_s), data=data))
            s.commit()
        self.event_ids.append(eid)
        return eid

    def ingest(self, settle_s: float = 30.0) -> dict[str, int]:
        return dict(ingestion.ingest(self.world.sessions, settle_s=settle_s))

    def code_state(self, raw: str) -> str:
        identity = raw.split("\x1d")[0]
        with self.world.s() as s:
            return s.exec(select(MarkingCodeRow.state).where(MarkingCodeRow.tenant_id == self.world.tenant_id,
                                                             MarkingCodeRow.identity == identity)).one()


def make_lane(world: World) -> Lane:
    """Floor stock: milk 10 pcs for 500.00 (50.00 each), cheese 2 kg for 1000.00 (500.00/kg),
    marked water 3 pcs (codes A, B, C) for 300.00."""
    milk = world.product("MILK", name="Молоко", barcode="4600000000015")
    cheese = world.product("CHEESE", name="Сыр", base_unit="kg", weighed=True, plu=12)
    water = world.product("WATER", name="Вода", marking="water", barcode="4600000000008")
    world.receipt(milk, "10", "500.00", at(0), warehouse=world.floor)
    world.receipt(cheese, "2", "1000.00", at(0), warehouse=world.floor)
    world.receipt(water, "3", "300.00", at(0), warehouse=world.floor, line={"codes": [code(x) for x in "ABC"]})
    with world.s() as s:
        gw = Gateway(tenant_id=world.tenant_id, store_id=world.store, code="gw1", online=True, status="online")
        s.add(gw)
        s.flush()
        dev = Device(tenant_id=world.tenant_id, gateway_id=gw.id or 0, code="lane1", kind="lane", driver="checkout",
                     present=True)
        s.add(dev)
        s.commit()
        return Lane(world, gw.id or 0, dev.id or 0, milk, cheese, water)


def fiscal(fd: int, when: datetime) -> dict[str, Any]:
    return {"fd_number": fd, "fiscal_sign": 3000000000 + fd, "fn_number": "7281440500000001", "shift_number": 7,
            "receipt_number": fd, "issued_at": when.isoformat()}


def line(n: int, product: int | str, qty: str, price: int, amount: int, codes: tuple[str, ...] = (),
         measure: str = "piece") -> dict[str, Any]:
    return {"line_no": n, "product_id": str(product), "name": f"Товар {product}", "quantity": qty, "measure": measure,
            "price": price, "amount": amount, "vat": "vat10", "vat_rate": "НДС 10%", "marking_codes": list(codes)}


def sale(sale_id: str, lines: list[dict[str, Any]], when: datetime, fd: int = 1, cashier: str = "Иванова",
         card: bool = False) -> dict[str, Any]:
    total = sum(ln["amount"] for ln in lines)
    payment = ({"type": "card", "amount": total, "rrn": "123456789012", "auth_code": "A1B2C3",
                "card_mask": "2200********1234"} if card else {"type": "cash", "amount": total})
    return {"sale_id": sale_id, "lane": "lane1", "shift_id": "sh-1", "cashier": {"name": cashier},
            "lines": lines, "payments": [payment], "total": total, "fiscal": fiscal(fd, when),
            "opened_at": (when - timedelta(minutes=1)).isoformat(), "completed_at": when.isoformat()}


def refund(return_id: str, sale_id: str, lines: list[dict[str, Any]], when: datetime, fd: int = 50) -> dict[str, Any]:
    total = sum(ln["amount"] for ln in lines)
    return {"return_id": return_id, "sale_id": sale_id, "lane": "lane1", "shift_id": "sh-1",
            "cashier": {"name": "Петрова"}, "lines": lines, "refunds": [{"type": "cash", "amount": total}],
            "total": total, "fiscal": fiscal(fd, when), "completed_at": when.isoformat()}
