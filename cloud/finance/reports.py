# mypy: disable-error-code="call-overload,call-arg,unused-ignore"
"""Reports: cash flow (ДДС), P&L, plan vs actual; JSON and XLSX, every cell with its drill-down.

Month columns read :class:`cloud.finance.models.FinTotal` (a few rows per article × month ×
ЦФО × account), never the millions of parts; week and day columns and every drill-down read
parts through their ``(tenant, article, date)`` indexes, for the requested range only.

Signs. Totals are signed (inflow +, outflow −). A cash-flow article is shown in its own
direction: an outflow article's payments are positive; a group without a direction (an
activity, transfers) shows the balance, inflow − outflow. In the P&L revenue and other
income are positive when money came in, every other class is an expense, positive when paid.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import and_, cast, func, select
from sqlmodel import Session

from cloud.catalog.units import from_kop
from cloud.errors import Invalid, NotFound
from cloud.finance import sources
from cloud.finance.articles import ArticleTree, Flow, PnlClass, Statement
from cloud.finance.models import (
    FinBudget,
    FinBudgetLine,
    FinCfo,
    FinDataSource,
    FinIndicator,
    FinOperation,
    FinOperationPart,
    FinTotal,
    OpStatus,
    SourceKind,
)
from cloud.finance.service import part_public
from cloud.finance.setup import Names, indicator_set, names, user_values
from cloud.finance.totals import month_of

INCOME = {PnlClass.REVENUE.value, PnlClass.OTHER_INCOME.value}
UNALLOCATED = "unallocated"
MAX_DAYS = 400


@dataclass(frozen=True)
class Filters:
    legal_entity_id: int | None = None
    cfo: str | None = None
    project: str | None = None


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive

    @property
    def label(self) -> str:
        return self.start.isoformat()


def periods(date_from: dt.date, date_to: dt.date, granularity: str) -> list[Period]:
    if date_from > date_to:
        raise Invalid(f"период: дата «с» {date_from} позже даты «по» {date_to}", code="bad_period")
    if (date_to - date_from).days > MAX_DAYS * 3:
        raise Invalid("период длиннее трёх лет: разбейте отчёт", code="period_too_long")
    out: list[Period] = []
    if granularity == "month":
        start = month_of(date_from)
        while start <= date_to:
            nxt = (start + dt.timedelta(days=32)).replace(day=1)
            out.append(Period(max(start, date_from), min(nxt - dt.timedelta(days=1), date_to)))
            start = nxt
    elif granularity in ("week", "day"):
        if (date_to - date_from).days > MAX_DAYS:
            raise Invalid("по дням и неделям — не больше 400 дней", code="period_too_long")
        step = 7 if granularity == "week" else 1
        start = date_from - dt.timedelta(days=date_from.weekday()) if step == 7 else date_from
        while start <= date_to:
            out.append(Period(max(start, date_from), min(start + dt.timedelta(days=step - 1), date_to)))
            start += dt.timedelta(days=step)
    else:
        raise Invalid(f"шаг {granularity!r}: бывает month, week или day", code="bad_granularity")
    return out


def _whole_months(p: Sequence[Period]) -> bool:
    return all(x.start.day == 1 and (x.end + dt.timedelta(days=1)).day == 1 for x in p)


class _Scope:
    """Resolved filters of one tenant."""

    def __init__(self, session: Session, tenant_id: int, f: Filters) -> None:
        self.tenant_id = tenant_id
        self.n: Names = names(session, tenant_id)
        self.accounts = {a.id: a for a in self.n.accounts.values() if a.id is not None}
        if f.legal_entity_id is not None:
            self.accounts = {i: a for i, a in self.accounts.items() if a.legal_entity_id == f.legal_entity_id}
            if not self.accounts:
                raise NotFound(f"у юрлица {f.legal_entity_id} нет счетов (или юрлица нет)", code="unknown_legal_entity")
        self.cfo_id = self.n.cfo(f.cfo, "фильтр cfo")
        self.project_id = self.n.project(f.project, "фильтр project")
        self.filters = f
        self.tree: ArticleTree = self.n.tree()

    def totals_where(self) -> Any:
        T = FinTotal
        cond = [T.tenant_id == self.tenant_id, T.account_id.in_(list(self.accounts))]  # type: ignore[attr-defined]
        if self.cfo_id is not None:
            cond.append(T.cfo_id == self.cfo_id)
        if self.project_id is not None:
            cond.append(T.project_id == self.project_id)
        return and_(*cond)  # type: ignore[arg-type]

    def parts_where(self) -> Any:
        P = FinOperationPart
        cond = [P.tenant_id == self.tenant_id, P.account_id.in_(list(self.accounts))]  # type: ignore[attr-defined]
        if self.cfo_id is not None:
            cond.append(P.cfo_id == self.cfo_id)
        if self.project_id is not None:
            cond.append(P.project_id == self.project_id)
        return and_(*cond)  # type: ignore[arg-type]

    def drill(self, statement: str, article: str, p: Period, basis: str) -> str:
        q = {"article": article, "date_from": p.start.isoformat(), "date_to": p.end.isoformat(), "basis": basis}
        if self.filters.legal_entity_id is not None:
            q["legal_entity_id"] = str(self.filters.legal_entity_id)
        if self.filters.cfo:
            q["cfo"] = self.filters.cfo
        if self.filters.project:
            q["project"] = self.filters.project
        return f"/api/v1/finance/reports/{statement}/cell?" + urlencode(q)


def _which(ps: Sequence[Period], day: dt.date) -> Period | None:
    for p in ps:
        if p.start <= day <= p.end:
            return p
    return None


def _money(kop: int | None) -> Decimal | None:
    return None if kop is None else from_kop(kop)


# ---------------------------------------------------------------- cash flow


def _movement(session: Session, scope: _Scope, a: dt.date, b: dt.date) -> dict[int, int]:
    """Signed movement per account for ``a <= booked_on < b``: whole months from totals, edges from operations."""
    out: dict[int, int] = defaultdict(int)
    if a >= b:
        return out
    first_whole = a if a.day == 1 else (a + dt.timedelta(days=32)).replace(day=1)
    last_whole = month_of(b)  # exclusive
    ids = list(scope.accounts)
    if first_whole < last_whole:
        T = FinTotal
        for account, kop in session.execute(
            select(T.account_id, func.sum(T.amount_kop)).where(
                T.tenant_id == scope.tenant_id, T.account_id.in_(ids), T.cash_month >= first_whole, T.cash_month < last_whole  # type: ignore[attr-defined, arg-type]
            ).group_by(T.account_id)
        ):
            out[account] += int(kop)
        edges = [(a, min(first_whole, b)), (max(last_whole, a), b)]
    else:
        edges = [(a, b)]
    Op = FinOperation
    for lo, hi in edges:
        if lo >= hi:
            continue
        signed = func.sum(func.coalesce(Op.amount_kop, 0) * (2 * cast(Op.direction == "inflow", _int()) - 1))  # type: ignore[arg-type]
        for account, kop in session.execute(
            select(Op.account_id, signed).where(
                Op.tenant_id == scope.tenant_id, Op.account_id.in_(ids), Op.booked_on >= lo, Op.booked_on < hi  # type: ignore[attr-defined, arg-type]
            ).group_by(Op.account_id)
        ):
            out[account] += int(kop or 0)
    return out


def _int() -> Any:
    from sqlalchemy import Integer

    return Integer()


def _cash_grid(session: Session, scope: _Scope, ps: Sequence[Period]) -> dict[int, dict[Period, int]]:
    """Signed kopecks per article id (0 = unallocated) per period."""
    grid: dict[int, dict[Period, int]] = defaultdict(lambda: defaultdict(int))
    lo, hi = ps[0].start, ps[-1].end
    if _whole_months(ps):
        T = FinTotal
        by_month = {p.start: p for p in ps}
        rows = session.execute(
            select(T.article_id, T.cash_month, func.sum(T.amount_kop)).where(
                scope.totals_where(), T.cash_month >= lo, T.cash_month <= hi  # type: ignore[arg-type]
            ).group_by(T.article_id, T.cash_month)
        )
        for article, month, kop in rows:
            grid[article][by_month[month]] += int(kop)
        return grid
    P = FinOperationPart
    sign = 2 * cast(P.direction == "inflow", _int()) - 1  # type: ignore[arg-type]
    for article, day, kop in session.execute(
        select(P.article_id, P.booked_on, func.sum(P.amount_kop * sign)).where(
            scope.parts_where(), P.booked_on >= lo, P.booked_on <= hi  # type: ignore[arg-type]
        ).group_by(P.article_id, P.booked_on)
    ):
        p = _which(ps, day)
        if p is not None:
            grid[article][p] += int(kop)
    if scope.cfo_id is None and scope.project_id is None:
        Op = FinOperation
        osign = 2 * cast(Op.direction == "inflow", _int()) - 1  # type: ignore[arg-type]
        for day, kop in session.execute(
            select(Op.booked_on, func.sum(Op.amount_kop * osign)).where(
                Op.tenant_id == scope.tenant_id, Op.account_id.in_(list(scope.accounts)), Op.status != OpStatus.ALLOCATED.value,  # type: ignore[attr-defined, arg-type]
                Op.booked_on >= lo, Op.booked_on <= hi,  # type: ignore[arg-type]
            ).group_by(Op.booked_on)
        ):
            p = _which(ps, day)
            if p is not None:
                grid[0][p] += int(kop)
    return grid


def roll_up(tree: ArticleTree, grid: dict[str, dict[Period, int]]) -> dict[str, dict[Period, int]]:
    """Leaf kopecks → every article's (a parent = the sum of its subtree), exact integers."""
    out: dict[str, dict[Period, int]] = {code: defaultdict(int) for code in tree.by_code}
    for code, by_period in grid.items():
        for target in (code, *tree.ancestors(code)):
            for period, value in by_period.items():
                out[target][period] += value
    return out


