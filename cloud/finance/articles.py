"""Article trees (ДДС and БДР) as validated data, and rolling values up the tree.

An article is a node of a tree; amounts are booked on leaves and parents show the sum, so
a formula may read either ``P.4.3`` (rent) or ``P.4`` (all fixed expenses). A tree is
checked when it is built — unique codes, parents exist and come from the same statement,
children agree with their parent's activity and direction — because a wrong tree silently
misplaces money in every report built on it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from cloud.finance.errors import TemplateError

P = TypeVar("P", bound=Hashable)


class Statement(StrEnum):
    CASH_FLOW = "cash_flow"  # ДДС
    PNL = "pnl"  # БДР / ПиУ


class Activity(StrEnum):
    """Cash-flow sections; ``technical`` is moves between own accounts (not a flow at all)."""

    OPERATING = "operating"
    INVESTING = "investing"
    FINANCING = "financing"
    TECHNICAL = "technical"


class Flow(StrEnum):
    INFLOW = "inflow"
    OUTFLOW = "outflow"


class PnlClass(StrEnum):
    """P&L classes the standard indicators are built from."""

    REVENUE = "revenue"
    COST_OF_SALES = "cost_of_sales"
    VARIABLE = "variable"
    FIXED = "fixed"
    TAX = "tax"
    DEPRECIATION = "depreciation"
    INTEREST = "interest"
    OTHER_INCOME = "other_income"
    OTHER_EXPENSE = "other_expense"
    DIVIDENDS = "dividends"


@dataclass(frozen=True, slots=True)
class Article:
    code: str
    name: str
    statement: Statement
    parent: str | None = None
    activity: Activity | None = None  # cash flow only
    flow: Flow | None = None  # cash flow: set on the inflow/outflow groups and below
    pnl_class: PnlClass | None = None  # P&L only


class ArticleTree:
    """A validated set of articles of one or both statements."""

    def __init__(self, articles: Iterable[Article]) -> None:
        self.by_code: dict[str, Article] = {}
        for article in articles:
            if article.code in self.by_code:
                raise TemplateError(f"код статьи «{article.code}» повторяется")
            if not article.code.strip() or not article.name.strip():
                raise TemplateError(f"у статьи «{article.code}» пустой код или название")
            self.by_code[article.code] = article
        self.children: dict[str, list[str]] = {code: [] for code in self.by_code}
        for article in self.by_code.values():
            self._check(article)
            if article.parent is not None:
                self.children[article.parent].append(article.code)
        for code in self.by_code:
            self._depth(code)

    def _check(self, a: Article) -> None:
        if a.statement is Statement.CASH_FLOW and (a.activity is None or a.pnl_class is not None):
            raise TemplateError(f"статья ДДС «{a.code}» должна иметь вид деятельности и не иметь класса ПиУ")
        if a.statement is Statement.PNL and (a.pnl_class is None or a.activity or a.flow):
            raise TemplateError(f"статья БДР «{a.code}» должна иметь класс ПиУ и не иметь вида деятельности")
        if a.parent is None:
            return
        parent = self.by_code.get(a.parent)
        if parent is None:
            raise TemplateError(f"у статьи «{a.code}» нет родителя «{a.parent}»")
        if parent.statement is not a.statement:
            raise TemplateError(f"статья «{a.code}» и её родитель «{a.parent}» из разных отчётов")
        if parent.activity is not a.activity or (parent.flow is not None and parent.flow is not a.flow):
            raise TemplateError(
                f"статья «{a.code}» расходится с родителем «{a.parent}» по виду деятельности или направлению"
            )
        if parent.pnl_class is not None and parent.pnl_class is not a.pnl_class:
            raise TemplateError(f"статья «{a.code}» расходится с родителем «{a.parent}» по классу ПиУ")

    def _depth(self, code: str) -> int:
        seen: list[str] = []
        current: str | None = code
        while current is not None:
            if current in seen:
                raise TemplateError(
                    "статьи ссылаются друг на друга как родители: " + " → ".join([*seen, current])
                )
            seen.append(current)
            current = self.by_code[current].parent
        return len(seen)

    def __contains__(self, code: object) -> bool:
        return code in self.by_code

    def __getitem__(self, code: str) -> Article:
        return self.by_code[code]

    def leaves(self, statement: Statement | None = None) -> list[str]:
        return [
            c
            for c, kids in self.children.items()
            if not kids and (statement is None or self.by_code[c].statement is statement)
        ]

    def is_leaf(self, code: str) -> bool:
        return code in self.by_code and not self.children[code]

    def ancestors(self, code: str) -> list[str]:
        out: list[str] = []
        parent = self.by_code[code].parent
        while parent is not None:
            out.append(parent)
            parent = self.by_code[parent].parent
        return out

    def roll_up(self, grid: Mapping[str, Mapping[P, Decimal]]) -> dict[str, dict[P, Decimal]]:
        """Leaf values per period → every article's value (a parent = its own + its children's)."""
        unknown = sorted(set(grid) - self.by_code.keys())
        if unknown:
            raise TemplateError("значения по неизвестным статьям: " + ", ".join(unknown))
        out: dict[str, dict[P, Decimal]] = {code: {} for code in self.by_code}
        for code, by_period in grid.items():
            for target in (code, *self.ancestors(code)):
                bucket = out[target]
                for period, value in by_period.items():
                    bucket[period] = bucket.get(period, Decimal(0)) + value
        return out
