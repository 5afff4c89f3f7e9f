"""The stock ledger: append-only rows per (product, warehouse) with exact running totals.

Posting (:func:`post_moves`) inserts the rows, then *walks* the pair from the first new row:
each row's value and running ``qty_after``/``value_after``/``state`` are recomputed from the
row before it (:mod:`cloud.inventory.valuation`), and only rows whose stored numbers changed are
written back (one executemany per chunk). An ordinary posting is the last row of its pair, so
the walk is just the new rows. A backdated posting walks the later rows of the *affected pairs
only*: up to ``inline_recompute_limit`` rows in the posting's own transaction; beyond that the
pair is marked dirty (``stock_balances.dirty_from``, the persisted cursor) and
:func:`cloud.inventory.tasks.recompute_pair` finishes it in chunks, one transaction each, so a
crash resumes from the cursor. A posting that meets a dirty pair first finishes its recompute.

Balance at any moment = the running totals of the last row at or before it, found through the
``(product_id, warehouse_id, posted_at, id)`` index: one index probe, exact, and nothing to
invalidate on backdated postings. When the moment is at or after the pair's last row ("now") and no recompute is
pending, the balance row already holds those totals, so a whole store's current stock is one
range scan of ``stock_balances`` (see :func:`balances_at`). Profiled at 4,000 pairs, PostgreSQL
executed that read in ~1 ms (~1.8 ms as the former ``UNION``, whose second branch scanned the
balance rows again and whose result was sorted); the rest of the former ~9 ms was Python:
SQLAlchemy fetching the 4,000 rows one by one, building a ``Row`` each, then a tuple each, and
rebuilding the statement on every call. The read now takes psycopg's tuples as they come.

Why running totals in each row and not periodic snapshots (issue #7; 1M rows, 4,000 pairs, a
2-CPU machine shared with other work): a whole store at a past moment costs one probe per pair,
~4,000 descents of a hot index, 30–60 ms median whatever the ledger's length. Making the index
covering (``INCLUDE (qty_after_m, value_after_kop)``) takes the table out of the read (about
1.7× faster) but measured slower posting and recompute relative to their same-run baselines
(see migration 0009), so the plain index stays. A daily snapshot of every pair of a store, read
together with the rows of the day up to the moment, measured ~7.5 ms against ~32 ms for the
probes; monthly snapshots were slower than the probes (68 ms: half a month of rows to scan).
The daily gain would cost a snapshot row per pair per day (4,000 × 365 = 1.46M rows a year per
store, more than this ledger), an index on ``(store_id, posted_at)`` written by every posting,
a nightly job, and above all a repair of every later snapshot of a pair on each posting dated
before the newest snapshot — a backdated receipt, a cancel, a late page of sales from a store
that was offline — including new values for every later at-cost row (the recompute we already
do on the rows, done again on the snapshots, inline or left dirty with the same cursor). The
running totals on the rows already are a snapshot at every moment that a backdated posting keeps
exact by its own recompute; a past whole-store report is not on a latency path, so snapshots
are not kept.

Posting sends a fixed number of statements whatever the number of lines (see
:func:`post_moves`); on PostgreSQL the rows travel as one JSON parameter (``json_to_recordset``)
or a few arrays (``unnest``), so the statement text never grows with the document.

Cancelling marks the document's rows ``cancelled`` and appends mirror *reversal* rows (also
cancelled) at the same moment; both stay for audit and move nothing; the pair is re-walked from
there. Rows are never deleted.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Row, bindparam, func, select, text, tuple_, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from cloud.base import utcnow
from cloud.inventory.models import (
    ClosedPeriod,
    CostMode,
    InventorySettings,
    NegativePolicy,
    StockBalance,
    StockMove,
)
from cloud.inventory.valuation import Method, State, apply

if TYPE_CHECKING:
    import psycopg

T = StockMove.__table__  # type: ignore[attr-defined]
B = StockBalance.__table__  # type: ignore[attr-defined]
CHUNK = 5000
DIRTY_KEY = "inventory_dirty_pairs"
"""``session.info`` key: pairs left for the background recompute by this session's postings."""
Key = tuple[datetime, int]


@dataclass(frozen=True)
class Pair:
    tenant_id: int
    store_id: int
    product_id: int
    warehouse_id: int


@dataclass(frozen=True)
class NewMove:
    pair: Pair
    qty_m: int
    cost_mode: CostMode = CostMode.AT_COST
    fixed_value_kop: int | None = None
    source_move_id: int | None = None
    line_id: int | None = None
    reason: str = ""
    posted_at: datetime | None = None
    """The row's own moment, for a posting of many documents at once (sales ingestion posts a page
    of receipts, each at its own time, in one call); ``None``: the posting's ``posted_at``."""


@dataclass(frozen=True)
class Violation:
    """Posting would leave the pair negative at row ``move_id``: ``available`` < ``requested``."""

    pair: Pair
    move_id: int
    posted_at: datetime
    document_id: int | None
    available_m: int
    requested_m: int


