# mypy: disable-error-code="call-overload,call-arg,unused-ignore"
"""Operations, their parts and the totals: import, dedupe, allocation by rules and by hand.

Writes follow three rules:

- **one transaction per import**: a statement is parsed and checked before anything is
  written; its operations, their parts and the totals are then inserted together and
  committed once, so a failure leaves nothing behind;
- **dedupe by the stable key** (:func:`protocols.onec.dedupe_key`, or a hash of the row for
  XLSX/CSV) under a unique index ``(tenant_id, dedupe_key)``: known keys are skipped before the
  insert and ``ON CONFLICT DO NOTHING`` covers a concurrent import of the same lines;
- **parts sum to the operation**, and every change of parts moves :class:`FinTotal` by the
  same signed amounts (the unallocated rest is article 0), so reports never scan parts.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from cloud.base import utcnow
from cloud.catalog.units import from_kop, to_kop
from cloud.errors import Conflict, Invalid, NotFound
from cloud.finance.allocation import (
    HUNDRED,
    Allocation,
    Condition,
    Rule,
    RuleSet,
    Share,
    Status,
)
from cloud.finance.articles import Statement
from cloud.finance.errors import FinanceError
from cloud.finance.models import (
    FinAccount,
    FinImport,
    FinOperation,
    FinOperationPart,
    FinRule,
    FinTotal,
    ImportPublic,
    ImportState,
    OperationIn,
    OperationPublic,
    OpStatus,
    PartIn,
    PartOrigin,
    PartPublic,
    RuleIn,
    RulePublic,
    TableImportIn,
)
from cloud.finance.operations import BankOperation
from cloud.finance.setup import Names, invalid_from, names
from cloud.finance.suggestions import suggest_rules
from cloud.finance.templates import article_for_1c_name
from protocols.onec import Direction, OneCError, check_balances, operations, parse_statement

CHUNK = 1000
OPS = FinOperation.__table__  # type: ignore[attr-defined]
PARTS = FinOperationPart.__table__  # type: ignore[attr-defined]
TOTALS = FinTotal.__table__  # type: ignore[attr-defined]

# Progress of running imports in this process (the one-machine mode runs them in the request's
# process; with workers the row in fin_imports is updated too, from a connection of its own).
PROGRESS: dict[int, tuple[int, int]] = {}
# Operations already parsed by the request that queued the import, when the task runs in the
# same process (eager mode): saves parsing the file twice. A worker process parses it again.
_PARSED: dict[int, list[NewOp]] = {}


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def signed(direction: str, kop: int) -> int:
    return kop if direction == Direction.INFLOW.value else -kop


# ---------------------------------------------------------------- totals


TotalKey = tuple[int, int, int, int, dt.date, dt.date]  # article, cfo, project, account, cash month, accrual month


@dataclass
class Deltas:
    """Signed changes of the totals, summed in memory and written in one statement."""

    tenant_id: int
    sums: dict[TotalKey, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(self, article: int, cfo: int | None, project: int | None, account: int, booked: dt.date,
            accrual: dt.date, kop: int, parts: int) -> None:
        bucket = self.sums[(article, cfo or 0, project or 0, account, month_of(booked), accrual)]
        bucket[0] += kop
        bucket[1] += parts

    def flush(self, session: Session) -> None:
        rows = [
            {"tenant_id": self.tenant_id, "article_id": k[0], "cfo_id": k[1], "project_id": k[2], "account_id": k[3],
             "cash_month": k[4], "accrual_month": k[5], "amount_kop": v[0], "parts": v[1]}
            for k, v in self.sums.items() if v[0] or v[1]
        ]
        self.sums.clear()
        if not rows:
            return
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(TOTALS)
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "article_id", "cfo_id", "project_id", "account_id", "cash_month", "accrual_month"],
            set_={"amount_kop": TOTALS.c.amount_kop + stmt.excluded.amount_kop,
                  "parts": TOTALS.c.parts + stmt.excluded.parts},
        )
        for start in range(0, len(rows), CHUNK):
            session.execute(stmt, rows[start:start + CHUNK])


# ---------------------------------------------------------------- rules


def _condition(c: dict[str, Any]) -> Condition:
    def dec(v: Any) -> Decimal | None:
        return None if v is None else Decimal(str(v))

    def day(v: Any) -> dt.date | None:
        return None if v in (None, "") else dt.date.fromisoformat(str(v))

    return Condition(
        direction=Direction(c["direction"]) if c.get("direction") else None,
        own_accounts=frozenset(c.get("own_accounts") or ()),
        counterparty_inns=frozenset(c.get("counterparty_inns") or ()),
        counterparty_names=tuple(c.get("counterparty_names") or ()),
        name_cutoff=float(c.get("name_cutoff", 85.0)),
        purpose_contains=tuple(c.get("purpose_contains") or ()),
        purpose_excludes=tuple(c.get("purpose_excludes") or ()),
        purpose_regex=c.get("purpose_regex") or None,
        amount_min=dec(c.get("amount_min")),
        amount_max=dec(c.get("amount_max")),
        date_from=day(c.get("date_from")),
        date_to=day(c.get("date_to")),
    )


def _rule(row: FinRule) -> Rule:
    shares = tuple(
        Share(s["article"], Decimal(str(s.get("percent", 100))), s.get("cfo"), s.get("project"), int(s.get("month_shift", 0)))
        for s in row.shares
    )
    return Rule(row.name, _condition(row.condition), shares, suggest_only=row.suggest_only, priority=row.priority)


@dataclass
class Rules:
    ruleset: RuleSet
    ids: dict[str, int]


def load_rules(session: Session, tenant_id: int, n: Names | None = None) -> Rules:
    n = n or names(session, tenant_id)
    rows = list(session.scalars(select(FinRule).where(FinRule.tenant_id == tenant_id, FinRule.active)))  # type: ignore[arg-type]
    try:
        ruleset = RuleSet([_rule(r) for r in rows], _cash_tree(n))
    except FinanceError as exc:
        raise invalid_from(exc) from exc
    return Rules(ruleset, {r.name: r.id for r in rows if r.id is not None})


def _cash_tree(n: Names) -> Any:
    from cloud.finance.articles import ArticleTree

    full = n.tree()
    return ArticleTree(a for a in full.by_code.values() if a.statement is Statement.CASH_FLOW)


def _rule_public(r: FinRule) -> RulePublic:
    assert r.id is not None
    return RulePublic.model_validate(
        {"id": r.id, "name": r.name, "priority": r.priority, "suggest_only": r.suggest_only, "active": r.active,
         "condition": r.condition, "shares": r.shares}
    )


def list_rules(session: Session, tenant_id: int) -> list[RulePublic]:
    rows = session.scalars(select(FinRule).where(FinRule.tenant_id == tenant_id).order_by(FinRule.priority, FinRule.id))  # type: ignore[arg-type]
    return [_rule_public(r) for r in rows]


def save_rule(session: Session, tenant_id: int, data: RuleIn, rule_id: int | None = None) -> RulePublic:
    if rule_id is None:
        row = FinRule(tenant_id=tenant_id, condition={}, shares=[])
    else:
        found = session.get(FinRule, rule_id)
        if found is None or found.tenant_id != tenant_id:
            raise NotFound(f"правило {rule_id} не найдено")
        row = found
    clash = session.scalar(select(FinRule.id).where(FinRule.tenant_id == tenant_id, FinRule.name == data.name, FinRule.id != rule_id))  # type: ignore[arg-type]
    if clash is not None:
        raise Conflict(f"правило «{data.name}» уже есть", code="duplicate_rule")
    n = names(session, tenant_id)
    for i, s in enumerate(data.shares, 1):
        n.cfo(s.cfo, f"правило «{data.name}», доля {i}")
        n.project(s.project, f"правило «{data.name}», доля {i}")
    row.name, row.priority, row.suggest_only, row.active = data.name, data.priority, data.suggest_only, data.active
    row.condition = data.condition.model_dump(mode="json")
    row.shares = [s.model_dump(mode="json") for s in data.shares]
    session.add(row)
    session.flush()
    load_rules(session, tenant_id, n)  # the whole set must still be valid (names, articles, regexes)
    session.commit()
    return _rule_public(row)


def delete_rule(session: Session, tenant_id: int, rule_id: int) -> None:
    row = session.get(FinRule, rule_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"правило {rule_id} не найдено")
    session.execute(update(PARTS).where(PARTS.c.rule_id == rule_id).values(rule_id=None))
    session.delete(row)
    session.commit()


# ---------------------------------------------------------------- ingest


@dataclass
class NewOp:
    """An operation about to be inserted, with the parts the file gave it (if any)."""

    op: BankOperation
    account_id: int
    doc_number: str = ""
    parts: list[tuple[int, int | None, int | None, dt.date, int]] = field(default_factory=list)  # article, cfo, project, month, kop


@dataclass
class IngestResult:
    total: int = 0
    created: int = 0
    duplicates: int = 0
    allocated: int = 0
    suggested: int = 0
    operation_ids: list[int] = field(default_factory=list)


def _existing_keys(session: Session, tenant_id: int, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        found.update(session.scalars(select(OPS.c.dedupe_key).where(OPS.c.tenant_id == tenant_id, OPS.c.dedupe_key.in_(chunk))))
    return found


def ingest(
    session: Session,
    tenant_id: int,
    new_ops: Sequence[NewOp],
    *,
    import_id: int | None = None,
    rules: Rules | None = None,
    n: Names | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestResult:
    """Insert operations not seen before, allocate them (file parts, else rules); caller commits."""
    n = n or names(session, tenant_id)
    rules = rules if rules is not None else load_rules(session, tenant_id, n)
    result = IngestResult(total=len(new_ops))
    seen: set[str] = set()
    unique: list[NewOp] = []
    for item in new_ops:
        if item.op.key not in seen:
            seen.add(item.op.key)
            unique.append(item)
    existing = _existing_keys(session, tenant_id, [u.op.key for u in unique])
    fresh = [u for u in unique if u.op.key not in existing]
    result.duplicates = len(new_ops) - len(fresh)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    now = utcnow()
    deltas = Deltas(tenant_id)
    done = result.duplicates
    for start in range(0, len(fresh), CHUNK):
        chunk = fresh[start:start + CHUNK]
        plans: list[tuple[str, str, dict[str, Any] | None, list[dict[str, Any]]]] = []
        for item in chunk:
            plans.append(_plan(item, rules, n, tenant_id))
        rows = []
        for item, (status, origin, suggestion, _parts) in zip(chunk, plans, strict=True):
            op = item.op
            rows.append({
                "tenant_id": tenant_id, "account_id": item.account_id, "booked_on": op.booked_on,
                "direction": op.direction.value, "amount_kop": to_kop(op.amount), "counterparty_id": None,
                "counterparty_inn": op.counterparty_inn[:12], "counterparty_name": op.counterparty_name[:300],
                "counterparty_account": op.counterparty_account[:34], "purpose": op.purpose[:1000],
                "doc_number": item.doc_number[:32], "dedupe_key": op.key, "status": status, "origin": origin,
                "suggestion": suggestion, "import_id": import_id, "created_at": now,
            })
        ids = _insert_operations(session, insert, rows)
        part_rows = []
        for item, (status, _origin, _s, parts) in zip(chunk, plans, strict=True):
            op_id = ids.get(item.op.key)
            if op_id is None:  # a concurrent import inserted it first
                result.duplicates += 1
                continue
            result.created += 1
            result.operation_ids.append(op_id)
            sign = 1 if item.op.direction is Direction.INFLOW else -1
            kop = to_kop(item.op.amount)
            booked = item.op.booked_on
            if parts:
                result.allocated += 1
                for p in parts:
                    p.update(tenant_id=tenant_id, operation_id=op_id, account_id=item.account_id, booked_on=booked,
                             direction=item.op.direction.value)
                    part_rows.append(p)
                    deltas.add(p["article_id"], p["cfo_id"], p["project_id"], item.account_id, booked,
                               p["accrual_month"], sign * p["amount_kop"], 1)
            else:
                result.suggested += status == OpStatus.SUGGESTED
                deltas.add(0, None, None, item.account_id, booked, month_of(booked), sign * kop, 0)
        if part_rows:
            session.execute(PARTS.insert(), part_rows)
        done += len(chunk)
        if progress is not None:
            progress(done)
    deltas.flush(session)
    return result


def _insert_operations(session: Session, insert: Any, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert operation rows (a concurrent import's duplicates are skipped); dedupe key → new id.

    PostgreSQL: ids are taken from the sequence first and the rows go in as a plain executemany
    (psycopg pipelines it); a multi-row ``INSERT … RETURNING`` of thousands of rows spends more
    time converting its placeholders on the client than the server spends inserting them.
    """
    stmt = insert(OPS).on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"])
    if session.get_bind().dialect.name != "postgresql":
        found = session.execute(stmt.returning(OPS.c.id, OPS.c.dedupe_key), rows).all()
        return {key: op_id for op_id, key in found}
    new_ids = list(session.scalars(
        text("SELECT nextval(pg_get_serial_sequence('fin_operations', 'id')) FROM generate_series(1, :n)"), {"n": len(rows)}
    ))
    for row, new_id in zip(rows, new_ids, strict=True):
        row["id"] = new_id
    session.execute(stmt, rows)
    present = set(session.scalars(select(OPS.c.id).where(OPS.c.id.in_(new_ids))))
    return {row["dedupe_key"]: row["id"] for row in rows if row["id"] in present}


