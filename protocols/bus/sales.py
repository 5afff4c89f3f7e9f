"""Checkout on the bus: the price list the cloud sends a store, and the sale events the cloud ingests.

Topics (``{prefix}`` = ``vitrina/v1/{tenant}/{store}/{gateway}``)::

    {prefix}/gw/pricelist                      cloud→gw  QoS 1, retained: the whole price list
    {prefix}/gw/plulist                        cloud→gw  QoS 1, retained: the weighed goods for the label scales
    {prefix}/dev/{lane}/evt/sale_completed     gw→cloud  through the outbox
    {prefix}/dev/{lane}/evt/sale_cancelled
    {prefix}/dev/{lane}/evt/return_completed
    {prefix}/dev/{lane}/evt/shift_opened
    {prefix}/dev/{lane}/evt/shift_closed
    {prefix}/dev/{lane}/evt/cash_moved

The price list is a **full replace** carrying a ``version``: the gateway keeps the newest it has
seen in SQLite and ignores an older or equal one (a retained message replayed on reconnect, a late
publish), so the store sells from its last list while the cloud is down.

The PLU list is the same kind of full replace (published with the same ``version`` as the price
list it was built with): the weighed goods the label scales print labels for. The gateway keeps the
newest and uploads it to every label scale of the store, so the scales label offline too.

Sale events are **keyed by their id** (``sale_id``, ``return_id``, ``shift_id``, ``move_id``):
the gateway sends each at least once (an event may be sent twice if the gateway dies between
storing it and recording that it did), so the cloud stores them under a unique key on that id,
not only on ``event_id``. Money is integer kopecks; quantities are decimal strings with 3 decimals
at most (``"0.734"`` kg); datetimes are UTC.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, model_validator

from protocols.bus.schemas import CONTRACT_VERSION, Identifier, UtcDatetime, utcnow
from protocols.bus.topics import GatewayAddress

PRICELIST = "pricelist"
PLULIST = "plulist"

EVENT_SALE_COMPLETED = "sale_completed"
EVENT_SALE_CANCELLED = "sale_cancelled"
EVENT_RETURN_COMPLETED = "return_completed"
EVENT_SHIFT_OPENED = "shift_opened"
EVENT_SHIFT_CLOSED = "shift_closed"
EVENT_CASH_MOVED = "cash_moved"
LANE_EVENTS = (EVENT_SALE_COMPLETED, EVENT_SALE_CANCELLED, EVENT_RETURN_COMPLETED, EVENT_SHIFT_OPENED,
               EVENT_SHIFT_CLOSED, EVENT_CASH_MOVED)

VAT_KINDS = ("vat_general", "vat_general_calc", "vat10", "vat10_calc", "vat0", "none", "vat5", "vat5_calc", "vat7",
             "vat7_calc")
"""``protocols.fiscal.VatKind`` values (the rate itself is resolved by date, see ``protocols.fiscal.tax``)."""

_QTY = re.compile(r"^[0-9]{1,7}(\.[0-9]{1,3})?$")


def pricelist_topic(address: GatewayAddress) -> str:
    """``…/gw/pricelist``: retained, cloud→gateway."""
    return f"{address.prefix}/gw/{PRICELIST}"


def plulist_topic(address: GatewayAddress) -> str:
    """``…/gw/plulist``: retained, cloud→gateway."""
    return f"{address.prefix}/gw/{PLULIST}"


def _qty(value: str) -> str:
    if not _QTY.match(value):
        raise ValueError("must be a decimal string with at most 3 decimals, e.g. \"0.734\"")
    try:
        if Decimal(value) <= 0:
            raise ValueError("must be greater than zero")
    except InvalidOperation as exc:
        raise ValueError("not a number") from exc
    return value


def _vat(value: str) -> str:
    if value not in VAT_KINDS:
        raise ValueError(f"must be one of {', '.join(VAT_KINDS)}")
    return value


Quantity = Annotated[str, AfterValidator(_qty)]
Vat = Annotated[str, AfterValidator(_vat)]
Kopecks = Annotated[StrictInt, Field(ge=0, le=10**11)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class _Payload(_Model):
    v: Literal[1] = CONTRACT_VERSION
    ts: UtcDatetime = Field(default_factory=utcnow)


# Price list (cloud → gateway) -------------------------------------------------------------------
class PriceItem(_Model):
    """One product the store sells: ``price`` kopecks per piece or per kg (``measure="kg"``)."""

    product_id: Identifier
    name: str = Field(min_length=1, max_length=128)
    price: Kopecks
    vat: Vat
    measure: Literal["piece", "kg"] = "piece"
    barcodes: tuple[str, ...] = ()
    plu: int | None = Field(default=None, ge=1, le=99999)
    marked: bool = False
    """Sold only with a Честный знак code scanned (tag 2000), checked by the fiscal register."""


class PriceList(_Payload):
    """``…/gw/pricelist``: the whole list; a ``version`` not above the stored one is ignored."""

    version: int = Field(ge=1)
    items: tuple[PriceItem, ...]

    @model_validator(mode="after")
    def _unique(self) -> PriceList:
        seen: set[str] = set()
        codes: set[str] = set()
        plus: set[int] = set()
        for item in self.items:
            if item.product_id in seen:
                raise ValueError(f"product_id {item.product_id!r} is listed twice")
            seen.add(item.product_id)
            for code in item.barcodes:
                if code in codes:
                    raise ValueError(f"barcode {code!r} belongs to two products")
                codes.add(code)
            if item.plu is not None:
                if item.plu in plus:
                    raise ValueError(f"PLU {item.plu} belongs to two products")
                plus.add(item.plu)
        return self


# PLU list (cloud → gateway → label scales) ---------------------------------------------------------
class PluItem(_Model):
    """One weighed product on the label scales: the label reads ``barcode_prefix`` + ``item_code`` + grams."""

    plu: StrictInt = Field(ge=1, le=99999)
    product_id: Identifier
    name: str = Field(min_length=1, max_length=128)
    price_per_kg: Kopecks
    """Kopecks per kg."""
    shelf_life_days: StrictInt | None = Field(default=None, ge=0, le=9999)
    """``None``: no sell-by date on the label."""
    item_code: StrictInt = Field(ge=0, le=99999)
    """What goes into the weight barcode after the prefix (5 digits: ``2X IIIII WWWWW C``)."""
    barcode_prefix: str = Field(default="22", pattern=r"^2[0-9]$")
    """The in-store weight-barcode prefix (``20``…``29``)."""


class PluList(_Payload):
    """``…/gw/plulist``: the whole PLU list; a ``version`` not above the stored one is ignored."""

    version: int = Field(ge=1)
    items: tuple[PluItem, ...]

    @model_validator(mode="after")
    def _unique(self) -> PluList:
        seen: set[int] = set()
        for item in self.items:
            if item.plu in seen:
                raise ValueError(f"PLU {item.plu} is listed twice")
            seen.add(item.plu)
        return self


# Sale events (gateway → cloud) -----------------------------------------------------------------
class SaleLine(_Model):
    line_no: int = Field(ge=1)
    product_id: Identifier
    name: str
    quantity: Quantity
    measure: Literal["piece", "kg"]
    price: Kopecks
    amount: Kopecks
    vat: Vat
    vat_rate: str
    """The rate in force on the sale date, as printed (``НДС 22%``)."""
    marking_codes: tuple[str, ...] = ()
    source: Literal["scan", "weight_label", "scale", "manual", "order"] = "scan"


class SalePayment(_Model):
    type: Literal["cash", "card", "prepayment"]
    amount: Kopecks
    operation_id: str | None = None
    rrn: str | None = None
    auth_code: str | None = None
    card_mask: str | None = None


class FiscalData(_Model):
    fd_number: int
    fiscal_sign: int
    fn_number: str | None
    shift_number: int | None
    receipt_number: int | None
    issued_at: UtcDatetime  # the contract is UTC: a naive FN clock is converted by the lane


class Cashier(_Model):
    name: str
    inn: str | None = None


class SaleCompleted(_Model):
    """``sale_completed``: a receipt is in the FN and every payment is settled."""

    sale_id: Identifier
    lane: Identifier
    shift_id: str | None
    cashier: Cashier
    lines: tuple[SaleLine, ...]
    payments: tuple[SalePayment, ...]
    total: Kopecks
    change: Kopecks = 0
    fiscal: FiscalData
    opened_at: UtcDatetime
    completed_at: UtcDatetime
    origin: Literal["checkout", "cloud"] = "checkout"
    """``cloud``: a receipt the cloud asked the store to fiscalize (``fiscalize``), e.g. a delivery."""
    order_id: str | None = None


class SaleCancelled(_Model):
    """``sale_cancelled``: no receipt; ``refunded`` lists card charges voided on the terminal."""

    sale_id: Identifier
    lane: Identifier
    shift_id: str | None
    cashier: Cashier | None
    state: Literal["cancelled", "cancelled_refunded"]
    reason: str
    total: Kopecks
    voided: tuple[SalePayment, ...] = ()
    cash_returned: Kopecks = 0
    lines: tuple[SaleLine, ...] = ()
    cancelled_at: UtcDatetime


class ReturnCompleted(_Model):
    """``return_completed``: a return receipt by an original sale (full or partial)."""

    return_id: Identifier
    sale_id: Identifier
    lane: Identifier
    shift_id: str | None
    cashier: Cashier
    lines: tuple[SaleLine, ...]
    refunds: tuple[SalePayment, ...]
    total: Kopecks
    fiscal: FiscalData
    completed_at: UtcDatetime


class Totals(_Model):
    """Counts and kopecks of one side of the shift comparison."""

    sales_count: int = 0
    sales_cash: int = 0
    sales_card: int = 0
    returns_count: int = 0
    returns_cash: int = 0
    returns_card: int = 0
    cash_in: int = 0
    cash_out: int = 0


class ShiftOpened(_Model):
    shift_id: str
    lane: Identifier
    cashier: Cashier
    shift_number: int | None
    fiscal: FiscalData | None
    """The shift-open report; ``None`` when the register's shift was already open (adopted)."""
    opened_at: UtcDatetime