class NegativeStock(Exception):
    def __init__(self, violation: Violation) -> None:
        super().__init__(violation)
        self.violation = violation


@dataclass
class WalkResult:
    processed: int = 0
    changed: int = 0
    done: bool = True
    next_key: Key | None = None
    state: State = field(default_factory=State)
    changed_sources: list[tuple[int, int, int]] = field(default_factory=list)  # (move id, qty, value)
    last_delta_m: int = 0


def settings_of(session: Session, tenant_id: int) -> InventorySettings:
    row = session.get(InventorySettings, tenant_id)
    return row if row is not None else InventorySettings(tenant_id=tenant_id)


def closed_through(session: Session, tenant_id: int, store_id: int) -> datetime | None:
    rows = session.execute(
        select(ClosedPeriod.closed_through).where(  # type: ignore[call-overload]
            ClosedPeriod.tenant_id == tenant_id,
            (ClosedPeriod.store_id == store_id) | (ClosedPeriod.store_id.is_(None)),  # type: ignore[union-attr]
        )
    ).scalars().all()
    return max(rows) if rows else None


# ---------------------------------------------------------------- locking and state


def upsert_insert(session: Session) -> Any:
    """The dialect's ``insert`` (PostgreSQL or SQLite), both of which have ``on_conflict_do_nothing``."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def is_postgres(session: Session) -> bool:
    return bool(session.get_bind().dialect.name == "postgresql")


_PG_UPSERT_PAIRS = text(
    "INSERT INTO stock_balances (tenant_id, store_id, product_id, warehouse_id, qty_m, value_kop, recomputed_rows) "
    "SELECT t, s, p, w, 0, 0, 0 FROM unnest(CAST(:t AS int[]), CAST(:s AS int[]), CAST(:p AS int[]), "
    "CAST(:w AS int[])) AS v(t, s, p, w) ON CONFLICT (product_id, warehouse_id) DO NOTHING"
)
_PG_PAIRS_IN = text(
    "(stock_balances.product_id, stock_balances.warehouse_id) IN "
    "(SELECT * FROM unnest(CAST(:lp AS int[]), CAST(:lw AS int[])))"
)


def lock_pairs(session: Session, pairs: Sequence[Pair]) -> dict[Pair, Row[Any]]:
    """:func:`lock_pair` for many pairs in two statements, locking in (product, warehouse) order.

    On PostgreSQL the pairs travel as two arrays (``unnest``): the statements have a fixed text
    whatever the number of pairs, so neither SQLAlchemy nor psycopg re-parses a query per size.
    ``ORDER BY … FOR UPDATE`` locks the rows in sort order, so two postings never deadlock.
    """
    if not pairs:
        return {}
    if is_postgres(session):
        session.execute(_PG_UPSERT_PAIRS, {"t": [p.tenant_id for p in pairs], "s": [p.store_id for p in pairs],
                                           "p": [p.product_id for p in pairs], "w": [p.warehouse_id for p in pairs]})
        where: Any = _PG_PAIRS_IN.bindparams(lp=[p.product_id for p in pairs], lw=[p.warehouse_id for p in pairs])
    else:
        session.execute(upsert_insert(session)(B).values([
            {"tenant_id": p.tenant_id, "store_id": p.store_id, "product_id": p.product_id,
             "warehouse_id": p.warehouse_id, "qty_m": 0, "value_kop": 0, "recomputed_rows": 0} for p in pairs
        ]).on_conflict_do_nothing(index_elements=["product_id", "warehouse_id"]))
        where = tuple_(B.c.product_id, B.c.warehouse_id).in_([(p.product_id, p.warehouse_id) for p in pairs])
    rows = session.execute(
        select(B).where(where).order_by(B.c.product_id, B.c.warehouse_id).with_for_update()
    ).all()
    by_key = {(r.product_id, r.warehouse_id): r for r in rows}
    return {p: by_key[(p.product_id, p.warehouse_id)] for p in pairs}


def lock_pair(session: Session, pair: Pair) -> Row[Any]:
    """Create the pair's balance row if needed and lock it (``FOR UPDATE``) until commit."""
    values = {"tenant_id": pair.tenant_id, "store_id": pair.store_id, "product_id": pair.product_id,
              "warehouse_id": pair.warehouse_id, "qty_m": 0, "value_kop": 0, "recomputed_rows": 0}
    session.execute(upsert_insert(session)(B).values(**values).on_conflict_do_nothing(index_elements=["product_id", "warehouse_id"]))
    row = session.execute(
        select(B).where(B.c.product_id == pair.product_id, B.c.warehouse_id == pair.warehouse_id).with_for_update()
    ).one()
    return row


def _pair_filter(pair: Pair) -> Any:
    return (T.c.product_id == pair.product_id) & (T.c.warehouse_id == pair.warehouse_id)