def _plan(item: NewOp, rules: Rules, n: Names, tenant_id: int) -> tuple[str, str, dict[str, Any] | None, list[dict[str, Any]]]:
    """(status, origin, suggestion, part rows) of a new operation."""
    if item.parts:
        return OpStatus.ALLOCATED.value, PartOrigin.FILE.value, None, [
            {"article_id": a, "cfo_id": c, "project_id": p, "accrual_month": m, "amount_kop": k,
             "origin": PartOrigin.FILE.value, "rule_id": None, "user_id": None}
            for a, c, p, m, k in item.parts
        ]
    allocation = rules.ruleset.allocate(item.op)
    if allocation.status is Status.UNALLOCATED:
        return OpStatus.UNALLOCATED.value, "", None, []
    if allocation.status is Status.SUGGESTED:
        return OpStatus.SUGGESTED.value, "", _suggestion(allocation, rules), []
    rule_id = rules.ids.get(allocation.rule or "")
    return OpStatus.ALLOCATED.value, PartOrigin.RULE.value, None, [
        {"article_id": n.articles[p.article].id, "cfo_id": n.cfos.get(p.cfo) if p.cfo else None,
         "project_id": n.projects.get(p.project) if p.project else None, "accrual_month": p.accrual_month,
         "amount_kop": to_kop(p.amount), "origin": PartOrigin.RULE.value, "rule_id": rule_id, "user_id": None}
        for p in allocation.parts
    ]


