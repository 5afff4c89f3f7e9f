# mypy: disable-error-code="call-overload,call-arg,unused-ignore"
"""Figures the P&L takes from Vitrina's own modules "where present", through a small read interface.

Finance does not import the inventory or sales code (those modules are rented separately and
change on their own schedule); it reads their tables by name, and only when they exist *and*
the tenant has rows in them. A source answers ``{(month, store_id): kopecks}`` — positive
amounts (revenue for revenue, cost for expenses) — or ``None`` when it is not present, in
which case the P&L falls back to allocated bank operations for that article.

Keys: ``inventory.cost_of_sales`` (cost of goods sold: ``stock_moves`` rows of sales),
``inventory.write_offs`` (cost of written-off goods), ``sales.revenue`` (no sales table yet:
always absent, the bank's acquiring and cash collection stand in for it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import inspect, text
from sqlmodel import Session

Figures = dict[tuple[dt.date, int | None], int]


class LedgerSource(Protocol):
    def __call__(self, session: Session, tenant_id: int, date_from: dt.date, date_to: dt.date) -> Figures | None: ...


def _has_table(session: Session, name: str) -> bool:
    return inspect(session.connection()).has_table(name)


def _month_expr(session: Session, column: str) -> str:
    if session.get_bind().dialect.name == "sqlite":
        return f"date({column}, 'start of month')"
    return f"date_trunc('month', {column})::date"


def _stock_moves(doc_type: str) -> LedgerSource:
    def read(session: Session, tenant_id: int, date_from: dt.date, date_to: dt.date) -> Figures | None:
        if not _has_table(session, "stock_moves"):
            return None
        present = session.execute(
            text("SELECT 1 FROM stock_moves WHERE tenant_id = :t LIMIT 1"), {"t": tenant_id}
        ).first()
        if present is None:
            return None
        month = _month_expr(session, "posted_at")
        rows = session.execute(
            text(
                f"SELECT {month} AS m, store_id, -SUM(value_kop) FROM stock_moves "
                "WHERE tenant_id = :t AND doc_type = :d AND NOT cancelled "
                "AND posted_at >= :a AND posted_at < :b GROUP BY 1, 2"
            ),
            {
                "t": tenant_id,
                "d": doc_type,
                "a": dt.datetime.combine(date_from, dt.time(), dt.UTC).replace(tzinfo=None)
                if session.get_bind().dialect.name == "sqlite"
                else dt.datetime.combine(date_from, dt.time(), dt.UTC),
                "b": dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), dt.UTC).replace(tzinfo=None)
                if session.get_bind().dialect.name == "sqlite"
                else dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), dt.UTC),
            },
        ).all()
        out: Figures = {}
        for m, store, kop in rows:
            day = m if isinstance(m, dt.date) else dt.date.fromisoformat(str(m)[:10])
            out[(day, store)] = out.get((day, store), 0) + int(kop or 0)
        return out

    return read


def _absent(session: Session, tenant_id: int, date_from: dt.date, date_to: dt.date) -> Figures | None:
    return None


SOURCES: dict[str, Callable[[Session, int, dt.date, dt.date], Figures | None]] = {
    "inventory.cost_of_sales": _stock_moves("sale"),
    "inventory.write_offs": _stock_moves("write_off"),
    "sales.revenue": _absent,
}
KNOWN_KEYS = frozenset(SOURCES)


def read(session: Session, key: str, tenant_id: int, date_from: dt.date, date_to: dt.date) -> Figures | None:
    """The figures of ``key`` for the period, or ``None`` when the tenant has no such data."""
    return SOURCES[key](session, tenant_id, date_from, date_to)