def _key() -> Any:
    return tuple_(T.c.posted_at, T.c.id)


def state_before(session: Session, pair: Pair, key: Key) -> State:
    row = session.execute(
        select(T.c.qty_after_m, T.c.value_after_kop, T.c.state)
        .where(_pair_filter(pair), _key() < tuple_(*key))
        .order_by(T.c.posted_at.desc(), T.c.id.desc())
        .limit(1)
    ).first()
    return State() if row is None else State.from_row(row[0], row[1], row[2])


_COLS = (T.c.id, T.c.posted_at, T.c.qty_m, T.c.value_kop, T.c.correction_kop, T.c.cost_mode, T.c.fixed_value_kop,
         T.c.source_move_id, T.c.qty_after_m, T.c.value_after_kop, T.c.state, T.c.cancelled, T.c.document_id,
         T.c.doc_type)

_UPDATE = (
    update(T)
    .where(T.c.id == bindparam("b_id"))
    .values(value_kop=bindparam("b_value"), correction_kop=bindparam("b_corr"), qty_after_m=bindparam("b_qty"),
            value_after_kop=bindparam("b_after"), state=bindparam("b_state"))
)


_PG_UPDATE = text(
    "UPDATE stock_moves AS m SET value_kop = v.b_value, correction_kop = v.b_corr, qty_after_m = v.b_qty, "
    "value_after_kop = v.b_after, state = v.b_state FROM json_to_recordset(CAST(:rows AS json)) "
    "AS v(b_id int, b_value bigint, b_corr bigint, b_qty bigint, b_after bigint, b_state json) WHERE m.id = v.b_id"
)


def bulk_update(session: Session, updates: list[dict[str, Any]]) -> None:
    """Write recomputed rows: one statement on PostgreSQL (``json_to_recordset``), executemany elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(_UPDATE, updates)
        return
    session.execute(_PG_UPDATE, {"rows": json_rows(updates)})


_MOVE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "bigint"), ("tenant_id", "int"), ("store_id", "int"), ("product_id", "int"), ("warehouse_id", "int"),
    ("posted_at", "timestamptz"), ("doc_type", "text"), ("document_id", "int"), ("line_id", "int"),
    ("qty_m", "bigint"), ("value_kop", "bigint"), ("correction_kop", "bigint"), ("cost_mode", "text"),
    ("fixed_value_kop", "bigint"), ("source_move_id", "int"), ("qty_after_m", "bigint"),
    ("value_after_kop", "bigint"), ("state", "json"), ("cancelled", "boolean"), ("reversal_of_id", "int"),
    ("reason", "text"), ("created_at", "timestamptz"),
)
_PG_INSERT_MOVES = text(
    f"INSERT INTO stock_moves ({', '.join(c for c, _t in _MOVE_COLUMNS)}) "
    f"SELECT {', '.join(c for c, _t in _MOVE_COLUMNS)} FROM json_to_recordset(CAST(:rows AS json)) "
    f"AS v({', '.join(f'{c} {t}' for c, t in _MOVE_COLUMNS)})"
)
_PG_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence('stock_moves', 'id')) FROM generate_series(1, :n)")


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()  # always aware here (UtcDateTime refuses naive ones)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as one JSON array: PostgreSQL reads it with ``json_to_recordset`` (one parameter, any row count)."""
    return json.dumps(rows, default=_json_default, separators=(",", ":"))


def allocate_move_ids(session: Session, n: int) -> list[int]:
    """``n`` new, increasing ``stock_moves`` ids, known before the rows are written.

    PostgreSQL: from the table's sequence. SQLite: after the current maximum, which is safe because
    the transaction already holds SQLite's single write lock (``BEGIN IMMEDIATE``; the pair upsert
    that precedes every insert is a write), so nobody else can insert until it commits.
    """
    if n <= 0:
        return []
    if is_postgres(session):
        return sorted(int(i) for i in session.execute(_PG_NEXT_IDS, {"n": n}).scalars())
    top = int(session.execute(select(func.coalesce(func.max(T.c.id), 0))).scalar_one())
    return list(range(top + 1, top + 1 + n))


