"""A small world for inventory tests: a tenant with two stores, warehouses and products, on a real database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from cloud.catalog import service as catalog
from cloud.catalog.models import BarcodeCreate, ProductCreate, UnitIn, WarehouseCreate
from cloud.db import unit_of_work
from cloud.inventory import ledger, service
from cloud.inventory.models import DocType, DocumentIn, LineIn, SettingsUpdate
from cloud.registry.models import Store

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@dataclass
class World:
    sessions: sessionmaker[Session]
    tenant_id: int
    store: int
    store2: int
    wh: int
    floor: int
    wh2: int

    def s(self) -> Any:
        return unit_of_work(self.sessions)

    def configure(self, valuation: str = "average", negative: str = "forbid", inline: int | None = None) -> None:
        with self.s() as s:
            data: dict[str, Any] = {"valuation": valuation, "negative_stock": negative}
            if inline is not None:
                data["inline_recompute_limit"] = inline
            service.update_settings(s, self.tenant_id, SettingsUpdate(**data))

    def product(self, sku: str, **kw: Any) -> int:
        barcode = kw.pop("barcode", None)
        with self.s() as s:
            p = catalog.create_product(s, self.tenant_id, ProductCreate(sku=sku, name=kw.pop("name", f"Товар {sku}"),
                                                                        **kw))
            if barcode:
                catalog.add_barcode(s, self.tenant_id, p.id, BarcodeCreate(code=barcode))
            return p.id

    def doc(self, kind: DocType, lines: list[dict[str, Any]], when: datetime, post: bool = True,
            warehouse: int | None = None, store: int | None = None, **header: Any) -> Any:
        if kind is DocType.RECEIPT:
            header.setdefault("supplier", "ООО Поставщик")
        data = DocumentIn(store_id=store or self.store, warehouse_id=warehouse or self.wh, posted_at=when,
                          lines=[LineIn(**ln) for ln in lines], **header)
        with self.s() as s:
            doc = service.create_document(s, self.tenant_id, None, kind, data)
            if post:
                doc = service.post_document(s, self.tenant_id, doc.id)
            return doc

    def receipt(self, product: int, qty: str, amount: str, when: datetime, **kw: Any) -> Any:
        return self.doc(DocType.RECEIPT, [{"product_id": product, "quantity": Decimal(qty), "amount": Decimal(amount),
                                           **kw.pop("line", {})}], when, **kw)

    def write_off(self, product: int, qty: str, when: datetime, reason: str = "spoilage", **kw: Any) -> Any:
        return self.doc(DocType.WRITE_OFF, [{"product_id": product, "quantity": Decimal(qty), "reason": reason}],
                        when, **kw)

    def sale(self, product: int, qty: str, when: datetime, warehouse: int | None = None) -> list[int]:
        with self.s() as s:
            ids = service.post_sale(s, self.tenant_id, self.store, warehouse or self.wh, when,
                                    [(product, Decimal(qty))])
            s.commit()
            return ids

    def cancel(self, doc_id: int) -> Any:
        with self.s() as s:
            return service.cancel_document(s, self.tenant_id, doc_id)

    def balance(self, product: int, when: datetime | None = None, warehouse: int | None = None,
                store: int | None = None) -> tuple[Decimal, Decimal]:
        with self.s() as s:
            pair = ledger.Pair(self.tenant_id, store or self.store, product, warehouse or self.wh)
            q, v = ledger.balance_at(s, pair, when or at(10_000))
            return Decimal(q) / 1000, Decimal(v) / 100

    def moves(self, product: int, warehouse: int | None = None) -> list[Any]:
        with self.s() as s:
            T = ledger.T
            return list(s.execute(T.select().where(T.c.product_id == product,
                                                   T.c.warehouse_id == (warehouse or self.wh))
                                  .order_by(T.c.posted_at, T.c.id)).all())


def make_world(sessions: sessionmaker[Session], tenant_id: int) -> World:
    with unit_of_work(sessions) as s:
        st1 = Store(tenant_id=tenant_id, code="s1", name="Магазин 1")
        st2 = Store(tenant_id=tenant_id, code="s2", name="Магазин 2")
        s.add(st1)
        s.add(st2)
        s.commit()
        assert st1.id and st2.id
        wh = catalog.create_warehouse(s, tenant_id, WarehouseCreate(store_id=st1.id, code="main", kind="storage"))
        fl = catalog.create_warehouse(s, tenant_id, WarehouseCreate(store_id=st1.id, code="floor",
                                                                    kind="sales_floor"))
        wh2 = catalog.create_warehouse(s, tenant_id, WarehouseCreate(store_id=st2.id, code="main", kind="storage"))
        return World(sessions, tenant_id, st1.id, st2.id, wh.id, fl.id, wh2.id)


__all__ = ["T0", "UnitIn", "World", "at", "make_world"]