def _suggestion(a: Allocation, rules: Rules) -> dict[str, Any]:
    return {
        "rule": a.rule, "rule_id": rules.ids.get(a.rule or ""),
        "parts": [{"article": p.article, "amount": str(p.amount), "accrual_month": p.accrual_month.isoformat(),
                   "cfo": p.cfo, "project": p.project} for p in a.parts],
    }


# ---------------------------------------------------------------- imports


def _import_public(row: FinImport) -> ImportPublic:
    assert row.id is not None
    processed, total = PROGRESS.get(row.id, (row.processed, row.total))
    return ImportPublic(
        id=row.id, kind=row.kind, file_name=row.file_name, state=row.state, total=max(total, row.total),
        processed=max(processed, row.processed), created=row.created, duplicates=row.duplicates,
        allocated=row.allocated, errors=row.errors or [], balance_differences=row.balance_differences or [],
    )


def get_import(session: Session, tenant_id: int, import_id: int) -> ImportPublic:
    row = session.get(FinImport, import_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"загрузка {import_id} не найдена")
    session.refresh(row)
    return _import_public(row)


def _onec_error(exc: OneCError) -> Invalid:
    where = []
    if exc.line is not None:
        where.append(f"строка {exc.line}")
    if exc.field:
        where.append(f"поле {exc.field}")
    prefix = ", ".join(where)
    return Invalid(f"выписка не загружена: {prefix + ': ' if prefix else ''}{exc.message}", code=exc.code,
                   extra={"line": exc.line, "field": exc.field})


