"""The honest measurement on a generated year (see cloud.finance.measure for the pipeline)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from cloud.finance.demo_year import generate_year
from cloud.finance.measure import load_operations, measure
from protocols.onec import Direction


@pytest.fixture(scope="module")
def year():
    return generate_year()


def test_generator_is_deterministic_and_realistic(year) -> None:
    again = generate_year()
    assert [ln.key for ln in again.lines] == [ln.key for ln in year.lines]
    assert generate_year(seed=1).lines[0].key != year.lines[0].key
    articles = Counter(ln.label.article for ln in year.lines)
    assert len(year.lines) > 3000 and len(articles) >= 20
    parties = {ln.document.payee.inn for ln in year.lines if ln.direction is Direction.OUTFLOW}
    assert len(parties) >= 60


def test_statements_round_trip_and_balance(year) -> None:
    from protocols.onec import check_balances, parse_statement, write_statement

    statements = year.statements()
    assert len(statements) == 36
    for st in statements:
        assert check_balances(parse_statement(write_statement(st))) == []
    ops = load_operations(year)
    truth = year.truth()
    assert len(ops) == len(truth) and all(o.key in truth for o in ops)


def test_second_half_coverage_with_rules_learned_on_the_first(year) -> None:
    m = measure(year)
    r = m.report
    # Measured on this generator (seed 20260101): 99.81 % by count, 99.78 % by sum,
    # article right in 98.50 % of automatic allocations. The target is 95 % by both.
    assert r.share_by_count_pct >= Decimal("95")
    assert r.share_by_sum_pct >= Decimal("95")
    assert m.accuracy_pct >= Decimal("97")
    assert r.count_total > 2000
    # What stays by hand is the genuinely new: a renovation contract, legal services.
    biggest = r.largest_unallocated[0]
    assert "подряда" in biggest.purpose
