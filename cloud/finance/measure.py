"""The honest coverage measurement: learn on January–June, allocate July–December.

Pipeline, end to end through the real formats: the generated year is written as monthly
1CClientBankExchange files (cp1251), parsed back, turned into operations; the first half's
true allocations play the part of what people allocated by hand; learned suggestions (all
those meeting the precision bar, as an analyst accepting them would) plus the starter hand
rules become the rule set; the second half is allocated and compared with the truth.

Coverage counts only automatic allocations; accuracy says how many of them were right,
because a rule set that allocates everything to one article has 100 % coverage too.
Run ``python -m cloud.finance.measure`` to print the figures.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from cloud.finance.allocation import Allocation, RuleSet, Status
from cloud.finance.coverage import CoverageReport, coverage_report
from cloud.finance.demo_year import OWN_INN, STORES, DemoYear, generate_year, store_cfo
from cloud.finance.operations import BankOperation, from_onec
from cloud.finance.starter_rules import food_chain_rules
from cloud.finance.suggestions import Suggestion, suggest_rules
from cloud.finance.templates import food_chain_tree
from protocols.onec import merge_operations, operations, parse_statement, write_statement


@dataclass(frozen=True, slots=True)
class Measurement:
    learned: tuple[Suggestion, ...]
    rules: int
    report: CoverageReport
    auto_correct_article: int
    auto_correct_cfo: int
    allocations: tuple[Allocation, ...]

    @property
    def accuracy_pct(self) -> Decimal:
        auto = self.report.count_auto
        return (
            (Decimal(self.auto_correct_article) * 100 / auto).quantize(Decimal("0.01"))
            if auto
            else Decimal(0)
        )


def load_operations(year: DemoYear) -> list[BankOperation]:
    """Write every statement to bytes and parse it back, as an import would."""
    batches = [operations(parse_statement(write_statement(st))) for st in year.statements()]
    return [from_onec(op) for op in merge_operations(batches)]


def measure(year: DemoYear | None = None, split: dt.date | None = None) -> Measurement:
    year = year or generate_year()
    split = split or dt.date(year.year, 7, 1)
    truth = year.truth()
    ops = load_operations(year)
    first = [op for op in ops if op.booked_on < split]
    second = [op for op in ops if op.booked_on >= split]
    learned = suggest_rules([(op, truth[op.key]) for op in first])
    hand = food_chain_rules(OWN_INN, {n: store_cfo(n) for n in range(1, STORES + 1)})
    ruleset = RuleSet([s.rule for s in learned] + hand, food_chain_tree())
    allocations = tuple(ruleset.allocate(op) for op in second)
    auto = [a for a in allocations if a.status is Status.AUTO]
    right_article = sum(1 for a in auto if a.parts[0].article == truth[a.operation.key].article)
    right_cfo = sum(
        1
        for a in auto
        if a.parts[0].article == truth[a.operation.key].article
        and a.parts[0].cfo == truth[a.operation.key].cfo
    )
    return Measurement(
        tuple(learned),
        len(ruleset.rules),
        coverage_report(allocations, top=10),
        right_article,
        right_cfo,
        allocations,
    )


def main() -> None:
    m = measure()
    r = m.report
    print(f"rules: {m.rules} ({len(m.learned)} learned from January–June + hand rules)")
    print(f"July–December: {r.count_total} operations, {r.sum_total} ₽")
    print(f"automatic by count: {r.count_auto}/{r.count_total} = {r.share_by_count_pct} %")
    print(f"automatic by sum:   {r.sum_auto}/{r.sum_total} = {r.share_by_sum_pct} %")
    print(
        f"article right: {m.auto_correct_article}/{r.count_auto} = {m.accuracy_pct} %; "
        f"article and ЦФО right: {m.auto_correct_cfo}"
    )
    print("largest unallocated:")
    for op in r.largest_unallocated:
        print(f"  {op.booked_on} {op.amount:>14} {op.counterparty_name[:30]:30} {op.purpose[:70]}")


if __name__ == "__main__":
    main()