def _display_cash(scope: _Scope, code: str, net: int) -> int:
    a = scope.tree[code]
    return -net if a.flow is Flow.OUTFLOW else net


def _rows(scope: _Scope, statement: Statement, rolled: dict[str, dict[Period, int]], ps: Sequence[Period],
          display: Any, basis: str, sources_used: dict[str, str] | None = None) -> list[dict[str, Any]]:
    order = sorted(
        (a for a in scope.n.by_id.values() if a.statement == statement.value), key=lambda a: (a.position, a.code)
    )
    out = []
    for a in order:
        values = {p: display(scope, a.code, rolled.get(a.code, {}).get(p, 0)) for p in ps}
        row = {
            "kind": "article", "code": a.code, "name": a.name, "level": len(scope.tree.ancestors(a.code)),
            "cells": [{"period": p.label, "value": from_kop(values[p]),
                       "drill": scope.drill(statement.value, a.code, p, basis)} for p in ps],
            "total": from_kop(sum(values.values())),
        }
        if sources_used is not None and a.code in sources_used:
            row["source"] = sources_used[a.code]
        out.append(row)
    return out


def _indicator_rows(session: Session, scope: _Scope, statement: Statement, grid: dict[str, dict[Any, Decimal]],
                    ps: Sequence[Period]) -> list[dict[str, Any]]:
    rows = list(session.scalars(select(FinIndicator).where(FinIndicator.tenant_id == scope.tenant_id).order_by(FinIndicator.position, FinIndicator.id)))  # type: ignore[arg-type]
    iset = indicator_set(session, scope.tenant_id, rows)
    months = [p.start for p in ps]
    values = dict(grid)
    users = user_values(session, scope.tenant_id, [scope.cfo_id] if scope.cfo_id else None)
    for name, by_month in users.items():
        values[name] = {p.start: by_month.get(month_of(p.start), Decimal(0)) for p in ps}
    cells = iset.evaluate(values, months)
    out = []
    for r in rows:
        if r.statement != statement.value:
            continue
        if r.formula:
            out.append({"kind": "indicator", "code": r.name, "name": r.title or r.name, "formula": r.formula,
                        "cells": [{"period": p.label, "value": cells[r.name][p.start].value,
                                   "flags": sorted(cells[r.name][p.start].flags)} for p in ps]})
        else:
            out.append({"kind": "user_indicator", "code": r.name, "name": r.title or r.name,
                        "cells": [{"period": p.label, "value": values.get(r.name, {}).get(p.start)} for p in ps]})
    return out


