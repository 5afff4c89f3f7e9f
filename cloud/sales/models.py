"""Sales tables: checkout receipts ingested from lane events, their lines and payments, returns,
shifts (with the Z report and what disagreed), cash movements, and the ingestion cursor/problems.

Money in kopecks (``*_kop``), quantities in thousandths of the product's base unit (``qty_m``),
timestamps UTC; ``business_date`` is the day in the store's time zone. Every row carries the
key the gateway deduplicates on (``sale_id``, ``return_id``, ``shift_id``, ``move_id``), unique per
tenant: a replayed event or the same sale in two events is stored once.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from cloud.base import UtcDateTime, utcnow


class SaleStatus(StrEnum):
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    RETURNED_PARTIALLY = "returned_partially"
    RETURNED = "returned"


class LineStatus(StrEnum):
    POSTED = "posted"  # written off the sales floor at cost
    UNKNOWN_PRODUCT = "unknown_product"  # not in the catalog: stored, not posted, reported
    NOT_POSTED = "not_posted"  # the ledger refused (negative stock, closed period, no sales floor)
    NONE = "none"  # a cancelled sale's line: nothing to post


class Sale(SQLModel, table=True):
    __tablename__ = "sales"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sale_id"),
        Index("ix_sales_tenant_id_business_date", "tenant_id", "business_date"),
        Index("ix_sales_store_id_completed_at", "store_id", "completed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    store_id: int = Field(foreign_key="stores.id")
    device_id: int = Field(foreign_key="devices.id")
    lane: str = Field(max_length=64)
    sale_id: str = Field(max_length=64)
    event_id: int = Field(sa_type=BigInteger)
    """``events.id`` the sale was taken from (the first one)."""
    shift_id: str | None = Field(default=None, max_length=64)
    cashier: str = Field(default="", max_length=128)
    cashier_inn: str | None = Field(default=None, max_length=12)
    status: str = Field(default=SaleStatus.COMPLETED.value, max_length=20)
    origin: str = Field(default="checkout", max_length=16)
    order_id: str | None = Field(default=None, max_length=64)
    total_kop: int = Field(default=0, sa_type=BigInteger)
    change_kop: int = Field(default=0, sa_type=BigInteger)
    returned_kop: int = Field(default=0, sa_type=BigInteger)
    fd_number: int | None = Field(default=None, sa_type=BigInteger)
    fiscal_sign: int | None = Field(default=None, sa_type=BigInteger)
    fn_number: str | None = Field(default=None, max_length=32)
    shift_number: int | None = None
    receipt_number: int | None = None
    fiscal_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    opened_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    completed_at: datetime = Field(sa_type=UtcDateTime)
    """When the receipt was completed (or the sale cancelled)."""
    business_date: date
    cancel_reason: str = Field(default="", max_length=300)
    flagged: bool = False
    """A line is not posted (unknown product, ledger refusal, marking code): see the problems."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class SaleLine(SQLModel, table=True):
    __tablename__ = "sale_lines"
    __table_args__ = (UniqueConstraint("sale_pk", "line_no"),)

    id: int | None = Field(default=None, primary_key=True)
    sale_pk: int = Field(foreign_key="sales.id")
    line_no: int
    product_id: int | None = Field(default=None, foreign_key="products.id", index=True)
    product_ref: str = Field(max_length=64)
    """``product_id`` as sent by the lane (``str(products.id)``; anything else is unknown)."""
    name: str = Field(default="", max_length=300)
    qty_m: int = Field(sa_type=BigInteger)
    measure: str = Field(default="piece", max_length=8)
    price_kop: int = Field(sa_type=BigInteger)
    amount_kop: int = Field(sa_type=BigInteger)
    vat: str = Field(default="none", max_length=20)
    vat_rate: str = Field(default="", max_length=32)
    marking_codes: list[str] = Field(default_factory=list, sa_type=JSON)
    source: str = Field(default="scan", max_length=16)
    move_id: int | None = Field(default=None, sa_type=BigInteger)
    """The ledger row of this line (its value is the cost)."""
    returned_m: int = Field(default=0, sa_type=BigInteger)
    status: str = Field(default=LineStatus.POSTED.value, max_length=20)
    detail: str = Field(default="", max_length=500)


class SalePayment(SQLModel, table=True):
    """A payment of a sale, or a refund of a return (``return_pk`` set), or a voided charge (``voided``)."""

    __tablename__ = "sale_payments"

    id: int | None = Field(default=None, primary_key=True)
    sale_pk: int | None = Field(default=None, foreign_key="sales.id", index=True)
    return_pk: int | None = Field(default=None, foreign_key="sale_returns.id", index=True)
    type: str = Field(max_length=16)
    amount_kop: int = Field(sa_type=BigInteger)
    operation_id: str | None = Field(default=None, max_length=64)
    rrn: str | None = Field(default=None, max_length=32)
    auth_code: str | None = Field(default=None, max_length=32)
    card_mask: str | None = Field(default=None, max_length=32)
    voided: bool = False


