# mypy: disable-error-code="call-overload,call-arg,unused-ignore"
"""Operations, their parts and the totals: import, dedupe, allocation by rules and by hand.

Writes follow three rules:

- **one transaction per import**: a statement is parsed and checked before anything is
  written; its operations, their parts and the totals are then inserted together and
  committed once, so a failure leaves nothing behind;
- **dedupe by the stable key** (:func:`protocols.onec.dedupe_key`, or a hash of the row for
  XLSX/CSV) under a unique index ``(tenant_id, dedupe_key)``: known keys are skipped before the
  insert, and lines a concurrent import stored meanwhile are skipped by ``ON CONFLICT DO
  NOTHING`` (a streamed COPY that meets one is rolled back to its savepoint and redone so);
- **parts sum to the operation**, and every change of parts moves :class:`FinTotal` by the
  same signed amounts (the unallocated rest is article 0), so reports never scan parts.

An import costs a fixed number of statements whatever its size (see :func:`ingest`); on
PostgreSQL most of its time is the server's per-row foreign-key checks, so the allocation
runs while the server stores the previous chunk.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import gc
import hashlib
import io
import json
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import defer
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
    accrual_month,
    apply_shares,
    split_amount,
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
from cloud.finance.operations import BankOperation, from_side
from cloud.finance.setup import Names, invalid_from, names
from cloud.finance.suggestions import suggest_rules
from cloud.finance.templates import article_for_1c_name
from protocols.onec import Direction, OneCError, check_balances, own_sides, parse_statement

CHUNK = 1000
OPS = FinOperation.__table__  # type: ignore[attr-defined]
PARTS = FinOperationPart.__table__  # type: ignore[attr-defined]
TOTALS = FinTotal.__table__  # type: ignore[attr-defined]
IMPORTS = FinImport.__table__  # type: ignore[attr-defined]

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


PartAlloc = tuple[int, int | None, int | None, dt.date, int]  # article, cfo, project, accrual month, kopecks


@dataclass(slots=True)
class NewOp:
    """An operation about to be inserted, with the parts the file gave it (if any)."""

    op: BankOperation
    account_id: int
    doc_number: str = ""
    parts: Sequence[PartAlloc] = ()


@dataclass
class IngestResult:
    total: int = 0
    created: int = 0
    duplicates: int = 0
    allocated: int = 0
    suggested: int = 0
    operation_ids: list[int] = field(default_factory=list)


_GC_GUARD = threading.Lock()
_gc_holders = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (reference counting frees as usual).

    Parsing and allocating a big statement creates millions of small objects that live until
    the import ends; every few hundred allocations the collector walks all of them again, which
    cost a third of the parse (100k lines: 4.2 s → 3.1 s without it). They hold no cycles, so
    there is nothing for it to find. Process-wide, hence counted: with two imports at once the
    collector comes back when the last one leaves, and only if it was on before the first.
    """
    global _gc_holders, _gc_was_enabled
    with _GC_GUARD:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _GC_GUARD:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()


