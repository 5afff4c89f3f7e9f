"""Operations once stored: read them, enter one by hand, allocate by hand, by the rules over a
period or by accepting a suggestion; how much the rules cover and what hand allocations teach.

Every change of an operation's parts moves the totals by the same signed amounts
(:class:`~cloud.finance.totals.Deltas`) in the transaction that changes them. New lines come
in through :mod:`cloud.finance.ingest` (files through :mod:`cloud.finance.imports`); the rules
live in :mod:`cloud.finance.rules`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlmodel import Session

from cloud.base import utcnow
from cloud.catalog.units import from_kop, to_kop
from cloud.errors import Conflict, Invalid, NotFound
from cloud.finance.allocation import HUNDRED, RuleSet, Share
from cloud.finance.articles import Statement
from cloud.finance.ingest import NewOp, ingest, plan_operation
from cloud.finance.models import (
    FinOperation,
    FinOperationPart,
    OperationIn,
    OperationPublic,
    OpStatus,
    PartIn,
    PartOrigin,
    PartPublic,
    RuleIn,
)
from cloud.finance.operations import BankOperation
from cloud.finance.rules import load_rules
from cloud.finance.setup import Names, names
from cloud.finance.suggestions import suggest_rules
from cloud.finance.totals import CHUNK, Deltas, month_of
from protocols.onec import Direction

OPS = FinOperation.__table__  # type: ignore[attr-defined]
PARTS = FinOperationPart.__table__  # type: ignore[attr-defined]


# ---------------------------------------------------------------- operations: read, enter, allocate


def _bank_op(row: FinOperation, account_no: str) -> BankOperation:
    return BankOperation(row.dedupe_key, row.booked_on, account_no, Direction(row.direction), from_kop(row.amount_kop),
                         row.counterparty_inn, row.counterparty_name, row.counterparty_account, row.purpose)


def _op_public(session: Session, n: Names, row: FinOperation, parts: list[FinOperationPart] | None = None) -> OperationPublic:
    assert row.id is not None
    if parts is None:
        parts = list(session.scalars(select(FinOperationPart).where(FinOperationPart.operation_id == row.id).order_by(FinOperationPart.id)))  # type: ignore[arg-type]
    account = next(a.number for a in n.accounts.values() if a.id == row.account_id)
    return OperationPublic(
        id=row.id, account=account, booked_on=row.booked_on, direction=row.direction, amount=from_kop(row.amount_kop),
        counterparty_inn=row.counterparty_inn, counterparty_name=row.counterparty_name, purpose=row.purpose,
        doc_number=row.doc_number, status=row.status, suggestion=row.suggestion,
        parts=[part_public(n, p, row, {}) for p in parts],
    )


def part_public(n: Names, p: FinOperationPart, op: FinOperation | None, rule_names: dict[int, str]) -> PartPublic:
    assert p.id is not None
    account = next((a.number for a in n.accounts.values() if a.id == p.account_id), "")
    return PartPublic(
        id=p.id, operation_id=p.operation_id, article=n.by_id[p.article_id].code, cfo=n.cfo_code(p.cfo_id),
        project=n.project_code(p.project_id), accrual_month=p.accrual_month, amount=from_kop(p.amount_kop),
        origin=p.origin, rule=rule_names.get(p.rule_id) if p.rule_id else None, user_id=p.user_id,
        booked_on=p.booked_on, direction=p.direction, account=account,
        counterparty_name=op.counterparty_name if op else "", purpose=op.purpose if op else "",
    )


def get_operation(session: Session, tenant_id: int, op_id: int) -> OperationPublic:
    row = session.get(FinOperation, op_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"операция {op_id} не найдена")
    return _op_public(session, names(session, tenant_id), row)


def list_operations(session: Session, tenant_id: int, date_from: dt.date, date_to: dt.date, status: str | None,
                    limit: int, offset: int) -> list[OperationPublic]:
    stmt = select(FinOperation).where(FinOperation.tenant_id == tenant_id, FinOperation.booked_on >= date_from,  # type: ignore[arg-type]
                                      FinOperation.booked_on <= date_to)  # type: ignore[arg-type]
    if status:
        stmt = stmt.where(FinOperation.status == status)  # type: ignore[arg-type]
    rows = list(session.scalars(stmt.order_by(FinOperation.booked_on, FinOperation.id).limit(limit).offset(offset)))  # type: ignore[arg-type]
    n = names(session, tenant_id)
    return [_op_public(session, n, r) for r in rows]


def _parts_from_input(n: Names, op: FinOperation, parts: Sequence[PartIn], user_id: int | None) -> list[dict[str, Any]]:
    if not parts:
        raise Invalid(f"операция {op.id}: не указано ни одной части", code="no_parts")
    total = sum((p.amount for p in parts), Decimal(0))
    if to_kop(total) != op.amount_kop:
        raise Invalid(
            f"операция {op.id}: части в сумме {total}, а операция на {from_kop(op.amount_kop)}",
            code="parts_sum_mismatch",
        )
    out = []
    for i, p in enumerate(parts, 1):
        where = f"операция {op.id}, часть {i}"
        if p.amount <= 0 or p.amount != p.amount.quantize(Decimal("0.01")):
            raise Invalid(f"{where}: сумма {p.amount} должна быть больше нуля и в копейках", code="bad_part_amount")
        art = n.article(p.article, where)
        tree = n.tree()
        if art.statement != Statement.CASH_FLOW or not tree.is_leaf(art.code):
            raise Invalid(f"{where}: статья {art.code} — не конечная статья ДДС", code="not_a_cash_flow_leaf")
        out.append({"tenant_id": op.tenant_id, "operation_id": op.id, "account_id": op.account_id,
                    "booked_on": op.booked_on, "direction": op.direction, "article_id": art.id,
                    "cfo_id": n.cfo(p.cfo, where), "project_id": n.project(p.project, where),
                    "accrual_month": month_of(p.accrual_month or op.booked_on), "amount_kop": to_kop(p.amount),
                    "origin": PartOrigin.PERSON.value, "rule_id": None, "user_id": user_id})
    return out


def _replace_parts(session: Session, op: FinOperation, new_parts: list[dict[str, Any]], deltas: Deltas,
                   status: str, origin: str) -> None:
    """Swap an operation's parts and move the totals: old parts (or the unallocated rest) out, new in."""
    sign = 1 if op.direction == Direction.INFLOW.value else -1
    old = list(session.scalars(select(FinOperationPart).where(FinOperationPart.operation_id == op.id)))  # type: ignore[arg-type]
    if old:
        for p in old:
            deltas.add(p.article_id, p.cfo_id, p.project_id, op.account_id, op.booked_on, p.accrual_month, -sign * p.amount_kop, -1)
        session.execute(delete(PARTS).where(PARTS.c.operation_id == op.id))
    else:
        deltas.add(0, None, None, op.account_id, op.booked_on, month_of(op.booked_on), -sign * op.amount_kop, 0)
    if new_parts:
        session.execute(PARTS.insert(), new_parts)
        for new in new_parts:
            deltas.add(new["article_id"], new["cfo_id"], new["project_id"], op.account_id, op.booked_on, new["accrual_month"], sign * new["amount_kop"], 1)
    else:
        deltas.add(0, None, None, op.account_id, op.booked_on, month_of(op.booked_on), sign * op.amount_kop, 0)
    op.status, op.origin = status, origin
    if status == OpStatus.ALLOCATED:
        op.suggestion = None
    session.add(op)