class SaleReturn(SQLModel, table=True):
    __tablename__ = "sale_returns"
    __table_args__ = (
        UniqueConstraint("tenant_id", "return_id"),
        Index("ix_sale_returns_tenant_id_business_date", "tenant_id", "business_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    store_id: int = Field(foreign_key="stores.id")
    device_id: int = Field(foreign_key="devices.id")
    lane: str = Field(max_length=64)
    return_id: str = Field(max_length=64)
    sale_ref: str = Field(max_length=64)
    sale_pk: int | None = Field(default=None, foreign_key="sales.id", index=True)
    """The original sale (``None`` when it is unknown to the cloud: flagged, nothing posted)."""
    event_id: int = Field(sa_type=BigInteger)
    shift_id: str | None = Field(default=None, max_length=64)
    cashier: str = Field(default="", max_length=128)
    total_kop: int = Field(default=0, sa_type=BigInteger)
    fd_number: int | None = Field(default=None, sa_type=BigInteger)
    fiscal_sign: int | None = Field(default=None, sa_type=BigInteger)
    fn_number: str | None = Field(default=None, max_length=32)
    shift_number: int | None = None
    receipt_number: int | None = None
    fiscal_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    completed_at: datetime = Field(sa_type=UtcDateTime)
    business_date: date
    flagged: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class SaleReturnLine(SQLModel, table=True):
    __tablename__ = "sale_return_lines"
    __table_args__ = (UniqueConstraint("return_pk", "line_no"),)

    id: int | None = Field(default=None, primary_key=True)
    return_pk: int = Field(foreign_key="sale_returns.id")
    line_no: int
    sale_line_pk: int | None = Field(default=None, foreign_key="sale_lines.id")
    product_id: int | None = Field(default=None, foreign_key="products.id")
    product_ref: str = Field(max_length=64)
    name: str = Field(default="", max_length=300)
    qty_m: int = Field(sa_type=BigInteger)
    price_kop: int = Field(sa_type=BigInteger)
    amount_kop: int = Field(sa_type=BigInteger)
    vat: str = Field(default="none", max_length=20)
    marking_codes: list[str] = Field(default_factory=list, sa_type=JSON)
    move_id: int | None = Field(default=None, sa_type=BigInteger)
    """The ledger row putting the goods back (linked to the sale line's row: its original cost)."""
    status: str = Field(default=LineStatus.POSTED.value, max_length=20)
    detail: str = Field(default="", max_length=500)


class Shift(SQLModel, table=True):
    __tablename__ = "sales_shifts"
    __table_args__ = (UniqueConstraint("tenant_id", "shift_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    store_id: int = Field(foreign_key="stores.id", index=True)
    device_id: int = Field(foreign_key="devices.id")
    lane: str = Field(max_length=64)
    shift_id: str = Field(max_length=64)
    shift_number: int | None = None
    cashier: str = Field(default="", max_length=128)
    opened_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    open_report: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    closed_by: str = Field(default="", max_length=128)
    z_report: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    totals: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    fiscal_receipts: int | None = None
    fn_receipts: int | None = None
    reconciliation: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    differences: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)


class CashMovement(SQLModel, table=True):
    __tablename__ = "cash_movements"
    __table_args__ = (UniqueConstraint("tenant_id", "move_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    store_id: int = Field(foreign_key="stores.id", index=True)
    device_id: int = Field(foreign_key="devices.id")
    lane: str = Field(max_length=64)
    move_id: str = Field(max_length=64)
    shift_id: str | None = Field(default=None, max_length=64)
    cashier: str = Field(default="", max_length=128)
    direction: str = Field(max_length=8)
    amount_kop: int = Field(sa_type=BigInteger)
    reason: str = Field(default="", max_length=300)
    moved_at: datetime = Field(sa_type=UtcDateTime)


class SalesProblem(SQLModel, table=True):
    """Something an event could not do (unknown product, ledger refusal, bad payload…), reported once.

    A *rejection* (``bad_payload``, ``error``: the event was rolled back whole, nothing of it is
    stored) keeps the event's id so the event can be applied again after a fix (``POST
    /sales/problems/{id}/retry``): the cursor has moved past it so that it never blocks its store.
    """

    __tablename__ = "sales_problems"
    __table_args__ = (UniqueConstraint("event_id", "code", "ref"), Index("ix_sales_problems_tenant_id", "tenant_id"))

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    store_id: int = Field(foreign_key="stores.id")
    event_id: int = Field(sa_type=BigInteger)
    event_type: str = Field(max_length=32)
    ref: str = Field(default="", max_length=64)
    """The sale/return/shift id, and ``#line_no`` for a line."""
    code: str = Field(max_length=32)
    detail: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """A rejected event applied since (by a retry, or read again by the poll before the cursor passed it)."""
    resolution: str = Field(default="", max_length=16)
    """What applying it again gave: ``stored`` or ``duplicate`` (its sale had come in another event)."""
    retries: int = 0
    """Retries of a rejected event that were rejected again."""


class SalesCursor(SQLModel, table=True):
    """How far the events table has been read: every lane event with ``events.id`` up to ``event_cursor``."""

    __tablename__ = "sales_cursor"

    name: str = Field(primary_key=True, max_length=32)
    event_cursor: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
