"""Inventory tables (ledger, balances, recompute jobs, documents) and their API shapes.

Storage units as in :mod:`cloud.catalog.models`: ``*_m`` = thousandths of the base unit,
``*_kop`` = kopecks, timestamps UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import field_validator
from sqlalchemy import JSON, BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from cloud.base import UtcDateTime, utcnow


class NegativePolicy(StrEnum):
    FORBID = "forbid"
    ALLOW = "allow"


class DocType(StrEnum):
    RECEIPT = "receipt"
    WRITE_OFF = "write_off"
    TRANSFER = "transfer"
    SUPPLIER_RETURN = "supplier_return"
    STOCK_COUNT = "stock_count"
    SALE = "sale"  # posted by the sales module through cloud.inventory.ledger


class DocStatus(StrEnum):
    DRAFT = "draft"
    POSTED = "posted"  # a transfer: shipped (goods in transit)
    RECEIVED = "received"  # a transfer received at its destination
    CANCELLED = "cancelled"


class CostMode(StrEnum):
    FIXED = "fixed"  # the value is an input (receipt cost, return at receipt cost)
    AT_COST = "at_cost"  # valuation decides (sale, write-off, shipment, count difference)
    LINKED = "linked"  # copied pro rata from ``source_move_id`` (transfer-in ← transfer-out)


# ---------------------------------------------------------------- settings


class InventorySettings(SQLModel, table=True):
    __tablename__ = "inventory_settings"

    tenant_id: int = Field(foreign_key="tenants.id", primary_key=True)
    valuation: str = Field(default="average", max_length=16)
    negative_stock: str = Field(default=NegativePolicy.FORBID.value, max_length=16)
    inline_recompute_limit: int = 2000


class ClosedPeriod(SQLModel, table=True):
    """Nothing may be posted at or before ``closed_through`` (in a store, or tenant-wide when ``store_id`` is null)."""

    __tablename__ = "closed_periods"
    __table_args__ = (UniqueConstraint("tenant_id", "store_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    store_id: int | None = Field(default=None, foreign_key="stores.id")
    closed_through: datetime = Field(sa_type=UtcDateTime)


class WriteOffReason(SQLModel, table=True):
    """A write-off reason and the P&L article it is charged to; ``tenant_id`` null = the default set."""

    __tablename__ = "write_off_reasons"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int | None = Field(default=None, foreign_key="tenants.id")
    code: str = Field(max_length=32)
    name: str = Field(max_length=200)
    pnl_article: str = Field(max_length=64)


# ---------------------------------------------------------------- ledger


class StockMove(SQLModel, table=True):
    """One ledger row. Ordered per (product, warehouse) by ``(posted_at, id)``; ``id`` is the tiebreak.

    ``qty_after_m``/``value_after_kop``/``state`` are the running totals after this row, kept
    exact by :mod:`cloud.inventory.ledger`. Cancelled rows (and their reversals) stay, carry the
    running totals of their position and move nothing.
    """

    __tablename__ = "stock_moves"
    __table_args__ = (
        Index("ix_stock_moves_product_id_warehouse_id_posted_at_id", "product_id", "warehouse_id", "posted_at", "id"),
        Index("ix_stock_moves_document_id", "document_id"),
        Index("ix_stock_moves_source_move_id", "source_move_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    store_id: int = Field(foreign_key="stores.id")
    product_id: int = Field(foreign_key="products.id")
    warehouse_id: int = Field(foreign_key="warehouses.id")
    posted_at: datetime = Field(sa_type=UtcDateTime)
    doc_type: str = Field(max_length=16)
    document_id: int | None = Field(default=None, foreign_key="stock_documents.id")
    line_id: int | None = None
    qty_m: int = Field(sa_type=BigInteger)
    value_kop: int = Field(default=0, sa_type=BigInteger)
    correction_kop: int = Field(default=0, sa_type=BigInteger)
    cost_mode: str = Field(default=CostMode.AT_COST.value, max_length=8)
    fixed_value_kop: int | None = Field(default=None, sa_type=BigInteger)
    source_move_id: int | None = None
    qty_after_m: int = Field(default=0, sa_type=BigInteger)
    value_after_kop: int = Field(default=0, sa_type=BigInteger)
    state: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    cancelled: bool = False
    reversal_of_id: int | None = None
    reason: str = Field(default="", max_length=32)  # write-off reason, count/transfer shortage or surplus
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class StockBalance(SQLModel, table=True):
    """Current totals of a (product, warehouse): the lock taken while posting, and the pair registry."""

    __tablename__ = "stock_balances"
    __table_args__ = (
        UniqueConstraint("product_id", "warehouse_id"),
        Index("ix_stock_balances_store_id", "store_id"),
        Index("ix_stock_balances_tenant_id_store_id_pair", "tenant_id", "store_id", "product_id", "warehouse_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    store_id: int = Field(foreign_key="stores.id")
    product_id: int = Field(foreign_key="products.id")
    warehouse_id: int = Field(foreign_key="warehouses.id")
    qty_m: int = Field(default=0, sa_type=BigInteger)
    value_kop: int = Field(default=0, sa_type=BigInteger)
    dirty_from: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """Rows from ``(dirty_from, dirty_from_id)`` on await a background recompute (None = exact)."""
    dirty_from_id: int | None = None
    recomputed_rows: int = 0
    last_posted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """Key of the pair's last row: a posting at or after it appends (no walk, no read of the ledger)."""
    last_move_id: int | None = None
    state: dict[str, Any] | None = Field(default=None, sa_type=JSON)