def cash_flow(session: Session, tenant_id: int, date_from: dt.date, date_to: dt.date, granularity: str = "month",
              filters: Filters = Filters()) -> dict[str, Any]:
    scope = _Scope(session, tenant_id, filters)
    ps = periods(date_from, date_to, granularity)
    raw = _cash_grid(session, scope, ps)
    leaves = {scope.n.by_id[a].code: dict(v) for a, v in raw.items() if a != 0 and a in scope.n.by_id}
    rolled = roll_up(scope.tree, leaves)
    rows = _rows(scope, Statement.CASH_FLOW, rolled, ps, _display_cash, "cash")  # type: ignore[arg-type]
    unalloc = raw.get(0, {})
    rows.append({"kind": "unallocated", "code": UNALLOCATED, "name": "Не разнесено (сальдо)", "level": 0,
                 "cells": [{"period": p.label, "value": from_kop(unalloc.get(p, 0)),
                            "drill": scope.drill("cash-flow", UNALLOCATED, p, "cash")} for p in ps],
                 "total": from_kop(sum(unalloc.values()))})
    net = {p: sum(v.get(p, 0) for v in raw.values()) for p in ps}
    display_grid: dict[str, dict[Any, Decimal]] = {
        code: {p.start: from_kop(_display_cash(scope, code, v.get(p, 0))) for p in ps} for code, v in rolled.items()
    }
    rows += _indicator_rows(session, scope, Statement.CASH_FLOW, display_grid, ps)
    balances = None
    if scope.cfo_id is None and scope.project_id is None:
        balances = _balances(session, scope, ps)
    return {
        "report": "cash_flow", "date_from": date_from, "date_to": date_to, "granularity": granularity,
        "filters": filters.__dict__, "periods": [p.label for p in ps], "rows": rows,
        "net_flow": [{"period": p.label, "value": from_kop(net[p])} for p in ps],
        "balances": balances,
    }


