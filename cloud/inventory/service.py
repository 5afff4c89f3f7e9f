"""Inventory documents: draft → posted (→ received, for transfers) → cancelled.

Every function that changes something commits itself at the end, so a document posts whole or
not at all: any error raised half-way leaves the session to be rolled back by the caller's
unit of work (the request's session). Messages name the document, the line and the product.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from cloud.base import utcnow
from cloud.catalog.models import MarkingType, Product, Warehouse, WarehouseKind
from cloud.catalog.service import get_product, get_store, get_warehouse, product_gtins, to_base_m
from cloud.catalog.units import from_kop, from_milli, mul_div, spread, to_kop
from cloud.errors import Conflict, Invalid, NotFound
from cloud.inventory import ledger
from cloud.inventory.ledger import NegativeStock, NewMove, Pair
from cloud.inventory.models import (
    ClosedPeriod,
    ClosePeriodIn,
    CostMode,
    CountLineIn,
    DocCounter,
    DocStatus,
    DocType,
    DocumentIn,
    DocumentPublic,
    InventorySettings,
    LineIn,
    LinePublic,
    ReasonPublic,
    ReceiveIn,
    SettingsPublic,
    SettingsUpdate,
    StockDocument,
    StockDocumentLine,
    StockMove,
    WriteOffReason,
)
from cloud.marking import service as marking
from cloud.marking.models import CodeEvent

DOC_RU = {
    DocType.RECEIPT: "Оприходование",
    DocType.WRITE_OFF: "Списание",
    DocType.TRANSFER: "Перемещение",
    DocType.SUPPLIER_RETURN: "Возврат поставщику",
    DocType.STOCK_COUNT: "Инвентаризация",
    DocType.SALE: "Продажа",
}
T = StockMove.__table__  # type: ignore[attr-defined]
LINES = StockDocumentLine.__table__  # type: ignore[attr-defined]


def _doc_ru(doc: StockDocument) -> str:
    return f"{DOC_RU[DocType(doc.doc_type)]} №{doc.number}"


def _where(doc_title: str, line_no: int | None = None, product: Product | None = None) -> str:
    out = f"документ «{doc_title}»"
    if line_no is not None:
        out += f", строка {line_no}"
    if product is not None:
        out += f", товар {product.sku} «{product.name}»"
    return out


# ---------------------------------------------------------------- settings and periods


def get_settings(session: Session, tenant_id: int) -> SettingsPublic:
    return SettingsPublic.model_validate(ledger.settings_of(session, tenant_id), from_attributes=True)


def update_settings(session: Session, tenant_id: int, data: SettingsUpdate) -> SettingsPublic:
    row = session.get(InventorySettings, tenant_id) or InventorySettings(tenant_id=tenant_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "valuation" in changes and changes["valuation"] != row.valuation:
        moved = session.execute(sa_select(T.c.id).where(T.c.tenant_id == tenant_id).limit(1)).first()
        if moved is not None:
            raise Conflict("метод оценки нельзя сменить после первых движений: пересчитайте себестоимость "
                           "отдельной процедурой", code="valuation_locked")
    for key, value in changes.items():
        setattr(row, key, value.value if hasattr(value, "value") else value)
    session.add(row)
    session.commit()
    return SettingsPublic.model_validate(row, from_attributes=True)


def close_period(session: Session, tenant_id: int, data: ClosePeriodIn) -> ClosePeriodIn:
    if data.store_id is not None:
        get_store(session, tenant_id, data.store_id)
    same_store = (col(ClosedPeriod.store_id).is_(None) if data.store_id is None
                  else col(ClosedPeriod.store_id) == data.store_id)
    row = session.exec(select(ClosedPeriod).where(ClosedPeriod.tenant_id == tenant_id, same_store)).first()
    row = row if row is not None else ClosedPeriod(tenant_id=tenant_id, store_id=data.store_id,
                                                       closed_through=data.closed_through)
    row.closed_through = data.closed_through
    session.add(row)
    session.commit()
    return data


def _check_open(session: Session, doc: StockDocument, at: datetime, store_id: int | None = None) -> None:
    closed = ledger.closed_through(session, doc.tenant_id, store_id or doc.store_id)
    if closed is not None and at <= closed:
        raise Conflict(f"документ «{_doc_ru(doc)}»: период по {closed.isoformat()} закрыт, дата документа "
                       f"{at.isoformat()}", code="period_closed")


def reasons(session: Session, tenant_id: int) -> list[ReasonPublic]:
    rows = session.exec(
        select(WriteOffReason).where((col(WriteOffReason.tenant_id) == tenant_id) | col(WriteOffReason.tenant_id).is_(None))
        .order_by(col(WriteOffReason.tenant_id).is_(None), col(WriteOffReason.code))
    ).all()
    out: dict[str, ReasonPublic] = {}
    for row in rows:
        out.setdefault(row.code, ReasonPublic(code=row.code, name=row.name, pnl_article=row.pnl_article))
    return sorted(out.values(), key=lambda r: r.code)


# ---------------------------------------------------------------- documents: create


def _next_number(session: Session, tenant_id: int, store_id: int, doc_type: str) -> int:
    """Gap-free per (store, type): the counter row is incremented in the document's own transaction."""
    counter = session.exec(
        select(DocCounter).where(DocCounter.store_id == store_id, DocCounter.doc_type == doc_type).with_for_update()
    ).first()
    if counter is None:
        session.execute(ledger.upsert_insert(session)(DocCounter.__table__).values(  # type: ignore[attr-defined]
            tenant_id=tenant_id, store_id=store_id, doc_type=doc_type, last_number=0
        ).on_conflict_do_nothing(index_elements=["store_id", "doc_type"]))
        return _next_number(session, tenant_id, store_id, doc_type)
    counter.last_number += 1
    session.add(counter)
    session.flush()
    return counter.last_number