def insert_moves(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert complete ledger rows (ids included) in one statement (``json_to_recordset`` on PostgreSQL)."""
    if not rows:
        return
    if not is_postgres(session):
        session.execute(T.insert(), rows)
        return
    session.execute(_PG_INSERT_MOVES, {"rows": json_rows(rows)})


_PG_SET_BALANCES = text(
    "UPDATE stock_balances AS b SET qty_m = v.qty_m, value_kop = v.value_kop, last_posted_at = v.last_posted_at, "
    "last_move_id = v.last_move_id, state = v.state FROM json_to_recordset(CAST(:rows AS json)) "
    "AS v(k_id int, qty_m bigint, value_kop bigint, last_posted_at timestamptz, last_move_id int, state json) "
    "WHERE b.id = v.k_id"
)
_SET_BALANCE = (
    update(B).where(B.c.id == bindparam("k_id"))
    .values(qty_m=bindparam("qty_m"), value_kop=bindparam("value_kop"), last_posted_at=bindparam("last_posted_at"),
            last_move_id=bindparam("last_move_id"), state=bindparam("state"))
)


def _set_appended(session: Session, finals: list[dict[str, Any]]) -> None:
    """Store the new running totals and last-row key of every appended pair (one statement)."""
    if not finals:
        return
    if not is_postgres(session):
        session.execute(_SET_BALANCE, finals)
        return
    session.execute(_PG_SET_BALANCES, {"rows": json_rows(finals)})


def walk(session: Session, pair: Pair, start: Key, method: Method, policy: NegativePolicy,
         new_ids: frozenset[int] = frozenset(), max_rows: int | None = None) -> WalkResult:
    """Recompute the pair's rows from ``start`` (inclusive) on, at most ``max_rows`` of them.

    Raises :class:`NegativeStock` under the forbid policy when a row ends below zero that is new
    or lower than before (an existing negative row left as it was is not this posting's fault).
    """
    result = WalkResult()
    state = state_before(session, pair, start)
    cursor: Key = start
    inclusive = True
    while True:
        limit = CHUNK if max_rows is None else min(CHUNK, max_rows - result.processed)
        if limit <= 0:
            result.done = False
            break
        cond = _key() >= tuple_(*cursor) if inclusive else _key() > tuple_(*cursor)
        rows = session.execute(
            select(*_COLS).where(_pair_filter(pair), cond).order_by(T.c.posted_at, T.c.id).limit(limit)
        ).all()
        updates: list[dict[str, Any]] = []
        for row in rows:
            state, params, old_after_m = _step(state, row, method)
            if params is not None:
                updates.append(params)
                if row.qty_m < 0 and row.doc_type == "transfer" and params["b_value"] != row.value_kop:
                    result.changed_sources.append((row.id, row.qty_m, params["b_value"]))
            if (policy is NegativePolicy.FORBID and not row.cancelled and state.qty < 0
                    and (row.id in new_ids or state.qty < old_after_m)):
                available = state.qty - row.qty_m
                raise NegativeStock(Violation(pair, row.id, row.posted_at, row.document_id,
                                              max(available, 0) if row.id in new_ids else available, -row.qty_m))
            result.last_delta_m = state.qty - old_after_m if row.id not in new_ids else 0
        if updates:
            bulk_update(session, updates)
            result.changed += len(updates)
        result.processed += len(rows)
        if len(rows) < limit:
            break
        cursor, inclusive = (rows[-1].posted_at, rows[-1].id), False
    if not result.done:
        nxt = session.execute(
            select(T.c.posted_at, T.c.id).where(_pair_filter(pair), _key() > tuple_(*cursor))
            .order_by(T.c.posted_at, T.c.id).limit(1)
        ).first()
        if nxt is None:
            result.done = True
        else:
            result.next_key = (nxt[0], nxt[1])
    result.state = state
    return result


def _step(state: State, row: Row[Any], method: Method) -> tuple[State, dict[str, Any] | None, int]:
    if row.cancelled:
        new, value, corr = state, row.value_kop, row.correction_kop
    else:
        fixed = row.fixed_value_kop if row.cost_mode != CostMode.AT_COST.value else None
        new, step = apply(state, method, row.qty_m, fixed, row.source_move_id, row.id)
        value, corr = step.value, step.correction
    new_json = new.to_json(method)
    if (value, corr, new.qty, new.value) == (row.value_kop, row.correction_kop, row.qty_after_m,
                                             row.value_after_kop) and new_json == row.state:
        return new, None, row.qty_after_m
    return new, {"b_id": row.id, "b_value": value, "b_corr": corr, "b_qty": new.qty, "b_after": new.value,
                 "b_state": new_json}, row.qty_after_m


# ---------------------------------------------------------------- posting and cancelling


def _set_balance(session: Session, pair: Pair, state: State, dirty: Key | None, processed: int,
                 last: Key | None = None, method: Method = Method.AVERAGE) -> None:
    values: dict[str, Any] = {
        "qty_m": state.qty, "value_kop": state.value, "dirty_from": dirty[0] if dirty else None,
        "dirty_from_id": dirty[1] if dirty else None, "recomputed_rows": B.c.recomputed_rows + processed}
    if dirty is None:  # exact: the last row's key and state let the next posting append without reading rows
        values.update(last_posted_at=last[0] if last else None, last_move_id=last[1] if last else None,
                      state=state.to_json(method))
    session.execute(
        update(B).where(B.c.product_id == pair.product_id, B.c.warehouse_id == pair.warehouse_id).values(**values)
    )


def finish_dirty(session: Session, pair: Pair, balance: Row[Any], cfg: InventorySettings) -> None:
    """Finish a pending background recompute of ``pair`` in this transaction (it is locked)."""
    if balance.dirty_from is None:
        return
    settle(session, pair, (balance.dirty_from, balance.dirty_from_id), cfg, frozenset(), max_rows=None)


def settle(session: Session, pair: Pair, start: Key, cfg: InventorySettings, new_ids: frozenset[int],
           max_rows: int | None) -> WalkResult:
    """Walk ``pair`` from ``start``; leave the rest dirty when ``max_rows`` stops it; propagate links."""
    method, policy = Method(cfg.valuation), NegativePolicy(cfg.negative_stock)
    result = walk(session, pair, start, method, policy, new_ids, max_rows)
    if not result.done:
        assert result.next_key is not None
        if policy is NegativePolicy.FORBID and result.last_delta_m < 0:
            lowest = session.execute(
                select(func.min(T.c.qty_after_m)).where(
                    _pair_filter(pair), _key() >= tuple_(*result.next_key), T.c.cancelled.is_(False))
            ).scalar()
            if lowest is not None and lowest + result.last_delta_m < 0:
                first_new = min(new_ids) if new_ids else 0
                raise NegativeStock(Violation(pair, first_new, start[0], None, lowest, lowest - result.last_delta_m))
        _set_balance(session, pair, result.state, result.next_key, result.processed, method=method)
        session.info.setdefault(DIRTY_KEY, set()).add((pair.product_id, pair.warehouse_id))
    else:
        last_state, last_key = _last_state(session, pair)
        _set_balance(session, pair, last_state, None, result.processed, last_key, method)
    if result.changed_sources:
        propagate(session, pair.tenant_id, result.changed_sources, cfg)
    return result


def _last_state(session: Session, pair: Pair) -> tuple[State, Key | None]:
    row = session.execute(
        select(T.c.qty_after_m, T.c.value_after_kop, T.c.state, T.c.posted_at, T.c.id).where(_pair_filter(pair))
        .order_by(T.c.posted_at.desc(), T.c.id.desc()).limit(1)
    ).first()
    return (State(), None) if row is None else (State.from_row(row[0], row[1], row[2]), (row[3], row[4]))


def propagate(session: Session, tenant_id: int, sources: list[tuple[int, int, int]], cfg: InventorySettings) -> None:
    """Copy changed transfer-out values onto their linked transfer-in rows and re-walk those pairs."""
    by_id = {s[0]: s for s in sources}
    deps = session.execute(
        select(T.c.id, T.c.source_move_id, T.c.qty_m, T.c.posted_at, T.c.tenant_id, T.c.store_id, T.c.product_id,
               T.c.warehouse_id)
        .where(T.c.source_move_id.in_(list(by_id)), T.c.cost_mode == CostMode.LINKED.value,
               T.c.tenant_id == tenant_id)
    ).all()
    for dep in deps:
        _sid, src_qty, src_value = by_id[dep.source_move_id]
        value = linked_value(src_qty, src_value, dep.qty_m)
        session.execute(update(T).where(T.c.id == dep.id).values(fixed_value_kop=value))
        pair = Pair(dep.tenant_id, dep.store_id, dep.product_id, dep.warehouse_id)
        balance = lock_pair(session, pair)
        finish_dirty(session, pair, balance, cfg)
        settle(session, pair, (dep.posted_at, dep.id), cfg, frozenset(), max_rows=cfg.inline_recompute_limit)


def linked_value(src_qty: int, src_value: int, qty: int) -> int:
    """The value of ``qty`` at the unit cost of an outgoing row (``src_qty`` < 0, ``src_value`` <= 0)."""
    from cloud.catalog.units import mul_div

    return mul_div(-src_value, abs(qty), -src_qty) if src_qty else 0


def post_moves(session: Session, cfg: InventorySettings, doc_type: str, document_id: int | None,
               posted_at: datetime, moves: Sequence[NewMove]) -> list[int]:
    """Insert ``moves`` and settle every affected pair; returns the new row ids in the order of ``moves``.

    Each row is at its move's own ``posted_at`` when it has one, else at ``posted_at``; rows of
    different moments are numbered in time order (ties keep the order given), so a pair's new rows
    follow each other in the ledger's ``(posted_at, id)`` order and one call can post a whole page
    of sales, each at its own moment.

    A constant number of statements whatever the number of moves: upsert + lock the balances,
    allocate the ids, insert the rows, update the balances. A pair whose new rows come last
    (the usual case) is computed in memory from its balance row, so its rows are written once,
    finished; only a backdated pair gets placeholder rows that :func:`settle` then walks.

    The caller checks the closed period and commits; any exception leaves nothing behind once
    the caller's transaction rolls back.
    """
    if not moves:
        return []
    pairs = sorted({m.pair for m in moves}, key=lambda p: (p.product_id, p.warehouse_id))
    balances = lock_pairs(session, pairs)  # in a fixed order: no deadlocks between postings
    for p in pairs:
        if balances[p].dirty_from is not None:
            finish_dirty(session, p, balances[p], cfg)
            balances[p] = lock_pair(session, p)
    when = [m.posted_at or posted_at for m in moves]
    order = sorted(range(len(moves)), key=when.__getitem__)  # stable: one moment keeps the given order
    ids = [0] * len(moves)
    for i, new_id in zip(order, allocate_move_ids(session, len(moves)), strict=True):
        ids[i] = new_id
    by_pair: dict[Pair, list[tuple[int, NewMove, datetime]]] = {}
    for i in order:
        by_pair.setdefault(moves[i].pair, []).append((ids[i], moves[i], when[i]))
    method, policy = Method(cfg.valuation), NegativePolicy(cfg.negative_stock)
    computed: dict[int, dict[str, Any]] = {}
    finals: list[dict[str, Any]] = []
    walks: list[Pair] = []
    for p in pairs:
        balance, new = balances[p], by_pair[p]
        appends = balance.last_posted_at is None or balance.last_posted_at <= new[0][2]
        if balance.last_posted_at is None and balance.last_move_id is None and balance.qty_m != 0:
            appends = False  # a balance row from before the key was kept: take the exact path
        if not appends:
            walks.append(p)
            continue
        # append: the running state is on the balance row; no ledger read, no walk
        state = State.from_row(balance.qty_m, balance.value_kop, balance.state)
        for new_id, m, at in new:
            fixed = m.fixed_value_kop if m.cost_mode is not CostMode.AT_COST else None
            before = state.qty
            state, step = apply(state, method, m.qty_m, fixed, m.source_move_id, new_id)
            if policy is NegativePolicy.FORBID and state.qty < 0:
                raise NegativeStock(Violation(p, new_id, at, document_id, before, -m.qty_m))
            computed[new_id] = {"value_kop": step.value, "correction_kop": step.correction, "qty_after_m": state.qty,
                                "value_after_kop": state.value, "state": state.to_json(method)}
        finals.append({"k_id": balance.id, "qty_m": state.qty, "value_kop": state.value, "last_posted_at": new[-1][2],
                       "last_move_id": new[-1][0], "state": state.to_json(method)})
    now = utcnow()
    placeholder = {"value_kop": 0, "correction_kop": 0, "qty_after_m": 0, "value_after_kop": 0, "state": None}
    insert_moves(session, [
        {"id": ids[i], "tenant_id": m.pair.tenant_id, "store_id": m.pair.store_id, "product_id": m.pair.product_id,
         "warehouse_id": m.pair.warehouse_id, "posted_at": when[i], "doc_type": doc_type,
         "document_id": document_id, "line_id": m.line_id, "qty_m": m.qty_m, "cost_mode": m.cost_mode.value,
         "fixed_value_kop": m.fixed_value_kop, "source_move_id": m.source_move_id, "cancelled": False,
         "reversal_of_id": None, "created_at": now, "reason": m.reason, **computed.get(ids[i], placeholder)}
        for i in order for m in (moves[i],)
    ])
    _set_appended(session, finals)
    for p in walks:  # backdated: walk the later rows (inline up to the limit, the rest in the background)
        new = by_pair[p]
        settle(session, p, (new[0][2], new[0][0]), cfg, frozenset(i for i, _m, _at in new),
               max_rows=len(new) + max(cfg.inline_recompute_limit, 1))
    return ids


def cancel_moves(session: Session, cfg: InventorySettings, move_ids: Iterable[int]) -> int:
    """Mark rows cancelled, append their reversals, re-walk each pair from the earliest; returns the count."""
    ids = list(move_ids)
    if not ids:
        return 0
    rows = session.execute(select(T).where(T.c.id.in_(ids), T.c.cancelled.is_(False))).all()
    pairs = sorted({Pair(r.tenant_id, r.store_id, r.product_id, r.warehouse_id) for r in rows},
                   key=lambda p: (p.product_id, p.warehouse_id))
    balances = lock_pairs(session, pairs)
    for p in pairs:
        finish_dirty(session, p, balances[p], cfg)
    now = utcnow()
    session.execute(update(T).where(T.c.id.in_([r.id for r in rows])).values(cancelled=True))
    reversals = [
        {"id": new_id, "tenant_id": r.tenant_id, "store_id": r.store_id, "product_id": r.product_id, "warehouse_id": r.warehouse_id,
         "posted_at": r.posted_at, "doc_type": r.doc_type, "document_id": r.document_id, "line_id": r.line_id,
         "qty_m": -r.qty_m, "value_kop": -r.value_kop, "correction_kop": -r.correction_kop,
         "cost_mode": CostMode.FIXED.value, "fixed_value_kop": None, "source_move_id": None, "qty_after_m": 0,
         "value_after_kop": 0, "state": None, "cancelled": True, "reversal_of_id": r.id, "created_at": now,
         "reason": r.reason}
        for r, new_id in zip(rows, allocate_move_ids(session, len(rows)), strict=True)
    ]
    insert_moves(session, reversals)
    starts: dict[Pair, Key] = {}
    for r in rows:
        p = Pair(r.tenant_id, r.store_id, r.product_id, r.warehouse_id)
        key = (r.posted_at, r.id)
        starts[p] = min(starts.get(p, key), key)
    for p in pairs:
        settle(session, p, starts[p], cfg, frozenset(), max_rows=None)
    return len(rows)


# ---------------------------------------------------------------- reads


def balance_at(session: Session, pair: Pair, at: datetime) -> tuple[int, int]:
    """(qty_m, value_kop) of the pair at ``at`` (inclusive): the running totals of the last row."""
    row = session.execute(
        select(T.c.qty_after_m, T.c.value_after_kop)
        .where(_pair_filter(pair), T.c.tenant_id == pair.tenant_id, T.c.posted_at <= at)
        .order_by(T.c.posted_at.desc(), T.c.id.desc())
        .limit(1)
    ).first()
    return (0, 0) if row is None else (row[0], row[1])


def balances_at(session: Session, tenant_id: int, at: datetime, *, store_id: int | None = None,
                warehouse_id: int | None = None, product_id: int | None = None,
                product_ids: Collection[int] | None = None) -> list[tuple[int, int, int, int, int]]:
    """(store, product, warehouse, qty_m, value_kop) of every pair that has a row at or before ``at``.

    Two kinds of pair:

    * *settled*: no pending recompute and its last row at or before ``at`` (every pair, for "now"):
      its balance row holds exactly that last row's running totals (``qty_m``/``value_kop`` and
      ``last_posted_at`` are written together with the rows), so it is read from
      ``stock_balances`` alone: a scan of the store's balance rows, no ledger access;
    * the others (a past moment with later rows, or a recompute still pending): the running totals
      of their last row at or before ``at``: one probe of the ``(product, warehouse, posted_at,
      id)`` index per pair (a ``LATERAL`` join on PostgreSQL).

    On PostgreSQL the statements have a fixed text per combination of filters and their rows come
    straight from the driver's cursor as tuples (see :func:`_pg_balances_at`); elsewhere one
    portable ``UNION``. No periodic snapshots: see the module docstring.
    """
    if is_postgres(session):
        return _pg_balances_at(session, tenant_id, at, store_id, warehouse_id, product_id, product_ids)
    filters = [B.c.tenant_id == tenant_id]
    if store_id is not None:
        filters.append(B.c.store_id == store_id)
    if warehouse_id is not None:
        filters.append(B.c.warehouse_id == warehouse_id)
    if product_id is not None:
        filters.append(B.c.product_id == product_id)
    if product_ids is not None:
        filters.append(B.c.product_id.in_(list(product_ids)))
    settled = (B.c.dirty_from.is_(None) & B.c.last_move_id.is_not(None) & B.c.last_posted_at.is_not(None)
               & (B.c.last_posted_at <= at))
    current = select(B.c.store_id, B.c.product_id, B.c.warehouse_id, B.c.qty_m, B.c.value_kop).where(settled, *filters)
    m2 = T.alias("m2")
    last_id = (
        select(m2.c.id)
        .where(m2.c.product_id == B.c.product_id, m2.c.warehouse_id == B.c.warehouse_id, m2.c.posted_at <= at)
        .order_by(m2.c.posted_at.desc(), m2.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    past = (select(B.c.store_id, B.c.product_id, B.c.warehouse_id, T.c.qty_after_m, T.c.value_after_kop)
            .select_from(B.join(T, T.c.id == last_id)))
    query = union_all(current, past.where(~settled, *filters)).subquery("b")
    rows = session.execute(select(query).order_by(query.c.product_id, query.c.warehouse_id)).all()
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def pg_cursor(session: Session) -> psycopg.Cursor[Any]:
    """A binary psycopg cursor on the session's connection, inside its transaction (PostgreSQL only).

    For reads of thousands of rows: ``fetchall`` returns plain tuples, with none of SQLAlchemy's
    per-row work; ``execute(..., prepare=True)`` keeps the plan on the connection.
    """
    driver = cast("psycopg.Connection[Any]", session.connection().connection.driver_connection)
    return driver.cursor(binary=True)


RECENT = timedelta(minutes=1)
"""A moment no older than this is read from the balance rows first (see :func:`_pg_balances_at`)."""
_PG_SETTLED = ("b.dirty_from IS NULL AND b.last_move_id IS NOT NULL AND b.last_posted_at IS NOT NULL "
               "AND b.last_posted_at <= %(at)s")
_PG_FILTERS = {"store_id": "b.store_id = %(store_id)s", "warehouse_id": "b.warehouse_id = %(warehouse_id)s",
               "product_id": "b.product_id = %(product_id)s", "product_ids": "b.product_id = ANY(%(product_ids)s)"}
_PG_PROBE = ("SELECT m.qty_after_m, m.value_after_kop FROM stock_moves m WHERE m.product_id = {p} "
             "AND m.warehouse_id = {w} AND m.posted_at <= %(at)s ORDER BY m.posted_at DESC, m.id DESC LIMIT 1")
_PG_PAIRS_AT = (  # the pairs a "now" read found unsettled, probed one by one
    "SELECT u.p, u.w, l.qty_after_m, l.value_after_kop FROM unnest(CAST(%(lp)s AS int[]), CAST(%(lw)s AS int[])) "
    f"AS u(p, w) CROSS JOIN LATERAL ({_PG_PROBE.format(p='u.p', w='u.w')}) l"
)
_PG_BALANCES: dict[tuple[bool, tuple[str, ...]], str] = {}


def _pg_balances_sql(recent: bool, filters: tuple[str, ...]) -> str:
    """The statement of :func:`_pg_balances_at` for one combination of filters (built once, then reused).

    ``recent``: the balance rows alone, ordered by the ``(tenant, store, product, warehouse)``
    index, ``qty_m`` NULL where the row does not hold the balance at ``at``. Otherwise: each
    balance row, and for the unsettled ones the probe (``LEFT JOIN LATERAL`` whose condition on
    the balance row becomes a one-time filter: the probe runs only where needed).
    """
    sql = _PG_BALANCES.get((recent, filters))
    if sql is None:
        where = " AND ".join(["b.tenant_id = %(tenant_id)s", *(_PG_FILTERS[f] for f in filters)])
        if recent:
            sql = (f"SELECT b.store_id, b.product_id, b.warehouse_id, CASE WHEN {_PG_SETTLED} THEN b.qty_m END, "
                   f"b.value_kop FROM stock_balances b WHERE {where} ORDER BY b.product_id, b.warehouse_id")
        else:
            probe = _PG_PROBE.format(p="b.product_id", w="b.warehouse_id").replace(
                " WHERE ", f" WHERE NOT ({_PG_SETTLED}) AND ", 1)
            sql = ("SELECT b.store_id, b.product_id, b.warehouse_id, coalesce(l.qty_after_m, b.qty_m), "
                   f"coalesce(l.value_after_kop, b.value_kop) FROM stock_balances b LEFT JOIN LATERAL ({probe}) l "
                   f"ON true WHERE {where} AND (l.qty_after_m IS NOT NULL OR ({_PG_SETTLED})) "
                   "ORDER BY b.product_id, b.warehouse_id")
        _PG_BALANCES[(recent, filters)] = sql
    return sql


def _pg_balances_at(session: Session, tenant_id: int, at: datetime, store_id: int | None, warehouse_id: int | None,
                    product_id: int | None, product_ids: Collection[int] | None) -> list[tuple[int, int, int, int, int]]:
    """:func:`balances_at` on PostgreSQL, on the driver's cursor of the session's connection.

    A whole store is 4,000 rows. Through SQLAlchemy (rows fetched one by one, each then copied
    into a tuple) the Python side cost more than PostgreSQL's execution; psycopg's ``fetchall``
    hands back the very tuples we return. The binary format spares formatting and parsing 20,000
    integers, and ``prepare=True`` keeps each statement's plan on the connection.

    A moment in the last :data:`RECENT` or later (the stock screen's "now") reads the balance rows
    alone: one index range scan, no ledger access, no second scan or sort of a ``UNION``. Rows that
    do not hold the balance at ``at`` (a pending recompute, a row dated after ``at``) come back
    marked and only those pairs are probed, in a second statement. An older moment takes one
    statement that probes the unsettled pairs (for a past moment, nearly all) as it scans.
    Either way the result is exact; the moment only chooses the cheaper plan.
    """
    params: dict[str, Any] = {"tenant_id": tenant_id, "at": at, "store_id": store_id, "warehouse_id": warehouse_id,
                              "product_id": product_id,
                              "product_ids": None if product_ids is None else list(product_ids)}
    filters = tuple(f for f in _PG_FILTERS if params[f] is not None)
    recent = at >= utcnow() - RECENT
    with pg_cursor(session) as cursor:
        cursor.execute(_pg_balances_sql(recent, filters), params, prepare=True)
        rows = cast("list[tuple[int, int, int, int, int]]", cursor.fetchall())
        stale = [r for r in rows if r[3] is None] if recent else None
        if not stale:
            return rows
        cursor.execute(_PG_PAIRS_AT, {"lp": [r[1] for r in stale], "lw": [r[2] for r in stale], "at": at},
                       prepare=True)
        found = {(p, w): (q, v) for p, w, q, v in cursor.fetchall()}
    out = []
    for r in rows:
        if r[3] is not None:
            out.append(r)
        elif (hit := found.get((r[1], r[2]))) is not None:
            out.append((r[0], r[1], r[2], hit[0], hit[1]))
    return out
