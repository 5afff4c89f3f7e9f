from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.finance.allocation import (
    Condition,
    Rule,
    RuleSet,
    RuleValidationError,
    Share,
    Status,
    accrual_month,
    simple_rule,
    split_amount,
)
from cloud.finance.matching import name_similarity, normalise_company, normalise_text, purpose_tokens
from cloud.finance.operations import BankOperation, from_onec
from cloud.finance.templates import food_chain_tree
from protocols.onec import Direction, operations, parse_statement
from tests.protocols.onec.vectors import statement_bytes

D = Decimal
OUT, IN = Direction.OUTFLOW, Direction.INFLOW


def op(
    purpose: str = "",
    *,
    direction: Direction = OUT,
    amount: str = "1000.00",
    inn: str = "5024112233",
    name: str = 'ООО "Молочный край"',
    day: dt.date = dt.date(2026, 3, 2),
    account: str = "A",
) -> BankOperation:
    return BankOperation(
        f"k{purpose}{amount}{inn}", day, account, direction, D(amount), inn, name, "4070", purpose
    )


TREE = food_chain_tree()


def test_first_match_wins_in_priority_order() -> None:
    rules = [
        simple_rule("общее", Condition(direction=OUT), "D.1.2.19", priority=100),
        simple_rule("молоко", Condition(counterparty_inns=frozenset({"5024112233"})), "D.1.2.1", priority=50),
        simple_rule("аренда", Condition(purpose_contains=("аренд",)), "D.1.2.3", priority=50),
    ]
    rs = RuleSet(rules, TREE)
    assert [r.name for r in rs.rules] == ["молоко", "аренда", "общее"]
    a = rs.allocate(op("Арендная плата"))
    assert a.status is Status.AUTO and a.rule == "молоко" and a.parts[0].rule == "молоко"
    assert rs.allocate(op("Арендная плата", inn="1")).parts[0].article == "D.1.2.3"
    assert rs.allocate(op("что-то", inn="1")).rule == "общее"
    assert rs.allocate(op("что-то", inn="1", direction=IN)).status is Status.UNALLOCATED


def test_every_condition_kind() -> None:
    cond = Condition(
        direction=OUT,
        own_accounts=frozenset({"A"}),
        purpose_contains=("ОПЛАТА",),
        purpose_excludes=("аванс",),
        purpose_regex=r"сч[её]т\w*\s*№\s*\d+",
        amount_min=D("100"),
        amount_max=D("5000"),
        date_from=dt.date(2026, 3, 1),
        date_to=dt.date(2026, 3, 31),
    )
    rs = RuleSet([simple_rule("r", cond, "D.1.2.1")], TREE)
    good = "Оплата по счёту № 15 за товар"
    assert rs.first_match(op(good)) is not None
    assert rs.first_match(op(good.upper())) is not None  # case-insensitive, Ё in pattern and text
    for bad in [
        op(good, direction=IN),
        op(good, account="B"),
        op("Оплата за товар"),
        op(good + ", аванс"),
        op(good, amount="99.99"),
        op(good, amount="5000.01"),
        op(good, day=dt.date(2026, 4, 1)),
        op("Возврат по счету № 15"),
    ]:
        assert rs.first_match(bad) is None, bad.purpose


def test_fuzzy_counterparty_name_with_cutoff() -> None:
    cond = Condition(counterparty_names=('ООО "Молочный край"',), name_cutoff=85)
    rs = RuleSet([simple_rule("r", cond, "D.1.2.1")], TREE)
    for variant in [
        "ООО «МОЛОЧНЫЙ КРАЙ»",
        "Общество с ограниченной ответственностью Молочный край",
        "ИНН 5024112233 ООО Молочный край",
        "АО Молочный  Край",
    ]:
        assert rs.first_match(op(name=variant)) is not None, variant
    assert rs.first_match(op(name="ООО Мясной край")) is None
    assert rs.first_match(op(name="")) is None