def _balances(session: Session, scope: _Scope, ps: Sequence[Period]) -> list[dict[str, Any]]:
    out = []
    start = ps[0].start
    opening: dict[int, int] = {}
    for account_id, a in scope.accounts.items():
        if a.balance_date <= start:
            opening[account_id] = a.opening_balance_kop
    before = {i: _movement(session, scope, scope.accounts[i].balance_date, start).get(i, 0) for i in opening}
    current = {i: opening[i] + before[i] for i in opening}
    per_period = [_movement(session, scope, p.start, p.end + dt.timedelta(days=1)) for p in ps]
    for account_id, a in sorted(scope.accounts.items(), key=lambda kv: kv[1].number):
        if account_id not in current:
            out.append({"account": a.number, "name": a.name, "known": False,
                        "detail": f"остаток счёта {a.number} известен только с {a.balance_date}"})
            continue
        cells = []
        balance = current[account_id]
        for p, moved in zip(ps, per_period, strict=True):
            closing = balance + moved.get(account_id, 0)
            cells.append({"period": p.label, "opening": from_kop(balance), "inflow_minus_outflow": from_kop(moved.get(account_id, 0)),
                          "closing": from_kop(closing)})
            balance = closing
        out.append({"account": a.number, "name": a.name, "known": True, "cells": cells})
    return out


# ---------------------------------------------------------------- P&L


def _pnl_leaf_grid(session: Session, scope: _Scope, ps: Sequence[Period]) -> tuple[dict[str, dict[Period, int]], dict[str, str]]:
    """P&L article code → period → kopecks in the P&L's sign; and which rows came from Vitrina."""
    by_month = {p.start: p for p in ps}
    T = FinTotal
    grid: dict[str, dict[Period, int]] = defaultdict(lambda: defaultdict(int))
    rows = session.execute(
        select(T.article_id, T.accrual_month, func.sum(T.amount_kop)).where(
            scope.totals_where(), T.article_id != 0, T.accrual_month >= month_of(ps[0].start), T.accrual_month <= ps[-1].end  # type: ignore[arg-type]
        ).group_by(T.article_id, T.accrual_month)
    )
    for article_id, month, kop in rows:
        cash = scope.n.by_id.get(article_id)
        if cash is None or cash.pnl_article_id is None or month not in by_month:
            continue
        pnl = scope.n.by_id[cash.pnl_article_id]
        sign = 1 if pnl.pnl_class in INCOME else -1
        grid[pnl.code][by_month[month]] += sign * int(kop)
    used: dict[str, str] = {}
    if scope.project_id is None and scope.filters.legal_entity_id is None:
        store_cfo = {c.store_id: c.id for c in session.scalars(select(FinCfo).where(FinCfo.tenant_id == scope.tenant_id)) if c.store_id}  # type: ignore[arg-type]
        for src in session.scalars(select(FinDataSource).where(FinDataSource.tenant_id == scope.tenant_id, FinDataSource.kind == SourceKind.VITRINA.value)):  # type: ignore[arg-type]
            code = scope.n.by_id[src.article_id].code
            if src.vitrina_key not in sources.KNOWN_KEYS:
                continue
            figures = sources.read(session, src.vitrina_key, scope.tenant_id, ps[0].start, ps[-1].end)
            if figures is None:
                continue
            used[code] = f"vitrina:{src.vitrina_key}"
            grid[code] = defaultdict(int)
            for (month, store), kop in figures.items():
                if scope.cfo_id is not None and store_cfo.get(store) != scope.cfo_id:  # type: ignore[arg-type]
                    continue
                if month in by_month:
                    grid[code][by_month[month]] += kop
    return grid, used


