"""Marking-code rules: structure validated by :mod:`protocols.barcodes`, one row per code per
tenant (unique ``identity``), and every state change through :data:`TRANSITIONS`.

Functions run inside the caller's transaction and never commit; ``where`` is the Russian
description of the document line, prefixed to every message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cloud.base import utcnow
from cloud.errors import Conflict, Invalid, NotFound
from cloud.marking.models import (
    STATE_RU,
    TRANSITIONS,
    CodeEvent,
    CodeState,
    MarkingCodePublic,
    MarkingCodeRow,
    MarkingEvent,
    MarkingEventPublic,
)
from protocols.barcodes import AggregateCode, InvalidBarcode, MarkingCode, parse_marking


@dataclass(frozen=True)
class Box:
    raw: str
    children: tuple[str, ...]


def parse_unit(raw: str, where: str) -> MarkingCode:
    """A unit's marking code, or :class:`Invalid` saying what is wrong with it and where."""
    try:
        code = parse_marking(raw)
    except InvalidBarcode as exc:
        raise Invalid(f"{where}: код маркировки {raw[:60]!r} не разобран: {exc}", code="bad_marking_code") from exc
    if isinstance(code, AggregateCode):
        raise Invalid(f"{where}: {raw[:60]!r} — код коробки (SSCC); укажите его в boxes вместе с вложенными кодами",
                      code="box_code_as_unit")
    return code


def parse_box(raw: str, where: str) -> AggregateCode:
    try:
        code = parse_marking(raw)
    except InvalidBarcode as exc:
        raise Invalid(f"{where}: код коробки {raw[:60]!r} не разобран: {exc}", code="bad_marking_code") from exc
    if not isinstance(code, AggregateCode):
        raise Invalid(f"{where}: {raw[:60]!r} — код единицы товара, а не коробки (SSCC, AI 00)", code="not_a_box")
    return code


def identities(codes: Sequence[str], boxes: Sequence[Box], gtins: set[str], where: str) -> list[str]:
    """Validate a line's unit codes (loose and in boxes): structure, GTIN of the product, no repeats."""
    seen: set[str] = set()
    out: list[str] = []
    if not gtins:
        raise Invalid(f"{where}: у маркируемого товара нет штрихкода с GTIN — коды не с чем сверить",
                      code="product_without_gtin")
    for raw in [*codes, *(c for b in boxes for c in b.children)]:
        unit = parse_unit(raw, where)
        if unit.gtin not in gtins:
            raise Invalid(f"{where}: код {unit.identity} другого товара (GTIN {unit.gtin}, ожидается "
                          f"{', '.join(sorted(gtins))})", code="marking_gtin_mismatch")
        if unit.identity in seen:
            raise Invalid(f"{where}: код {unit.identity} указан дважды", code="duplicate_marking_code")
        seen.add(unit.identity)
        out.append(unit.identity)
    for box in boxes:
        parse_box(box.raw, where)
        if not box.children:
            raise Invalid(f"{where}: коробка {box.raw} без вложенных кодов", code="empty_box")
    return out


def _move(session: Session, row: MarkingCodeRow, event: CodeEvent, document_id: int | None, where: str) -> None:
    state = CodeState(row.state)
    target = TRANSITIONS.get((state, event))
    if target is None:
        raise Conflict(
            f"{where}: код {row.identity} {STATE_RU[state]} (документ {row.document_id}); действие «{event.value}» "
            "для него недопустимо",
            code="marking_state_conflict",
            extra={"identity": row.identity, "state": state.value, "event": event.value},
        )
    row.state = target.value
    row.document_id = document_id
    row.updated_at = utcnow()
    session.add(row)
    assert row.id is not None
    session.add(MarkingEvent(code_id=row.id, event=event.value, from_state=state.value, to_state=target.value,
                             document_id=document_id))


def receive(session: Session, tenant_id: int, product_id: int, warehouse_id: int, codes: Sequence[str],
            boxes: Sequence[Box], document_id: int, where: str) -> None:
    """Register the codes of a posted receipt line as in stock (boxes as parents of their children)."""
    parent_of: dict[str, int | None] = {}
    for box in boxes:
        agg = parse_box(box.raw, where)
        box_row = _get_or_new(session, tenant_id, "00" + agg.sscc, box.raw, None, product_id, True, where)
        _receive_row(session, box_row, warehouse_id, document_id, where)
        for child in box.children:
            parent_of[parse_unit(child, where).identity] = box_row.id
    for raw in [*codes, *(c for b in boxes for c in b.children)]:
        unit = parse_unit(raw, where)
        row = _get_or_new(session, tenant_id, unit.identity, raw, unit.gtin, product_id, False, where)
        row.parent_id = parent_of.get(unit.identity)
        _receive_row(session, row, warehouse_id, document_id, where)


