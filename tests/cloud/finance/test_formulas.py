from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.finance.errors import DuplicateName, FormulaCycle, FormulaSyntaxError, UnknownNames
from cloud.finance.formulas import (
    DIVISION_BY_ZERO,
    Binary,
    Call,
    Evaluation,
    Negate,
    Number,
    Ref,
    evaluate,
    parse,
    references,
    tokenize,
)
from cloud.finance.indicators import Cell, Indicator, IndicatorSet

D = Decimal


def test_precedence_and_associativity() -> None:
    assert parse("a - b - c") == Binary("-", Binary("-", Ref("a"), Ref("b")), Ref("c"))
    assert parse("a + b * c") == Binary("+", Ref("a"), Binary("*", Ref("b"), Ref("c")))
    assert parse("-(a + 2)") == Negate(Binary("+", Ref("a"), Number(D(2))))
    assert evaluate(parse("100 - 10 / 4 * 2"), {}) == D("95")
    assert evaluate(parse("--3"), {}) == D(3)


def test_article_codes_and_bracketed_codes_are_names() -> None:
    node = parse("P.1.2 + [1.2.3] - выручка_брутто")
    assert references(node) == {"P.1.2", "1.2.3", "выручка_брутто"}
    assert evaluate(node, {"P.1.2": D("10.5"), "1.2.3": D(1), "выручка_брутто": D("0.25")}) == D("11.25")


def test_functions() -> None:
    values = {"a": D("-12.345"), "b": D(7)}
    assert evaluate(parse("abs(a)"), values) == D("12.345")
    assert evaluate(parse("min(a, b, 0)"), values) == D("-12.345")
    assert evaluate(parse("MAX(a, b)"), values) == D(7)
    assert evaluate(parse("round(a, 2)"), values) == D("-12.35")  # half-up away from zero
    assert evaluate(parse("round(b / 2)"), values) == D(4)
    assert parse("max(a)") == Call("max", (Ref("a"),))


def test_missing_names_read_as_zero_and_division_by_zero_is_blank_with_a_flag() -> None:
    trace = Evaluation()
    assert evaluate(parse("gross / revenue * 100"), {"gross": D(5), "revenue": D(0)}, trace) is None
    assert trace.flags == {DIVISION_BY_ZERO}
    assert evaluate(parse("absent + 1"), {}) == D(1)
    assert evaluate(parse("abs(x / 0) + 1"), {"x": D(1)}) is None


def test_never_evaluates_python() -> None:
    for hostile in ["__import__('os')", "lambda: 1", "a ** 2", "a; b", "'x'", "a[0]", "open()"]:
        with pytest.raises(FormulaSyntaxError):
            parse(hostile)
    # A dotted name is just a name: it reads a value from the grid, never an attribute.
    assert parse("a.__class__") == Ref("a.__class__")
    assert evaluate(parse("a.__class__ + 1"), {"a.__class__": D(1)}) == D(2)


@pytest.mark.parametrize(
    ("formula", "position", "fragment"),
    [
        ("a +", 3, "оборвана"),
        ("a + * b", 4, "«*»"),
        ("(a + b", 6, "«)»"),
        ("a b", 2, "лишнее"),
        ("a $ b", 2, "«$»"),
        ("sqrt(a)", 0, "sqrt"),
        ("round(a, 1, 2)", 0, "round"),
        ("", 0, "пустая"),
    ],
)
def test_syntax_errors_name_the_position(formula: str, position: int, fragment: str) -> None:
    with pytest.raises(FormulaSyntaxError) as info:
        parse(formula)
    assert info.value.position == position and fragment in str(info.value)
    assert info.value.code == "formula_syntax"


def test_tokens_carry_positions() -> None:
    assert [(t.kind, t.text, t.position) for t in tokenize(" a+[x y] ")] == [
        ("name", "a", 1),
        ("op", "+", 2),
        ("name", "x y", 4),
        ("end", "", 9),
    ]


# --- random expressions agree with exact arithmetic -------------------------------------

_names = st.sampled_from(["a", "b", "P.1.2"])


def _expr(depth: int) -> st.SearchStrategy[tuple[str, object]]:
    leaf = st.one_of(
        st.integers(0, 999).map(lambda n: (str(n), D(n))),
        _names.map(lambda n: (n if "." not in n else f"[{n}]", n)),
    )
    if depth == 0:
        return leaf
    sub = _expr(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from("+-*/"), sub).map(
            lambda t: (f"({t[0][0]} {t[1]} {t[2][0]})", (t[1], t[0][1], t[2][1]))
        ),
        sub.map(lambda t: (f"-{t[0]}", ("neg", t[1]))),
    )