def _onec_ops(content: bytes, n: Names) -> tuple[list[NewOp], list[dict[str, Any]]]:
    try:
        statement = parse_statement(content)
    except OneCError as exc:
        raise _onec_error(exc) from exc
    from cloud.finance.operations import from_onec

    out: list[NewOp] = []
    unknown: set[str] = set()
    for op in operations(statement):
        account = n.accounts.get(op.account)
        if account is None or account.id is None:
            unknown.add(op.account)
            continue
        out.append(NewOp(from_onec(op), account.id, op.document.number.strip()))
    if unknown:
        raise Invalid(
            f"выписка не загружена: счета {', '.join(sorted(unknown))} не заведены ни у одного юрлица",
            code="unknown_account", extra={"accounts": sorted(unknown)},
        )
    differences = [
        {"account": d.account, "code": d.code, "expected": str(d.expected), "actual": str(d.actual),
         "delta": str(d.delta), "detail": d.message}
        for d in check_balances(statement)
    ]
    return out, differences


def start_import(session: Session, tenant_id: int, user_id: int | None, kind: str, file_name: str, content: bytes,
                 options: dict[str, Any] | None = None) -> FinImport:
    """Check the file (a bad one → 422 naming the line and field, nothing stored) and queue it."""
    n = names(session, tenant_id)
    new_ops, differences = parse_file(kind, content, options or {}, n)
    row = FinImport(tenant_id=tenant_id, kind=kind, file_name=file_name[:300], total=len(new_ops), content=content,
                    options=options, balance_differences=differences, errors=[], user_id=user_id)
    session.add(row)
    session.commit()
    assert row.id is not None
    _PARSED[row.id] = new_ops
    return row


def parse_file(kind: str, content: bytes, options: dict[str, Any], n: Names) -> tuple[list[NewOp], list[dict[str, Any]]]:
    if kind == "onec":
        return _onec_ops(content, n)
    return table_ops(kind, content, TableImportIn.model_validate({**options, "content_b64": "", "format": kind}), n), []


