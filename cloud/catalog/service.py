"""Catalog rules: every query is filtered by tenant; another tenant's id is simply not found.

Barcodes are validated with :mod:`protocols.barcodes` (GS1 check digits); a GTIN-bearing
barcode also stores its 14-digit form so marking codes (AI 01) find their product.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cloud.catalog.models import (
    Barcode,
    BarcodeCreate,
    BarcodeKind,
    BarcodePublic,
    Price,
    PriceCreate,
    PricePublic,
    Product,
    ProductCreate,
    ProductPublic,
    ProductUnit,
    ProductUpdate,
    UnitPublic,
    VatRate,
    VatRatePublic,
    Warehouse,
    WarehouseCreate,
    WarehousePublic,
    WarehouseUpdate,
)
from cloud.catalog.units import from_kop, from_milli, to_kop, to_milli
from cloud.errors import Conflict, Invalid, NotFound
from cloud.registry.models import Store
from protocols.barcodes import InvalidBarcode, Symbology, parse_gtin

# ---------------------------------------------------------------- products


def get_product(session: Session, tenant_id: int, product_id: int) -> Product:
    product = session.exec(select(Product).where(Product.id == product_id, Product.tenant_id == tenant_id)).first()
    if product is None:
        raise NotFound(f"товар {product_id} не найден", code="product_not_found")
    return product


def product_public(session: Session, product: Product) -> ProductPublic:
    units = session.exec(select(ProductUnit).where(ProductUnit.product_id == product.id)).all()
    codes = session.exec(select(Barcode.code).where(Barcode.product_id == product.id).order_by(col(Barcode.id))).all()
    return ProductPublic.model_validate(
        {
            **product.model_dump(),
            "units": [UnitPublic(unit=u.unit, factor=from_milli(u.factor_m)) for u in units],
            "barcodes": list(codes),
        }
    )


def _check_product(data: ProductCreate | ProductUpdate, weighed: bool) -> None:
    if data.plu is not None and not weighed:
        raise Invalid(f"ПЛУ {data.plu}: задаётся только для весового товара", code="plu_not_weighed")


def create_product(session: Session, tenant_id: int, data: ProductCreate) -> ProductPublic:
    _check_product(data, data.weighed)
    product = Product(tenant_id=tenant_id, **data.model_dump(exclude={"units"}))
    session.add(product)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(
            f"товар с артикулом {data.sku!r} или ПЛУ {data.plu} уже есть", code="product_exists"
        ) from exc
    assert product.id is not None
    seen = {data.base_unit}
    for unit in data.units:
        factor_m = to_milli(unit.factor)
        if unit.unit in seen or factor_m <= 0:
            raise Invalid(
                f"товар {data.sku}: единица {unit.unit!r} повторяется или её коэффициент меньше 0,001",
                code="bad_unit",
            )
        seen.add(unit.unit)
        session.add(ProductUnit(product_id=product.id, unit=unit.unit, factor_m=factor_m))
    session.commit()
    return product_public(session, product)


def update_product(session: Session, tenant_id: int, product_id: int, data: ProductUpdate) -> ProductPublic:
    product = get_product(session, tenant_id, product_id)
    changes = data.model_dump(exclude_unset=True)
    _check_product(data, product.weighed)
    for key, value in changes.items():
        setattr(product, key, value)
    session.add(product)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"ПЛУ {data.plu} уже занят другим товаром", code="plu_taken") from exc
    return product_public(session, product)


def list_products(session: Session, tenant_id: int, search: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[ProductPublic]:
    query = select(Product).where(Product.tenant_id == tenant_id)
    if search:
        query = query.where(col(Product.name).ilike(f"%{search}%") | (col(Product.sku) == search))
    rows = session.exec(query.order_by(col(Product.sku)).offset(offset).limit(limit)).all()
    return [product_public(session, p) for p in rows]


def unit_factor_m(session: Session, product: Product, unit: str | None) -> int:
    """Thousandths of the base unit in one ``unit`` (1000 for the base unit itself)."""
    if unit is None or unit == product.base_unit:
        return 1000
    row = session.exec(
        select(ProductUnit).where(ProductUnit.product_id == product.id, ProductUnit.unit == unit)
    ).first()
    if row is None:
        raise Invalid(
            f"товар {product.sku} «{product.name}»: единица {unit!r} не задана (базовая — {product.base_unit})",
            code="unknown_unit",
        )
    return row.factor_m


def to_base_m(session: Session, product: Product, quantity: Decimal, unit: str | None) -> int:
    """``quantity`` of ``unit`` in thousandths of the base unit."""
    return to_milli(quantity * unit_factor_m(session, product, unit) / 1000)


# ---------------------------------------------------------------- barcodes


def _classify_barcode(data: BarcodeCreate) -> tuple[str, str | None]:
    """(kind, gtin14) of a barcode; GTIN kinds must pass the GS1 check digit."""
    code = data.code
    expected = {BarcodeKind.EAN8: Symbology.EAN8, BarcodeKind.EAN13: Symbology.EAN13, BarcodeKind.ITF14: Symbology.ITF14}
    if data.kind == BarcodeKind.INTERNAL:
        return BarcodeKind.INTERNAL.value, None
    try:
        gtin = parse_gtin(code)
    except InvalidBarcode as exc:
        if data.kind is None and not (code.isdigit() and len(code) in (8, 12, 13, 14)):
            return BarcodeKind.INTERNAL.value, None
        raise Invalid(f"штрихкод {code!r}: {exc}", code="bad_barcode") from exc
    if data.kind is not None and expected[data.kind] != gtin.symbology:
        raise Invalid(f"штрихкод {code!r} — это {gtin.symbology.value}, а не {data.kind.value}", code="bad_barcode")
    kind = {Symbology.EAN8: "ean8", Symbology.EAN13: "ean13", Symbology.ITF14: "itf14", Symbology.UPCA: "ean13"}
    return kind[gtin.symbology], gtin.gtin14


def add_barcode(session: Session, tenant_id: int, product_id: int, data: BarcodeCreate) -> BarcodePublic:
    product = get_product(session, tenant_id, product_id)
    kind, gtin = _classify_barcode(data)
    if data.unit is not None:
        unit_factor_m(session, product, data.unit)
    row = Barcode(tenant_id=tenant_id, product_id=product_id, code=data.code, kind=kind, gtin=gtin, unit=data.unit)
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        owner = session.exec(select(Barcode).where(Barcode.tenant_id == tenant_id, Barcode.code == data.code)).first()
        raise Conflict(
            f"штрихкод {data.code} уже привязан к товару {owner.product_id if owner else '?'}", code="barcode_exists"
        ) from exc
    return BarcodePublic.model_validate(row, from_attributes=True)


def find_barcode(session: Session, tenant_id: int, code: str) -> BarcodePublic:
    row = session.exec(select(Barcode).where(Barcode.tenant_id == tenant_id, Barcode.code == code)).first()
    if row is None:
        raise NotFound(f"штрихкод {code} не найден", code="barcode_not_found")
    return BarcodePublic.model_validate(row, from_attributes=True)


def delete_barcode(session: Session, tenant_id: int, code: str) -> None:
    row = session.exec(select(Barcode).where(Barcode.tenant_id == tenant_id, Barcode.code == code)).first()
    if row is None:
        raise NotFound(f"штрихкод {code} не найден", code="barcode_not_found")
    session.delete(row)
    session.commit()


def product_gtins(session: Session, product_id: int) -> set[str]:
    return {g for g in session.exec(select(Barcode.gtin).where(Barcode.product_id == product_id)).all() if g}


# ---------------------------------------------------------------- VAT and prices


def vat_rates(session: Session, on: date | None = None) -> list[VatRatePublic]:
    """Every kind's rate in force on ``on`` (all rows when ``on`` is None)."""
    rows = session.exec(select(VatRate).order_by(col(VatRate.kind), col(VatRate.valid_from))).all()
    if on is not None:
        current: dict[str, VatRate] = {}
        for row in rows:
            if row.valid_from <= on:
                current[row.kind] = row
        rows = list(current.values())
    return [
        VatRatePublic(kind=r.kind, valid_from=r.valid_from,
                      rate_percent=None if r.rate_bp is None else Decimal(r.rate_bp) / 100)
        for r in rows
    ]


