"""Marking-code tables. ``identity`` (``01<GTIN>21<serial>``, or the SSCC of a box) is unique per tenant."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from cloud.base import UtcDateTime, utcnow


class CodeState(StrEnum):
    RECEIVED = "received"  # on a receipt not yet posted
    IN_STOCK = "in_stock"
    SOLD = "sold"
    WRITTEN_OFF = "written_off"
    RETURNED = "returned"  # to the supplier
    TRANSFERRED = "transferred"  # shipped to another store, in transit
    VOID = "void"  # its receipt was cancelled: the code may be received again


class CodeEvent(StrEnum):
    RECEIVE = "receive"
    POST_RECEIPT = "post_receipt"
    CANCEL_RECEIPT = "cancel_receipt"
    SELL = "sell"
    REFUND = "refund"
    WRITE_OFF = "write_off"
    RETURN = "return"
    SHIP = "ship"
    ARRIVE = "arrive"
    UNDO = "undo"  # the write-off / return / shipment was cancelled


TRANSITIONS: dict[tuple[CodeState, CodeEvent], CodeState] = {
    (CodeState.VOID, CodeEvent.RECEIVE): CodeState.RECEIVED,
    (CodeState.RECEIVED, CodeEvent.POST_RECEIPT): CodeState.IN_STOCK,
    (CodeState.RECEIVED, CodeEvent.CANCEL_RECEIPT): CodeState.VOID,
    (CodeState.IN_STOCK, CodeEvent.CANCEL_RECEIPT): CodeState.VOID,
    (CodeState.IN_STOCK, CodeEvent.SELL): CodeState.SOLD,
    (CodeState.SOLD, CodeEvent.REFUND): CodeState.IN_STOCK,
    (CodeState.IN_STOCK, CodeEvent.WRITE_OFF): CodeState.WRITTEN_OFF,
    (CodeState.IN_STOCK, CodeEvent.RETURN): CodeState.RETURNED,
    (CodeState.IN_STOCK, CodeEvent.SHIP): CodeState.TRANSFERRED,
    (CodeState.TRANSFERRED, CodeEvent.ARRIVE): CodeState.IN_STOCK,
    (CodeState.WRITTEN_OFF, CodeEvent.UNDO): CodeState.IN_STOCK,
    (CodeState.RETURNED, CodeEvent.UNDO): CodeState.IN_STOCK,
    (CodeState.TRANSFERRED, CodeEvent.UNDO): CodeState.IN_STOCK,
}
"""The whole lifecycle: anything not listed is refused, naming the code, its state and the event."""

STATE_RU = {
    CodeState.RECEIVED: "принят (документ не проведён)",
    CodeState.IN_STOCK: "на остатке",
    CodeState.SOLD: "продан",
    CodeState.WRITTEN_OFF: "списан",
    CodeState.RETURNED: "возвращён поставщику",
    CodeState.TRANSFERRED: "в пути (перемещение)",
    CodeState.VOID: "аннулирован",
}


class MarkingCodeRow(SQLModel, table=True):
    __tablename__ = "marking_codes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "identity"),
        Index("ix_marking_codes_product_id_state", "product_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    identity: str = Field(max_length=64)
    raw: str = Field(max_length=300)
    gtin: str | None = Field(default=None, max_length=14)
    product_id: int | None = Field(default=None, foreign_key="products.id")
    is_box: bool = False
    parent_id: int | None = Field(default=None, foreign_key="marking_codes.id")
    state: str = Field(default=CodeState.RECEIVED.value, max_length=16)
    warehouse_id: int | None = Field(default=None, foreign_key="warehouses.id")
    document_id: int | None = Field(default=None, foreign_key="stock_documents.id")  # the last document
    receipt_id: int | None = Field(default=None, foreign_key="stock_documents.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class MarkingEvent(SQLModel, table=True):
    """History of a code: every transition with the document that caused it."""

    __tablename__ = "marking_events"

    id: int | None = Field(default=None, primary_key=True)
    code_id: int = Field(foreign_key="marking_codes.id", index=True)
    event: str = Field(max_length=16)
    from_state: str = Field(max_length=16)
    to_state: str = Field(max_length=16)
    document_id: int | None = Field(default=None, foreign_key="stock_documents.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class MarkingCodePublic(SQLModel):
    id: int
    identity: str
    gtin: str | None
    product_id: int | None
    is_box: bool
    parent_id: int | None
    state: str
    warehouse_id: int | None
    document_id: int | None
    receipt_id: int | None
    updated_at: datetime


class MarkingEventPublic(SQLModel):
    event: str
    from_state: str
    to_state: str
    document_id: int | None
    at: datetime