def run_import(factory: Any, import_id: int, progress_sink: Callable[[int, int, int], None] | None = None) -> ImportPublic:
    """Run a queued import: one transaction for all its operations; the row tells the outcome."""
    from cloud.db import unit_of_work

    with unit_of_work(factory) as session:
        row = session.get(FinImport, import_id)
        if row is None:
            raise NotFound(f"загрузка {import_id} не найдена")
        if row.state in (ImportState.DONE, ImportState.RUNNING):
            return _import_public(row)
        row.state = ImportState.RUNNING.value
        session.add(row)
        session.commit()
        tenant_id, kind, content, options, total = row.tenant_id, row.kind, row.content or b"", row.options or {}, row.total

    def progress(done: int) -> None:
        PROGRESS[import_id] = (done, total)
        if progress_sink is not None:
            progress_sink(import_id, done, total)

    try:
        with unit_of_work(factory) as session:
            n = names(session, tenant_id)
            cached = _PARSED.pop(import_id, None)
            new_ops = cached if cached is not None else parse_file(kind, content, options, n)[0]
            result = ingest(session, tenant_id, new_ops, import_id=import_id, n=n, progress=progress)
            row = session.get(FinImport, import_id)
            assert row is not None
            row.state, row.processed, row.created = ImportState.DONE.value, result.total, result.created
            row.duplicates, row.allocated, row.finished_at = result.duplicates, result.allocated, utcnow()
            row.content = None  # the operations are the record now
            session.add(row)
            session.commit()
            return _import_public(row)
    except Exception as exc:
        detail = exc.message if isinstance(exc, Invalid) else f"{type(exc).__name__}: {exc}"
        code = exc.code if isinstance(exc, Invalid) else "import_failed"
        with unit_of_work(factory) as session:
            row = session.get(FinImport, import_id)
            assert row is not None
            row.state, row.errors, row.finished_at = ImportState.FAILED.value, [{"code": code, "detail": detail}], utcnow()
            session.add(row)
            session.commit()
            if not isinstance(exc, Invalid):
                raise
            return _import_public(row)
    finally:
        PROGRESS.pop(import_id, None)


# ---------------------------------------------------------------- XLSX / CSV


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


# ---------------------------------------------------------------- operations: read, enter, allocate


def _bank_op(row: FinOperation, account_no: str) -> BankOperation:
    return BankOperation(row.dedupe_key, row.booked_on, account_no, Direction(row.direction), from_kop(row.amount_kop),
                         row.counterparty_inn, row.counterparty_name, row.counterparty_account, row.purpose)


def _op_public(session: Session, n: Names, row: FinOperation, parts: list[FinOperationPart] | None = None) -> OperationPublic:
    assert row.id is not None
    if parts is None:
        parts = list(session.scalars(select(FinOperationPart).where(FinOperationPart.operation_id == row.id).order_by(FinOperationPart.id)))  # type: ignore[arg-type]
    account = next(a.number for a in n.accounts.values() if a.id == row.account_id)
    return OperationPublic(
        id=row.id, account=account, booked_on=row.booked_on, direction=row.direction, amount=from_kop(row.amount_kop),
        counterparty_inn=row.counterparty_inn, counterparty_name=row.counterparty_name, purpose=row.purpose,
        doc_number=row.doc_number, status=row.status, suggestion=row.suggestion,
        parts=[part_public(n, p, row, {}) for p in parts],
    )


def part_public(n: Names, p: FinOperationPart, op: FinOperation | None, rule_names: dict[int, str]) -> PartPublic:
    assert p.id is not None
    account = next((a.number for a in n.accounts.values() if a.id == p.account_id), "")
    return PartPublic(
        id=p.id, operation_id=p.operation_id, article=n.by_id[p.article_id].code, cfo=n.cfo_code(p.cfo_id),
        project=n.project_code(p.project_id), accrual_month=p.accrual_month, amount=from_kop(p.amount_kop),
        origin=p.origin, rule=rule_names.get(p.rule_id) if p.rule_id else None, user_id=p.user_id,
        booked_on=p.booked_on, direction=p.direction, account=account,
        counterparty_name=op.counterparty_name if op else "", purpose=op.purpose if op else "",
    )


def get_operation(session: Session, tenant_id: int, op_id: int) -> OperationPublic:
    row = session.get(FinOperation, op_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"операция {op_id} не найдена")
    return _op_public(session, names(session, tenant_id), row)