def pnl(session: Session, tenant_id: int, date_from: dt.date, date_to: dt.date, filters: Filters = Filters()) -> dict[str, Any]:
    scope = _Scope(session, tenant_id, filters)
    ps = periods(month_of(date_from), date_to, "month")
    leaves, used = _pnl_leaf_grid(session, scope, ps)
    rolled = roll_up(scope.tree, {k: dict(v) for k, v in leaves.items()})
    rows = _rows(scope, Statement.PNL, rolled, ps, lambda _s, _c, v: v, "accrual", used)
    grid = {code: {p.start: from_kop(v.get(p, 0)) for p in ps} for code, v in rolled.items()}
    rows += _indicator_rows(session, scope, Statement.PNL, grid, ps)
    return {"report": "pnl", "date_from": ps[0].start, "date_to": date_to, "filters": filters.__dict__,
            "periods": [p.label for p in ps], "rows": rows}


# ---------------------------------------------------------------- drill-down


def cell(session: Session, tenant_id: int, statement: str, article: str, date_from: dt.date, date_to: dt.date,
         basis: str, filters: Filters = Filters(), limit: int = 1000) -> dict[str, Any]:
    """The operation parts behind one cell (or the unallocated operations of the row ``unallocated``)."""
    scope = _Scope(session, tenant_id, filters)
    P, Op = FinOperationPart, FinOperation
    if article == UNALLOCATED:
        ops = list(session.scalars(select(Op).where(
            Op.tenant_id == tenant_id, Op.account_id.in_(list(scope.accounts)), Op.status != OpStatus.ALLOCATED.value,  # type: ignore[attr-defined, arg-type]
            Op.booked_on >= date_from, Op.booked_on <= date_to).order_by(Op.booked_on, Op.id).limit(limit)))  # type: ignore[arg-type]
        return {"article": article, "operations": [
            {"id": o.id, "booked_on": o.booked_on, "direction": o.direction, "amount": from_kop(o.amount_kop),
             "counterparty_name": o.counterparty_name, "purpose": o.purpose, "status": o.status} for o in ops]}
    target = scope.n.article(article, "расшифровка")
    codes = [target.code, *[c for c in scope.tree.by_code if target.code in scope.tree.ancestors(c)]]
    if statement == "pnl":
        cash_ids = [a.id for a in scope.n.by_id.values() if a.pnl_article_id is not None and scope.n.by_id[a.pnl_article_id].code in codes]
        date_col = P.accrual_month
        lo = month_of(date_from)
    else:
        cash_ids = [scope.n.articles[c].id for c in codes]
        date_col = P.booked_on
        lo = date_from
    rows = session.execute(
        select(P, Op).join(Op, Op.id == P.operation_id).where(  # type: ignore[arg-type]
            scope.parts_where(), P.article_id.in_(cash_ids), date_col >= lo, date_col <= date_to  # type: ignore[attr-defined, operator, arg-type]
        ).order_by(P.booked_on, P.id).limit(limit)  # type: ignore[arg-type]
    ).all()
    from cloud.finance.models import FinRule

    rule_names: dict[int, str] = dict(session.execute(select(FinRule.id, FinRule.name).where(FinRule.tenant_id == tenant_id)).all())  # type: ignore[arg-type]
    parts = [part_public(scope.n, p, o, rule_names) for p, o in rows]
    return {"article": article, "statement": statement, "date_from": date_from, "date_to": date_to, "basis": basis,
            "parts": parts, "sum": sum((p.amount for p in parts), Decimal(0)), "truncated": len(parts) == limit}


# ---------------------------------------------------------------- budgets