def _store_warehouse(session: Session, tenant_id: int, store_id: int, warehouse_id: int) -> Warehouse:
    get_store(session, tenant_id, store_id)
    wh = get_warehouse(session, tenant_id, warehouse_id)
    if wh.store_id != store_id:
        raise Invalid(f"склад {wh.code} не относится к магазину {store_id}", code="warehouse_not_in_store")
    if wh.kind == WarehouseKind.TRANSIT.value:
        raise Invalid(f"склад {wh.code} — склад товаров в пути, документы на него не оформляются",
                      code="transit_warehouse")
    return wh


def _reason_codes(session: Session, tenant_id: int) -> set[str]:
    return {r.code for r in reasons(session, tenant_id)}


def create_document(session: Session, tenant_id: int, author_id: int | None, doc_type: DocType,
                    data: DocumentIn) -> DocumentPublic:
    _store_warehouse(session, tenant_id, data.store_id, data.warehouse_id)
    doc = StockDocument(tenant_id=tenant_id, store_id=data.store_id, doc_type=doc_type.value, number=0,
                        posted_at=data.posted_at or utcnow(), warehouse_id=data.warehouse_id, author_id=author_id)
    _fill(session, doc, data)
    doc.number = _next_number(session, tenant_id, data.store_id, doc_type.value)
    session.add(doc)
    session.flush()
    _set_lines(session, doc, data.lines)
    session.commit()
    return document_public(session, doc)


def update_document(session: Session, tenant_id: int, document_id: int, data: DocumentIn) -> DocumentPublic:
    doc = _get(session, tenant_id, document_id)
    _require(doc, DocStatus.DRAFT, "изменить")
    if data.store_id != doc.store_id:
        raise Invalid(f"документ «{_doc_ru(doc)}»: магазин документа менять нельзя", code="store_fixed")
    _store_warehouse(session, tenant_id, data.store_id, data.warehouse_id)
    doc.warehouse_id = data.warehouse_id
    if data.posted_at is not None:
        doc.posted_at = data.posted_at
    _fill(session, doc, data)
    for line in session.exec(select(StockDocumentLine).where(StockDocumentLine.document_id == doc.id)).all():
        session.delete(line)
    session.flush()
    _set_lines(session, doc, data.lines)
    session.commit()
    return document_public(session, doc)


def _fill(session: Session, doc: StockDocument, data: DocumentIn) -> None:
    title = _doc_ru(doc) if doc.number else DOC_RU[DocType(doc.doc_type)]
    doc.comment = data.comment
    doc.supplier = data.supplier
    doc.invoice_number = data.invoice_number
    doc.invoice_date = data.invoice_date
    doc.extra_cost_kop = to_kop(data.extra_cost)
    doc.extra_cost_split = data.extra_cost_split
    doc.reason = data.reason or ""
    dt = DocType(doc.doc_type)
    if dt is DocType.RECEIPT and not data.supplier:
        raise Invalid(f"документ «{title}»: укажите поставщика", code="supplier_required")
    if dt is DocType.WRITE_OFF and doc.reason and doc.reason not in _reason_codes(session, doc.tenant_id):
        raise Invalid(f"документ «{title}»: неизвестная причина списания {doc.reason!r}", code="unknown_reason")
    if dt is DocType.SUPPLIER_RETURN:
        if data.return_of_id is None:
            raise Invalid(f"документ «{title}»: укажите оприходование, по которому возврат (return_of_id)",
                          code="receipt_required")
        receipt = _get(session, doc.tenant_id, data.return_of_id)
        if receipt.doc_type != DocType.RECEIPT.value or receipt.status != DocStatus.POSTED.value:
            raise Invalid(f"документ «{title}»: возврат возможен только по проведённому оприходованию",
                          code="receipt_not_posted")
        if receipt.store_id != doc.store_id:
            raise Invalid(f"документ «{title}»: оприходование из другого магазина", code="receipt_other_store")
        doc.return_of_id = receipt.id
        doc.supplier = receipt.supplier
    if dt is DocType.TRANSFER:
        if data.dest_warehouse_id is None:
            raise Invalid(f"документ «{title}»: укажите склад-получатель", code="destination_required")
        dest = get_warehouse(session, doc.tenant_id, data.dest_warehouse_id)
        if dest.id == data.warehouse_id or dest.kind == WarehouseKind.TRANSIT.value:
            raise Invalid(f"документ «{title}»: склад-получатель совпадает с отправителем или это склад «в пути»",
                          code="bad_destination")
        doc.dest_warehouse_id = dest.id