def list_operations(session: Session, tenant_id: int, date_from: dt.date, date_to: dt.date, status: str | None,
                    limit: int, offset: int) -> list[OperationPublic]:
    stmt = select(FinOperation).where(FinOperation.tenant_id == tenant_id, FinOperation.booked_on >= date_from,  # type: ignore[arg-type]
                                      FinOperation.booked_on <= date_to)  # type: ignore[arg-type]
    if status:
        stmt = stmt.where(FinOperation.status == status)  # type: ignore[arg-type]
    rows = list(session.scalars(stmt.order_by(FinOperation.booked_on, FinOperation.id).limit(limit).offset(offset)))  # type: ignore[arg-type]
    n = names(session, tenant_id)
    return [_op_public(session, n, r) for r in rows]


def _parts_from_input(n: Names, op: FinOperation, parts: Sequence[PartIn], user_id: int | None) -> list[dict[str, Any]]:
    if not parts:
        raise Invalid(f"операция {op.id}: не указано ни одной части", code="no_parts")
    total = sum((p.amount for p in parts), Decimal(0))
    if to_kop(total) != op.amount_kop:
        raise Invalid(
            f"операция {op.id}: части в сумме {total}, а операция на {from_kop(op.amount_kop)}",
            code="parts_sum_mismatch",
        )
    out = []
    for i, p in enumerate(parts, 1):
        where = f"операция {op.id}, часть {i}"
        if p.amount <= 0 or p.amount != p.amount.quantize(Decimal("0.01")):
            raise Invalid(f"{where}: сумма {p.amount} должна быть больше нуля и в копейках", code="bad_part_amount")
        art = n.article(p.article, where)
        tree = n.tree()
        if art.statement != Statement.CASH_FLOW or not tree.is_leaf(art.code):
            raise Invalid(f"{where}: статья {art.code} — не конечная статья ДДС", code="not_a_cash_flow_leaf")
        out.append({"tenant_id": op.tenant_id, "operation_id": op.id, "account_id": op.account_id,
                    "booked_on": op.booked_on, "direction": op.direction, "article_id": art.id,
                    "cfo_id": n.cfo(p.cfo, where), "project_id": n.project(p.project, where),
                    "accrual_month": month_of(p.accrual_month or op.booked_on), "amount_kop": to_kop(p.amount),
                    "origin": PartOrigin.PERSON.value, "rule_id": None, "user_id": user_id})
    return out


def _replace_parts(session: Session, op: FinOperation, new_parts: list[dict[str, Any]], deltas: Deltas,
                   status: str, origin: str) -> None:
    """Swap an operation's parts and move the totals: old parts (or the unallocated rest) out, new in."""
    sign = 1 if op.direction == Direction.INFLOW.value else -1
    old = list(session.scalars(select(FinOperationPart).where(FinOperationPart.operation_id == op.id)))  # type: ignore[arg-type]
    if old:
        for p in old:
            deltas.add(p.article_id, p.cfo_id, p.project_id, op.account_id, op.booked_on, p.accrual_month, -sign * p.amount_kop, -1)
        session.execute(delete(PARTS).where(PARTS.c.operation_id == op.id))
    else:
        deltas.add(0, None, None, op.account_id, op.booked_on, month_of(op.booked_on), -sign * op.amount_kop, 0)
    if new_parts:
        session.execute(PARTS.insert(), new_parts)
        for new in new_parts:
            deltas.add(new["article_id"], new["cfo_id"], new["project_id"], op.account_id, op.booked_on, new["accrual_month"], sign * new["amount_kop"], 1)
    else:
        deltas.add(0, None, None, op.account_id, op.booked_on, month_of(op.booked_on), sign * op.amount_kop, 0)
    op.status, op.origin = status, origin
    if status == OpStatus.ALLOCATED:
        op.suggestion = None
    session.add(op)


def allocate_by_hand(session: Session, tenant_id: int, op_id: int, parts: Sequence[PartIn], user_id: int | None) -> OperationPublic:
    op = session.get(FinOperation, op_id)
    if op is None or op.tenant_id != tenant_id:
        raise NotFound(f"операция {op_id} не найдена")
    n = names(session, tenant_id)
    rows = _parts_from_input(n, op, parts, user_id)
    deltas = Deltas(tenant_id)
    _replace_parts(session, op, rows, deltas, OpStatus.ALLOCATED.value, PartOrigin.PERSON.value)
    deltas.flush(session)
    session.commit()
    return _op_public(session, n, op)