def _reference(tree: object, env: dict[str, Decimal]) -> Decimal | None:
    if isinstance(tree, Decimal):
        return tree
    if isinstance(tree, str):
        return env[tree]
    assert isinstance(tree, tuple)
    if tree[0] == "neg":
        inner = _reference(tree[1], env)
        return None if inner is None else -inner
    op, left, right = tree
    a, b = _reference(left, env), _reference(right, env)
    if a is None or b is None:
        return None
    if op == "/":
        return None if b == 0 else a / b
    return {"+": a + b, "-": a - b, "*": a * b}[op]


@settings(max_examples=300, deadline=None)
@given(_expr(4), st.integers(-50, 50), st.integers(-50, 50), st.integers(-50, 50))
def test_random_expressions_match_exact_arithmetic(expr: tuple[str, object], a: int, b: int, c: int) -> None:
    env = {"a": D(a), "b": D(b), "P.1.2": D(c)}
    assert evaluate(parse(expr[0]), env) == _reference(expr[1], env)


# --- indicator sets -----------------------------------------------------------------------

ARTICLES = ["revenue", "cost_of_sales", "payroll", "rent", "interest", "depreciation", "tax"]
STANDARD = [
    Indicator("net_profit", "ebitda - depreciation - interest - tax"),
    Indicator("gross_margin", "revenue - cost_of_sales"),
    Indicator("ebitda", "gross_margin - payroll - rent"),
    Indicator("margin_pct", "gross_margin / revenue * 100"),
]


def test_order_follows_dependencies() -> None:
    order = IndicatorSet(STANDARD, ARTICLES).order
    assert order.index("gross_margin") < order.index("ebitda") < order.index("net_profit")
    assert order.index("gross_margin") < order.index("margin_pct")


def test_evaluation_over_a_period_grid_rounds_at_the_end() -> None:
    grid = {
        "revenue": {"2026-01": D("1000000.00"), "2026-02": D("0")},
        "cost_of_sales": {"2026-01": D("723456.789")},
        "payroll": {"2026-01": D("100000"), "2026-02": D("90000")},
        "rent": {"2026-01": D("50000"), "2026-02": D("50000")},
    }
    out = IndicatorSet(STANDARD, ARTICLES).evaluate(grid, ["2026-01", "2026-02"])
    assert out["gross_margin"]["2026-01"] == Cell(D("276543.21"))
    assert out["margin_pct"]["2026-01"] == Cell(D("27.65"))
    assert out["ebitda"]["2026-01"].value == D("126543.21")
    assert out["net_profit"]["2026-02"] == Cell(D("-140000.00"))
    assert out["margin_pct"]["2026-02"] == Cell(None, frozenset({DIVISION_BY_ZERO}))


def test_chained_indicators_use_unrounded_values() -> None:
    inds = [Indicator("third", "revenue / 3", places=2), Indicator("back", "third * 3")]
    out = IndicatorSet(inds, ["revenue"]).evaluate({"revenue": {1: D(100)}}, [1])
    assert out["third"][1].value == D("33.33") and out["back"][1].value == D("100.00")


def test_cycles_are_named() -> None:
    cyc = [
        Indicator("a", "b + revenue"),
        Indicator("b", "c * 2"),
        Indicator("c", "a - 1"),
        Indicator("d", "a"),
    ]
    with pytest.raises(FormulaCycle) as info:
        IndicatorSet(cyc, ["revenue"])
    assert info.value.cycle == ["a", "b", "c", "a"]
    assert "a → b → c → a" in str(info.value)
    with pytest.raises(FormulaCycle, match="x → x"):
        IndicatorSet([Indicator("x", "x + 1")], [])


def test_unknown_names_are_listed_per_indicator() -> None:
    with pytest.raises(UnknownNames) as info:
        IndicatorSet([Indicator("g", "revenu - cost + revenue"), Indicator("h", "g * k")], ["revenue"])
    assert info.value.unknown == {"g": ["cost", "revenu"], "h": ["k"]}
    assert "revenu" in str(info.value)


def test_duplicates_and_syntax_errors_name_the_indicator() -> None:
    with pytest.raises(DuplicateName):
        IndicatorSet([Indicator("g", "1"), Indicator("g", "2")], [])
    with pytest.raises(DuplicateName):
        IndicatorSet([Indicator("revenue", "1")], ["revenue"])
    with pytest.raises(FormulaSyntaxError, match="«margin»"):
        IndicatorSet([Indicator("margin", "revenue -")], ["revenue"])