def plan_vs_actual(session: Session, tenant_id: int, budget_id: int, cfo: str | None = None) -> dict[str, Any]:
    budget = session.get(FinBudget, budget_id)
    if budget is None or budget.tenant_id != tenant_id:
        raise NotFound(f"бюджет {budget_id} не найден")
    filters = Filters(cfo=cfo)
    scope = _Scope(session, tenant_id, filters)
    ps = periods(month_of(budget.date_from), budget.date_to, "month")
    stmt = select(FinBudgetLine.article_id, FinBudgetLine.month, func.sum(FinBudgetLine.amount_kop)).where(
        FinBudgetLine.budget_id == budget_id).group_by(FinBudgetLine.article_id, FinBudgetLine.month)  # type: ignore[arg-type]
    if scope.cfo_id is not None:
        stmt = stmt.where(FinBudgetLine.cfo_id == scope.cfo_id)  # type: ignore[arg-type]
    by_month = {p.start: p for p in ps}
    plan_leaves: dict[str, dict[Period, int]] = defaultdict(lambda: defaultdict(int))
    for article_id, month, kop in session.execute(stmt):
        if month in by_month:
            plan_leaves[scope.n.by_id[article_id].code][by_month[month]] += int(kop)
    plan = roll_up(scope.tree, {k: dict(v) for k, v in plan_leaves.items()})
    actual_report = (pnl(session, tenant_id, ps[0].start, ps[-1].end, filters) if budget.statement == Statement.PNL
                     else cash_flow(session, tenant_id, ps[0].start, ps[-1].end, "month", filters))
    actual = {r["code"]: r for r in actual_report["rows"] if r["kind"] == "article"}
    rows = []
    for code, act in actual.items():
        cells = []
        for p, c in zip(ps, act["cells"], strict=True):
            planned = from_kop(plan.get(code, {}).get(p, 0))
            cells.append(_variance(p.label, planned, c["value"]) | {"drill": c["drill"]})
        total_plan = from_kop(sum(plan.get(code, {}).values()))
        rows.append({"code": code, "name": act["name"], "level": act["level"], "cells": cells,
                     "total": _variance("total", total_plan, act["total"])})
    return {"report": "plan_vs_actual", "budget": {"id": budget.id, "name": budget.name, "kind": budget.kind,
            "statement": budget.statement}, "cfo": cfo, "periods": [p.label for p in ps], "rows": rows}


def _variance(label: str, plan: Decimal, actual: Decimal) -> dict[str, Any]:
    diff = actual - plan
    pct = None if plan == 0 else (diff * 100 / plan).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {"period": label, "plan": plan, "actual": actual, "variance": diff, "variance_pct": pct}


# ---------------------------------------------------------------- XLSX


def to_xlsx(report: dict[str, Any], base_url: str = "") -> bytes:
    """One sheet: rows × periods; each money cell links to its drill-down in the API."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    titles = {"cash_flow": "ДДС", "pnl": "ПиУ", "plan_vs_actual": "План-факт"}
    ws.title = titles.get(report["report"], "Отчёт")
    money = "#,##0.00;-#,##0.00"
    if report["report"] == "plan_vs_actual":
        header = ["Код", "Статья"]
        for p in [*report["periods"], "Итого"]:
            header += [f"{p} план", f"{p} факт", f"{p} откл.", f"{p} откл. %"]
        ws.append(header)
        for r in report["rows"]:
            line: list[Any] = ["  " * r["level"] + r["code"], r["name"]]
            for c in [*r["cells"], r["total"]]:
                line += [c["plan"], c["actual"], c["variance"], c["variance_pct"]]
            ws.append(line)
    else:
        ws.append(["Код", "Статья", *report["periods"], "Итого"])
        for r in report["rows"]:
            indent = "  " * r.get("level", 0)
            values = [c["value"] for c in r["cells"]]
            ws.append([indent + r["code"], r["name"], *values, r.get("total")])
            row_no = ws.max_row
            if r["kind"] in ("article", "unallocated"):
                ws.cell(row_no, 1).font = Font(bold=r.get("level", 0) == 0)
                for i, c in enumerate(r["cells"]):
                    target = ws.cell(row_no, 3 + i)
                    target.hyperlink = base_url + c["drill"]
        for b in report.get("balances") or []:
            if not b.get("known"):
                continue
            ws.append([b["account"], "Остаток на начало", *[c["opening"] for c in b["cells"]]])
            ws.append([b["account"], "Остаток на конец", *[c["closing"] for c in b["cells"]]])
    for row in ws.iter_rows(min_row=2, min_col=3):
        for c in row:
            if isinstance(c.value, Decimal):
                c.number_format = money
    for cell_ in ws[1]:
        cell_.font = Font(bold=True)
    ws.freeze_panes = "C2"
    ws.column_dimensions["A"].width = 14
    ws.column_dimensions["B"].width = 44
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