def create_operation(session: Session, tenant_id: int, data: OperationIn, user_id: int | None) -> OperationPublic:
    """A movement entered by hand (cash desk); parts, if given, are allocated by that person."""
    n = names(session, tenant_id)
    account = n.account(data.account, "операция, поле account")
    if data.direction not in (Direction.INFLOW.value, Direction.OUTFLOW.value):
        raise Invalid(f"операция: направление {data.direction!r} — не inflow и не outflow", code="bad_direction")
    raw = "|".join((data.account, data.direction, data.booked_on.isoformat(), data.doc_number, str(to_kop(data.amount)),
                    data.counterparty_inn, data.purpose, utcnow().isoformat()))
    op = BankOperation("man:" + hashlib.sha256(raw.encode()).hexdigest()[:32], data.booked_on, data.account,
                       Direction(data.direction), data.amount, data.counterparty_inn, data.counterparty_name, "", data.purpose)
    assert account.id is not None
    result = ingest(session, tenant_id, [NewOp(op, account.id, data.doc_number)], n=n)
    row = session.get(FinOperation, result.operation_ids[0])
    assert row is not None
    if data.parts:
        deltas = Deltas(tenant_id)
        _replace_parts(session, row, _parts_from_input(n, row, data.parts, user_id), deltas,
                       OpStatus.ALLOCATED.value, PartOrigin.PERSON.value)
        deltas.flush(session)
    session.commit()
    return _op_public(session, n, row)


def allocate_period(session: Session, tenant_id: int, date_from: dt.date, date_to: dt.date,
                    reallocate_rules: bool = False) -> dict[str, int]:
    """Apply the rules to the period's operations nobody allocated (and, if asked, to those rules did)."""
    n = names(session, tenant_id)
    rules = load_rules(session, tenant_id, n)
    accounts = {a.id: a.number for a in n.accounts.values()}
    targets = [OpStatus.UNALLOCATED.value, OpStatus.SUGGESTED.value]
    cond = FinOperation.status.in_(targets)  # type: ignore[attr-defined]
    if reallocate_rules:
        cond = or_(cond, FinOperation.origin == PartOrigin.RULE.value)  # type: ignore[arg-type]
    rows = list(session.scalars(select(FinOperation).where(
        FinOperation.tenant_id == tenant_id, FinOperation.booked_on >= date_from, FinOperation.booked_on <= date_to, cond,  # type: ignore[arg-type]
    ).order_by(FinOperation.id)))  # type: ignore[arg-type]
    counts = {"considered": len(rows), "allocated": 0, "suggested": 0, "unallocated": 0}
    deltas = Deltas(tenant_id)
    for row in rows:
        status, origin, suggestion, parts = _plan(NewOp(_bank_op(row, accounts[row.account_id]), row.account_id), rules, n, tenant_id)
        for p in parts:
            p.update(tenant_id=tenant_id, operation_id=row.id, account_id=row.account_id, booked_on=row.booked_on, direction=row.direction)
        had_parts = row.status == OpStatus.ALLOCATED
        if parts or had_parts:
            _replace_parts(session, row, parts, deltas, status, origin)
        row.status, row.origin, row.suggestion = status, origin, suggestion
        session.add(row)
        counts["allocated" if parts else ("suggested" if suggestion else "unallocated")] += 1
    deltas.flush(session)
    session.commit()
    return counts


def accept_suggestion(session: Session, tenant_id: int, op_id: int, user_id: int | None) -> OperationPublic:
    op = session.get(FinOperation, op_id)
    if op is None or op.tenant_id != tenant_id:
        raise NotFound(f"операция {op_id} не найдена")
    if not op.suggestion:
        raise Conflict(f"у операции {op_id} нет предложенного разнесения", code="no_suggestion")
    parts = [PartIn(article=p["article"], amount=Decimal(p["amount"]), accrual_month=dt.date.fromisoformat(p["accrual_month"]),
                    cfo=p.get("cfo"), project=p.get("project")) for p in op.suggestion["parts"]]
    return allocate_by_hand(session, tenant_id, op_id, parts, user_id)


# ---------------------------------------------------------------- coverage and suggestions


