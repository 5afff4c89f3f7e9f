"""Calculated indicators over a period grid: dependency order, cycle detection, evaluation.

An indicator set is validated once, when it is built: every formula parses, every name is an
article code or another indicator, nothing depends on itself. Evaluation then cannot fail on
the analyst's input; the worst a month can produce is a blank cell with a flag (division by
zero), shown as "—" in the report rather than a 500.

Values stay exact through the whole chain (an indicator built on another reads its unrounded
value) and are rounded once, on output, to ``places`` decimals (2: kopecks for money,
hundredths for percentages), half-up as accountants round.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

from cloud.finance.errors import DuplicateName, FormulaCycle, FormulaSyntaxError, UnknownNames
from cloud.finance.formulas import Evaluation, Node, evaluate, parse, references

P = TypeVar("P", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Indicator:
    """A named formula; ``places`` is the rounding of its output."""

    name: str
    formula: str
    title: str = ""
    places: int = 2


@dataclass(frozen=True, slots=True)
class Cell:
    """One indicator in one period: a value or a blank with the reason in ``flags``."""

    value: Decimal | None
    flags: frozenset[str] = field(default_factory=frozenset)


class IndicatorSet:
    """Validated indicators in evaluation order."""

    def __init__(self, indicators: Iterable[Indicator], articles: Iterable[str]) -> None:
        self.articles = frozenset(articles)
        self.indicators: dict[str, Indicator] = {}
        for indicator in indicators:
            if indicator.name in self.indicators:
                raise DuplicateName(f"показатель «{indicator.name}» задан дважды")
            if indicator.name in self.articles:
                raise DuplicateName(f"показатель «{indicator.name}» совпадает с кодом статьи")
            self.indicators[indicator.name] = indicator
        self.trees: dict[str, Node] = {}
        for name, indicator in self.indicators.items():
            try:
                self.trees[name] = parse(indicator.formula)
            except FormulaSyntaxError as exc:
                raise FormulaSyntaxError(
                    f"показатель «{name}»: {exc.message.split(' (позиция')[0]}", exc.formula, exc.position
                ) from exc
        self.depends = {name: references(tree) for name, tree in self.trees.items()}
        unknown = {
            name: sorted(refs - self.articles - self.indicators.keys())
            for name, refs in self.depends.items()
            if refs - self.articles - self.indicators.keys()
        }
        if unknown:
            raise UnknownNames(unknown)
        self.order = self._topological_order()

    def _topological_order(self) -> tuple[str, ...]:
        done: set[str] = set()
        order: list[str] = []
        for root in sorted(self.indicators):
            if root in done:
                continue
            # Iterative DFS; ``path`` is the current chain, so a back edge names the cycle.
            path: list[str] = [root]
            on_path = {root}
            stack = [iter(sorted(self.depends[root] & self.indicators.keys()))]
            while stack:
                child = next(stack[-1], None)
                if child is None:
                    stack.pop()
                    finished = path.pop()
                    on_path.discard(finished)
                    done.add(finished)
                    order.append(finished)
                elif child in on_path:
                    raise FormulaCycle([*path[path.index(child) :], child])
                elif child not in done:
                    path.append(child)
                    on_path.add(child)
                    stack.append(iter(sorted(self.depends[child] & self.indicators.keys())))
        return tuple(order)

    def evaluate(
        self, grid: Mapping[str, Mapping[P, Decimal]], periods: Sequence[P]
    ) -> dict[str, dict[P, Cell]]:
        """Indicators per period from article values per period (absent = 0)."""
        result: dict[str, dict[P, Cell]] = {name: {} for name in self.order}
        for period in periods:
            values: dict[str, Decimal | None] = {
                code: by_period.get(period, Decimal(0)) for code, by_period in grid.items()
            }
            for name in self.order:
                trace = Evaluation()
                raw = evaluate(self.trees[name], values, trace)
                values[name] = raw
                places = self.indicators[name].places
                rounded = (
                    None if raw is None else raw.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
                )
                result[name][period] = Cell(rounded, frozenset(trace.flags))
        return result
