# mypy: disable-error-code="call-overload,call-arg,unused-ignore"
"""Allocation rules as stored (``fin_rules``) and the :class:`~cloud.finance.allocation.RuleSet` built from them.

The set is built, and so checked (names, articles, regexes), each time it is used: by
every import (:mod:`cloud.finance.ingest`) and by re-allocating a period. Saving a rule builds
the whole set again before the commit, so a rule that would break it is refused. Deleting a
rule keeps the parts it allocated; they only lose the link to it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from cloud.errors import Conflict, NotFound
from cloud.finance.allocation import Condition, Rule, RuleSet, Share
from cloud.finance.articles import Statement
from cloud.finance.errors import FinanceError
from cloud.finance.models import FinOperationPart, FinRule, RuleIn, RulePublic
from cloud.finance.setup import Names, invalid_from, names
from protocols.onec import Direction

PARTS = FinOperationPart.__table__  # type: ignore[attr-defined]


def _condition(c: dict[str, Any]) -> Condition:
    def dec(v: Any) -> Decimal | None:
        return None if v is None else Decimal(str(v))

    def day(v: Any) -> dt.date | None:
        return None if v in (None, "") else dt.date.fromisoformat(str(v))

    return Condition(
        direction=Direction(c["direction"]) if c.get("direction") else None,
        own_accounts=frozenset(c.get("own_accounts") or ()),
        counterparty_inns=frozenset(c.get("counterparty_inns") or ()),
        counterparty_names=tuple(c.get("counterparty_names") or ()),
        name_cutoff=float(c.get("name_cutoff", 85.0)),
        purpose_contains=tuple(c.get("purpose_contains") or ()),
        purpose_excludes=tuple(c.get("purpose_excludes") or ()),
        purpose_regex=c.get("purpose_regex") or None,
        amount_min=dec(c.get("amount_min")),
        amount_max=dec(c.get("amount_max")),
        date_from=day(c.get("date_from")),
        date_to=day(c.get("date_to")),
    )


def _rule(row: FinRule) -> Rule:
    shares = tuple(
        Share(s["article"], Decimal(str(s.get("percent", 100))), s.get("cfo"), s.get("project"), int(s.get("month_shift", 0)))
        for s in row.shares
    )
    return Rule(row.name, _condition(row.condition), shares, suggest_only=row.suggest_only, priority=row.priority)


@dataclass
class Rules:
    ruleset: RuleSet
    ids: dict[str, int]


def load_rules(session: Session, tenant_id: int, n: Names | None = None) -> Rules:
    n = n or names(session, tenant_id)
    rows = list(session.scalars(select(FinRule).where(FinRule.tenant_id == tenant_id, FinRule.active)))  # type: ignore[arg-type]
    try:
        ruleset = RuleSet([_rule(r) for r in rows], _cash_tree(n))
    except FinanceError as exc:
        raise invalid_from(exc) from exc
    return Rules(ruleset, {r.name: r.id for r in rows if r.id is not None})


def _cash_tree(n: Names) -> Any:
    from cloud.finance.articles import ArticleTree

    full = n.tree()
    return ArticleTree(a for a in full.by_code.values() if a.statement is Statement.CASH_FLOW)


def _rule_public(r: FinRule) -> RulePublic:
    assert r.id is not None
    return RulePublic.model_validate(
        {"id": r.id, "name": r.name, "priority": r.priority, "suggest_only": r.suggest_only, "active": r.active,
         "condition": r.condition, "shares": r.shares}
    )


def list_rules(session: Session, tenant_id: int) -> list[RulePublic]:
    rows = session.scalars(select(FinRule).where(FinRule.tenant_id == tenant_id).order_by(FinRule.priority, FinRule.id))  # type: ignore[arg-type]
    return [_rule_public(r) for r in rows]


def save_rule(session: Session, tenant_id: int, data: RuleIn, rule_id: int | None = None) -> RulePublic:
    if rule_id is None:
        row = FinRule(tenant_id=tenant_id, condition={}, shares=[])
    else:
        found = session.get(FinRule, rule_id)
        if found is None or found.tenant_id != tenant_id:
            raise NotFound(f"правило {rule_id} не найдено")
        row = found
    clash = session.scalar(select(FinRule.id).where(FinRule.tenant_id == tenant_id, FinRule.name == data.name, FinRule.id != rule_id))  # type: ignore[arg-type]
    if clash is not None:
        raise Conflict(f"правило «{data.name}» уже есть", code="duplicate_rule")
    n = names(session, tenant_id)
    for i, s in enumerate(data.shares, 1):
        n.cfo(s.cfo, f"правило «{data.name}», доля {i}")
        n.project(s.project, f"правило «{data.name}», доля {i}")
    row.name, row.priority, row.suggest_only, row.active = data.name, data.priority, data.suggest_only, data.active
    row.condition = data.condition.model_dump(mode="json")
    row.shares = [s.model_dump(mode="json") for s in data.shares]
    session.add(row)
    session.flush()
    load_rules(session, tenant_id, n)  # the whole set must still be valid (names, articles, regexes)
    session.commit()
    return _rule_public(row)


def delete_rule(session: Session, tenant_id: int, rule_id: int) -> None:
    row = session.get(FinRule, rule_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"правило {rule_id} не найдено")
    session.execute(update(PARTS).where(PARTS.c.rule_id == rule_id).values(rule_id=None))
    session.delete(row)
    session.commit()
