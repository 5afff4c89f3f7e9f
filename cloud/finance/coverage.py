"""How much of the money the rules allocate on their own: by count and by sum, per period.

The rollout regulation promises "до 90 % документов и платежей по количеству и по сумме";
both shares are reported because they fail differently: many small bank fees left by hand
hurt the count, one unallocated equipment purchase hurts the sum. The largest unallocated
lines are listed because they are where the next rule pays off most.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from cloud.finance.allocation import Allocation, Status
from cloud.finance.operations import BankOperation

_PCT = Decimal("0.01")


def _pct(part: Decimal, whole: Decimal) -> Decimal:
    if not whole:
        return Decimal("100.00")
    return (part * 100 / whole).quantize(_PCT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class CoverageReport:
    count_total: int
    count_auto: int
    count_suggested: int
    sum_total: Decimal
    sum_auto: Decimal
    largest_unallocated: tuple[BankOperation, ...]

    @property
    def share_by_count_pct(self) -> Decimal:
        return _pct(Decimal(self.count_auto), Decimal(self.count_total))

    @property
    def share_by_sum_pct(self) -> Decimal:
        return _pct(self.sum_auto, self.sum_total)


def coverage_report(allocations: Iterable[Allocation], top: int = 10) -> CoverageReport:
    """Automatic allocation share; a suggestion not yet confirmed does not count as allocated."""
    items = list(allocations)
    auto = [a for a in items if a.status is Status.AUTO]
    left = [a.operation for a in items if a.status is not Status.AUTO]
    left.sort(key=lambda op: op.amount, reverse=True)
    return CoverageReport(
        count_total=len(items),
        count_auto=len(auto),
        count_suggested=sum(1 for a in items if a.status is Status.SUGGESTED),
        sum_total=sum((a.operation.amount for a in items), Decimal(0)),
        sum_auto=sum((a.operation.amount for a in auto), Decimal(0)),
        largest_unallocated=tuple(left[:top]),
    )


def coverage_by_month(allocations: Iterable[Allocation], top: int = 5) -> dict[dt.date, CoverageReport]:
    """One report per calendar month of the payment date."""
    months: dict[dt.date, list[Allocation]] = defaultdict(list)
    for a in allocations:
        months[a.operation.booked_on.replace(day=1)].append(a)
    return {month: coverage_report(items, top) for month, items in sorted(months.items())}
