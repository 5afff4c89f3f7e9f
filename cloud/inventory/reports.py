"""Reports over the ledger: stock on a moment, movement history, valuation totals; CSV and XLSX export."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlmodel import Session

from cloud.catalog.models import Product, Warehouse
from cloud.catalog.service import get_product
from cloud.catalog.units import from_kop, from_milli
from cloud.inventory import ledger
from cloud.inventory.models import MovementPublic, StockMove, StockRow

T = StockMove.__table__  # type: ignore[attr-defined]
P = Product.__table__  # type: ignore[attr-defined]
CENT = Decimal("0.01")
MILLI = Decimal("0.001")


def stock_on(session: Session, tenant_id: int, at: datetime, *, store_id: int | None = None,
             warehouse_id: int | None = None, product_id: int | None = None, nonzero: bool = True) -> list[StockRow]:
    """The stock screen: :func:`ledger.balances_at` with each product's SKU and name, quantities and money.

    A whole store is 4,000 rows, so the Python side is kept to one light object per row: a
    dataclass; ``MILLI * n``, which is ``from_milli(n)`` exactly (the same digits, exponent -3)
    without a division and a quantize (``CENT * n`` likewise for ``from_kop``).
    """
    rows = ledger.balances_at(session, tenant_id, at, store_id=store_id, warehouse_id=warehouse_id,
                              product_id=product_id)
    if not rows:
        return []
    products = _names(session, tenant_id, store_id, rows)
    out: list[StockRow] = []
    append = out.append
    for store, pid, wid, qty_m, value_kop in rows:
        if nonzero and qty_m == 0 and value_kop == 0:
            continue
        sku, name = products[pid]
        quantity, value = MILLI * qty_m, CENT * value_kop
        append(StockRow(pid, sku, name, wid, store, quantity, value,
                        (value / quantity).quantize(CENT) if qty_m > 0 else None))
    return out


_PG_NAMES = (  # the products of the tenant's (or one store's) balance rows, however fresh the statistics
    "SELECT p.id, p.sku, p.name FROM (SELECT DISTINCT b.product_id FROM stock_balances b "
    "WHERE b.tenant_id = %(tenant_id)s{store}) b JOIN products p ON p.id = b.product_id WHERE p.tenant_id = %(tenant_id)s"
)


def _names(session: Session, tenant_id: int, store_id: int | None,
           rows: list[tuple[int, int, int, int, int]]) -> dict[int, tuple[str, str]]:
    """(sku, name) of the products in ``rows``: (id, sku, name) only, no ORM objects.

    A few rows: by their ids. A whole store's or tenant's: by their balance rows (one parameter,
    not thousands), and on PostgreSQL on the driver's cursor like the balances themselves.
    """
    if len(rows) <= 100:
        ids = {r[1] for r in rows}
        return {p[0]: (p[1], p[2]) for p in session.execute(
            select(P.c.id, P.c.sku, P.c.name).where(P.c.tenant_id == tenant_id, P.c.id.in_(ids))).all()}
    if ledger.is_postgres(session):
        sql = _PG_NAMES.format(store="" if store_id is None else " AND b.store_id = %(store_id)s")
        with ledger.pg_cursor(session) as cursor:
            cursor.execute(sql, {"tenant_id": tenant_id, "store_id": store_id}, prepare=True)
            return {p[0]: (p[1], p[2]) for p in cursor.fetchall()}
    B = ledger.B
    ids_query = select(B.c.product_id).where(B.c.tenant_id == tenant_id,
                                             *([B.c.store_id == store_id] if store_id is not None else []))
    return {p[0]: (p[1], p[2]) for p in session.execute(
        select(P.c.id, P.c.sku, P.c.name).where(P.c.tenant_id == tenant_id, P.c.id.in_(ids_query))).all()}


def valuation(session: Session, tenant_id: int, at: datetime, store_id: int | None = None) -> dict[str, object]:
    rows = stock_on(session, tenant_id, at, store_id=store_id)
    by_wh: dict[int, Decimal] = {}
    for r in rows:
        by_wh[r.warehouse_id] = by_wh.get(r.warehouse_id, Decimal("0.00")) + r.value
    return {"at": at, "store_id": store_id, "total": sum(by_wh.values(), Decimal("0.00")),
            "warehouses": [{"warehouse_id": k, "value": v} for k, v in sorted(by_wh.items())], "lines": len(rows)}


def movements(session: Session, tenant_id: int, product_id: int, *, warehouse_id: int | None = None,
              since: datetime | None = None, until: datetime | None = None, limit: int = 200,
              offset: int = 0) -> list[MovementPublic]:
    get_product(session, tenant_id, product_id)
    query = select(T).where(T.c.tenant_id == tenant_id, T.c.product_id == product_id)
    if warehouse_id is not None:
        query = query.where(T.c.warehouse_id == warehouse_id)
    if since is not None:
        query = query.where(T.c.posted_at >= since)
    if until is not None:
        query = query.where(T.c.posted_at <= until)
    rows = session.execute(query.order_by(T.c.posted_at, T.c.id).offset(offset).limit(limit)).all()
    return [
        MovementPublic(id=r.id, posted_at=r.posted_at, warehouse_id=r.warehouse_id, doc_type=r.doc_type,
                       document_id=r.document_id, quantity=from_milli(r.qty_m), value=from_kop(r.value_kop),
                       correction=from_kop(r.correction_kop), quantity_after=from_milli(r.qty_after_m),
                       value_after=from_kop(r.value_after_kop), cancelled=r.cancelled)
        for r in rows
    ]


HEADER = ["Артикул", "Товар", "Склад", "Количество", "Сумма, руб.", "Себестоимость ед., руб."]


def _table(session: Session, rows: list[StockRow]) -> list[list[object]]:
    codes = {w.id: w.code for w in session.execute(
        select(Warehouse).where(Warehouse.id.in_({r.warehouse_id for r in rows}))  # type: ignore[union-attr]
    ).scalars()}
    return [[r.sku, r.name, codes.get(r.warehouse_id, r.warehouse_id), r.quantity, r.value, r.unit_cost]
            for r in rows]


def stock_csv(session: Session, rows: list[StockRow]) -> str:
    """Semicolon-separated with a decimal comma: what Excel opens directly in a Russian locale."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    for row in _table(session, rows):
        writer.writerow(["" if v is None else str(v).replace(".", ",") if isinstance(v, Decimal) else v
                         for v in row])
    return "\ufeff" + buf.getvalue()


def stock_xlsx(session: Session, rows: list[StockRow], at: datetime) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Остатки"
    ws.append([f"Остатки на {at.isoformat()}"])
    ws.append(HEADER)
    for row in _table(session, rows):
        ws.append(row)
    for r in range(3, ws.max_row + 1):
        ws.cell(r, 4).number_format = "0.000"
        ws.cell(r, 5).number_format = "#,##0.00"
        ws.cell(r, 6).number_format = "#,##0.00"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
