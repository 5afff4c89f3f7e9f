"""Finance errors: one base; each carries an English machine ``code`` and a Russian message.

The messages go to the financial analyst who wrote the formula or the rule, so they name the
thing to fix (the position in the formula, the rule, the article code) rather than the
internals that tripped.
"""

from __future__ import annotations


class FinanceError(Exception):
    """Base of every management-finance error."""

    code = "finance_error"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class FormulaSyntaxError(FinanceError):
    """A formula that does not parse; ``position`` is the 0-based character offset."""

    code = "formula_syntax"

    def __init__(self, message: str, formula: str, position: int) -> None:
        self.formula = formula
        self.position = position
        super().__init__(
            f"{message} (позиция {position + 1}: «{formula[:position]}⟨здесь⟩{formula[position:]}»)"
        )


class UnknownNames(FinanceError):
    """Formulas that refer to names that are neither articles nor indicators."""

    code = "unknown_names"

    def __init__(self, unknown: dict[str, list[str]]) -> None:
        self.unknown = unknown
        parts = [f"{owner}: {', '.join(sorted(names))}" for owner, names in sorted(unknown.items())]
        super().__init__("неизвестные статьи или показатели в формулах — " + "; ".join(parts))


class FormulaCycle(FinanceError):
    """Indicators that depend on themselves; ``cycle`` lists them in order, first repeated last."""

    code = "formula_cycle"

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("показатели ссылаются друг на друга по кругу: " + " → ".join(cycle))


class DuplicateName(FinanceError):
    """Two indicators, or an indicator and an article, with the same name."""

    code = "duplicate_name"


class TemplateError(FinanceError):
    """An article template that is not a tree (duplicate codes, missing parents, bad kinds)."""

    code = "bad_template"


class RuleError(FinanceError):
    """An allocation rule that cannot work; ``rule`` names it."""

    code = "bad_rule"

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(f"правило «{rule}»: {message}")