def allocate_by_hand(session: Session, tenant_id: int, op_id: int, parts: Sequence[PartIn], user_id: int | None) -> OperationPublic:
    op = session.get(FinOperation, op_id)
    if op is None or op.tenant_id != tenant_id:
        raise NotFound(f"операция {op_id} не найдена")
    n = names(session, tenant_id)
    rows = _parts_from_input(n, op, parts, user_id)
    deltas = Deltas(tenant_id)
    _replace_parts(session, op, rows, deltas, OpStatus.ALLOCATED.value, PartOrigin.PERSON.value)
    deltas.flush(session)
    session.commit()
    return _op_public(session, n, op)


def create_operation(session: Session, tenant_id: int, data: OperationIn, user_id: int | None) -> OperationPublic:
    """A movement entered by hand (cash desk); parts, if given, are allocated by that person."""
    n = names(session, tenant_id)
    account = n.account(data.account, "операция, поле account")
    if data.direction not in (Direction.INFLOW.value, Direction.OUTFLOW.value):
        raise Invalid(f"операция: направление {data.direction!r} — не inflow и не outflow", code="bad_direction")
    raw = "|".join((data.account, data.direction, data.booked_on.isoformat(), data.doc_number, str(to_kop(data.amount)),
                    data.counterparty_inn, data.purpose, utcnow().isoformat()))
    op = BankOperation("man:" + hashlib.sha256(raw.encode()).hexdigest()[:32], data.booked_on, data.account,
                       Direction(data.direction), data.amount, data.counterparty_inn, data.counterparty_name, "", data.purpose)
    assert account.id is not None
    result = ingest(session, tenant_id, [NewOp(op, account.id, data.doc_number)], n=n)
    row = session.get(FinOperation, result.operation_ids[0])
    assert row is not None
    if data.parts:
        deltas = Deltas(tenant_id)
        _replace_parts(session, row, _parts_from_input(n, row, data.parts, user_id), deltas,
                       OpStatus.ALLOCATED.value, PartOrigin.PERSON.value)
        deltas.flush(session)
    session.commit()
    return _op_public(session, n, row)