def _existing_keys(session: Session, tenant_id: int, keys: Sequence[str]) -> set[str]:
    """The keys already stored for the tenant.

    PostgreSQL: one query joining the keys, passed as one array, to the unique index. Not
    ``IN (1000 keys)`` per chunk: on a table without statistics yet (a first big import, before
    autovacuum analyses it) the planner reads every operation of the tenant through the
    ``tenant_id`` index and filters the keys, once per chunk: quadratic in a re-import (20k lines
    took 17 s, 100k 22 s). One statement: at worst one pass over them, whatever the plan. SQLite: chunks.
    """
    if not keys:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        # The keys travel as one space-separated string: psycopg adapts a list of 100k strings
        # in Python (0.2 s), a join is free. Keys are prefixed hex digests (dedupe_key,
        # table_ops, create_operation); one with a space would only be missed here and then
        # skipped by the insert's conflict handling.
        return set(session.scalars(
            text("SELECT o.dedupe_key FROM unnest(string_to_array(:keys, ' ')) AS k(key)"
                 " JOIN fin_operations o ON o.tenant_id = :tenant AND o.dedupe_key = k.key"),
            {"keys": " ".join(keys), "tenant": tenant_id},
        ))
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
    """Insert operations not seen before, allocate them (file parts, else rules); caller commits.

    The statements sent do not grow with the number of lines: one lookup of the known keys,
    one to take the new ids, the operations and their parts by COPY in at most
    ``STREAM_CHUNKS`` pairs, one upsert of the totals per thousand of their (article, ЦФО,
    project, account, months) keys. SQLite: the same in chunks of ``CHUNK`` rows. Rows are
    tuples in the tables' column order, built once.

    PostgreSQL, a big batch: streamed (:class:`_CopyStream`). The server's share is most of an
    import (for each row it checks every foreign key), so while it stores one chunk this thread
    allocates the next.
    """
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
    fresh = [u for u in unique if u.op.key not in existing] if existing else unique
    result.duplicates = len(new_ops) - len(fresh)
    postgres = session.get_bind().dialect.name == "postgresql"
    new_ids: Sequence[int | None] = _reserve_ids(session, len(fresh)) if postgres else [None] * len(fresh)
    plan = _Planner(rules, n, tenant_id, import_id)
    rows: list[tuple[Any, ...]] = []
    allocations: list[list[PartAlloc] | None] = []
    stream = _CopyStream(session) if postgres and len(fresh) >= BULK_MIN else None
    done = result.duplicates
    failure: BaseException | None = None
    deltas = Deltas(tenant_id)
    first = 0
    try:
        for last in _chunk_ends(len(fresh), stream is not None):
            for start in range(first, last, CHUNK):  # progress every CHUNK lines
                end = min(start + CHUNK, last)
                for item, new_id in zip(fresh[start:end], new_ids[start:end], strict=True):
                    row, parts = plan.row(item, new_id)
                    rows.append(row)
                    allocations.append(parts)
                done += end - start
                if progress is not None and done < result.total:
                    progress(done)
            if stream is not None:
                if not stream.put(rows[first:last], _part_rows(rows[first:last], allocations[first:last], plan)):
                    break  # the server refused a chunk: see below
                _tally(rows[first:last], allocations[first:last], None, result, deltas)  # while it stores them
            first = last
    finally:
        if stream is not None:
            failure = stream.close()
    if stream is None or failure is not None:
        if stream is None:
            ids = _insert_operations(session, rows)
        else:
            from psycopg.errors import UniqueViolation

            if not isinstance(failure, UniqueViolation):
                raise failure  # type: ignore[misc]  # not None here
            # Another import committed some of these lines after the lookup. Nothing streamed
            # is kept (the savepoint is rolled back); the rows take the road that skips those.
            stream.rollback()
            for item, new_id in zip(fresh[len(rows):], new_ids[len(rows):], strict=True):
                row, parts = plan.row(item, new_id)
                rows.append(row)
                allocations.append(parts)
            ids = _insert_skipping_conflicts(session, rows)
            result = IngestResult(total=result.total, duplicates=result.total - len(fresh))
            deltas = Deltas(tenant_id)
        _insert_parts(session, _part_rows(rows, allocations, plan, ids))
        _tally(rows, allocations, ids, result, deltas)
    deltas.flush(session)
    if progress is not None and fresh:
        progress(result.total)
    return result


def _tally(rows: Sequence[tuple[Any, ...]], allocations: Sequence[list[PartAlloc] | None], ids: dict[str, int] | None,
           result: IngestResult, deltas: Deltas) -> None:
    """Count the operations inserted (those in ``ids``, key → id; all when None) and move the
    totals by their parts, or by the unallocated rest."""
    for row, parts in zip(rows, allocations, strict=True):
        op_id = row[0] if ids is None else ids.get(row[_KEY])
        if op_id is None:  # a concurrent import inserted it first
            result.duplicates += 1
            continue
        result.created += 1
        result.operation_ids.append(op_id)
        account_id, booked, sign = row[2], row[3], 1 if row[4] == _INFLOW else -1
        if parts:
            result.allocated += 1
            for article, cfo, project, accrual, part_kop in parts:
                deltas.add(article, cfo, project, account_id, booked, accrual, sign * part_kop, 1)
        else:
            result.suggested += row[13] == OpStatus.SUGGESTED
            deltas.add(0, None, None, account_id, booked, month_of(booked), sign * row[5], 0)


_INFLOW, _OUTFLOW = Direction.INFLOW.value, Direction.OUTFLOW.value
# Column order of the row tuples of ingest (and of COPY).
_OP_COLUMNS = ("id", "tenant_id", "account_id", "booked_on", "direction", "amount_kop", "counterparty_id",
               "counterparty_inn", "counterparty_name", "counterparty_account", "purpose", "doc_number", "dedupe_key",
               "status", "origin", "suggestion", "import_id", "created_at")