def test_normalisation() -> None:
    assert normalise_company("ИНН 7701234567 ООО «Ёлка-Палка»") == "елка палка"
    assert normalise_company("ИП Петров Сергей Иванович") == "петров сергей иванович"
    assert normalise_text("  Счёт   №1 ") == "счет №1"
    assert name_similarity("ПАО Сбербанк", 'ПАО "СБЕРБАНК"') == 100.0
    assert purpose_tokens("Оплата по договору № 90123456 от 05.02.2026, НДС 22 %") == {
        "оплата",
        "договору",
        "90123456",
        "ндс",
    }


def test_split_is_exact_with_remainder_to_the_largest_part() -> None:
    assert split_amount(D("100.00"), [D("33.33"), D("33.33"), D("33.34")]) == [
        D("33.33"),
        D("33.33"),
        D("33.34"),
    ]
    assert split_amount(D("0.05"), [D(50), D(50)]) == [D("0.03"), D("0.02")]
    assert split_amount(D("1000.01"), [D(30), D(70)]) == [D("300.00"), D("700.01")]


@given(st.integers(1, 10**10), st.lists(st.integers(1, 1000), min_size=1, max_size=6))
def test_split_always_sums_to_the_amount(kopecks: int, weights: list[int]) -> None:
    total = sum(weights)
    percents = [D(w) * 100 / total for w in weights]
    percents[-1] = D(100) - sum(percents[:-1])
    amount = D(kopecks) / 100
    parts = split_amount(amount, percents)
    assert sum(parts) == amount and all(p >= 0 for p in parts)
    assert all(p == p.quantize(D("0.01")) for p in parts)


def test_split_rule_with_cfo_project_and_accrual_shift() -> None:
    rule = Rule(
        "аренда на два магазина",
        Condition(purpose_contains=("аренд",)),
        (
            Share("D.1.2.3", D(60), cfo="STORE-01", month_shift=1),
            Share("D.1.2.3", D(40), cfo="STORE-02", project="Открытие", month_shift=1),
        ),
    )
    a = RuleSet([rule], TREE).allocate(
        op("Арендная плата за январь", amount="100000.01", day=dt.date(2026, 12, 25))
    )
    assert [(p.amount, p.cfo, p.project, p.accrual_month) for p in a.parts] == [
        (D("60000.01"), "STORE-01", None, dt.date(2027, 1, 1)),
        (D("40000.00"), "STORE-02", "Открытие", dt.date(2027, 1, 1)),
    ]
    assert all(p.rule == "аренда на два магазина" for p in a.parts)
    assert accrual_month(dt.date(2026, 1, 31), -1) == dt.date(2025, 12, 1)


def test_suggest_only_rule_stops_the_search_without_allocating() -> None:
    rules = [
        simple_rule(
            "сомнительно", Condition(purpose_contains=("возврат",)), "D.1.2.19", suggest_only=True, priority=1
        ),
        simple_rule("всё", Condition(), "D.1.2.1"),
    ]
    a = RuleSet(rules, TREE).allocate(op("Возврат займа"))
    assert a.status is Status.SUGGESTED and a.rule == "сомнительно" and a.parts[0].article == "D.1.2.19"


def test_validation_lists_every_problem() -> None:
    rules = [
        simple_rule("нет статьи", Condition(), "D.9.9"),
        Rule("не 100", Condition(), (Share("D.1.2.1", D(60)), Share("D.1.2.2", D(30)))),
        simple_rule("регулярка", Condition(purpose_regex="счет[("), "D.1.2.1"),
        simple_rule("группа", Condition(), "D.1.2"),
        simple_rule("направление", Condition(direction=IN), "D.1.2.1"),
        simple_rule("суммы", Condition(amount_min=D(10), amount_max=D(1)), "D.1.2.1"),
        simple_rule("суммы", Condition(), "D.1.2.1"),
        Rule("пусто", Condition(), ()),
        Rule("ноль", Condition(), (Share("D.1.2.1", D(0)), Share("D.1.2.2", D(100)))),
    ]
    with pytest.raises(RuleValidationError) as info:
        RuleSet(rules, TREE)
    codes = {(p.rule, p.code) for p in info.value.problems}
    assert codes == {
        ("нет статьи", "unknown_article"),
        ("не 100", "percent_sum"),
        ("регулярка", "bad_regex"),
        ("группа", "group_article"),
        ("направление", "direction_mismatch"),
        ("суммы", "bad_amount_range"),
        ("суммы", "duplicate_rule"),
        ("пусто", "no_shares"),
        ("ноль", "percent_non_positive"),
    }
    assert "90" in str(info.value) and "D.9.9" in str(info.value) and info.value.code == "bad_rule"


