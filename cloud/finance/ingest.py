"""Bank lines into operations: dedupe, allocate (the file's parts, else the rules), insert with the totals.

- **dedupe by the stable key** (:func:`protocols.onec.dedupe_key`, or a hash of the row for
  XLSX/CSV) under a unique index ``(tenant_id, dedupe_key)``: known keys are skipped before the
  insert, and lines a concurrent import stored meanwhile are skipped by ``ON CONFLICT DO
  NOTHING`` (a streamed COPY that meets one is rolled back to its savepoint and redone so);
- **allocated on the way in**: the parts the file gave, else those of the first rule that
  matches (:class:`_Planner`); the totals move by the same amounts (:class:`Deltas`).

An import costs a fixed number of statements whatever its size (see :func:`ingest`); on
PostgreSQL most of its time is the server's per-row foreign-key checks, so the allocation
runs while the server stores the previous chunk.

The caller commits: :mod:`cloud.finance.imports` for a file, :mod:`cloud.finance.service` for an
operation entered by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from cloud.base import utcnow
from cloud.catalog.units import to_kop
from cloud.finance.allocation import Allocation, Status, accrual_month, apply_shares, split_amount
from cloud.finance.models import FinOperation, FinOperationPart, OpStatus, PartOrigin
from cloud.finance.operations import BankOperation
from cloud.finance.rules import Rules, load_rules
from cloud.finance.setup import Names, names
from cloud.finance.totals import CHUNK, Deltas, month_of
from protocols.onec import Direction

OPS = FinOperation.__table__  # type: ignore[attr-defined]
PARTS = FinOperationPart.__table__  # type: ignore[attr-defined]


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


def plan_operation(item: NewOp, rules: Rules, n: Names, tenant_id: int) -> tuple[str, str, dict[str, Any] | None, list[dict[str, Any]]]:
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
