from __future__ import annotations

import datetime as dt
from decimal import Decimal

from cloud.finance.allocation import RuleSet, Share, Status
from cloud.finance.coverage import coverage_by_month, coverage_report
from cloud.finance.operations import BankOperation
from cloud.finance.suggestions import COUNTERPARTY_PRIORITY, SPECIFIC_PRIORITY, suggest_rules
from cloud.finance.templates import food_chain_tree
from protocols.onec import Direction

D = Decimal
BANK = "7702070139"


def op(
    n: int,
    purpose: str,
    amount: str,
    inn: str = BANK,
    name: str = "Банк ВТБ (ПАО)",
    direction: Direction = Direction.OUTFLOW,
    month: int = 1,
) -> BankOperation:
    return BankOperation(
        f"k{n}", dt.date(2026, month, 1 + n % 27), "A", direction, D(amount), inn, name, "", purpose
    )


def history() -> list[tuple[BankOperation, Share]]:
    items = []
    for m in range(1, 7):
        items += [
            (
                op(m * 10 + 1, f"Перечисление заработной платы по реестру № {m}", "2400000.00", month=m),
                Share("D.1.2.5", cfo="HQ"),
            ),
            (
                op(
                    m * 10 + 2,
                    f"Уплата процентов по кредитному договору № КД-77 за {m}",
                    "190000.00",
                    month=m,
                ),
                Share("D.3.2.2"),
            ),
            (
                op(
                    m * 10 + 3,
                    "Погашение основного долга по кредитному договору № КД-77",
                    "850000.00",
                    month=m,
                ),
                Share("D.3.2.1"),
            ),
            (
                op(
                    m * 10 + 4,
                    f"Оплата по счету № {m}7 за молоко",
                    "120000.00",
                    inn="5024112233",
                    name="ООО Молоко",
                    month=m,
                ),
                Share("D.1.2.1"),
            ),
        ]
    items.append((op(99, "Оплата за сыр", "5000.00", inn="5024112233", name="ООО Молоко"), Share("D.1.2.1")))
    items.append((op(98, "Разовая оплата", "1.00", inn="1111111111", name="ООО Разовый"), Share("D.1.2.19")))
    return items


def test_consistent_counterparty_becomes_one_rule_with_expected_coverage() -> None:
    suggestions = suggest_rules(history())
    milk = [s for s in suggestions if s.rule.condition.counterparty_inns == {"5024112233"}]
    assert len(milk) == 1
    s = milk[0]
    assert s.rule.priority == COUNTERPARTY_PRIORITY and s.rule.condition.purpose_regex is None
    assert s.rule.shares[0] == Share("D.1.2.1")
    assert (s.support, s.matched_count, s.agreeing_count) == (7, 7, 7)
    assert s.matched_sum == D("725000.00") and s.precision_pct == D("100.0")


def test_mixed_counterparty_is_split_by_purpose_words() -> None:
    bank = {
        s.rule.shares[0].article: s
        for s in suggest_rules(history())
        if BANK in s.rule.condition.counterparty_inns
    }
    assert set(bank) == {"D.1.2.5", "D.3.2.2", "D.3.2.1"}
    assert all(s.rule.priority == SPECIFIC_PRIORITY for s in bank.values())
    assert bank["D.1.2.5"].rule.shares[0].cfo == "HQ"
    for article, s in bank.items():
        assert s.matched_count == 6 and s.agreeing_count == 6, article
    # The chosen words really separate them.
    rs = RuleSet([s.rule for s in bank.values()], food_chain_tree())
    assert (
        rs.allocate(op(500, "Уплата процентов по кредитному договору № КД-77 за июль", "1.00"))
        .parts[0]
        .article
        == "D.3.2.2"
    )


def test_one_offs_and_ambiguous_groups_give_no_rule() -> None:
    items = history()
    assert not [s for s in suggest_rules(items) if "1111111111" in s.rule.condition.counterparty_inns]
    # Same purpose, different articles: no word separates them, so nothing is proposed.
    same = [
        (op(i, "Оплата услуг", "10.00", inn="2222222222"), Share("D.1.2.10" if i % 2 else "D.1.2.11"))
        for i in range(10)
    ]
    assert suggest_rules(same) == []


def test_counterparty_without_inn_is_grouped_by_name() -> None:
    items = [
        (
            op(i, "Возмещение расходов", "10.00", inn="", name="Иванов И. И." if i % 2 else "ИВАНОВ И.И."),
            Share("D.1.2.19"),
        )
        for i in range(4)
    ]
    (s,) = suggest_rules(items)
    assert s.rule.condition.counterparty_names and s.matched_count == 4


def test_coverage_report_by_count_and_sum() -> None:
    items = history()
    rs = RuleSet([s.rule for s in suggest_rules(items)], food_chain_tree())
    allocations = [rs.allocate(o) for o, _ in items]
    report = coverage_report(allocations, top=2)
    assert report.count_total == 26 and report.count_auto == 25 and report.count_suggested == 0
    assert report.sum_total == D("21365001.00") and report.sum_auto == D("21365000.00")
    assert report.share_by_count_pct == D("96.15") and report.share_by_sum_pct == D("100.00")
    assert [o.purpose for o in report.largest_unallocated] == ["Разовая оплата"]
    months = coverage_by_month(allocations)
    assert list(months) == [dt.date(2026, m, 1) for m in range(1, 7)]
    assert months[dt.date(2026, 2, 1)].share_by_count_pct == D("100.00")
    assert sum(r.count_total for r in months.values()) == 26
    assert all(a.status is not Status.SUGGESTED for a in allocations)


def test_empty_period_is_fully_covered_not_a_division_error() -> None:
    assert coverage_report([]).share_by_sum_pct == D("100.00")
