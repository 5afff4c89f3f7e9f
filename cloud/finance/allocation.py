"""Allocation rules (разнесение): which article, ЦФО, project and accrual month a bank
operation belongs to.

Rules are tried in priority order (lower first, then list order) and the first rule whose
condition matches wins, as in Финансист and Odoo's reconcile models: the analyst orders them
from specific to general. Within a condition every filled criterion must hold (AND); a
criterion with several values holds when any of them does (OR). A rule may be suggest-only:
it proposes, a person confirms; a suggest-only rule that matches first stops the search, so
a doubtful case is never allocated by a more general rule below it.

The action splits the amount by percentages that sum to exactly 100; each part is rounded
down to the kopeck and the remaining kopecks go to the largest part, so parts always sum to
the operation amount. Every part records the rule that produced it: the coverage report and
an auditor both need to know whether a person or which rule allocated it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

from cloud.finance.articles import ArticleTree, Flow
from cloud.finance.errors import RuleError
from cloud.finance.matching import name_similarity, normalise_text
from cloud.finance.operations import BankOperation
from protocols.onec import Direction

HUNDRED = Decimal(100)
KOPECK = Decimal("0.01")
_NO_KOPECKS = Decimal("0.00")  # added to an amount: the same value with at least two decimals


@dataclass(frozen=True, slots=True)
class Condition:
    """What an operation must look like. Empty criteria are ignored."""

    direction: Direction | None = None
    own_accounts: frozenset[str] = frozenset()
    counterparty_inns: frozenset[str] = frozenset()
    counterparty_names: tuple[str, ...] = ()
    name_cutoff: float = 85.0
    purpose_contains: tuple[str, ...] = ()
    purpose_excludes: tuple[str, ...] = ()
    purpose_regex: str | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Share:
    """One part of the action: ``percent`` of the amount to an article (+ЦФО, project)."""

    article: str
    percent: Decimal = HUNDRED
    cfo: str | None = None
    project: str | None = None
    month_shift: int = 0  # accrual month relative to the payment (+1: rent paid for next month)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    condition: Condition
    shares: tuple[Share, ...]
    suggest_only: bool = False
    priority: int = 100


def simple_rule(
    name: str,
    condition: Condition,
    article: str,
    *,
    cfo: str | None = None,
    project: str | None = None,
    month_shift: int = 0,
    suggest_only: bool = False,
    priority: int = 100,
) -> Rule:
    """A rule with a single 100 % share (the common case)."""
    share = Share(article, HUNDRED, cfo=cfo, project=project, month_shift=month_shift)
    return Rule(name, condition, (share,), suggest_only=suggest_only, priority=priority)


class Status(StrEnum):
    AUTO = "auto"
    SUGGESTED = "suggested"
    UNALLOCATED = "unallocated"


@dataclass(frozen=True, slots=True)
class AllocatedPart:
    article: str
    amount: Decimal
    accrual_month: dt.date
    cfo: str | None = None
    project: str | None = None
    rule: str | None = None  # None: allocated by a person


@dataclass(frozen=True, slots=True)
class Allocation:
    operation: BankOperation
    status: Status
    parts: tuple[AllocatedPart, ...] = ()
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class RuleProblem:
    rule: str
    code: str
    message: str


class RuleValidationError(RuleError):
    """All problems of a rule set at once, so the analyst fixes them in one pass."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(first.rule, "; ".join(f"«{p.rule}»: {p.message}" for p in problems))


def split_amount(amount: Decimal, percents: Sequence[Decimal]) -> list[Decimal]:
    """Exact kopeck split: parts rounded down, the remainder to the largest percentage."""
    if len(percents) == 1:  # the common single share: rounded down, plus the remainder, is the amount
        return [amount + _NO_KOPECKS]
    parts = [(amount * p / HUNDRED).quantize(KOPECK, rounding=ROUND_DOWN) for p in percents]
    remainder = amount - sum(parts, Decimal(0))
    largest = max(range(len(percents)), key=lambda i: (percents[i], -i))
    parts[largest] += remainder
    return parts


def accrual_month(day: dt.date, shift: int) -> dt.date:
    index = day.year * 12 + (day.month - 1) + shift
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    regex: re.Pattern[str] | None
    contains: tuple[str, ...]
    excludes: tuple[str, ...]

    @property
    def reads_purpose(self) -> bool:
        return bool(self.contains or self.excludes or self.regex is not None)