class Difference(_Model):
    what: str
    lane: int
    other: int
    source: Literal["fiscal", "terminal"]
    message: str


class ShiftClosed(_Model):
    """``shift_closed``: the Z report, the terminal's reconciliation and what disagrees."""

    shift_id: str
    lane: Identifier
    cashier: Cashier
    shift_number: int | None
    z_report: FiscalData
    totals: Totals
    fiscal_receipts: int
    fn_receipts: int | None
    reconciliation: dict[str, object] | None
    differences: tuple[Difference, ...] = ()
    closed_at: UtcDatetime


class CashMoved(_Model):
    move_id: Identifier
    lane: Identifier
    shift_id: str | None
    cashier: Cashier
    direction: Literal["in", "out"]
    amount: Kopecks
    reason: str = ""
    moved_at: UtcDatetime


EVENT_SCHEMAS: dict[str, type[_Model]] = {
    EVENT_SALE_COMPLETED: SaleCompleted,
    EVENT_SALE_CANCELLED: SaleCancelled,
    EVENT_RETURN_COMPLETED: ReturnCompleted,
    EVENT_SHIFT_OPENED: ShiftOpened,
    EVENT_SHIFT_CLOSED: ShiftClosed,
    EVENT_CASH_MOVED: CashMoved,
}
"""Event type → schema of its ``data``: what the cloud validates before storing."""

EVENT_KEYS: dict[str, str] = {
    EVENT_SALE_COMPLETED: "sale_id",
    EVENT_SALE_CANCELLED: "sale_id",
    EVENT_RETURN_COMPLETED: "return_id",
    EVENT_SHIFT_OPENED: "shift_id",
    EVENT_SHIFT_CLOSED: "shift_id",
    EVENT_CASH_MOVED: "move_id",
}
"""The field each event is deduplicated on by the cloud (with the gateway)."""

__all__ = [
    "EVENT_KEYS",
    "EVENT_SCHEMAS",
    "LANE_EVENTS",
    "CashMoved",
    "Cashier",
    "Difference",
    "FiscalData",
    "PluItem",
    "PluList",
    "PriceItem",
    "PriceList",
    "ReturnCompleted",
    "SaleCancelled",
    "SaleCompleted",
    "SaleLine",
    "SalePayment",
    "ShiftClosed",
    "ShiftOpened",
    "Totals",
    "plulist_topic",
    "pricelist_topic",
]
