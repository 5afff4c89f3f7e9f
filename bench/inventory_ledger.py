"""Stock-ledger benchmark on PostgreSQL: ``python -m bench.inventory_ledger [--rows 1000000]``.

Creates a database of its own (dropped at the end), seeds ``--rows`` movements with exact
running totals through COPY, then measures, each next to its target and a baseline measured in
the same run:

* posting a 100-line receipt (p95 after 3 warm-up posts; target < 50 ms) — baseline: the same
  posting through the row-by-row path the ledger avoids (one SELECT of the previous row + one
  UPDATE per line);
* balance of one product at a random moment (p95; target < 10 ms) — baseline: SUM over its rows;
* balance of a whole store now (target < 10 ms; read from ``stock_balances``), also as the API's
  stock screen (``reports.stock_on``, with SKU, name and unit cost; no target of its own) — baselines:
  one ledger probe per pair (the read before ``stock_balances`` was used for "now") and GROUP BY
  SUM over the store's rows; "now" is taken at each call, as the API does;
* balance of a whole store at a random past moment (one index probe per pair) — baseline:
  GROUP BY SUM over the store's rows;
* a backdated receipt that forces 25k later rows to be recomputed (target < 5 s) — baseline:
  recomputing the same rows one SELECT + one UPDATE at a time.

The last two columns repeat, as ratios, the p95 figures of the first version and those measured
just before issue #7 (whole-store reads), both at 1M rows on the same machine; they only compare
at ``--rows 1000000``. Whole-store reads depend on the number of pairs (``--products`` ×
``--warehouses``), not on the number of rows.

For scale, ERPNext's published figures: one stock entry profiled at 577 s before the
posting_datetime index (PR #39800); 22,364 reposts timing out at the 1,500 s job limit (#45948).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg

from cloud.db import make_engine, session_factory, unit_of_work, upgrade
from cloud.inventory import ledger, service
from cloud.inventory.models import DocType, DocumentIn, LineIn, SettingsUpdate
from cloud.inventory.valuation import Method, State, apply
from cloud.registry.models import Store
from cloud.tenancy.service import create_tenant

ADMIN = os.environ.get("VITRINA_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START = datetime(2025, 1, 1, tzinfo=UTC)
HOT_ROWS = 25_500


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 20 else max(samples)


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


BEFORE_1M = {"post": 351.0, "one": 5.0, "store_past": 366.0, "backdated": 2190.0}
"""Figures of the first version at 1M rows (p95 ms): post, one product, whole store, backdated recompute."""
BEFORE_ISSUE7_1M = {"post": 27.0, "store_now": 10.35, "store_past": 140.0, "backdated": 930.0}
"""Figures just before issue #7 at 1M rows (p95 ms; the backdated recompute: one run)."""


def header() -> None:
    print(f"  {'':<50} {'p95 ms':>9} {'median':>8}   {'target':<12} {'baseline, same run':<36} "
          f"{'first version':<16} {'before #7'}")


def line(name: str, ms: float, target_ms: float | None, base_ms: float | None, before: str | None = None,
         median_ms: float | None = None, base_name: str = "") -> None:
    """One measurement; ``×n``: how many times faster than the figure it follows."""
    tgt = f"< {target_ms:,.0f} {'OK' if ms < target_ms else 'MISS'}" if target_ms else ""
    base = f"{base_name + ' ' if base_name else ''}{base_ms:,.1f} (×{base_ms / ms:,.1f})" if base_ms else ""
    first = f"{BEFORE_1M[before]:,.0f} (×{BEFORE_1M[before] / ms:,.1f})" if before in BEFORE_1M else ""
    prev = BEFORE_ISSUE7_1M.get(before or "")
    issue7 = f"{prev:,.2f} (×{prev / ms:,.1f})" if prev else ""
    med = f"{median_ms:>8,.2f}" if median_ms is not None else f"{'':>8}"
    print(f"  {name:<50} {ms:>9,.2f} {med}   {tgt:<12} {base:<36} {first:<16} {issue7}")