_KEY, _ORIGIN, _SUGGESTION = (_OP_COLUMNS.index(c) for c in ("dedupe_key", "origin", "suggestion"))
_PART_ALLOC_COLUMNS = ("article_id", "cfo_id", "project_id", "accrual_month", "amount_kop")
_PART_COLUMNS = ("tenant_id", "operation_id", "account_id", "booked_on", "direction", *_PART_ALLOC_COLUMNS,
                 "origin", "rule_id", "user_id")
# From this many rows on, PostgreSQL gets them by COPY (below, a plain executemany).
BULK_MIN = 200
# A streamed batch is cut in a first chunk of STREAM_FIRST rows (the server starts on it at
# once) and at most STREAM_CHUNKS more of at least STREAM_CHUNK_MIN rows: the more chunks, the
# less of the allocation waits for the server, but each is two statements.
STREAM_FIRST, STREAM_CHUNKS, STREAM_CHUNK_MIN = 5000, 8, 5000


def _chunk_ends(count: int, streamed: bool) -> list[int]:
    """Where each chunk of ``count`` rows ends (one chunk when not streamed)."""
    if not streamed or count <= STREAM_FIRST:
        return [count] if count else []
    ends = [STREAM_FIRST]
    size = max(STREAM_CHUNK_MIN, -(-(count - STREAM_FIRST) // STREAM_CHUNKS))
    while ends[-1] < count:
        ends.append(min(ends[-1] + size, count))
    return ends


def _reserve_ids(session: Session, count: int) -> list[int]:
    """``count`` new operation ids from the table's sequence, in one statement and one row."""
    if not count:
        return []
    ids: list[int] = session.scalar(text(
        "WITH s AS MATERIALIZED (SELECT CAST(pg_get_serial_sequence('fin_operations', 'id') AS regclass) AS seq)"
        " SELECT array_agg(nextval(s.seq)) FROM s, generate_series(1, :n)"), {"n": count})
    return sorted(ids)  # in the file's order, as the rows were always numbered


def _raw(session: Session) -> Any:
    raw = session.connection().connection.driver_connection
    assert raw is not None
    return raw


def _copy(raw: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``COPY table (columns) FROM STDIN`` on a psycopg connection, inside its transaction."""
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _copy_rows(rows: Sequence[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Operation rows as COPY takes them: the suggestion as JSON text (``null`` when there is
    none, as SQLAlchemy's JSON type binds ``None``)."""
    at = _SUGGESTION
    for row in rows:
        suggestion = row[at]
        yield (*row[:at], "null" if suggestion is None else json.dumps(suggestion), *row[at + 1:])


class _CopyStream:
    """COPY of operation rows and their part rows, chunk by chunk, from a thread of its own,
    under a savepoint of the session's transaction.

    The thread waits on the server with the GIL released, so the caller allocates the next
    chunk meanwhile. The caller sends nothing on the session until :meth:`close`; a chunk the
    server refuses ends the stream (:meth:`put` answers False) and :meth:`close` returns the
    error. COPY cannot skip a duplicate key: a duplicate here means another import stored the
    same lines after the lookup, and the caller rolls the savepoint back and takes the road
    that skips them (:func:`_insert_skipping_conflicts`).
    """

    def __init__(self, session: Session) -> None:
        self._savepoint = session.begin_nested()
        self._connection = _raw(session)
        self._queue: queue.Queue[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] | None] = queue.Queue(maxsize=1)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="finance-copy", daemon=True)
        self._thread.start()

    def put(self, op_rows: list[tuple[Any, ...]], part_rows: list[tuple[Any, ...]]) -> bool:
        if self._failure is not None:
            return False
        self._queue.put((op_rows, part_rows))
        return True

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._failure is not None:
                continue  # drain what was queued before the caller saw the failure
            try:
                _copy(self._connection, "fin_operations", _OP_COLUMNS, _copy_rows(chunk[0]))
                if chunk[1]:
                    _copy(self._connection, "fin_operation_parts", _PART_COLUMNS, chunk[1])
            except BaseException as exc:  # handed to the caller's thread by close()
                self._failure = exc

    def close(self) -> BaseException | None:
        """Wait for the chunks sent; release the savepoint if all went in, else return the error."""
        self._queue.put(None)
        self._thread.join()
        if self._failure is None:
            self._savepoint.commit()
        return self._failure

    def rollback(self) -> None:
        self._savepoint.rollback()


def _insert_operations(session: Session, rows: list[tuple[Any, ...]]) -> dict[str, int]:
    """Insert operation rows not streamed (a concurrent import's duplicates are skipped); dedupe
    key → new id. PostgreSQL (ids taken already): one executemany with ON CONFLICT DO NOTHING
    (psycopg pipelines it). SQLite: chunks of ``INSERT … ON CONFLICT DO NOTHING RETURNING``."""
    if not rows:
        return {}
    if session.get_bind().dialect.name != "postgresql":
        stmt = sqlite_insert(OPS).on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"])
        found: dict[str, int] = {}
        for start in range(0, len(rows), CHUNK):
            chunk = [dict(zip(_OP_COLUMNS[1:], row[1:], strict=True)) for row in rows[start:start + CHUNK]]
            found.update((key, op_id) for op_id, key in
                         session.execute(stmt.returning(OPS.c.id, OPS.c.dedupe_key), chunk).all())
        return found
    if len(rows) >= BULK_MIN:
        return _insert_skipping_conflicts(session, rows)
    session.execute(pg_insert(OPS).on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"]),
                    [dict(zip(_OP_COLUMNS, row, strict=True)) for row in rows])
    present = set(session.scalars(select(OPS.c.id).where(OPS.c.id.in_([row[0] for row in rows]))))
    return {row[_KEY]: row[0] for row in rows if row[0] in present}


def _insert_skipping_conflicts(session: Session, rows: list[tuple[Any, ...]]) -> dict[str, int]:
    """PostgreSQL, ids taken already: COPY into a temporary table, then one ``INSERT … SELECT …
    ON CONFLICT DO NOTHING RETURNING id`` (COPY itself cannot skip a duplicate)."""
    columns = ", ".join(_OP_COLUMNS)
    session.execute(text("CREATE TEMPORARY TABLE fin_operations_in ON COMMIT DROP AS"
                         f" SELECT {columns} FROM fin_operations WITH NO DATA"))
    _copy(_raw(session), "fin_operations_in", _OP_COLUMNS, _copy_rows(rows))
    present = set(session.scalars(text(
        f"INSERT INTO fin_operations ({columns}) SELECT {columns} FROM fin_operations_in ORDER BY id"
        " ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING id")))
    session.execute(text("DROP TABLE fin_operations_in"))
    return {row[_KEY]: row[0] for row in rows if row[0] in present}


def _part_rows(rows: Sequence[tuple[Any, ...]], allocations: Sequence[list[PartAlloc] | None], plan: _Planner,
               ids: dict[str, int] | None = None) -> list[tuple[Any, ...]]:
    """Part rows (``_PART_COLUMNS``) of the operations inserted: those in ``ids`` (key → id), or
    all of them with the ids they were given when ``ids`` is None."""
    out: list[tuple[Any, ...]] = []
    rule = PartOrigin.RULE.value
    for row, parts in zip(rows, allocations, strict=True):
        if not parts:
            continue
        op_id = row[0] if ids is None else ids.get(row[_KEY])
        if op_id is None:
            continue
        origin = row[_ORIGIN]
        rule_id = plan.rule_ids.get(row[_KEY]) if origin == rule else None
        tenant_id, account_id, booked, direction = row[1], row[2], row[3], row[4]
        for article, cfo, project, accrual, kop in parts:
            out.append((tenant_id, op_id, account_id, booked, direction, article, cfo, project, accrual, kop, origin,
                        rule_id, None))
    return out


def _insert_parts(session: Session, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    if len(rows) >= BULK_MIN and session.get_bind().dialect.name == "postgresql":
        _copy(_raw(session), "fin_operation_parts", _PART_COLUMNS, rows)
        return
    for start in range(0, len(rows), CHUNK):
        session.execute(PARTS.insert(), [dict(zip(_PART_COLUMNS, row, strict=True)) for row in rows[start:start + CHUNK]])


class _Planner:
    """The row of each new operation and its parts: the file's parts, else the rules'.

    Parts are (article id, ЦФО id, project id, accrual month, kopecks); ``rule_ids`` keeps, per
    dedupe key of an operation a rule allocated, that rule's id (so the caller's part rows need
    no lookup by name). What :meth:`RuleSet.allocate` would do, without its objects: the ids of
    a rule's shares are looked up once per rule, a single share is the whole amount (which is
    what :func:`split_amount` gives it), accrual months are computed once per day and shift.
    """

    def __init__(self, rules: Rules, n: Names, tenant_id: int = 0, import_id: int | None = None) -> None:
        self.rules, self.n, self.tenant_id, self.import_id = rules, n, tenant_id, import_id
        self.now = utcnow()
        self.rule_ids: dict[str, int | None] = {}
        self._shares: dict[str, tuple[tuple[int, int | None, int | None, int], ...]] = {}
        self._months: dict[tuple[dt.date, int], dt.date] = {}

    def row(self, item: NewOp, new_id: int | None) -> tuple[tuple[Any, ...], list[PartAlloc] | None]:
        """The operation's row (``_OP_COLUMNS``) and its parts (None: not allocated)."""
        op = item.op
        kop = to_kop(op.amount)
        status, origin, suggestion, parts = self.plan(item, kop)
        return (
            new_id, self.tenant_id, item.account_id, op.booked_on, _INFLOW if op.direction is Direction.INFLOW else _OUTFLOW,
            kop, None, op.counterparty_inn[:12], op.counterparty_name[:300], op.counterparty_account[:34],
            op.purpose[:1000], item.doc_number[:32], op.key, status, origin, suggestion, self.import_id, self.now,
        ), parts

    def plan(self, item: NewOp, kop: int) -> tuple[str, str, dict[str, Any] | None, list[PartAlloc] | None]:
        """(status, origin, suggestion, parts); ``kop``: the operation's amount in kopecks."""
        if item.parts:
            return _ALLOCATED, _FROM_FILE, None, list(item.parts)
        op = item.op
        rule = self.rules.ruleset.first_match(op)
        if rule is None:
            return _UNALLOCATED, "", None, None
        if rule.suggest_only:
            allocation = Allocation(op, Status.SUGGESTED, apply_shares(op, rule.shares, rule.name), rule.name)
            return _SUGGESTED, "", _suggestion(allocation, self.rules), None
        shares = self._shares.get(rule.name)
        if shares is None:
            n = self.n
            shares = self._shares[rule.name] = tuple(
                (n.articles[s.article].id, n.cfos.get(s.cfo) if s.cfo else None,  # type: ignore[misc]
                 n.projects.get(s.project) if s.project else None, s.month_shift)
                for s in rule.shares
            )
        self.rule_ids[op.key] = self.rules.ids.get(rule.name)
        if len(shares) == 1:
            article, cfo, project, shift = shares[0]
            return _ALLOCATED, _BY_RULE, None, [(article, cfo, project, self._month(op.booked_on, shift), kop)]
        amounts = split_amount(op.amount, [s.percent for s in rule.shares])
        return _ALLOCATED, _BY_RULE, None, [
            (article, cfo, project, self._month(op.booked_on, shift), to_kop(amount))
            for (article, cfo, project, shift), amount in zip(shares, amounts, strict=True)
        ]

    def _month(self, day: dt.date, shift: int) -> dt.date:
        found = self._months.get((day, shift))
        if found is None:
            found = self._months[(day, shift)] = accrual_month(day, shift)
        return found


_ALLOCATED, _UNALLOCATED, _SUGGESTED = OpStatus.ALLOCATED.value, OpStatus.UNALLOCATED.value, OpStatus.SUGGESTED.value
_BY_RULE, _FROM_FILE = PartOrigin.RULE.value, PartOrigin.FILE.value


def _plan(item: NewOp, rules: Rules, n: Names, tenant_id: int) -> tuple[str, str, dict[str, Any] | None, list[dict[str, Any]]]:
    """(status, origin, suggestion, part rows) of an operation, parts as dicts of the parts table."""
    planner = _Planner(rules, n)
    status, origin, suggestion, parts = planner.plan(item, to_kop(item.op.amount))
    rule_id = planner.rule_ids.get(item.op.key)
    return status, origin, suggestion, [
        {**dict(zip(_PART_ALLOC_COLUMNS, p, strict=True)), "origin": origin, "rule_id": rule_id, "user_id": None}
        for p in parts or ()
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
    out: list[NewOp] = []
    unknown: set[str] = set()
    sides = own_sides(statement)
    accounts = n.accounts
    for side in sides:
        account = accounts.get(side.account)
        if account is None or account.id is None:
            unknown.add(side.account)
            continue
        out.append(NewOp(from_side(side), account.id, side.document.number.strip()))
    if unknown:
        raise Invalid(
            f"выписка не загружена: счета {', '.join(sorted(unknown))} не заведены ни у одного юрлица",
            code="unknown_account", extra={"accounts": sorted(unknown)},
        )
    differences = [
        {"account": d.account, "code": d.code, "expected": str(d.expected), "actual": str(d.actual),
         "delta": str(d.delta), "detail": d.message}
        for d in check_balances(statement, sides)
    ]
    return out, differences


def start_import(session: Session, tenant_id: int, user_id: int | None, kind: str, file_name: str, content: bytes,
                 options: dict[str, Any] | None = None) -> FinImport:
    """Check the file (a bad one → 422 naming the line and field, nothing stored) and queue it.

    PostgreSQL: the row with the file is sent while the file is checked (the server compresses
    tens of megabytes meanwhile: 0.3 s for 60 MB), then completed with the check's figures, or
    rolled back with the check's error; committed only in the first case. The returned row
    does not hold the file (it is loaded if read).
    """
    n = names(session, tenant_id)
    draft = FinImport(tenant_id=tenant_id, kind=kind, file_name=file_name[:300], total=0, content=content,
                      options=options, balance_differences=[], errors=[], user_id=user_id)
    connection = session.connection()
    new_id: list[int] = []

    def store() -> None:  # Core on the connection: the ORM session stays this thread's alone
        if connection.dialect.name == "postgresql":
            _fast_toast(connection)
        values = {c.name: getattr(draft, c.name) for c in IMPORTS.columns if c.name != "id"}
        new_id.append(connection.execute(IMPORTS.insert().values(values).returning(IMPORTS.c.id)).scalar_one())

    try:
        with _meanwhile(store if connection.dialect.name == "postgresql" else None), gc_paused():
            new_ops, differences = parse_file(kind, content, options or {}, n)
        if not new_id:
            store()
    except BaseException:
        session.rollback()
        raise
    row = session.get(FinImport, new_id[0], options=[defer(FinImport.content)])  # type: ignore[arg-type]
    assert row is not None and row.id is not None
    row.total, row.balance_differences = len(new_ops), differences
    session.commit()
    _PARSED[row.id] = new_ops
    return row


@contextmanager
def _meanwhile(work: Callable[[], None] | None) -> Iterator[None]:
    """Run ``work`` in a thread of its own while the block runs; its error, if any, is raised
    after the block (the block's own error first). The block must not use what ``work`` does
    (here: the session, while ``work`` sends a statement on it and waits with the GIL released)."""
    if work is None:
        yield
        return
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # raised in the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=run, name="finance-meanwhile", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
    if failure:
        raise failure[0]


def _fast_toast(connection: Connection) -> None:
    """PostgreSQL 14+ built with LZ4: this transaction compresses big values with it.

    The stored file (tens of megabytes, kept until the import ran) is compressed on insert;
    pglz, the default, took 0.6 s for a 60 MB statement, LZ4 0.3 s. ``SET LOCAL`` through
    ``set_config(…, true)``, only where the server offers the value: elsewhere a no-op."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(
            "SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings"
            " WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"))


def parse_file(kind: str, content: bytes, options: dict[str, Any], n: Names) -> tuple[list[NewOp], list[dict[str, Any]]]:
    if kind == "onec":
        return _onec_ops(content, n)
    return table_ops(kind, content, TableImportIn.model_validate({**options, "content_b64": "", "format": kind}), n), []


def run_import(factory: Any, import_id: int, progress_sink: Callable[[int, int, int], None] | None = None) -> ImportPublic:
    """Run a queued import: one transaction for all its operations; the row tells the outcome."""
    from cloud.db import unit_of_work

    cached = _PARSED.pop(import_id, None)
    with unit_of_work(factory) as session:
        # The file itself (tens of megabytes) is loaded only when this process did not parse it.
        row = session.get(FinImport, import_id, options=[defer(FinImport.content)])  # type: ignore[arg-type]
        if row is None:
            raise NotFound(f"загрузка {import_id} не найдена")
        if row.state in (ImportState.DONE, ImportState.RUNNING):
            return _import_public(row)
        row.state = ImportState.RUNNING.value
        session.add(row)
        session.commit()
        tenant_id, kind, options, total = row.tenant_id, row.kind, row.options or {}, row.total
        content = b"" if cached is not None else row.content or b""

    def progress(done: int) -> None:
        PROGRESS[import_id] = (done, total)
        if progress_sink is not None:
            progress_sink(import_id, done, total)

    try:
        with unit_of_work(factory) as session, gc_paused():
            n = names(session, tenant_id)
            new_ops = cached if cached is not None else parse_file(kind, content, options, n)[0]
            result = ingest(session, tenant_id, new_ops, import_id=import_id, n=n, progress=progress)
            row = session.get(FinImport, import_id, options=[defer(FinImport.content)])  # type: ignore[arg-type]
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