def allocate_period(session: Session, tenant_id: int, date_from: dt.date, date_to: dt.date,
                    reallocate_rules: bool = False) -> dict[str, int]:
    """Apply the rules to the period's operations nobody allocated (and, if asked, to those rules did)."""
    n = names(session, tenant_id)
    rules = load_rules(session, tenant_id, n)
    accounts = {a.id: a.number for a in n.accounts.values()}
    targets = [OpStatus.UNALLOCATED.value, OpStatus.SUGGESTED.value]
    cond = FinOperation.status.in_(targets)  # type: ignore[attr-defined]
    if reallocate_rules:
        cond = or_(cond, FinOperation.origin == PartOrigin.RULE.value)  # type: ignore[arg-type]
    rows = list(session.scalars(select(FinOperation).where(
        FinOperation.tenant_id == tenant_id, FinOperation.booked_on >= date_from, FinOperation.booked_on <= date_to, cond,  # type: ignore[arg-type]
    ).order_by(FinOperation.id)))  # type: ignore[arg-type]
    counts = {"considered": len(rows), "allocated": 0, "suggested": 0, "unallocated": 0}
    deltas = Deltas(tenant_id)
    for row in rows:
        status, origin, suggestion, parts = plan_operation(NewOp(_bank_op(row, accounts[row.account_id]), row.account_id), rules, n, tenant_id)
        for p in parts:
            p.update(tenant_id=tenant_id, operation_id=row.id, account_id=row.account_id, booked_on=row.booked_on, direction=row.direction)
        had_parts = row.status == OpStatus.ALLOCATED
        if parts or had_parts:
            _replace_parts(session, row, parts, deltas, status, origin)
        row.status, row.origin, row.suggestion = status, origin, suggestion
        session.add(row)
        counts["allocated" if parts else ("suggested" if suggestion else "unallocated")] += 1
    deltas.flush(session)
    session.commit()
    return counts


def accept_suggestion(session: Session, tenant_id: int, op_id: int, user_id: int | None) -> OperationPublic:
    op = session.get(FinOperation, op_id)
    if op is None or op.tenant_id != tenant_id:
        raise NotFound(f"операция {op_id} не найдена")
    if not op.suggestion:
        raise Conflict(f"у операции {op_id} нет предложенного разнесения", code="no_suggestion")
    parts = [PartIn(article=p["article"], amount=Decimal(p["amount"]), accrual_month=dt.date.fromisoformat(p["accrual_month"]),
                    cfo=p.get("cfo"), project=p.get("project")) for p in op.suggestion["parts"]]
    return allocate_by_hand(session, tenant_id, op_id, parts, user_id)


# ---------------------------------------------------------------- coverage and suggestions


