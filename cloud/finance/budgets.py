# mypy: disable-error-code="call-overload,call-arg,unused-ignore"
"""Budgets: plan and estimate versions per period × article × ЦФО, entered via API or XLSX."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from sqlalchemy import delete, select
from sqlmodel import Session

from cloud.catalog.units import to_kop
from cloud.errors import Conflict, Invalid, NotFound
from cloud.finance.models import BudgetIn, BudgetLineIn, BudgetPublic, FinBudget, FinBudgetLine
from cloud.finance.setup import names
from cloud.finance.totals import month_of


def _budget(session: Session, tenant_id: int, budget_id: int) -> FinBudget:
    row = session.get(FinBudget, budget_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"бюджет {budget_id} не найден")
    return row


def create_budget(session: Session, tenant_id: int, data: BudgetIn) -> BudgetPublic:
    if data.statement not in ("cash_flow", "pnl"):
        raise Invalid(f"бюджет «{data.name}»: отчёт {data.statement!r} — не cash_flow и не pnl", code="bad_statement")
    if data.date_from > data.date_to:
        raise Invalid(f"бюджет «{data.name}»: дата «с» позже даты «по»", code="bad_period")
    if session.scalar(select(FinBudget.id).where(FinBudget.tenant_id == tenant_id, FinBudget.name == data.name)):  # type: ignore[arg-type]
        raise Conflict(f"бюджет «{data.name}» уже есть", code="duplicate_budget")
    row = FinBudget(tenant_id=tenant_id, name=data.name, kind=data.kind.value, statement=data.statement,
                    date_from=data.date_from, date_to=data.date_to)
    session.add(row)
    session.commit()
    return BudgetPublic.model_validate(row, from_attributes=True)


def list_budgets(session: Session, tenant_id: int) -> list[BudgetPublic]:
    rows = session.scalars(select(FinBudget).where(FinBudget.tenant_id == tenant_id).order_by(FinBudget.id))  # type: ignore[arg-type]
    return [BudgetPublic.model_validate(r, from_attributes=True) for r in rows]


def set_lines(session: Session, tenant_id: int, budget_id: int, lines: Sequence[BudgetLineIn], replace: bool = False) -> int:
    """Upsert lines (one per article × ЦФО × month); ``replace`` drops the budget's other lines first."""
    budget = _budget(session, tenant_id, budget_id)
    n = names(session, tenant_id)
    tree = n.tree()
    rows = []
    for i, line in enumerate(lines, 1):
        where = f"строка бюджета {i}"
        art = n.article(line.article, where)
        if art.statement != budget.statement:
            raise Invalid(f"{where}: статья {art.code} не из отчёта {budget.statement}", code="wrong_statement")
        if not tree.is_leaf(art.code):
            raise Invalid(f"{where}: статья {art.code} — группа; план ставится на конечные статьи", code="group_article")
        if not month_of(budget.date_from) <= line.month <= budget.date_to:
            raise Invalid(f"{where}: месяц {line.month} вне периода бюджета", code="month_outside_budget")
        rows.append((art.id, n.cfo(line.cfo, where), line.month, to_kop(line.amount)))
    if replace:
        session.execute(delete(FinBudgetLine).where(FinBudgetLine.budget_id == budget_id))  # type: ignore[arg-type]
    for article_id, cfo_id, month, kop in rows:
        session.execute(delete(FinBudgetLine).where(
            FinBudgetLine.budget_id == budget_id, FinBudgetLine.article_id == article_id, FinBudgetLine.month == month,  # type: ignore[arg-type]
            FinBudgetLine.cfo_id.is_(None) if cfo_id is None else FinBudgetLine.cfo_id == cfo_id))  # type: ignore[union-attr, arg-type]
        session.add(FinBudgetLine(tenant_id=tenant_id, budget_id=budget_id, article_id=article_id, cfo_id=cfo_id,  # type: ignore[arg-type]
                                  month=month, amount_kop=kop))
    session.commit()
    return len(rows)


def lines_from_xlsx(content: bytes) -> list[BudgetLineIn]:
    """Header ``Статья | ЦФО | <month> …`` (a month as a date or ``YYYY-MM``); empty cells are skipped."""
    from openpyxl import load_workbook

    try:
        ws = load_workbook(io.BytesIO(content), read_only=True, data_only=True).worksheets[0]
    except Exception as exc:
        raise Invalid(f"файл бюджета не читается как XLSX: {exc}", code="bad_xlsx") from exc
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    if not rows:
        raise Invalid("файл бюджета пуст", code="empty_file")
    months: dict[int, dt.date] = {}
    for col, value in enumerate(rows[0][2:], start=2):
        if value in (None, ""):
            continue
        if isinstance(value, dt.datetime | dt.date):
            months[col] = month_of(value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) else value.date())
            continue
        try:
            months[col] = dt.date.fromisoformat(str(value).strip()[:7] + "-01")
        except ValueError as exc:
            raise Invalid(f"строка 1, колонка {col + 1}: «{value}» — не месяц (ГГГГ-ММ)", code="bad_month",
                          extra={"line": 1, "field": str(value)}) from exc
    out = []
    for number, row in enumerate(rows[1:], start=2):
        if not row or row[0] in (None, ""):
            continue
        for col, month in months.items():
            value = row[col] if col < len(row) else None
            if value in (None, ""):
                continue
            try:
                amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).replace(" ", "").replace(",", "."))
            except InvalidOperation as exc:
                raise Invalid(f"строка {number}, колонка {col + 1} ({month:%Y-%m}): «{value}» — не сумма", code="bad_amount",
                              extra={"line": number, "field": f"{month:%Y-%m}"}) from exc
            out.append(BudgetLineIn(article=str(row[0]).strip(), cfo=(str(row[1]).strip() or None) if len(row) > 1 and row[1] else None,
                                    month=month, amount=amount.quantize(Decimal("0.01"))))
    return out