def _set_lines(session: Session, doc: StockDocument, lines: Sequence[LineIn]) -> None:
    dt = DocType(doc.doc_type)
    title = _doc_ru(doc)
    if dt is not DocType.STOCK_COUNT and not lines:
        raise Invalid(f"документ «{title}»: нет строк", code="no_lines")
    receipt_lines: dict[int, StockDocumentLine] = {}
    if dt is DocType.SUPPLIER_RETURN:
        receipt_lines = {
            ln.id: ln
            for ln in session.exec(
                select(StockDocumentLine).where(StockDocumentLine.document_id == doc.return_of_id)
            ).all()
            if ln.id is not None
        }
    returned_of = _returned_many(session, receipt_lines) if receipt_lines else {}
    reason_codes = _reason_codes(session, doc.tenant_id) if dt is DocType.WRITE_OFF else set()
    products = {p.id: p for p in session.exec(
        select(Product).where(Product.tenant_id == doc.tenant_id, col(Product.id).in_({ln.product_id for ln in lines}))
    ).all()}
    for no, data in enumerate(lines, start=1):
        product = products.get(data.product_id)
        if product is None:
            raise NotFound(f"{_where(title, no)}: товар {data.product_id} не найден", code="product_not_found")
        where = _where(title, no, product)
        if data.quantity <= 0:
            raise Invalid(f"{where}: количество должно быть больше нуля, указано {data.quantity}", code="bad_quantity")
        if product.kind == "service":
            raise Invalid(f"{where}: услуга не хранится на складе", code="service_not_stocked")
        try:
            qty_m = to_base_m(session, product, data.quantity, data.unit)
        except Invalid as exc:
            raise Invalid(f"{_where(title, no)}: {exc.message}", code=exc.code) from exc
        if qty_m <= 0:
            raise Invalid(f"{where}: количество {data.quantity} {data.unit} меньше 0,001 {product.base_unit}",
                          code="bad_quantity")
        line = StockDocumentLine(document_id=doc.id or 0, line_no=no, product_id=product.id or 0,
                                 unit=data.unit or product.base_unit, qty_m=qty_m)
        if dt is DocType.RECEIPT:
            if data.amount is None or data.amount < 0:
                raise Invalid(f"{where}: укажите сумму строки (не отрицательную)", code="amount_required")
            line.amount_kop = to_kop(data.amount)
        if dt is DocType.WRITE_OFF:
            line.reason = data.reason or doc.reason
            if not line.reason or line.reason not in reason_codes:
                raise Invalid(f"{where}: укажите причину списания из справочника ({', '.join(sorted(reason_codes))})",
                              code="unknown_reason")
        if dt is DocType.SUPPLIER_RETURN:
            src = receipt_lines.get(data.receipt_line_id or -1)
            if src is None or src.product_id != product.id:
                raise Invalid(f"{where}: строка оприходования {data.receipt_line_id} не найдена или с другим товаром",
                              code="bad_receipt_line")
            returned = returned_of.get(src.id or 0, 0)
            if qty_m + returned > src.qty_m:
                raise Invalid(f"{where}: к возврату {from_milli(qty_m)}, а оприходовано {from_milli(src.qty_m)} "
                              f"и уже возвращено {from_milli(returned)}", code="return_exceeds_receipt")
            line.receipt_line_id = src.id
        line.codes = _line_codes(session, product, data, qty_m, dt, where)
        session.add(line)
    session.flush()


def _returned_many(session: Session, receipt_line_ids: Iterable[int | None]) -> dict[int, int]:
    """Quantity already returned by posted supplier returns, per receipt line, in one query."""
    ids = [i for i in receipt_line_ids if i is not None]
    if not ids:
        return {}
    rows = session.execute(
        sa_select(col(StockDocumentLine.receipt_line_id), func.sum(StockDocumentLine.qty_m))
        .join(StockDocument, StockDocument.id == StockDocumentLine.document_id)  # type: ignore[arg-type]
        .where(col(StockDocumentLine.receipt_line_id).in_(ids), col(StockDocument.status) == DocStatus.POSTED.value)
        .group_by(col(StockDocumentLine.receipt_line_id))
    ).all()
    return {int(r[0]): int(r[1] or 0) for r in rows}


def _line_codes(session: Session, product: Product, data: LineIn, qty_m: int, dt: DocType, where: str) -> list[Any]:
    if product.marking == MarkingType.NONE.value:
        if data.codes or data.boxes:
            raise Invalid(f"{where}: товар не маркируется, коды маркировки не нужны", code="not_marked")
        return []
    boxes = [marking.Box(b.code, tuple(b.children)) for b in data.boxes]
    needs = dt in (DocType.RECEIPT,) or data.codes or data.boxes
    if not needs:
        return []
    if dt is DocType.STOCK_COUNT:
        return []
    ids = marking.identities(data.codes, boxes, product_gtins(session, product.id or 0), where)
    if qty_m % 1000 or len(ids) * 1000 != qty_m:
        raise Invalid(f"{where}: кодов маркировки {len(ids)}, а количество {from_milli(qty_m)} — должно совпадать",
                      code="marking_count_mismatch")
    return [*data.codes, *({"box": b.raw, "children": list(b.children)} for b in boxes)]


def _split_codes(codes: list[Any]) -> tuple[list[str], list[marking.Box]]:
    units = [c for c in codes if isinstance(c, str)]
    boxes = [marking.Box(c["box"], tuple(c["children"])) for c in codes if isinstance(c, dict)]
    return units, boxes


# ---------------------------------------------------------------- documents: read


def _get(session: Session, tenant_id: int, document_id: int) -> StockDocument:
    doc = session.get(StockDocument, document_id)
    if doc is None or doc.tenant_id != tenant_id:
        raise NotFound(f"документ {document_id} не найден", code="document_not_found")
    return doc


def _lines(session: Session, doc: StockDocument) -> list[StockDocumentLine]:
    return list(session.exec(
        select(StockDocumentLine).where(StockDocumentLine.document_id == doc.id).order_by(col(StockDocumentLine.line_no))
    ).all())


def document_public(session: Session, doc: StockDocument, outdated: set[int] | None = None,
                    lines: list[StockDocumentLine] | None = None) -> DocumentPublic:
    """The document as the API returns it; ``lines`` (in line order) saves re-reading them after posting."""
    if lines is None:
        lines = _lines(session, doc)
    if outdated is None and doc.doc_type == DocType.STOCK_COUNT.value:
        outdated = _outdated_lines(session, doc, lines)
    public = [
        LinePublic(
            id=ln.id or 0, line_no=ln.line_no, product_id=ln.product_id, unit=ln.unit, quantity=from_milli(ln.qty_m),
            amount=None if ln.amount_kop is None else from_kop(ln.amount_kop),
            cost=None if ln.cost_kop is None else from_kop(ln.cost_kop), reason=ln.reason,
            receipt_line_id=ln.receipt_line_id,
            expected_quantity=None if ln.expected_qty_m is None else from_milli(ln.expected_qty_m),
            counted_at=ln.counted_at,
            received_quantity=None if ln.received_qty_m is None else from_milli(ln.received_qty_m),
            outdated=bool(outdated and ln.line_no in outdated), codes=ln.codes,
        )
        for ln in lines
    ]
    return DocumentPublic.model_validate({**doc.model_dump(), "id": doc.id, "extra_cost": from_kop(doc.extra_cost_kop),
                                          "lines": public})