@dataclass(frozen=True, slots=True)
class _Candidates:
    """The rules an operation's (INN, direction, own account) can match, in priority order:
    ``head`` up to the first one that needs a purpose keyword, then ``rest``, and ``rest``
    without the keyword rules for a purpose that contains none of the rule set's keywords."""

    head: tuple[_Compiled, ...]
    head_reads_purpose: bool
    rest: tuple[_Compiled, ...]
    rest_without_keywords: tuple[_Compiled, ...]


class RuleSet:
    """Validated rules in evaluation order."""

    def __init__(self, rules: Iterable[Rule], articles: ArticleTree | Iterable[str]) -> None:
        self.tree = articles if isinstance(articles, ArticleTree) else None
        self.codes = frozenset(articles.by_code if isinstance(articles, ArticleTree) else articles)
        ordered = sorted(enumerate(rules), key=lambda pair: (pair[1].priority, pair[0]))
        self.rules = tuple(rule for _, rule in ordered)
        problems: list[RuleProblem] = []
        names: set[str] = set()
        compiled: list[_Compiled] = []
        for rule in self.rules:
            if rule.name in names:
                problems.append(
                    RuleProblem(rule.name, "duplicate_rule", "правило с таким названием уже есть")
                )
            names.add(rule.name)
            problems.extend(self._check(rule))
            regex = None
            if rule.condition.purpose_regex:
                try:
                    # Purposes are compared casefolded with ё→е; the pattern gets the same letter
                    # swap but is not casefolded (that would turn \D into \d).
                    pattern = rule.condition.purpose_regex.replace("ё", "е").replace("Ё", "Е")
                    regex = re.compile(pattern, re.IGNORECASE)
                except re.error as exc:
                    problems.append(
                        RuleProblem(rule.name, "bad_regex", f"регулярное выражение не разбирается: {exc}")
                    )
            c = rule.condition
            compiled.append(
                _Compiled(
                    rule,
                    regex,
                    tuple(normalise_text(t) for t in c.purpose_contains),
                    tuple(normalise_text(t) for t in c.purpose_excludes),
                )
            )
        if problems:
            raise RuleValidationError(problems)
        self._compiled = tuple(compiled)
        # The index that keeps 500 rules × 100k lines from being 50M tests: an operation is
        # tried only against the rules its INN, direction and own account can satisfy (the
        # rules without such a criterion, and those naming its value), in priority order. The
        # rules that need a keyword in the purpose are skipped together when one search for
        # all the keywords at once finds none. Rules are still tested whole (_matches), so an
        # index can only spare tests, never change an answer.
        self._generic: list[int] = []
        self._by_inn: dict[str, list[int]] = {}
        for i, item in enumerate(self._compiled):
            inns = item.rule.condition.counterparty_inns
            if not inns:
                self._generic.append(i)
            for inn in inns:
                self._by_inn.setdefault(inn, []).append(i)
        keywords = sorted({t for item in self._compiled for t in item.contains}, key=len, reverse=True)
        self._keywords = re.compile("|".join(map(re.escape, keywords))) if keywords else None
        self._candidates: dict[tuple[str, Direction, str], _Candidates] = {}

    def _check(self, rule: Rule) -> list[RuleProblem]:
        out: list[RuleProblem] = []
        c = rule.condition

        def problem(code: str, message: str) -> None:
            out.append(RuleProblem(rule.name, code, message))

        if not rule.shares:
            problem("no_shares", "не указано, куда разносить")
        total = sum((s.percent for s in rule.shares), Decimal(0))
        if rule.shares and total != HUNDRED:
            problem("percent_sum", f"доли в сумме дают {total} %, а должны 100 %")
        for share in rule.shares:
            if share.percent <= 0:
                problem(
                    "percent_non_positive",
                    f"доля {share.percent} % для статьи {share.article} должна быть больше нуля",
                )
            if share.article not in self.codes:
                problem("unknown_article", f"статьи {share.article} нет в справочнике")
                continue
            if self.tree is not None:
                if not self.tree.is_leaf(share.article):
                    problem(
                        "group_article",
                        f"статья {share.article} — группа; разносить можно только на конечные статьи",
                    )
                flow = self.tree[share.article].flow
                if c.direction is not None and flow is not None and flow.value != c.direction.value:
                    direction = "поступлений" if c.direction is Direction.INFLOW else "списаний"
                    kind = "поступлений" if flow is Flow.INFLOW else "выплат"
                    problem(
                        "direction_mismatch",
                        f"правило для {direction}, а статья {share.article} — статья {kind}",
                    )
        if not 0 <= c.name_cutoff <= 100:
            problem("bad_cutoff", f"порог похожести названия {c.name_cutoff} вне 0–100")
        if c.amount_min is not None and c.amount_max is not None and c.amount_min > c.amount_max:
            problem("bad_amount_range", f"сумма «от» {c.amount_min} больше суммы «до» {c.amount_max}")
        if c.date_from is not None and c.date_to is not None and c.date_from > c.date_to:
            problem("bad_date_range", f"дата «с» {c.date_from} позже даты «по» {c.date_to}")
        return out

    def _for(self, op: BankOperation) -> _Candidates:
        key = (op.counterparty_inn, op.direction, op.own_account)
        found = self._candidates.get(key)
        if found is None:
            found = self._candidates[key] = self._select(*key)
        return found

    def _select(self, inn: str, direction: Direction, account: str) -> _Candidates:
        rules = []
        for i in sorted(self._generic + self._by_inn.get(inn, [])):
            item = self._compiled[i]
            c = item.rule.condition
            if (c.direction is None or c.direction is direction) and (not c.own_accounts or account in c.own_accounts):
                rules.append(item)
        first = next((j for j, item in enumerate(rules) if item.contains), len(rules))
        rest = tuple(rules[first:])
        return _Candidates(tuple(rules[:first]), any(item.reads_purpose for item in rules[:first]),
                           rest, tuple(item for item in rest if not item.contains))

    def first_match(self, op: BankOperation) -> Rule | None:
        found = self._for(op)
        purpose = normalise_text(op.purpose) if found.head_reads_purpose else ""
        for compiled in found.head:
            if _matches(compiled, op, purpose):
                return compiled.rule
        if not found.rest:
            return None
        if not found.head_reads_purpose:
            purpose = normalise_text(op.purpose)
        assert self._keywords is not None  # the rest starts with a rule that has keywords
        rest = found.rest if self._keywords.search(purpose) else found.rest_without_keywords
        for compiled in rest:
            if _matches(compiled, op, purpose):
                return compiled.rule
        return None

    def allocate(self, op: BankOperation) -> Allocation:
        rule = self.first_match(op)
        if rule is None:
            return Allocation(op, Status.UNALLOCATED)
        parts = apply_shares(op, rule.shares, rule.name)
        if rule.suggest_only:
            return Allocation(op, Status.SUGGESTED, parts, rule.name)
        return Allocation(op, Status.AUTO, parts, rule.name)


