"""Learned rule suggestions: from operations people allocated by hand, propose rules.

Grouping. Operations are grouped by direction and counterparty (INN; the normalised name
when the bank gave no INN). A group whose hand allocations agree (one article, ЦФО, project
and accrual shift for at least ``min_precision`` of it) becomes one rule "this counterparty
→ that allocation". A group that disagrees — the bank (acquiring, fees, loan principal,
interest), the tax office (ЕНП, state duty), our own INN (cash collection, transfers) — is
split by purpose: for each allocation we look for a word found in (nearly) all its purposes
and in none of the group's other purposes ("реестр", "процентов", "инкассированная", a
contract number) and propose "counterparty + word → allocation".

Each suggestion carries its expected coverage on the history it was learned from (how many
operations and how much money it would have allocated, and how often it agrees with what
people did), so the analyst accepts it knowing what it does. Word-specific rules get a
higher priority than counterparty-wide ones, so accepting both keeps the specific ones first.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from cloud.finance.allocation import HUNDRED, Condition, Rule, RuleSet, Share
from cloud.finance.matching import normalise_company, purpose_tokens
from cloud.finance.operations import BankOperation

Labelled = tuple[BankOperation, Share]
_LabelKey = tuple[str, str | None, str | None, int]

SPECIFIC_PRIORITY = 50
COUNTERPARTY_PRIORITY = 60


@dataclass(frozen=True, slots=True)
class Suggestion:
    rule: Rule
    support: int  # hand-allocated operations that led to it
    matched_count: int  # operations of the history it matches
    matched_sum: Decimal
    agreeing_count: int  # of those, allocated by people exactly as the rule would

    @property
    def precision_pct(self) -> Decimal:
        if not self.matched_count:
            return Decimal(0)
        return (Decimal(self.agreeing_count) * HUNDRED / self.matched_count).quantize(Decimal("0.1"))


def _label(share: Share) -> _LabelKey:
    return (share.article, share.cfo, share.project, share.month_shift)


def _party(op: BankOperation) -> str:
    return op.counterparty_inn or "name:" + normalise_company(op.counterparty_name)


def suggest_rules(
    history: Sequence[Labelled],
    *,
    min_support: int = 2,
    min_precision: Decimal = Decimal("0.95"),
    keyword_share: Decimal = Decimal("0.9"),
) -> list[Suggestion]:
    """Propose rules from hand allocations, most useful (by matched sum) first in each tier."""
    groups: dict[tuple[str, str], list[Labelled]] = defaultdict(list)
    for op, share in history:
        groups[(op.direction.value, _party(op))].append((op, share))
    codes = {share.article for _, share in history}
    out: list[Suggestion] = []
    for (_, party), items in groups.items():
        if len(items) < min_support:
            continue
        counts = Counter(_label(share) for _, share in items)
        top, top_count = counts.most_common(1)[0]
        base = _base_condition(items[0][0], party)
        if Decimal(top_count) / len(items) >= min_precision:
            rule = _rule(f"{_title(items)} → {top[0]}", base, top, COUNTERPARTY_PRIORITY)
            out.append(_measure(rule, items, top_count, codes))
            continue
        for label, count in counts.items():
            if count < min_support:
                continue
            mine = [op for op, share in items if _label(share) == label]
            others = [op for op, share in items if _label(share) != label]
            word = _keyword(mine, others, keyword_share)
            if word is None:
                continue
            condition = Condition(
                direction=base.direction,
                counterparty_inns=base.counterparty_inns,
                counterparty_names=base.counterparty_names,
                name_cutoff=base.name_cutoff,
                purpose_regex=rf"\b{re.escape(word)}\b",
            )
            rule = _rule(f"{_title(items)} + «{word}» → {label[0]}", condition, label, SPECIFIC_PRIORITY)
            out.append(_measure(rule, items, count, codes))
    out.sort(key=lambda s: (s.rule.priority, -s.matched_sum))
    return [
        s for s in out if s.matched_count and Decimal(s.agreeing_count) / s.matched_count >= min_precision
    ]


def _title(items: Sequence[Labelled]) -> str:
    op = items[0][0]
    return op.counterparty_name or op.counterparty_inn or "контрагент без названия"


def _base_condition(op: BankOperation, party: str) -> Condition:
    if party.startswith("name:"):
        return Condition(direction=op.direction, counterparty_names=(op.counterparty_name,), name_cutoff=90.0)
    return Condition(direction=op.direction, counterparty_inns=frozenset({party}))


def _rule(name: str, condition: Condition, label: _LabelKey, priority: int) -> Rule:
    article, cfo, project, shift = label
    share = Share(article, HUNDRED, cfo=cfo, project=project, month_shift=shift)
    return Rule(name, condition, (share,), suggest_only=False, priority=priority)


def _keyword(mine: list[BankOperation], others: list[BankOperation], share: Decimal) -> str | None:
    """A purpose word in ≥ ``share`` of ``mine`` and in none of ``others``; the most common wins."""
    token_counts: Counter[str] = Counter()
    for op in mine:
        token_counts.update(purpose_tokens(op.purpose))
    foreign: set[str] = set()
    for op in others:
        foreign |= purpose_tokens(op.purpose)
    candidates = [
        (count, len(token), token)
        for token, count in token_counts.items()
        if token not in foreign and Decimal(count) / len(mine) >= share
    ]
    if not candidates:
        return None
    return max(candidates)[2]


def _measure(rule: Rule, items: Sequence[Labelled], support: int, codes: set[str]) -> Suggestion:
    ruleset = RuleSet([rule], codes)
    matched = [(op, share) for op, share in items if ruleset.first_match(op) is not None]
    target = _label(rule.shares[0])
    agreeing = sum(1 for _, share in matched if _label(share) == target)
    total = sum((op.amount for op, _ in matched), Decimal(0))
    return Suggestion(rule, support, len(matched), total, agreeing)