# ---------------------------------------------------------------- documents


class DocCounter(SQLModel, table=True):
    __tablename__ = "doc_counters"
    __table_args__ = (UniqueConstraint("store_id", "doc_type"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    store_id: int = Field(foreign_key="stores.id")
    doc_type: str = Field(max_length=16)
    last_number: int = 0


class StockDocument(SQLModel, table=True):
    __tablename__ = "stock_documents"
    __table_args__ = (
        UniqueConstraint("store_id", "doc_type", "number"),
        Index("ix_stock_documents_tenant_id_doc_type", "tenant_id", "doc_type"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    store_id: int = Field(foreign_key="stores.id")
    doc_type: str = Field(max_length=16)
    number: int
    status: str = Field(default=DocStatus.DRAFT.value, max_length=16)
    posted_at: datetime = Field(sa_type=UtcDateTime)
    warehouse_id: int = Field(foreign_key="warehouses.id")
    author_id: int | None = Field(default=None, foreign_key="users.id")
    comment: str = Field(default="", max_length=1000)
    supplier: str = Field(default="", max_length=200)
    invoice_number: str = Field(default="", max_length=64)
    invoice_date: date | None = None
    extra_cost_kop: int = Field(default=0, sa_type=BigInteger)
    extra_cost_split: str = Field(default="sum", max_length=8)
    reason: str = Field(default="", max_length=32)
    return_of_id: int | None = Field(default=None, foreign_key="stock_documents.id")
    dest_warehouse_id: int | None = Field(default=None, foreign_key="warehouses.id")
    transit_warehouse_id: int | None = Field(default=None, foreign_key="warehouses.id")
    received_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    status_changed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class StockDocumentLine(SQLModel, table=True):
    __tablename__ = "stock_document_lines"
    __table_args__ = (UniqueConstraint("document_id", "line_no"),)

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="stock_documents.id")
    line_no: int
    product_id: int = Field(foreign_key="products.id")
    unit: str = Field(max_length=16)
    qty_m: int = Field(sa_type=BigInteger)  # in the base unit
    amount_kop: int | None = Field(default=None, sa_type=BigInteger)  # receipt: invoice amount of the line
    cost_kop: int | None = Field(default=None, sa_type=BigInteger)  # receipt: amount + its share of extra costs
    reason: str = Field(default="", max_length=32)
    receipt_line_id: int | None = None  # supplier return: the receipt line returned
    expected_qty_m: int | None = Field(default=None, sa_type=BigInteger)  # count: book quantity at start
    counted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    received_qty_m: int | None = Field(default=None, sa_type=BigInteger)  # transfer: quantity that arrived
    codes: list[Any] = Field(default_factory=list, sa_type=JSON)
    """Marking codes as scanned: a string per unit, ``{"box": raw, "children": [raw, …]}`` per box."""


# ---------------------------------------------------------------- API shapes


class SettingsPublic(SQLModel):
    valuation: str
    negative_stock: str
    inline_recompute_limit: int


class SettingsUpdate(SQLModel):
    valuation: str | None = Field(default=None, regex="^(fifo|average)$")
    negative_stock: NegativePolicy | None = None
    inline_recompute_limit: int | None = Field(default=None, ge=0, le=1_000_000)


class ClosePeriodIn(SQLModel):
    store_id: int | None = None
    closed_through: datetime

    @field_validator("closed_through")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("укажите часовой пояс, например 2026-01-31T21:00:00Z")
        return value


class BoxIn(SQLModel):
    code: str = Field(min_length=1, max_length=300)
    children: list[str] = Field(default_factory=list)


class LineIn(SQLModel):
    product_id: int
    quantity: Decimal = Field(max_digits=15, decimal_places=3)
    unit: str | None = Field(default=None, max_length=16)
    amount: Decimal | None = Field(default=None, max_digits=15, decimal_places=2)
    reason: str | None = Field(default=None, max_length=32)
    receipt_line_id: int | None = None
    codes: list[str] = Field(default_factory=list)
    boxes: list[BoxIn] = Field(default_factory=list)


class DocumentIn(SQLModel):
    store_id: int
    warehouse_id: int
    posted_at: datetime | None = None
    comment: str = Field(default="", max_length=1000)
    supplier: str = Field(default="", max_length=200)
    invoice_number: str = Field(default="", max_length=64)
    invoice_date: date | None = None
    extra_cost: Decimal = Field(default=Decimal(0), ge=0, max_digits=15, decimal_places=2)
    extra_cost_split: str = Field(default="sum", regex="^(sum|weight)$")
    reason: str | None = Field(default=None, max_length=32)
    return_of_id: int | None = None
    dest_warehouse_id: int | None = None
    lines: list[LineIn] = Field(default_factory=list, max_length=5000)

    @field_validator("posted_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("укажите часовой пояс, например 2026-01-01T09:00:00+03:00")
        return value


class CountLineIn(SQLModel):
    product_id: int
    quantity: Decimal = Field(ge=0, max_digits=15, decimal_places=3)
    unit: str | None = Field(default=None, max_length=16)
    counted_at: datetime | None = None


class ReceiveLineIn(SQLModel):
    line_no: int
    quantity: Decimal = Field(ge=0, max_digits=15, decimal_places=3)


class ReceiveIn(SQLModel):
    received_at: datetime | None = None
    lines: list[ReceiveLineIn] = Field(default_factory=list)


class LinePublic(SQLModel):
    id: int
    line_no: int
    product_id: int
    unit: str
    quantity: Decimal
    amount: Decimal | None = None
    cost: Decimal | None = None
    reason: str = ""
    receipt_line_id: int | None = None
    expected_quantity: Decimal | None = None
    counted_at: datetime | None = None
    received_quantity: Decimal | None = None
    outdated: bool = False
    codes: list[Any] = []


class DocumentPublic(SQLModel):
    id: int
    doc_type: str
    store_id: int
    number: int
    status: str
    posted_at: datetime
    warehouse_id: int
    author_id: int | None
    comment: str
    supplier: str
    invoice_number: str
    invoice_date: date | None
    extra_cost: Decimal
    extra_cost_split: str
    reason: str
    return_of_id: int | None
    dest_warehouse_id: int | None
    received_at: datetime | None
    lines: list[LinePublic]


@dataclass(slots=True)
class StockRow:
    """One line of the stock screen: a plain dataclass, not a pydantic model.

    A whole store is 4,000 of them: pydantic's ``model_construct`` cost ~9 µs a row (35 ms a
    store), a dataclass ~0.3 µs. FastAPI serializes it as the same JSON object.
    """

    product_id: int
    sku: str
    name: str
    warehouse_id: int
    store_id: int
    quantity: Decimal
    value: Decimal
    unit_cost: Decimal | None


class MovementPublic(SQLModel):
    id: int
    posted_at: datetime
    warehouse_id: int
    doc_type: str
    document_id: int | None
    quantity: Decimal
    value: Decimal
    correction: Decimal
    quantity_after: Decimal
    value_after: Decimal
    cancelled: bool


class ReasonPublic(SQLModel):
    code: str
    name: str
    pnl_article: str
