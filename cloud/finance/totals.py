"""The totals: signed sums of the operations' parts, kept in step with them by every write.

**Parts sum to the operation**, and every change of parts moves :class:`FinTotal` by the
same signed amounts (the unallocated rest is article 0), so reports never scan parts. A writer
sums its changes in a :class:`Deltas` and adds them in one statement, whatever their number.

Here too, because every writer and the reports share them: :func:`month_of` (a month is its
first day) and ``CHUNK``, the rows per statement where one statement cannot take them all.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from cloud.finance.models import FinTotal

CHUNK = 1000
TOTALS = FinTotal.__table__  # type: ignore[attr-defined]


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


TotalKey = tuple[int, int, int, int, dt.date, dt.date]  # article, cfo, project, account, cash month, accrual month


@dataclass
class Deltas:
    """Signed changes of the totals, summed in memory and written in one statement."""

    tenant_id: int
    sums: dict[TotalKey, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    months: dict[dt.date, dt.date] = field(default_factory=dict)  # day → its month, computed once

    def add(self, article: int, cfo: int | None, project: int | None, account: int, booked: dt.date,
            accrual: dt.date, kop: int, parts: int) -> None:
        cash = self.months.get(booked)
        if cash is None:
            cash = self.months[booked] = month_of(booked)
        bucket = self.sums[(article, cfo or 0, project or 0, account, cash, accrual)]
        bucket[0] += kop
        bucket[1] += parts

    def flush(self, session: Session) -> None:
        """Add the sums to the totals: one statement on PostgreSQL whatever their number (the
        keys travel as arrays), chunks of ``CHUNK`` on SQLite. In key order, so two imports
        moving the same totals lock them in the same order."""
        changes = sorted((k, v) for k, v in self.sums.items() if v[0] or v[1])
        self.sums.clear()
        if not changes:
            return
        if session.get_bind().dialect.name == "postgresql":
            columns = list(zip(*((*k, v[0], v[1]) for k, v in changes), strict=True))
            session.execute(text(
                "INSERT INTO fin_totals (tenant_id, article_id, cfo_id, project_id, account_id, cash_month,"
                " accrual_month, amount_kop, parts) SELECT :tenant, * FROM unnest(CAST(:article AS integer[]),"
                " CAST(:cfo AS integer[]), CAST(:project AS integer[]), CAST(:account AS integer[]),"
                " CAST(:cash AS date[]), CAST(:accrual AS date[]), CAST(:kop AS bigint[]), CAST(:parts AS integer[]))"
                " ON CONFLICT (tenant_id, article_id, cfo_id, project_id, account_id, cash_month, accrual_month)"
                " DO UPDATE SET amount_kop = fin_totals.amount_kop + EXCLUDED.amount_kop,"
                " parts = fin_totals.parts + EXCLUDED.parts"),
                {"tenant": self.tenant_id, **dict(zip(("article", "cfo", "project", "account", "cash", "accrual", "kop",
                                                       "parts"), map(list, columns), strict=True))},
            )
            return
        rows = [
            {"tenant_id": self.tenant_id, "article_id": k[0], "cfo_id": k[1], "project_id": k[2], "account_id": k[3],
             "cash_month": k[4], "accrual_month": k[5], "amount_kop": v[0], "parts": v[1]}
            for k, v in changes
        ]
        stmt = sqlite_insert(TOTALS)
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "article_id", "cfo_id", "project_id", "account_id", "cash_month", "accrual_month"],
            set_={"amount_kop": TOTALS.c.amount_kop + stmt.excluded.amount_kop,
                  "parts": TOTALS.c.parts + stmt.excluded.parts},
        )
        for start in range(0, len(rows), CHUNK):
            session.execute(stmt, rows[start:start + CHUNK])