def get_store(session: Session, tenant_id: int, store_id: int) -> Store:
    store = session.exec(select(Store).where(Store.id == store_id, Store.tenant_id == tenant_id)).first()
    if store is None:
        raise NotFound(f"магазин {store_id} не найден", code="store_not_found")
    return store


def set_price(session: Session, tenant_id: int, data: PriceCreate) -> PricePublic:
    get_store(session, tenant_id, data.store_id)
    get_product(session, tenant_id, data.product_id)
    row = Price(tenant_id=tenant_id, store_id=data.store_id, product_id=data.product_id,
                valid_from=data.valid_from, price_kop=to_kop(data.price))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(
            f"цена товара {data.product_id} в магазине {data.store_id} с {data.valid_from.isoformat()} уже задана",
            code="price_exists",
        ) from exc
    return _price_public(row)


def _price_public(row: Price) -> PricePublic:
    return PricePublic(id=row.id or 0, store_id=row.store_id, product_id=row.product_id,
                       valid_from=row.valid_from, price=from_kop(row.price_kop))


def price_on(session: Session, tenant_id: int, store_id: int, product_id: int, on: datetime) -> PricePublic:
    row = session.exec(
        select(Price)
        .where(Price.tenant_id == tenant_id, Price.store_id == store_id, Price.product_id == product_id,
               col(Price.valid_from) <= on)
        .order_by(col(Price.valid_from).desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotFound(f"у товара {product_id} нет цены в магазине {store_id} на {on.isoformat()}", code="no_price")
    return _price_public(row)


# ---------------------------------------------------------------- warehouses


def get_warehouse(session: Session, tenant_id: int, warehouse_id: int) -> Warehouse:
    row = session.exec(
        select(Warehouse).where(Warehouse.id == warehouse_id, Warehouse.tenant_id == tenant_id)
    ).first()
    if row is None:
        raise NotFound(f"склад {warehouse_id} не найден", code="warehouse_not_found")
    return row


def create_warehouse(session: Session, tenant_id: int, data: WarehouseCreate) -> WarehousePublic:
    get_store(session, tenant_id, data.store_id)
    row = Warehouse(tenant_id=tenant_id, **data.model_dump())
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"склад {data.code!r} в магазине {data.store_id} уже есть", code="warehouse_exists") from exc
    return WarehousePublic.model_validate(row, from_attributes=True)


def update_warehouse(session: Session, tenant_id: int, warehouse_id: int, data: WarehouseUpdate) -> WarehousePublic:
    row = get_warehouse(session, tenant_id, warehouse_id)
    for key, value in data.model_dump(exclude_unset=True).items():
        setattr(row, key, value)
    session.add(row)
    session.commit()
    return WarehousePublic.model_validate(row, from_attributes=True)


def list_warehouses(session: Session, tenant_id: int, store_id: int | None = None) -> list[WarehousePublic]:
    query = select(Warehouse).where(Warehouse.tenant_id == tenant_id)
    if store_id is not None:
        query = query.where(Warehouse.store_id == store_id)
    rows = session.exec(query.order_by(col(Warehouse.store_id), col(Warehouse.code))).all()
    return [WarehousePublic.model_validate(r, from_attributes=True) for r in rows]
