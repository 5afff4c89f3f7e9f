"""XLSX/CSV bank tables → operations to ingest, by the client's column map and article names.

The whole file is checked before anything is returned: the bad rows are reported together,
each with its row number (and column, where one is at fault). A row has no key of its own, so
its dedupe key is a hash of the fields that tell one movement from another. :func:`decode_b64`
reads the base64 content of an uploaded file (a table here, a budget for :mod:`cloud.finance.budgets`).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
from decimal import Decimal, InvalidOperation
from typing import Any

from cloud.catalog.units import to_kop
from cloud.errors import Invalid
from cloud.finance.articles import Statement
from cloud.finance.ingest import NewOp
from cloud.finance.models import TableImportIn
from cloud.finance.operations import BankOperation
from cloud.finance.setup import Names
from cloud.finance.templates import article_for_1c_name
from cloud.finance.totals import month_of
from protocols.onec import Direction


def _cells(kind: str, content: bytes) -> list[list[Any]]:
    if kind == "xlsx":
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:
            raise Invalid(f"файл не читается как XLSX: {exc}", code="bad_xlsx") from exc
        ws = wb.worksheets[0]
        return [list(r) for r in ws.iter_rows(values_only=True)]
    if kind == "csv":
        for encoding in ("utf-8-sig", "cp1251"):
            try:
                text = content.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise Invalid("CSV не в UTF-8 и не в Windows-1251", code="bad_csv")
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=";,\t") if text.strip() else csv.excel
        return [list(r) for r in csv.reader(io.StringIO(text), dialect)]
    raise Invalid(f"формат {kind!r} не поддерживается (xlsx, csv)", code="bad_format")


def _money(value: Any) -> Decimal:
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = str(value).replace("\xa0", "").replace(" ", "").replace(",", ".")
    return Decimal(text)


def _day(value: Any, fmt: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for f in (fmt, "%Y-%m-%d", "%d.%m.%Y", "%d.%m.%y"):
        try:
            return dt.datetime.strptime(text, f).date()
        except ValueError:
            continue
    raise ValueError(text)


def resolve_article(name: str, n: Names, extra: dict[str, str]) -> str | None:
    """Our cash-flow code for a file's article: the map given, our code, our name, 1C's name."""
    name = name.strip()
    if name in extra:
        return extra[name]
    if name in n.articles:
        return name
    by_name = {a.name.casefold(): a.code for a in n.by_id.values() if a.statement == Statement.CASH_FLOW}
    return by_name.get(name.casefold()) or article_for_1c_name(name)


def table_ops(kind: str, content: bytes, spec: TableImportIn, n: Names) -> list[NewOp]:
    rows = _cells(kind, content)
    if not rows:
        raise Invalid("файл пуст", code="empty_file")
    header = [str(c).strip() if c is not None else "" for c in rows[0]]
    index: dict[str, int] = {}
    for ours, theirs in spec.columns.items():
        if theirs not in header:
            raise Invalid(f"строка 1: нет колонки «{theirs}» (для поля {ours}); есть: {', '.join(h for h in header if h)}",
                          code="missing_column", extra={"line": 1, "field": ours})
        index[ours] = header.index(theirs)
    if "date" not in index or not ({"amount"} <= index.keys() or {"inflow", "outflow"} <= index.keys()):
        raise Invalid("в карте колонок нужны date и amount (или inflow и outflow)", code="incomplete_column_map")
    if "account" not in index and not spec.account:
        raise Invalid("укажите колонку account или счёт для всех строк (account)", code="incomplete_column_map")
    errors: list[str] = []
    out: list[NewOp] = []

    def cell(row: list[Any], key: str) -> Any:
        i = index.get(key)
        return None if i is None or i >= len(row) else row[i]

    for number, row in enumerate(rows[1:], start=2):
        if all(c in (None, "") for c in row):
            continue
        where = f"строка {number}"
        try:
            day = _day(cell(row, "date"), spec.date_format)
        except (ValueError, TypeError):
            errors.append(f"{where}, колонка «{spec.columns['date']}»: дата «{cell(row, 'date')}» не разбирается")
            continue
        try:
            if "amount" in index:
                amount = _money(cell(row, "amount"))
            else:
                inflow = _money(cell(row, "inflow") or 0)
                outflow = _money(cell(row, "outflow") or 0)
                amount = inflow - outflow
        except (InvalidOperation, ValueError):
            col = spec.columns.get("amount") or f"{spec.columns.get('inflow')}/{spec.columns.get('outflow')}"
            errors.append(f"{where}, колонка «{col}»: сумма не разбирается")
            continue
        if amount == 0 or amount != amount.quantize(Decimal("0.01")):
            errors.append(f"{where}: сумма {amount} — ноль или дробнее копейки")
            continue
        account_no = str(cell(row, "account") or spec.account or "").strip()
        account = n.accounts.get(account_no)
        if account is None or account.id is None:
            errors.append(f"{where}, колонка «{spec.columns.get('account', 'account')}»: счёт «{account_no}» не заведён")
            continue
        direction = Direction.INFLOW if amount > 0 else Direction.OUTFLOW
        amount = abs(amount)
        inn = str(cell(row, "counterparty_inn") or "").strip()
        name = str(cell(row, "counterparty_name") or "").strip()
        purpose = str(cell(row, "purpose") or "").strip()
        doc = str(cell(row, "number") or "").strip()
        raw = "|".join((account_no, direction.value, day.isoformat(), doc.lstrip("0"), str(to_kop(amount)), inn, purpose))
        key = "xl:" + hashlib.sha256(raw.encode()).hexdigest()[:32]
        op = BankOperation(key, day, account_no, direction, amount, inn, name, "", purpose)
        item = NewOp(op, account.id, doc)
        article_name = str(cell(row, "article") or "").strip()
        if article_name:
            code = resolve_article(article_name, n, spec.article_names)
            art = n.articles.get(code or "")
            if art is None or art.statement != Statement.CASH_FLOW:
                errors.append(f"{where}, колонка «{spec.columns['article']}»: статья «{article_name}» не сопоставлена со статьёй ДДС")
                continue
            try:
                cfo = n.cfo(str(cell(row, "cfo") or "") or None, where)
                project = n.project(str(cell(row, "project") or "") or None, where)
            except Invalid as exc:
                errors.append(exc.message)
                continue
            assert art.id is not None
            item.parts = [(art.id, cfo, project, month_of(day), to_kop(amount))]
        out.append(item)
    if errors:
        shown = errors[:50]
        more = f" (и ещё {len(errors) - 50})" if len(errors) > 50 else ""
        raise Invalid("файл не загружен, ошибки: " + "; ".join(shown) + more, code="bad_rows",
                      extra={"errors": errors[:500]})
    return out


def decode_b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise Invalid("content_b64: не base64", code="bad_base64") from exc