def _get_or_new(session: Session, tenant_id: int, identity: str, raw: str, gtin: str | None, product_id: int,
                is_box: bool, where: str) -> MarkingCodeRow:
    row = session.exec(
        select(MarkingCodeRow).where(MarkingCodeRow.tenant_id == tenant_id, MarkingCodeRow.identity == identity)
        .with_for_update()
    ).first()
    if row is not None:
        if row.state != CodeState.VOID.value:
            raise Conflict(f"{where}: код {identity} уже принят (документ {row.receipt_id}, {STATE_RU[CodeState(row.state)]})",
                           code="marking_code_received_twice", extra={"identity": identity})
        row.product_id = product_id
        return row
    row = MarkingCodeRow(tenant_id=tenant_id, identity=identity, raw=raw, gtin=gtin, product_id=product_id,
                         is_box=is_box, state=CodeState.VOID.value)
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # received by a concurrent transaction
        raise Conflict(f"{where}: код {identity} уже принят", code="marking_code_received_twice") from exc
    return row


def _receive_row(session: Session, row: MarkingCodeRow, warehouse_id: int, document_id: int, where: str) -> None:
    _move(session, row, CodeEvent.RECEIVE, document_id, where)
    _move(session, row, CodeEvent.POST_RECEIPT, document_id, where)
    row.receipt_id = document_id
    row.warehouse_id = warehouse_id


def transition(session: Session, tenant_id: int, product_id: int | None, identities_: Sequence[str],
               event: CodeEvent, document_id: int | None, where: str, warehouse_id: int | None = None) -> None:
    """Apply ``event`` to each code (all of them or none: the caller's transaction rolls back)."""
    if len(set(identities_)) != len(identities_):
        raise Invalid(f"{where}: коды маркировки повторяются", code="duplicate_marking_code")
    rows = {
        r.identity: r
        for r in session.exec(
            select(MarkingCodeRow).where(MarkingCodeRow.tenant_id == tenant_id,
                                         col(MarkingCodeRow.identity).in_(list(identities_))).with_for_update()
        ).all()
    }
    for identity in identities_:
        row = rows.get(identity)
        if row is None:
            raise Conflict(f"{where}: код {identity} не поступал", code="marking_code_unknown",
                           extra={"identity": identity})
        if product_id is not None and row.product_id != product_id:
            raise Invalid(f"{where}: код {identity} принадлежит другому товару ({row.product_id})",
                          code="marking_product_mismatch")
        _move(session, row, event, document_id, where)
        if warehouse_id is not None:
            row.warehouse_id = warehouse_id
    parents = {r.parent_id for r in rows.values() if r.parent_id is not None}
    for parent in session.exec(select(MarkingCodeRow).where(col(MarkingCodeRow.id).in_(parents))).all():
        parent.state = CodeState.VOID.value if event is CodeEvent.CANCEL_RECEIPT else parent.state
        session.add(parent)  # a box opened by selling/moving its units keeps its history, not a state


def cancel_receipt(session: Session, tenant_id: int, document_id: int, where: str) -> None:
    rows = session.exec(
        select(MarkingCodeRow).where(MarkingCodeRow.tenant_id == tenant_id, MarkingCodeRow.receipt_id == document_id)
        .with_for_update()
    ).all()
    for row in rows:
        if row.is_box:
            row.state = CodeState.VOID.value
            session.add(row)
            continue
        _move(session, row, CodeEvent.CANCEL_RECEIPT, document_id, where)


def sell(session: Session, tenant_id: int, raw_codes: Sequence[str], document_id: int | None = None) -> None:
    """Mark codes sold (for the sales module). A code can be sold once: a second sale is a conflict."""
    ids = [parse_unit(raw, "продажа").identity for raw in raw_codes]
    transition(session, tenant_id, None, ids, CodeEvent.SELL, document_id, "продажа")


def get_code(session: Session, tenant_id: int, raw_or_identity: str) -> MarkingCodePublic:
    identity = raw_or_identity
    if not identity.startswith("00") or len(identity) != 20:
        try:
            identity = parse_unit(raw_or_identity, "поиск").identity
        except Invalid:
            identity = raw_or_identity
    row = session.exec(
        select(MarkingCodeRow).where(MarkingCodeRow.tenant_id == tenant_id, MarkingCodeRow.identity == identity)
    ).first()
    if row is None:
        raise NotFound(f"код маркировки {identity} не найден", code="marking_code_not_found")
    return MarkingCodePublic.model_validate(row, from_attributes=True)


def history(session: Session, tenant_id: int, raw_or_identity: str) -> list[MarkingEventPublic]:
    code = get_code(session, tenant_id, raw_or_identity)
    rows = session.exec(select(MarkingEvent).where(MarkingEvent.code_id == code.id).order_by(col(MarkingEvent.id))).all()
    return [MarkingEventPublic.model_validate(r, from_attributes=True) for r in rows]


def list_codes(session: Session, tenant_id: int, product_id: int | None = None, state: str | None = None,
               limit: int = 100, offset: int = 0) -> list[MarkingCodePublic]:
    query = select(MarkingCodeRow).where(MarkingCodeRow.tenant_id == tenant_id)
    if product_id is not None:
        query = query.where(MarkingCodeRow.product_id == product_id)
    if state is not None:
        query = query.where(MarkingCodeRow.state == state)
    rows = session.exec(query.order_by(col(MarkingCodeRow.id)).offset(offset).limit(limit)).all()
    return [MarkingCodePublic.model_validate(r, from_attributes=True) for r in rows]