def coverage(session: Session, tenant_id: int, date_from: dt.date, date_to: dt.date, top: int = 10) -> dict[str, Any]:
    """Share of operations allocated automatically (by rules or with the file) by count and by sum."""
    base = and_(OPS.c.tenant_id == tenant_id, OPS.c.booked_on >= date_from, OPS.c.booked_on <= date_to)
    rows = session.execute(
        select(OPS.c.status, OPS.c.origin, func.count(), func.coalesce(func.sum(OPS.c.amount_kop), 0)).where(base).group_by(OPS.c.status, OPS.c.origin)
    ).all()
    count_total = sum(r[2] for r in rows)
    sum_total = sum(int(r[3]) for r in rows)
    by = {"rule": [0, 0], "file": [0, 0], "person": [0, 0], "suggested": [0, 0], "unallocated": [0, 0]}
    for status, origin, count, kop in rows:
        key = origin if status == OpStatus.ALLOCATED else status
        by[key][0] += count
        by[key][1] += int(kop)
    auto_count, auto_sum = by["rule"][0] + by["file"][0], by["rule"][1] + by["file"][1]

    def pct(part: int, whole: int) -> Decimal:
        return (Decimal(part) * 100 / whole).quantize(Decimal("0.01")) if whole else Decimal("100.00")

    n = names(session, tenant_id)
    largest = list(session.scalars(select(FinOperation).where(
        FinOperation.tenant_id == tenant_id, FinOperation.booked_on >= date_from, FinOperation.booked_on <= date_to,  # type: ignore[arg-type]
        FinOperation.status != OpStatus.ALLOCATED.value,  # type: ignore[arg-type]
    ).order_by(FinOperation.amount_kop.desc(), FinOperation.id).limit(top)))  # type: ignore[attr-defined, arg-type]
    return {
        "date_from": date_from, "date_to": date_to,
        "count_total": count_total, "sum_total": from_kop(sum_total),
        "count_auto": auto_count, "sum_auto": from_kop(auto_sum),
        "share_auto_by_count_pct": pct(auto_count, count_total), "share_auto_by_sum_pct": pct(auto_sum, sum_total),
        "by_origin": {k: {"count": v[0], "sum": from_kop(v[1])} for k, v in by.items()},
        "largest_unallocated": [_op_public(session, n, r, []) for r in largest],
    }


def learned_suggestions(session: Session, tenant_id: int, date_from: dt.date, date_to: dt.date) -> list[dict[str, Any]]:
    """Rules learned from hand allocations of the period, each with its expected coverage:
    on that history (matched, agreeing) and on what is still unallocated now."""
    n = names(session, tenant_id)
    accounts = {a.id: a.number for a in n.accounts.values()}
    ops = {o.id: o for o in session.scalars(select(FinOperation).where(
        FinOperation.tenant_id == tenant_id, FinOperation.booked_on >= date_from, FinOperation.booked_on <= date_to,  # type: ignore[arg-type]
        FinOperation.origin == PartOrigin.PERSON.value))}  # type: ignore[arg-type]
    parts: dict[int, list[FinOperationPart]] = defaultdict(list)
    ids = list(ops)
    for start in range(0, len(ids), CHUNK):
        for p in session.scalars(select(FinOperationPart).where(FinOperationPart.operation_id.in_(ids[start:start + CHUNK]))):  # type: ignore[attr-defined]
            parts[p.operation_id].append(p)
    history = []
    for op_id, op in ops.items():
        ps = parts.get(op_id, [])  # type: ignore[arg-type]
        if len(ps) != 1:
            continue  # a split by hand is not a pattern a one-share rule can learn
        p = ps[0]
        shift = (p.accrual_month.year * 12 + p.accrual_month.month) - (op.booked_on.year * 12 + op.booked_on.month)
        history.append((_bank_op(op, accounts[op.account_id]),
                        Share(n.by_id[p.article_id].code, HUNDRED, n.cfo_code(p.cfo_id), n.project_code(p.project_id), shift)))
    suggestions = suggest_rules(history)
    pending = [
        _bank_op(o, accounts[o.account_id]) for o in session.scalars(select(FinOperation).where(
            FinOperation.tenant_id == tenant_id, FinOperation.status != OpStatus.ALLOCATED.value))  # type: ignore[arg-type]
    ]
    out = []
    for s in suggestions:
        one = RuleSet([s.rule], set(n.articles))
        hits = [op for op in pending if one.first_match(op) is not None]
        r = s.rule
        out.append({
            "rule": RuleIn.model_validate({
                "name": r.name[:200], "priority": r.priority, "suggest_only": r.suggest_only,
                "condition": {"direction": r.condition.direction.value if r.condition.direction else None,
                              "counterparty_inns": sorted(r.condition.counterparty_inns),
                              "counterparty_names": list(r.condition.counterparty_names),
                              "name_cutoff": r.condition.name_cutoff, "purpose_regex": r.condition.purpose_regex},
                "shares": [{"article": sh.article, "percent": sh.percent, "cfo": sh.cfo, "project": sh.project,
                            "month_shift": sh.month_shift} for sh in r.shares],
            }),
            "support": s.support, "history_matched": s.matched_count, "history_matched_sum": s.matched_sum,
            "history_precision_pct": s.precision_pct,
            "unallocated_matched": len(hits), "unallocated_matched_sum": sum((h.amount for h in hits), Decimal(0)),
        })
    return out


def account_numbers(session: Session, tenant_id: int) -> dict[int, FinAccount]:
    return {a.id: a for a in session.scalars(select(FinAccount).where(FinAccount.tenant_id == tenant_id)) if a.id is not None}  # type: ignore[arg-type]


def iter_chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