def coverage(session: Session, tenant_id: int, date_from: dt.date, date_to: dt.date, top: int = 10) -> dict[str, Any]:
    """Share of operations allocated automatically (by rules or with the file) by count and by sum."""
    base = and_(OPS.c.tenant_id == tenant_id, OPS.c.booked_on >= date_from, OPS.c.booked_on <= date_to)
    rows = session.execute(
        select(OPS.c.status, OPS.c.origin, func.count(), func.coalesce(func.sum(OPS.c.amount_kop), 0)).where(base).group_by(OPS.c.status, OPS.c.origin)
    ).all()
    count_total = sum(r[2] for r in rows)
    sum_total = sum(int(r[3]) for r in rows)
    by = {"rule": [0, 0], "file": [0, 0], "person": [0, 0], "suggested": [0, 0], "unallocated": [0, 0]}
    for status, origin, count, kop in rows:
        key = origin if status == OpStatus.ALLOCATED else status
        by[key][0] += count
        by[key][1] += int(kop)
    auto_count, auto_sum = by["rule"][0] + by["file"][0], by["rule"][1] + by["file"][1]

    def pct(part: int, whole: int) -> Decimal:
        return (Decimal(part) * 100 / whole).quantize(Decimal("0.01")) if whole else Decimal("100.00")

    n = names(session, tenant_id)
    largest = list(session.scalars(select(FinOperation).where(
        FinOperation.tenant_id == tenant_id, FinOperation.booked_on >= date_from, FinOperation.booked_on <= date_to,  # type: ignore[arg-type]
        FinOperation.status != OpStatus.ALLOCATED.value,  # type: ignore[arg-type]
    ).order_by(FinOperation.amount_kop.desc(), FinOperation.id).limit(top)))  # type: ignore[attr-defined, arg-type]
    return {
        "date_from": date_from, "date_to": date_to,
        "count_total": count_total, "sum_total": from_kop(sum_total),
        "count_auto": auto_count, "sum_auto": from_kop(auto_sum),
        "share_auto_by_count_pct": pct(auto_count, count_total), "share_auto_by_sum_pct": pct(auto_sum, sum_total),
        "by_origin": {k: {"count": v[0], "sum": from_kop(v[1])} for k, v in by.items()},
        "largest_unallocated": [_op_public(session, n, r, []) for r in largest],
    }


def learned_suggestions(session: Session, tenant_id: int, date_from: dt.date, date_to: dt.date) -> list[dict[str, Any]]:
    """Rules learned from hand allocations of the period, each with its expected coverage:
    on that history (matched, agreeing) and on what is still unallocated now."""
    n = names(session, tenant_id)
    accounts = {a.id: a.number for a in n.accounts.values()}
    ops = {o.id: o for o in session.scalars(select(FinOperation).where(
        FinOperation.tenant_id == tenant_id, FinOperation.booked_on >= date_from, FinOperation.booked_on <= date_to,  # type: ignore[arg-type]
        FinOperation.origin == PartOrigin.PERSON.value))}  # type: ignore[arg-type]
    parts: dict[int, list[FinOperationPart]] = defaultdict(list)
    ids = list(ops)
    for start in range(0, len(ids), CHUNK):
        for p in session.scalars(select(FinOperationPart).where(FinOperationPart.operation_id.in_(ids[start:start + CHUNK]))):  # type: ignore[attr-defined]
            parts[p.operation_id].append(p)
    history = []
    for op_id, op in ops.items():
        ps = parts.get(op_id, [])  # type: ignore[arg-type]
        if len(ps) != 1:
            continue  # a split by hand is not a pattern a one-share rule can learn
        p = ps[0]
        shift = (p.accrual_month.year * 12 + p.accrual_month.month) - (op.booked_on.year * 12 + op.booked_on.month)
        history.append((_bank_op(op, accounts[op.account_id]),
                        Share(n.by_id[p.article_id].code, HUNDRED, n.cfo_code(p.cfo_id), n.project_code(p.project_id), shift)))
    suggestions = suggest_rules(history)
    pending = [
        _bank_op(o, accounts[o.account_id]) for o in session.scalars(select(FinOperation).where(
            FinOperation.tenant_id == tenant_id, FinOperation.status != OpStatus.ALLOCATED.value))  # type: ignore[arg-type]
    ]
    out = []
    for s in suggestions:
        one = RuleSet([s.rule], set(n.articles))
        hits = [op for op in pending if one.first_match(op) is not None]
        r = s.rule
        out.append({
            "rule": RuleIn.model_validate({
                "name": r.name[:200], "priority": r.priority, "suggest_only": r.suggest_only,
                "condition": {"direction": r.condition.direction.value if r.condition.direction else None,
                              "counterparty_inns": sorted(r.condition.counterparty_inns),
                              "counterparty_names": list(r.condition.counterparty_names),
                              "name_cutoff": r.condition.name_cutoff, "purpose_regex": r.condition.purpose_regex},
                "shares": [{"article": sh.article, "percent": sh.percent, "cfo": sh.cfo, "project": sh.project,
                            "month_shift": sh.month_shift} for sh in r.shares],
            }),
            "support": s.support, "history_matched": s.matched_count, "history_matched_sum": s.matched_sum,
            "history_precision_pct": s.precision_pct,
            "unallocated_matched": len(hits), "unallocated_matched_sum": sum((h.amount for h in hits), Decimal(0)),
        })
    return out
