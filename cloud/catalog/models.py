"""Catalog tables and their API shapes.

Quantities are stored as integer thousandths of the base unit (``*_m``: 1.250 kg = 1250) and money
as integer kopecks (``*_kop``): exact on SQLite and PostgreSQL alike, and cheap to sum. The API
speaks ``Decimal`` (3 decimals for quantities, 2 for money); conversion is in :mod:`cloud.catalog.units`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import field_validator
from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from cloud.base import UtcDateTime, utcnow


class ProductKind(StrEnum):
    GOODS = "goods"
    DISH = "dish"
    SEMI_FINISHED = "semi_finished"
    SERVICE = "service"


class MarkingType(StrEnum):
    """Честный знак product group (``none`` = not marked)."""

    NONE = "none"
    MILK = "milk"
    WATER = "water"
    BEER = "beer"
    TOBACCO = "tobacco"
    SHOES = "shoes"
    CLOTHES = "clothes"
    PERFUME = "perfume"
    TYRES = "tyres"
    OTHER = "other"


class BarcodeKind(StrEnum):
    EAN8 = "ean8"
    EAN13 = "ean13"
    ITF14 = "itf14"
    INTERNAL = "internal"


class WarehouseKind(StrEnum):
    SALES_FLOOR = "sales_floor"
    KITCHEN = "kitchen"
    STORAGE = "storage"
    TRANSIT = "transit"  # goods shipped to this store and not yet received (created by transfers)


# ---------------------------------------------------------------- tables


class VatRate(SQLModel, table=True):
    """A VAT rate kind's percentage from a date on (data, never constants: 20 % → 22 % in 2026)."""

    __tablename__ = "vat_rates"
    __table_args__ = (UniqueConstraint("kind", "valid_from"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # standard / reduced / zero / none
    valid_from: date
    rate_bp: int | None = None  # basis points (2200 = 22 %); None = not subject to VAT


class Product(SQLModel, table=True):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("tenant_id", "sku"), UniqueConstraint("tenant_id", "plu"))

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    sku: str = Field(max_length=64)
    name: str = Field(max_length=300)
    kind: str = Field(default=ProductKind.GOODS.value, max_length=16)
    base_unit: str = Field(default="pcs", max_length=16)
    weighed: bool = False
    plu: int | None = None
    marking: str = Field(default=MarkingType.NONE.value, max_length=16)
    vat_kind: str = Field(default="standard", max_length=16)
    shelf_life_days: int | None = None
    weight_g: int | None = None  # gross weight of one base unit, for spreading extra costs by weight
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ProductUnit(SQLModel, table=True):
    """Another unit of a product: 1 ``unit`` = ``factor_m`` thousandths of the base unit (g → 1, pack of 12 → 12000)."""

    __tablename__ = "product_units"
    __table_args__ = (UniqueConstraint("product_id", "unit"),)

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="products.id")
    unit: str = Field(max_length=16)
    factor_m: int = Field(sa_type=BigInteger)


class Barcode(SQLModel, table=True):
    __tablename__ = "barcodes"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    product_id: int = Field(foreign_key="products.id", index=True)
    code: str = Field(max_length=32)
    kind: str = Field(max_length=16)
    gtin: str | None = Field(default=None, max_length=14)  # the 14-digit form, for marking codes
    unit: str | None = Field(default=None, max_length=16)  # the unit one scan stands for (ITF-14 → box)


class Price(SQLModel, table=True):
    """A store's retail price of a product from ``valid_from`` until the next row."""

    __tablename__ = "prices"
    __table_args__ = (
        UniqueConstraint("store_id", "product_id", "valid_from"),
        Index("ix_prices_product_id_store_id_valid_from", "product_id", "store_id", "valid_from"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id")
    store_id: int = Field(foreign_key="stores.id")
    product_id: int = Field(foreign_key="products.id")
    valid_from: datetime = Field(sa_type=UtcDateTime)
    price_kop: int = Field(sa_type=BigInteger)


class Warehouse(SQLModel, table=True):
    __tablename__ = "warehouses"
    __table_args__ = (UniqueConstraint("store_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenants.id", index=True)
    store_id: int = Field(foreign_key="stores.id")
    code: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    kind: str = Field(default=WarehouseKind.STORAGE.value, max_length=16)


# ---------------------------------------------------------------- API shapes


class UnitIn(SQLModel):
    unit: str = Field(min_length=1, max_length=16)
    factor: Decimal = Field(gt=0, description="how many base units one of this unit is (g of kg: 0.001)")


class ProductCreate(SQLModel):
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=300)
    kind: ProductKind = ProductKind.GOODS
    base_unit: str = Field(default="pcs", min_length=1, max_length=16)
    weighed: bool = False
    plu: int | None = Field(default=None, ge=1, le=99999)
    marking: MarkingType = MarkingType.NONE
    vat_kind: str = Field(default="standard", max_length=16)
    shelf_life_days: int | None = Field(default=None, ge=0)
    weight_g: int | None = Field(default=None, ge=0)
    units: list[UnitIn] = Field(default_factory=list)


class ProductUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=300)
    kind: ProductKind | None = None
    plu: int | None = Field(default=None, ge=1, le=99999)
    marking: MarkingType | None = None
    vat_kind: str | None = Field(default=None, max_length=16)
    shelf_life_days: int | None = Field(default=None, ge=0)
    weight_g: int | None = Field(default=None, ge=0)
    active: bool | None = None


class UnitPublic(SQLModel):
    unit: str
    factor: Decimal


class ProductPublic(SQLModel):
    id: int
    sku: str
    name: str
    kind: str
    base_unit: str
    weighed: bool
    plu: int | None
    marking: str
    vat_kind: str
    shelf_life_days: int | None
    weight_g: int | None
    active: bool
    units: list[UnitPublic] = []
    barcodes: list[str] = []


class BarcodeCreate(SQLModel):
    code: str = Field(min_length=1, max_length=32)
    kind: BarcodeKind | None = None  # inferred from the length when omitted (internal if not a GTIN)
    unit: str | None = Field(default=None, max_length=16)


class BarcodePublic(SQLModel):
    id: int
    product_id: int
    code: str
    kind: str
    gtin: str | None
    unit: str | None


class PriceCreate(SQLModel):
    store_id: int
    product_id: int
    valid_from: datetime
    price: Decimal = Field(ge=0, max_digits=14, decimal_places=2)

    @field_validator("valid_from")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("укажите часовой пояс, например 2026-01-01T00:00:00Z")
        return value


class PricePublic(SQLModel):
    id: int
    store_id: int
    product_id: int
    valid_from: datetime
    price: Decimal


class WarehouseCreate(SQLModel):
    store_id: int
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(default="", max_length=200)
    kind: WarehouseKind = WarehouseKind.STORAGE


class WarehouseUpdate(SQLModel):
    name: str | None = Field(default=None, max_length=200)
    kind: WarehouseKind | None = None


class WarehousePublic(SQLModel):
    id: int
    store_id: int
    code: str
    name: str
    kind: str


class VatRatePublic(SQLModel):
    kind: str
    valid_from: date
    rate_percent: Decimal | None