def get_document(session: Session, tenant_id: int, document_id: int) -> DocumentPublic:
    return document_public(session, _get(session, tenant_id, document_id))


def list_documents(session: Session, tenant_id: int, doc_type: str | None = None, store_id: int | None = None,
                   status: str | None = None, limit: int = 50, offset: int = 0) -> list[DocumentPublic]:
    query = select(StockDocument).where(StockDocument.tenant_id == tenant_id)
    if doc_type:
        query = query.where(StockDocument.doc_type == doc_type)
    if store_id is not None:
        query = query.where(StockDocument.store_id == store_id)
    if status:
        query = query.where(StockDocument.status == status)
    docs = session.exec(query.order_by(col(StockDocument.id).desc()).offset(offset).limit(limit)).all()
    return [document_public(session, d) for d in docs]


# ---------------------------------------------------------------- posting


def _require(doc: StockDocument, status: DocStatus, action: str) -> None:
    if doc.status != status.value:
        raise Conflict(f"документ «{_doc_ru(doc)}» в состоянии {doc.status}: нельзя {action}",
                       code="bad_document_status", extra={"status": doc.status})


def _negative(session: Session, doc: StockDocument, exc: NegativeStock, action: str) -> Conflict:
    v = exc.violation
    product = session.get(Product, v.pair.product_id)
    wh = session.get(Warehouse, v.pair.warehouse_id)
    other = ""
    if v.document_id is not None and v.document_id != doc.id:
        later = session.get(StockDocument, v.document_id)
        other = f" (затронут документ «{_doc_ru(later)}»)" if later is not None else ""
    name = f"{product.sku} «{product.name}»" if product else str(v.pair.product_id)
    return Conflict(
        f"документ «{_doc_ru(doc)}»: нельзя {action} — товар {name} на складе {wh.code if wh else v.pair.warehouse_id}: "
        f"на {v.posted_at.isoformat()} доступно {from_milli(v.available_m)}, требуется {from_milli(v.requested_m)}"
        f"{other}",
        code="negative_stock",
        extra={"product_id": v.pair.product_id, "warehouse_id": v.pair.warehouse_id,
               "available": str(from_milli(v.available_m)), "requested": str(from_milli(v.requested_m))},
    )


def post_document(session: Session, tenant_id: int, document_id: int) -> DocumentPublic:
    doc = _get(session, tenant_id, document_id)
    _require(doc, DocStatus.DRAFT, "провести")
    _check_open(session, doc, doc.posted_at)
    cfg = ledger.settings_of(session, tenant_id)
    lines = _lines(session, doc)
    dt = DocType(doc.doc_type)
    outdated: set[int] = set()
    try:
        if dt is DocType.RECEIPT:
            _post_receipt(session, cfg, doc, lines)
        elif dt is DocType.WRITE_OFF:
            _post_outgoing(session, cfg, doc, lines, CodeEvent.WRITE_OFF)
        elif dt is DocType.SUPPLIER_RETURN:
            _post_return(session, cfg, doc, lines)
        elif dt is DocType.TRANSFER:
            _post_shipment(session, cfg, doc, lines)
        else:
            outdated = _post_count(session, cfg, doc, lines)
    except NegativeStock as exc:
        raise _negative(session, doc, exc, "провести") from exc
    doc.status = DocStatus.POSTED.value
    doc.status_changed_at = utcnow()
    session.add(doc)
    session.commit()
    return document_public(session, doc, outdated, lines)  # built from what we hold: no re-read


def _products(session: Session, product_ids: Iterable[int]) -> dict[int, Product]:
    """The products of many lines in one query (those already in the session are not re-read)."""
    wanted = set(product_ids)
    if not wanted:
        return {}
    rows = session.exec(select(Product).where(col(Product.id).in_(wanted))).all()
    return {p.id: p for p in rows if p.id is not None}


def _set_line_costs(session: Session, costs: list[tuple[int, int]]) -> None:
    """``cost_kop`` of many lines in one statement (arrays + ``unnest`` on PostgreSQL)."""
    if not costs:
        return
    if ledger.is_postgres(session):
        session.execute(_PG_LINE_COSTS, {"ids": [c[0] for c in costs], "costs": [c[1] for c in costs]})
        return
    session.execute(update(LINES).where(LINES.c.id == bindparam("b_line")).values(cost_kop=bindparam("b_cost")),
                    [{"b_line": c[0], "b_cost": c[1]} for c in costs])


_PG_LINE_COSTS = text(
    "UPDATE stock_document_lines AS l SET cost_kop = v.cost FROM unnest(CAST(:ids AS int[]), "
    "CAST(:costs AS bigint[])) AS v(id, cost) WHERE l.id = v.id"
)


def _pair(doc: StockDocument, product_id: int, warehouse_id: int | None = None, store_id: int | None = None) -> Pair:
    return Pair(doc.tenant_id, store_id or doc.store_id, product_id, warehouse_id or doc.warehouse_id)


def _post_receipt(session: Session, cfg: InventorySettings, doc: StockDocument, lines: list[StockDocumentLine]) -> None:
    title = _doc_ru(doc)
    needed = {ln.product_id for ln in lines if doc.extra_cost_split == "weight" or ln.codes}
    products = _products(session, needed)
    if doc.extra_cost_split == "weight":
        weights = []
        for ln in lines:
            product = products[ln.product_id]
            grams = product.weight_g if product.weight_g is not None else (1000 if product.base_unit == "kg" else None)
            if grams is None:
                raise Invalid(f"{_where(title, ln.line_no, product)}: не задан вес единицы — доп. расходы по весу "
                              "не распределить", code="weight_unknown")
            weights.append(ln.qty_m * grams)
    else:
        weights = [ln.amount_kop or 0 for ln in lines]
    shares = spread(doc.extra_cost_kop, weights)
    costs = []
    for ln, share in zip(lines, shares, strict=True):
        # in memory without a flush per line; written below in one statement
        set_committed_value(ln, "cost_kop", (ln.amount_kop or 0) + share)
        costs.append((ln.id or 0, (ln.amount_kop or 0) + share))
    _set_line_costs(session, costs)
    moves = [NewMove(_pair(doc, ln.product_id), ln.qty_m, CostMode.FIXED, ln.cost_kop, line_id=ln.id) for ln in lines]
    ledger.post_moves(session, cfg, doc.doc_type, doc.id, doc.posted_at, moves)
    for ln in lines:
        if ln.codes:
            product = products[ln.product_id]
            units, boxes = _split_codes(ln.codes)
            marking.receive(session, doc.tenant_id, ln.product_id, doc.warehouse_id, units, boxes, doc.id or 0,
                            _where(title, ln.line_no, product))