def seed(url: str, tenant_id: int, store_id: int, warehouses: list[int], products: list[int], rows: int) -> None:
    """COPY ``rows`` movements: one hot pair with HOT_ROWS rows, the rest spread over every pair."""
    pairs = [(p, w) for p in products for w in warehouses]
    counts = {pair: 0 for pair in pairs}
    rest = max(rows - HOT_ROWS, 0)
    for i in range(rest):
        counts[pairs[1 + i % (len(pairs) - 1)]] += 1
    counts[pairs[0]] = HOT_ROWS
    rnd = random.Random(7)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn, conn.cursor() as cur:
        with cur.copy("COPY stock_moves (tenant_id, store_id, product_id, warehouse_id, posted_at, doc_type, qty_m, "
                      "value_kop, correction_kop, cost_mode, fixed_value_kop, qty_after_m, value_after_kop, state, "
                      "cancelled, reason, created_at) FROM STDIN") as copy:
            balances = []
            for (p, w), n in counts.items():
                if n == 0:
                    continue
                step = timedelta(days=360) / n
                state = State()
                for i in range(n):
                    at = START + step * i + timedelta(seconds=rnd.randint(0, 59))
                    if state.qty < 5000 or i % 3 == 0:
                        qty, fixed, kind, mode = 10_000, rnd.randint(5_000, 15_000) * 10, "receipt", "fixed"
                    else:
                        qty, fixed, kind, mode = -1000 * rnd.randint(1, 3), None, "sale", "at_cost"
                    state, st = apply(state, Method.AVERAGE, qty, fixed)
                    copy.write_row((tenant_id, store_id, p, w, at, kind, qty, st.value, st.correction, mode, fixed,
                                    state.qty, state.value, json.dumps(state.to_json(Method.AVERAGE)), False, "",
                                    now))
                balances.append((tenant_id, store_id, p, w, state.qty, state.value, 0))
        with cur.copy("COPY stock_balances (tenant_id, store_id, product_id, warehouse_id, qty_m, value_kop, "
                      "recomputed_rows) FROM STDIN") as copy:
            for b in balances:
                copy.write_row(b)
        cur.execute(
            "UPDATE stock_balances b SET last_posted_at = l.posted_at, last_move_id = l.id, state = l.state "
            "FROM (SELECT DISTINCT ON (product_id, warehouse_id) product_id, warehouse_id, posted_at, id, state "
            "FROM stock_moves ORDER BY product_id, warehouse_id, posted_at DESC, id DESC) l "
            "WHERE b.product_id = l.product_id AND b.warehouse_id = l.warehouse_id")
        conn.commit()
        # steady state, as in production where autovacuum long since passed: a freshly COPYed table
        # otherwise gets vacuumed (and its hint bits written) in the middle of the measurements
        conn.autocommit = True
        cur.execute("VACUUM (ANALYZE) stock_moves")
        cur.execute("VACUUM (ANALYZE) stock_balances")
    print(f"  seeded {rows:,} movements over {len(pairs):,} pairs in {time.perf_counter() - t0:,.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--products", type=int, default=1000)
    ap.add_argument("--warehouses", type=int, default=4)
    ap.add_argument("--admin-url", default=ADMIN)
    args = ap.parse_args()
    admin = args.admin_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"vitrina_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        run(url, args)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(url: str, args: argparse.Namespace) -> None:
    upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as s:
        tenant, _user, _token = create_tenant(s, "bench", "Бенчмарк")
        tid = tenant.id or 0
        store = Store(tenant_id=tid, code="s1", name="Магазин")
        s.add(store)
        s.commit()
        sid = store.id or 0
        service.update_settings(s, tid, SettingsUpdate(valuation="average", inline_recompute_limit=1_000_000))
    from cloud.catalog import service as catalog
    from cloud.catalog.models import WarehouseCreate

    with unit_of_work(sessions) as s:
        whs = [catalog.create_warehouse(s, tid, WarehouseCreate(store_id=sid, code=f"w{i}")).id
               for i in range(args.warehouses)]
        for i in range(args.products):
            s.add(catalog.Product(tenant_id=tid, sku=f"{i:06d}", name=f"Товар {i}"))
        s.commit()
        from sqlmodel import select

        pids = sorted(p.id or 0 for p in s.exec(select(catalog.Product).where(catalog.Product.tenant_id == tid)))
    print(f"Vitrina stock ledger on PostgreSQL ({args.rows:,} rows, {args.products} products × "
          f"{args.warehouses} warehouses); load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    seed(url, tid, sid, whs, pids, args.rows)
    rnd = random.Random(11)
    end = START + timedelta(days=365)

    # ---- posting a 100-line receipt at "now" (appends to 100 pairs)
    def post_receipt() -> None:
        chosen = rnd.sample(pids[1:], 100)
        with unit_of_work(sessions) as s:
            doc = service.create_document(s, tid, None, DocType.RECEIPT, DocumentIn(
                store_id=sid, warehouse_id=whs[1], supplier="ООО", posted_at=end,
                lines=[LineIn(product_id=p, quantity=Decimal(5), amount=Decimal("500.00")) for p in chosen]))
            t = time.perf_counter()
            service.post_document(s, tid, doc.id)
            samples.append((time.perf_counter() - t) * 1000)

    samples: list[float] = []
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(post_receipt)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    for _ in range(3):  # warm-up: statement caches, prepared statements, first-touch of index pages
        post_receipt()
    samples.clear()
    for _ in range(40):
        post_receipt()
    post_ms = p95(samples)

    def naive_post() -> None:  # row-by-row: previous row + insert + update per line, no batching
        chosen = rnd.sample(pids[1:], 100)
        T = ledger.T
        with engine.begin() as conn:
            from sqlalchemy import select as sa_select

            for p in chosen:
                prev = conn.execute(sa_select(T.c.qty_after_m, T.c.value_after_kop).where(
                    T.c.product_id == p, T.c.warehouse_id == whs[1]).order_by(T.c.posted_at.desc(), T.c.id.desc())
                    .limit(1)).first()
                q, v = (prev[0], prev[1]) if prev else (0, 0)
                new_id = conn.execute(T.insert().returning(T.c.id).values(
                    tenant_id=tid, store_id=sid, product_id=p, warehouse_id=whs[1], posted_at=end, doc_type="bench",
                    qty_m=5000, value_kop=50000, cost_mode="fixed", fixed_value_kop=50000)).scalar_one()
                conn.execute(T.update().where(T.c.id == new_id).values(qty_after_m=q + 5000, value_after_kop=v + 50000))
            raise_rollback()

    def raise_rollback() -> None:
        raise _Rollback

    base_samples = []
    for _ in range(10):
        t = time.perf_counter()
        try:
            naive_post()
        except _Rollback:
            pass
        base_samples.append((time.perf_counter() - t) * 1000)
    print("\nResults in ms: p95 (the backdated recompute: one run) and median where repeated")
    header()
    line("post a 100-line receipt", post_ms, 50, p95(base_samples), "post", statistics.median(samples),
         "row by row")

    # ---- balance of one product at a random moment
    from sqlalchemy import func
    from sqlalchemy import select as sa_select

    T = ledger.T

    def rand_at() -> datetime:
        return START + timedelta(seconds=rnd.randint(0, 360 * 86400))

    reader = sessions()

    def one_balance() -> None:
        s = reader
        ledger.balance_at(s, ledger.Pair(tid, sid, rnd.choice(pids), rnd.choice(whs)), rand_at())

    def one_naive() -> None:
        if True:
            s = reader
            s.execute(sa_select(func.sum(T.c.qty_m), func.sum(T.c.value_kop + T.c.correction_kop)).where(
                T.c.product_id == rnd.choice(pids), T.c.warehouse_id == rnd.choice(whs), T.c.cancelled.is_(False),
                T.c.posted_at <= rand_at())).all()

    def hot_balance() -> None:
        if True:
            s = reader
            ledger.balance_at(s, ledger.Pair(tid, sid, pids[0], whs[0]), rand_at())

    def hot_naive() -> None:
        if True:
            s = reader
            s.execute(sa_select(func.sum(T.c.qty_m)).where(T.c.product_id == pids[0], T.c.warehouse_id == whs[0],
                                                           T.c.posted_at <= rand_at())).all()

    one = timed(one_balance, 300)
    line("balance of one product at a random date", p95(one), 10, p95(timed(one_naive, 300)), "one",
         statistics.median(one), "SUM")
    hot = timed(hot_balance, 100)
    line(f"  same, the {HOT_ROWS:,}-row product", p95(hot), 10, p95(timed(hot_naive, 100)), None,
         statistics.median(hot), "SUM")

    def store_balance() -> None:
        if True:
            s = reader
            ledger.balances_at(s, tid, rand_at(), store_id=sid)

    def store_naive() -> None:
        if True:
            s = reader
            s.execute(sa_select(T.c.product_id, T.c.warehouse_id, func.sum(T.c.qty_m)).where(
                T.c.store_id == sid, T.c.posted_at <= rand_at(), T.c.cancelled.is_(False))
                .group_by(T.c.product_id, T.c.warehouse_id)).all()

    from cloud.base import utcnow
    from cloud.inventory import reports

    now = utcnow()

    def store_now() -> None:  # "now" at each call, as the API's stock screen takes it
        ledger.balances_at(reader, tid, utcnow(), store_id=sid)

    def store_screen() -> None:
        reports.stock_on(reader, tid, utcnow(), store_id=sid)

    def store_probe_now() -> None:  # the read before: one ledger probe per pair even for "now"
        B, m2 = ledger.B, T.alias("m2")
        last_id = (sa_select(m2.c.id).where(m2.c.product_id == B.c.product_id, m2.c.warehouse_id == B.c.warehouse_id,
                                            m2.c.posted_at <= now)
                   .order_by(m2.c.posted_at.desc(), m2.c.id.desc()).limit(1).scalar_subquery())
        reader.execute(sa_select(B.c.store_id, B.c.product_id, B.c.warehouse_id, T.c.qty_after_m, T.c.value_after_kop)
                       .select_from(B.join(T, T.c.id == last_id)).where(B.c.tenant_id == tid, B.c.store_id == sid)
                       .order_by(B.c.product_id, B.c.warehouse_id)).all()

    def store_before7(at: datetime) -> list[tuple[int, int, int, int, int]]:
        """The whole-store read before issue #7 (SQLAlchemy ``UNION``, rows fetched one by one), on today's indexes."""
        from sqlalchemy import true, union_all

        B, m2 = ledger.B, T.alias("m2")
        settled = (B.c.dirty_from.is_(None) & B.c.last_move_id.is_not(None) & B.c.last_posted_at.is_not(None)
                   & (B.c.last_posted_at <= at))
        filters = [B.c.tenant_id == tid, B.c.store_id == sid]
        current = sa_select(B.c.store_id, B.c.product_id, B.c.warehouse_id, B.c.qty_m, B.c.value_kop).where(
            settled, *filters)
        lat = (sa_select(m2.c.qty_after_m, m2.c.value_after_kop, m2.c.id)
               .where(m2.c.product_id == B.c.product_id, m2.c.warehouse_id == B.c.warehouse_id, m2.c.posted_at <= at)
               .order_by(m2.c.posted_at.desc(), m2.c.id.desc()).limit(1).lateral("l"))
        past = (sa_select(B.c.store_id, B.c.product_id, B.c.warehouse_id, lat.c.qty_after_m, lat.c.value_after_kop)
                .select_from(B.join(lat, true())))
        query = union_all(current, past.where(~settled, *filters)).subquery("b")
        rows = reader.execute(sa_select(query).order_by(query.c.product_id, query.c.warehouse_id))
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def store_naive_now() -> None:
        reader.execute(sa_select(T.c.product_id, T.c.warehouse_id, func.sum(T.c.qty_m)).where(
            T.c.store_id == sid, T.c.posted_at <= now, T.c.cancelled.is_(False))
            .group_by(T.c.product_id, T.c.warehouse_id)).all()

    pairs = len(pids) * len(whs)
    check = rand_at()
    assert store_before7(now) == ledger.balances_at(reader, tid, now, store_id=sid)
    assert store_before7(check) == ledger.balances_at(reader, tid, check, store_id=sid)
    timed(store_now, 3)  # warm-up
    probe = p95(timed(store_probe_now, 10))
    now_samples, before7_now = [], []
    for _ in range(100):  # interleaved with the read before #7, so both see the same machine
        now_samples += timed(store_now, 1)
        before7_now += timed(lambda: store_before7(utcnow()), 1)
    line(f"balance of the whole store now, {pairs:,} pairs", p95(now_samples), 10, probe, "store_now",
         statistics.median(now_samples), "probe/pair")
    naive_now = p95(timed(store_naive_now, 5))
    print(f"  {'':<50} {'':>9} {'':>8}   {'':<12} GROUP BY SUM {naive_now:,.1f} (×{naive_now / p95(now_samples):,.1f})")
    print(f"  {'':<50} {'':>9} {'':>8}   {'':<12} before #7 {p95(before7_now):,.1f} (×{p95(before7_now) / p95(now_samples):,.1f})"
          f", median {statistics.median(before7_now):,.2f}")
    timed(store_screen, 3)
    screen = timed(store_screen, 100)
    line("  same, as the stock screen (SKU, name, cost)", p95(screen), None, None, None, statistics.median(screen))
    timed(store_balance, 3)
    past, before7_past = [], []
    for _ in range(60):
        past += timed(store_balance, 1)
        before7_past += timed(lambda: store_before7(rand_at()), 1)
    line("balance of the whole store at a random date", p95(past), None, p95(timed(store_naive, 5)),
         "store_past", statistics.median(past), "GROUP BY SUM")
    print(f"  {'':<50} {'':>9} {'':>8}   {'':<12} before #7 {p95(before7_past):,.1f} (×{p95(before7_past) / p95(past):,.1f})"
          f", median {statistics.median(before7_past):,.2f}")

    reader.close()
    # ---- backdated receipt before HOT_ROWS later rows of one pair
    with sessions() as s:
        first = s.execute(sa_select(func.min(T.c.posted_at)).where(T.c.product_id == pids[0],
                                                                    T.c.warehouse_id == whs[0])).scalar_one()
    t = time.perf_counter()
    with unit_of_work(sessions) as s:
        doc = service.create_document(s, tid, None, DocType.RECEIPT, DocumentIn(
            store_id=sid, warehouse_id=whs[0], supplier="ООО", posted_at=first + timedelta(seconds=1),
            lines=[LineIn(product_id=pids[0], quantity=Decimal(100), amount=Decimal("100000.00"))]))
        service.post_document(s, tid, doc.id)
    backdated_ms = (time.perf_counter() - t) * 1000
    with sessions() as s:
        later = s.execute(sa_select(func.count()).where(T.c.product_id == pids[0], T.c.warehouse_id == whs[0],
                                                        T.c.posted_at > first)).scalar_one()

    # baseline: the same walk one SELECT + one UPDATE per row (and rolled back)
    def row_by_row() -> None:
        with engine.connect() as conn:
            tx = conn.begin()
            rows = conn.execute(sa_select(T.c.id).where(T.c.product_id == pids[0], T.c.warehouse_id == whs[0])
                                .order_by(T.c.posted_at, T.c.id)).scalars().all()
            state = State()
            for rid in rows:
                r = conn.execute(sa_select(T.c.qty_m, T.c.fixed_value_kop, T.c.cost_mode).where(T.c.id == rid)).one()
                state, st = apply(state, Method.AVERAGE, r[0], r[1] if r[2] != "at_cost" else None)
                conn.execute(T.update().where(T.c.id == rid).values(value_kop=st.value, qty_after_m=state.qty,
                                                                     value_after_kop=state.value))
            tx.rollback()

    base = timed(row_by_row, 1)[0]
    line(f"backdated receipt, {later:,} later rows recomputed", backdated_ms, 5000, base, "backdated", None,
         "row by row")
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other work on the machine "
          "slows every figure alike; the in-run baselines compare under the same load).")
    print("\nFor scale (published, ERPNext): one stock entry 577 s before the posting_datetime fix (PR #39800);")
    print("  22,364 reposts timing out at the 1,500 s job limit (#45948).")
    engine.dispose()


class _Rollback(Exception):
    pass


if __name__ == "__main__":
    main()