def test_operations_from_a_parsed_statement() -> None:
    ops = [from_onec(o) for o in operations(parse_statement(statement_bytes("Windows", "cp1251")))]
    fee = ops[3]
    assert (
        fee.direction is OUT and fee.counterparty_inn == "7707083893" and fee.purpose.startswith("Комиссия")
    )
    assert fee.booked_on == dt.date(2026, 3, 2) and fee.key.startswith("1c:")
    rules = [simple_rule("комиссии", Condition(direction=OUT, purpose_contains=("комиссия",)), "D.1.2.7")]
    assert [RuleSet(rules, TREE).allocate(o).status for o in ops].count(Status.AUTO) == 1


def test_index_answers_as_every_rule_tried_in_order() -> None:
    """The candidate index (INN, direction, own account; one search for all the purpose
    keywords) only spares tests: the first match is the one trying every rule in priority
    order finds, over a mixed set of rules and operations."""
    import random

    from cloud.finance.allocation import _matches

    rng = random.Random(20260101)
    inns = [f"77{k:08d}" for k in range(30)]
    words = ["аренд", "аренда", "ренд", "договор 3x", "договор 3", "комисси", "возврат", "ё-мобиль", "ЗАРПЛАТ"]
    rules = []
    for i in range(300):
        c: dict = {}
        if rng.random() < 0.8:
            c["counterparty_inns"] = frozenset(rng.sample(inns, rng.choice((1, 1, 2, 3))))
        if rng.random() < 0.7:
            c["direction"] = rng.choice((OUT, IN))
        if rng.random() < 0.2:
            c["own_accounts"] = frozenset(rng.sample(["A", "B", "C"], rng.choice((1, 2))))
        if rng.random() < 0.35 or "counterparty_inns" not in c:
            c["purpose_contains"] = tuple(rng.sample(words, rng.choice((1, 2))))
        if rng.random() < 0.1:
            c["purpose_excludes"] = (rng.choice(words),)
        if rng.random() < 0.05:
            c["purpose_regex"] = r"сч[её]т\w*\s*№\s*\d+"
        if rng.random() < 0.1:
            c["amount_min"] = D(rng.randrange(100, 5000))
        if rng.random() < 0.05:
            c["date_from"] = dt.date(2026, rng.randrange(1, 13), 1)
        if rng.random() < 0.03:
            c["counterparty_names"] = ('ООО "Молочный край"',)
        direction = c.get("direction")
        article = "D.1.1.1" if direction is IN else "D.1.2.1"
        rules.append(simple_rule(f"r{i}", Condition(**c), article, priority=rng.choice((10, 50, 50, 90, 100)),
                                 suggest_only=rng.random() < 0.05))
    rs = RuleSet(rules, TREE)
    purposes = ["Арендная плата", "Оплата по счёту № 15", "договор 3x поставка", "Возврат займа", "КОМИССИЯ банка",
                "за ё-мобиль", "Зарплата за март", "что-то", "", "Оплата товара", "Поставка молока", "Услуги связи"]
    seen: set[str | None] = set()
    for _ in range(4000):
        o = op(" ".join(rng.sample(purposes, rng.choice((1, 2)))), direction=rng.choice((OUT, IN)),
               amount=f"{rng.randrange(1, 9000)}.00", inn=rng.choice(inns + ["1"] * 10), account=rng.choice("ABCD"),
               day=dt.date(2026, rng.randrange(1, 13), 1),
               name=rng.choice(('ООО "Молочный край"', "ИП Петров")))
        purpose = normalise_text(o.purpose)
        expected = next((c.rule for c in rs._compiled if _matches(c, o, purpose)), None)
        assert rs.first_match(o) is expected, o
        seen.add(expected.name if expected else None)
    assert None in seen and len(seen) > 50  # no match, and many different first matches