def _code_ids(ln: StockDocumentLine, where: str) -> list[str]:
    units, boxes = _split_codes(ln.codes)
    return [marking.parse_unit(c, where).identity for c in [*units, *(c for b in boxes for c in b.children)]]


def _transition_codes(session: Session, doc: StockDocument, lines: list[StockDocumentLine], event: CodeEvent,
                      warehouse_id: int | None = None) -> None:
    products = _products(session, {ln.product_id for ln in lines if ln.codes})
    for ln in lines:
        if ln.codes:
            product = products[ln.product_id]
            where = _where(_doc_ru(doc), ln.line_no, product)
            marking.transition(session, doc.tenant_id, ln.product_id, _code_ids(ln, where), event, doc.id, where,
                               warehouse_id)


def _post_outgoing(session: Session, cfg: InventorySettings, doc: StockDocument, lines: list[StockDocumentLine],
                   event: CodeEvent) -> None:
    moves = [NewMove(_pair(doc, ln.product_id), -ln.qty_m, line_id=ln.id, reason=ln.reason) for ln in lines]
    ledger.post_moves(session, cfg, doc.doc_type, doc.id, doc.posted_at, moves)
    _transition_codes(session, doc, lines, event)


def _post_return(session: Session, cfg: InventorySettings, doc: StockDocument, lines: list[StockDocumentLine]) -> None:
    receipt = session.get_one(StockDocument, doc.return_of_id)
    if doc.posted_at < receipt.posted_at:
        raise Invalid(f"документ «{_doc_ru(doc)}»: возврат раньше оприходования «{_doc_ru(receipt)}»",
                      code="return_before_receipt")
    src_ids = {ln.receipt_line_id for ln in lines if ln.receipt_line_id is not None}
    src_lines = {x.id: x for x in session.exec(
        select(StockDocumentLine).where(col(StockDocumentLine.id).in_(src_ids))).all()}
    returned_of = _returned_many(session, src_ids)
    src_moves = {r.line_id: r.id for r in session.execute(
        sa_select(T.c.id, T.c.line_id).where(T.c.document_id == receipt.id, T.c.line_id.in_(src_ids),
                                             T.c.cancelled.is_(False), T.c.reversal_of_id.is_(None)))}
    moves = []
    for ln in lines:
        src_line = src_lines[ln.receipt_line_id]
        returned = returned_of.get(src_line.id or 0, 0)
        if returned + ln.qty_m > src_line.qty_m:
            product = session.get_one(Product, ln.product_id)
            raise Conflict(f"{_where(_doc_ru(doc), ln.line_no, product)}: возврат {from_milli(ln.qty_m)} больше "
                           f"остатка по оприходованию {from_milli(src_line.qty_m - returned)}",
                           code="return_exceeds_receipt")
        src_move = src_moves[src_line.id]
        returned_of[src_line.id or 0] = returned + ln.qty_m  # two lines returning the same receipt line
        value = mul_div(src_line.cost_kop or 0, ln.qty_m, src_line.qty_m)
        moves.append(NewMove(_pair(doc, ln.product_id, receipt.warehouse_id), -ln.qty_m, CostMode.FIXED, value,
                             source_move_id=src_move, line_id=ln.id))
    ledger.post_moves(session, cfg, doc.doc_type, doc.id, doc.posted_at, moves)
    _transition_codes(session, doc, lines, CodeEvent.RETURN)


def _transit_warehouse(session: Session, tenant_id: int, store_id: int) -> Warehouse:
    row = session.exec(
        select(Warehouse).where(Warehouse.store_id == store_id, Warehouse.kind == WarehouseKind.TRANSIT.value)
    ).first()
    if row is None:
        row = Warehouse(tenant_id=tenant_id, store_id=store_id, code="TRANSIT", name="Товары в пути",
                        kind=WarehouseKind.TRANSIT.value)
        session.add(row)
        session.flush()
    return row


def _post_shipment(session: Session, cfg: InventorySettings, doc: StockDocument, lines: list[StockDocumentLine]) -> None:
    dest = session.get_one(Warehouse, doc.dest_warehouse_id)
    transit = _transit_warehouse(session, doc.tenant_id, dest.store_id)
    doc.transit_warehouse_id = transit.id
    outs = ledger.post_moves(session, cfg, doc.doc_type, doc.id, doc.posted_at,
                             [NewMove(_pair(doc, ln.product_id), -ln.qty_m, line_id=ln.id) for ln in lines])
    src = _sources(session, outs)
    ins = [NewMove(_pair(doc, ln.product_id, transit.id, dest.store_id), ln.qty_m, CostMode.LINKED,
                   ledger.linked_value(*src[out_id], ln.qty_m), source_move_id=out_id, line_id=ln.id)
           for ln, out_id in zip(lines, outs, strict=True)]
    ledger.post_moves(session, cfg, doc.doc_type, doc.id, doc.posted_at, ins)
    _transition_codes(session, doc, lines, CodeEvent.SHIP)