def apply_shares(op: BankOperation, shares: Sequence[Share], rule: str | None) -> tuple[AllocatedPart, ...]:
    amounts = split_amount(op.amount, [s.percent for s in shares])
    return tuple(
        AllocatedPart(s.article, amount, accrual_month(op.booked_on, s.month_shift), s.cfo, s.project, rule)
        for s, amount in zip(shares, amounts, strict=True)
    )


def _matches(compiled: _Compiled, op: BankOperation, purpose: str) -> bool:
    c = compiled.rule.condition
    if c.direction is not None and op.direction is not c.direction:
        return False
    if c.own_accounts and op.own_account not in c.own_accounts:
        return False
    if c.amount_min is not None and op.amount < c.amount_min:
        return False
    if c.amount_max is not None and op.amount > c.amount_max:
        return False
    if c.date_from is not None and op.booked_on < c.date_from:
        return False
    if c.date_to is not None and op.booked_on > c.date_to:
        return False
    if c.counterparty_inns and op.counterparty_inn not in c.counterparty_inns:
        return False
    if compiled.contains and not any(t in purpose for t in compiled.contains):
        return False
    if compiled.excludes and any(t in purpose for t in compiled.excludes):
        return False
    if compiled.regex is not None and compiled.regex.search(purpose) is None:
        return False
    # Fuzzy name last: the most expensive test.
    return not c.counterparty_names or any(
        name_similarity(op.counterparty_name, n) >= c.name_cutoff for n in c.counterparty_names
    )