def _sources(session: Session, move_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(qty_m, value_kop) of many transfer-out rows in one query, for :func:`ledger.linked_value`."""
    ids = list(set(move_ids))
    if not ids:
        return {}
    return {r[0]: (r[1], r[2]) for r in session.execute(
        sa_select(T.c.id, T.c.qty_m, T.c.value_kop).where(T.c.id.in_(ids)))}


def receive_transfer(session: Session, tenant_id: int, document_id: int, data: ReceiveIn) -> DocumentPublic:
    """Receive a shipped transfer: arrived quantities into the destination, short ones as a loss, extra as a gain."""
    doc = _get(session, tenant_id, document_id)
    if doc.doc_type != DocType.TRANSFER.value:
        raise Invalid(f"документ «{_doc_ru(doc)}» — не перемещение", code="not_a_transfer")
    _require(doc, DocStatus.POSTED, "принять")
    dest = session.get_one(Warehouse, doc.dest_warehouse_id)
    at = data.received_at or utcnow()
    if at.tzinfo is None:
        raise Invalid("received_at: укажите часовой пояс", code="naive_datetime")
    if at < doc.posted_at:
        raise Invalid(f"документ «{_doc_ru(doc)}»: приёмка {at.isoformat()} раньше отгрузки "
                      f"{doc.posted_at.isoformat()}", code="received_before_shipped")
    _check_open(session, doc, at, dest.store_id)
    cfg = ledger.settings_of(session, tenant_id)
    lines = _lines(session, doc)
    by_no = {ln.line_no: ln for ln in lines}
    received = {ln.line_no: ln.qty_m for ln in lines}
    products = _products(session, {by_no[i.line_no].product_id for i in data.lines if i.line_no in by_no})
    for item in data.lines:
        if item.line_no not in by_no:
            raise Invalid(f"{_where(_doc_ru(doc), item.line_no)}: такой строки нет", code="bad_line")
        product = products[by_no[item.line_no].product_id]
        received[item.line_no] = to_base_m(session, product, item.quantity, by_no[item.line_no].unit)
    transit_pair_store = dest.store_id
    outs = session.execute(
        sa_select(T.c.id, T.c.line_id).where(T.c.document_id == doc.id, T.c.qty_m < 0, T.c.cancelled.is_(False),
                                          T.c.warehouse_id == doc.warehouse_id)
    ).all()
    source_of = {r.line_id: r.id for r in outs}
    sources = _sources(session, source_of.values())

    def _linked(source_id: int, qty_m: int) -> int:
        return ledger.linked_value(*sources[source_id], qty_m)

    transit_out: list[NewMove] = []
    dest_in: list[NewMove] = []
    for ln in lines:
        got = received[ln.line_no]
        src = source_of[ln.id]
        ln.received_qty_m = got
        session.add(ln)
        transit = _pair(doc, ln.product_id, doc.transit_warehouse_id, transit_pair_store)
        target = _pair(doc, ln.product_id, dest.id, dest.store_id)
        arrived = min(got, ln.qty_m)
        if arrived:
            transit_out.append(NewMove(transit, -arrived, CostMode.LINKED, _linked(src, arrived), src, ln.id))
            dest_in.append(NewMove(target, arrived, CostMode.LINKED, _linked(src, arrived), src, ln.id))
        if got < ln.qty_m:  # short: leaves transit as a loss at the transfer's cost
            short = ln.qty_m - got
            transit_out.append(NewMove(transit, -short, CostMode.LINKED, _linked(src, short), src, ln.id,
                                       reason="transfer_shortage"))
        if got > ln.qty_m:  # over: enters the destination as a gain at the transfer's unit cost
            over = got - ln.qty_m
            dest_in.append(NewMove(target, over, CostMode.LINKED, _linked(src, over), src, ln.id,
                                   reason="transfer_surplus"))
    try:
        ledger.post_moves(session, cfg, doc.doc_type, doc.id, at, transit_out)
        ledger.post_moves(session, cfg, doc.doc_type, doc.id, at, dest_in)
    except NegativeStock as exc:
        raise _negative(session, doc, exc, "принять") from exc
    _transition_codes(session, doc, lines, CodeEvent.ARRIVE, dest.id)
    doc.status = DocStatus.RECEIVED.value
    doc.received_at = at
    doc.status_changed_at = utcnow()
    session.add(doc)
    session.commit()
    return document_public(session, doc, lines=lines)


# ---------------------------------------------------------------- stock counts


def start_count(session: Session, tenant_id: int, author_id: int | None, data: DocumentIn) -> DocumentPublic:
    """A stock count: the book quantities of the warehouse at ``posted_at`` are its expected snapshot."""
    data = data.model_copy(update={"lines": []})
    _store_warehouse(session, tenant_id, data.store_id, data.warehouse_id)
    at = data.posted_at or utcnow()
    doc = StockDocument(tenant_id=tenant_id, store_id=data.store_id, doc_type=DocType.STOCK_COUNT.value, number=0,
                        posted_at=at, warehouse_id=data.warehouse_id, author_id=author_id, comment=data.comment)
    doc.number = _next_number(session, tenant_id, data.store_id, DocType.STOCK_COUNT.value)
    session.add(doc)
    session.flush()
    book = [r for r in ledger.balances_at(session, tenant_id, at, warehouse_id=data.warehouse_id) if r[3] != 0]
    products = _products(session, {r[1] for r in book})
    for no, (_store, product_id, _wh, qty_m, _value) in enumerate(book, start=1):
        product = products[product_id]
        session.add(StockDocumentLine(document_id=doc.id or 0, line_no=no, product_id=product_id,
                                      unit=product.base_unit, qty_m=0, expected_qty_m=qty_m))
    session.commit()
    return document_public(session, doc)


def add_counted(session: Session, tenant_id: int, document_id: int, items: Sequence[CountLineIn]) -> DocumentPublic:
    doc = _get(session, tenant_id, document_id)
    if doc.doc_type != DocType.STOCK_COUNT.value:
        raise Invalid(f"документ «{_doc_ru(doc)}» — не инвентаризация", code="not_a_count")
    _require(doc, DocStatus.DRAFT, "вносить подсчёт")
    lines = {ln.product_id: ln for ln in _lines(session, doc)}
    next_no = max((ln.line_no for ln in lines.values()), default=0)
    for item in items:
        product = get_product(session, tenant_id, item.product_id)
        where = _where(_doc_ru(doc), None, product)
        try:
            qty_m = to_base_m(session, product, item.quantity, item.unit)
        except Invalid as exc:
            raise Invalid(f"{where}: {exc.message}", code=exc.code) from exc
        if item.counted_at is not None and item.counted_at.tzinfo is None:
            raise Invalid(f"{where}: counted_at без часового пояса", code="naive_datetime")
        line = lines.get(product.id or 0)
        if line is None:
            next_no += 1
            expected, _ = ledger.balance_at(session, _pair(doc, product.id or 0), doc.posted_at)
            line = StockDocumentLine(document_id=doc.id or 0, line_no=next_no, product_id=product.id or 0,
                                     unit=product.base_unit, qty_m=0, expected_qty_m=expected)
            lines[product.id or 0] = line
        line.qty_m = qty_m
        line.counted_at = item.counted_at or utcnow()
        session.add(line)
    session.commit()
    return document_public(session, doc)


def _outdated_lines(session: Session, doc: StockDocument, lines: list[StockDocumentLine]) -> set[int]:
    """Counted lines whose stock moved between their counting and the count's moment (Odoo ``is_outdated``)."""
    out: set[int] = set()
    for ln in lines:
        if ln.counted_at is None:
            continue
        lo, hi = sorted((ln.counted_at, doc.posted_at))
        moved = session.execute(
            sa_select(T.c.id).where(T.c.product_id == ln.product_id, T.c.warehouse_id == doc.warehouse_id,
                                 T.c.posted_at > lo, T.c.posted_at <= hi, T.c.cancelled.is_(False),
                                 (T.c.document_id.is_(None)) | (T.c.document_id != doc.id)).limit(1)
        ).first()
        if moved is not None:
            out.add(ln.line_no)
    return out


def _post_count(session: Session, cfg: InventorySettings, doc: StockDocument, lines: list[StockDocumentLine]) -> set[int]:
    counted = [ln for ln in lines if ln.counted_at is not None]
    if not counted:
        raise Invalid(f"документ «{_doc_ru(doc)}»: ни одна строка не подсчитана", code="nothing_counted")
    outdated = _outdated_lines(session, doc, counted)
    ledger.lock_pairs(session, sorted({_pair(doc, ln.product_id) for ln in counted},
                                      key=lambda p: (p.product_id, p.warehouse_id)))
    books = {r[1]: r[3] for r in ledger.balances_at(session, doc.tenant_id, doc.posted_at, warehouse_id=doc.warehouse_id,
                                                     product_ids={ln.product_id for ln in counted})}
    moves = []
    for ln in counted:
        book = books.get(ln.product_id, 0)
        diff = ln.qty_m - book
        if diff:
            moves.append(NewMove(_pair(doc, ln.product_id), diff, line_id=ln.id,
                                 reason="count_surplus" if diff > 0 else "count_shortage"))
    ledger.post_moves(session, cfg, doc.doc_type, doc.id, doc.posted_at, moves)
    return outdated


# ---------------------------------------------------------------- cancelling


def cancel_document(session: Session, tenant_id: int, document_id: int) -> DocumentPublic:
    doc = _get(session, tenant_id, document_id)
    if doc.status not in (DocStatus.POSTED.value, DocStatus.RECEIVED.value, DocStatus.DRAFT.value):
        _require(doc, DocStatus.POSTED, "отменить")
    if doc.status != DocStatus.DRAFT.value:
        _check_open(session, doc, doc.posted_at)
        if doc.received_at is not None and doc.dest_warehouse_id is not None:
            _check_open(session, doc, doc.received_at, session.get_one(Warehouse, doc.dest_warehouse_id).store_id)
        if doc.doc_type == DocType.RECEIPT.value:
            returns = session.exec(
                select(StockDocument.number).where(
                    StockDocument.return_of_id == doc.id, StockDocument.status == DocStatus.POSTED.value)
            ).all()
            if returns:
                raise Conflict(f"документ «{_doc_ru(doc)}»: сначала отмените возвраты поставщику "
                               f"№{', №'.join(map(str, returns))}", code="has_dependent_documents")
        cfg = ledger.settings_of(session, tenant_id)
        ids = session.execute(
            sa_select(T.c.id).where(T.c.document_id == doc.id, T.c.cancelled.is_(False))
        ).scalars().all()
        try:
            ledger.cancel_moves(session, cfg, ids)
        except NegativeStock as exc:
            raise _negative(session, doc, exc, "отменить") from exc
        lines = _lines(session, doc)
        if doc.doc_type == DocType.RECEIPT.value:
            marking.cancel_receipt(session, tenant_id, doc.id or 0, _where(_doc_ru(doc)))
        elif doc.doc_type != DocType.STOCK_COUNT.value:
            _transition_codes(session, doc, lines, CodeEvent.UNDO, doc.warehouse_id)
    doc.status = DocStatus.CANCELLED.value
    doc.status_changed_at = utcnow()
    session.add(doc)
    session.commit()
    return document_public(session, doc)


# ---------------------------------------------------------------- sales (for the sales module)


def post_sale(session: Session, tenant_id: int, store_id: int, warehouse_id: int, posted_at: datetime,
              items: Sequence[tuple[int, Decimal]]) -> list[int]:
    """Write off sold goods at cost (caller commits with its own sale). Returns the ledger row ids."""
    cfg = ledger.settings_of(session, tenant_id)
    closed = ledger.closed_through(session, tenant_id, store_id)
    if closed is not None and posted_at <= closed:
        raise Conflict(f"продажа {posted_at.isoformat()}: период по {closed.isoformat()} закрыт", code="period_closed")
    moves = []
    for product_id, qty in items:
        product = get_product(session, tenant_id, product_id)
        qty_m = to_base_m(session, product, qty, None)
        if qty_m <= 0:
            raise Invalid(f"продажа, товар {product.sku}: количество {qty} должно быть больше нуля", code="bad_quantity")
        moves.append(NewMove(Pair(tenant_id, store_id, product_id, warehouse_id), -qty_m))
    try:
        return ledger.post_moves(session, cfg, DocType.SALE.value, None, posted_at, moves)
    except NegativeStock as exc:
        v = exc.violation
        product = session.get_one(Product, v.pair.product_id)
        raise Conflict(f"продажа: товар {product.sku} «{product.name}» на складе {v.pair.warehouse_id}: доступно "
                       f"{from_milli(v.available_m)}, требуется {from_milli(v.requested_m)}", code="negative_stock") from exc


@dataclass(frozen=True)
class SaleWriteOff:
    """One sale of a batch for :func:`post_sales`: its goods off ``warehouse_id`` at ``posted_at``.

    ``items`` are (product id, quantity in thousandths of the product's base unit), as a sale line
    stores them, so nothing has to be looked up to convert them.
    """

    store_id: int
    warehouse_id: int
    posted_at: datetime
    items: Sequence[tuple[int, int]]


class SalesRefused(Conflict):
    """:func:`post_sales` refuses the batch because of ``sales`` (their indexes): the rest may post without them."""

    def __init__(self, message: str, *, code: str, sales: Sequence[int]) -> None:
        super().__init__(message, code=code, extra={"sales": list(sales)})
        self.sales = list(sales)


def post_sales(session: Session, tenant_id: int, sales: Sequence[SaleWriteOff]) -> list[list[int]]:
    """Write off many sales in one ledger posting; per sale, the ledger row ids of its items.

    Sales ingestion posts a page of receipts at once: :func:`post_sale` per receipt costs some
    ten statements each, this costs the same few for the whole page (settings, closed periods,
    products, then :func:`ledger.post_moves` with each row at its own sale's moment). The rules are
    :func:`post_sale`'s. A refusal (closed period, bad quantity, unknown product, negative stock)
    raises :class:`SalesRefused` naming *every* sale it concerns (for negative stock, every sale of
    the pair that ran out), so the caller rolls back, sets those aside for :func:`post_sale` one by
    one (whose message and line-by-line outcome it reports) and posts the rest again.
    """
    if not sales:
        return []
    cfg = ledger.settings_of(session, tenant_id)
    periods = session.execute(
        sa_select(ClosedPeriod.store_id, ClosedPeriod.closed_through).where(  # type: ignore[call-overload]
            ClosedPeriod.tenant_id == tenant_id)
    ).all()
    closed: dict[int, datetime | None] = {
        store: max((c for st, c in periods if st is None or st == store), default=None)
        for store in {s.store_id for s in sales}}
    late = [i for i, s in enumerate(sales) if (c := closed[s.store_id]) is not None and s.posted_at <= c]
    if late:
        raise SalesRefused(f"продажи в закрытом периоде: {len(late)}", code="period_closed", sales=late)
    bad = [i for i, s in enumerate(sales) if any(qty_m <= 0 for _p, qty_m in s.items)]
    if bad:
        raise SalesRefused(f"продажи с количеством не больше нуля: {len(bad)}", code="bad_quantity", sales=bad)
    wanted = sorted({p for s in sales for p, _q in s.items})
    known = set(session.execute(sa_select(col(Product.id)).where(col(Product.tenant_id) == tenant_id,
                                                                  col(Product.id).in_(wanted))).scalars())
    unknown = [i for i, s in enumerate(sales) if any(p not in known for p, _q in s.items)]
    if unknown:
        raise SalesRefused(f"продажи товаров, которых нет в каталоге: {len(unknown)}", code="product_not_found",
                           sales=unknown)
    moves: list[NewMove] = []
    owner: list[int] = []
    for i, s in enumerate(sales):
        for product_id, qty_m in s.items:
            moves.append(NewMove(Pair(tenant_id, s.store_id, product_id, s.warehouse_id), -qty_m,
                                 posted_at=s.posted_at))
            owner.append(i)
    try:
        ids = ledger.post_moves(session, cfg, DocType.SALE.value, None, sales[0].posted_at, moves)
    except NegativeStock as exc:
        pair = exc.violation.pair
        hit = sorted({i for m, i in zip(moves, owner, strict=True) if m.pair == pair})
        raise SalesRefused(f"продажи: товара {pair.product_id} на складе {pair.warehouse_id} не хватает",
                           code="negative_stock", sales=hit) from exc
    out: list[list[int]] = [[] for _s in sales]
    for i, move_id in zip(owner, ids, strict=True):
        out[i].append(move_id)
    return out


def cancel_sale(session: Session, tenant_id: int, move_ids: Sequence[int]) -> None:
    owned = session.execute(
        sa_select(func.count()).select_from(T).where(T.c.id.in_(list(move_ids)), T.c.tenant_id == tenant_id)
    ).scalar()
    if owned != len(set(move_ids)):
        raise NotFound("движения продажи не найдены", code="moves_not_found")
    ledger.cancel_moves(session, ledger.settings_of(session, tenant_id), move_ids)


def pending_recomputes(session: Session, tenant_id: int) -> list[dict[str, Any]]:
    B = ledger.B
    rows = session.execute(
        sa_select(B.c.product_id, B.c.warehouse_id, B.c.dirty_from, B.c.dirty_from_id)
        .where(B.c.tenant_id == tenant_id, B.c.dirty_from.is_not(None))
    ).all()
    return [{"product_id": r[0], "warehouse_id": r[1], "from": r[2], "from_move_id": r[3]} for r in rows]

