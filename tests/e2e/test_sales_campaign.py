"""The checkout kill campaign end to end through the cloud (issue #8): sales at a lane while the
gateway is killed at random steps, then the cloud's sales and ledger are checked against the
simulators' own records — the FN file of the Shtrih-M simulator and the UPOS simulator's bank ledger.

The store is :class:`tests.e2e.store_rig.SellingStore`: the real cloud (API, bus consumer, the
``cloud.sales.ingest`` poll) on a fresh database, a real ``python -m gateway run`` process, its
outbox gated on the cloud's retained state. A seeded RNG drives the cashier: baskets of milk,
bread and weighed cheese; cash, card or both; now and then a cashier's cancel, or the register's
paper running out after a card charge (the cashier gives up: the charge is voided). Before some
sales the gateway is killed (SIGKILL) and the next life is armed with a crash point
(:mod:`gateway.crashpoints`) of the sale saga, the payment family or the fiscal family — it dies
there, possibly again in the recovery of the sale before —, or the test sends SIGKILL itself at a
random moment of a payment. At the end an unarmed gateway recovers everything, and then, read
from the cloud's API:

* the completed sales are exactly the FN's receipts: the same FD numbers, fiscal signs and totals;
* each card payment is exactly one non-voided charge in the bank's ledger (amount, RRN), every
  non-voided charge is a card payment of a completed sale, no operation is charged twice and no
  sale has two live charges;
* every voided charge is a voided payment of a cancelled sale (and was voided once);
* each completed sale's goods left the sales floor exactly once (one ledger row per line, at the
  sale's time, with its quantity, at cost), cancelled sales moved nothing, the stock adds up;
* every sale the cashier saw end is there with that ending, no sale is stored twice or flagged,
  and the cloud reports no problem.

Sizes: 30 sales by default (about two minutes here). The issue's full campaign is run by hand::

    VITRINA_E2E_CAMPAIGN=500 .venv/bin/pytest tests/e2e/test_sales_campaign.py -s

(``VITRINA_E2E_KILL_RATE`` and ``VITRINA_E2E_CAMPAIGN_SEED`` change the mix; the timeout grows with
the size; ``-s`` shows the tally).
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from gateway.checkout.base import (
    UNKNOWN_CODES,
)
from simulators.checkout import CashierClient, CheckoutRefused
from tests.e2e.harness import wait_for
from tests.e2e.store_rig import Goods, SellingStore, ok
from tests.gateway.checkout.rig import CAMPAIGN_POINTS

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

SALES = int(os.environ.get("VITRINA_E2E_CAMPAIGN", "30"))
KILL_RATE = float(os.environ.get("VITRINA_E2E_KILL_RATE", "0.2"))
SEED = int(os.environ.get("VITRINA_E2E_CAMPAIGN_SEED", "20260108"))
PAPER_OUT_RATE = 0.15  # of card sales: the receipt cannot be printed, the cashier gives up (the charge is voided)
CANCEL_RATE = 0.05  # the cashier cancels the sale before payment

SIGKILL_IN_PAY = "test.sigkill_during_pay"  # not a crash point: the test kills the process at a random moment
KILLS = [*CAMPAIGN_POINTS, *[SIGKILL_IN_PAY] * 4]
KOP = Decimal("0.01")


def kop(rub: str | Decimal) -> int:
    return int((Decimal(rub) * 100).to_integral_value())


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def sale_of(operation_id: str) -> str:
    """The sale id of a card operation id (``{sale}.p{n}``)."""
    return operation_id.split(".", 1)[0]


@dataclass
class Campaign:
    """The cashier at the lane across the gateway's lives, and what the test saw happen."""

    store: SellingStore
    rng: random.Random
    c: CashierClient | None = None
    paper_out: bool = False
    lives: int = 1
    kills: int = 0  # SIGKILLs of a live gateway sent by the test
    timed: int = 0  # payments with a SIGKILL timer running
    mid_pay: int = 0  # … whose kill hit the payment in flight
    paying: bool = False
    attempts: int = 0
    completed: set[str] = field(default_factory=set)  # sale ids the cashier saw completed
    cancelled: set[str] = field(default_factory=set)  # … saw cancelled (by the cashier or given up)
    refused: Counter[str] = field(default_factory=Counter)
    paper_outs: int = 0
    pay_seconds: list[float] = field(default_factory=list)

    @property
    def cashier(self) -> CashierClient:
        assert self.c is not None
        return self.c

    def up(self, point: str | None) -> None:
        """The next life, armed with ``point``; when it dies in the recovery, the next one unarmed."""
        for _ in range(4):
            if self.c is not None:
                self.c.close()
                self.c = None
            self.kills += self.store.restart_gateway(point)
            self.lives += 1
            try:
                self.c = self.store.cashier()
                return
            except (httpx.TransportError, TimeoutError):
                self.store.gateway.wait_dead()
                point = None
        raise AssertionError(f"the gateway keeps dying without a crash point: {self.store.gateway.log()[-3000:]}")

    def died(self) -> None:
        """The gateway died under a request (or was killed): wait for the corpse, start the next life —
        armed again now and then, so that a crash also hits the recovery of the sale it interrupted."""
        self.store.gateway.wait_dead()
        self.up(self.rng.choice(CAMPAIGN_POINTS) if self.rng.random() < 0.3 else None)

    def set_paper(self, present: bool) -> None:
        dev = self.store.register.dev
        dev.paper_in() if present else dev.paper_out()
        self.paper_out = not present

    def tidy(self) -> None:
        """Settle what the lane shows before the next sale: reprint a pending receipt, or give up on it
        when the paper is out (the card charge is voided); a sale still open is sold on."""
        for _ in range(6):
            sale = self.cashier.view()["sale"]
            state = sale["state"] if sale else None
            if state in ("needs_attention", "paid", "payment_pending", "refund_pending"):
                raise AssertionError(f"sale {sale['sale_id']} left {state} after the recovery: {sale['problem']}")
            if state != "fiscal_pending":
                if self.paper_out:
                    self.set_paper(True)
                return
            try:
                if self.paper_out and (sale["fiscal_error"] or {}).get("code") not in UNKNOWN_CODES | {None}:
                    done = self.cashier.give_up()
                    assert done["state"] == "cancelled_refunded", done
                    self.cancelled.add(done["sale_id"])
                else:
                    done = self.cashier.retry()
                    assert done["state"] == "completed", done
                    self.completed.add(done["sale_id"])
            except CheckoutRefused as exc:
                self.refused[exc.detail.split(":")[0]] += 1
        raise AssertionError(f"the lane's sale does not settle: {self.cashier.view()['sale']}")

    @contextmanager
    def sigkill_after(self, delay: float | None) -> Iterator[None]:
        """SIGKILL the gateway ``delay`` seconds from now (if still alive then), from another thread."""
        if delay is None:
            yield
            return
        proc = self.store.gateway.proc
        assert proc is not None

        def kill() -> None:
            if proc.poll() is None:
                self.mid_pay += self.paying
                proc.kill()
                self.kills += 1

        timer = threading.Timer(delay, kill)
        timer.start()
        try:
            yield
        finally:
            timer.join()

    def sell(self, barcodes: list[str]) -> None:
        """One sale attempt (kills and refusals are the caller's)."""
        rng = self.rng
        timed: float | None = None
        if rng.random() < KILL_RATE:
            point = rng.choice(KILLS)
            if point == SIGKILL_IN_PAY:
                self.timed += 1
                timed = rng.uniform(0.0, 0.4)  # a card payment takes 0.1–0.5 s here
            else:
                self.up(point)
        self.tidy()
        self.attempts += 1
        sale: dict[str, Any] = {}
        for code in rng.sample(barcodes, rng.randint(1, 3)):
            sale = self.cashier.scan(code)
        if rng.random() < CANCEL_RATE:
            done = self.cashier.cancel()
            assert done["state"] == "cancelled", done
            self.cancelled.add(done["sale_id"])
            return
        total = sale["total"]
        kind = rng.choice(("card", "card", "mixed", "cash"))
        tender = {"card": total} if kind == "card" else {"cash": (total // 10_000 + 1) * 10_000} \
            if kind == "cash" else {"cash": total // 2, "card": total - total // 2}
        if kind != "cash" and rng.random() < PAPER_OUT_RATE:
            self.set_paper(False)
            self.paper_outs += 1
        t0 = time.monotonic()
        with self.sigkill_after(timed):
            self.paying = True
            try:
                done = self.cashier.pay(**tender)
            except CheckoutRefused as exc:
                if not self.paper_out:
                    raise
                assert "Чек не напечатан" in exc.detail, exc.detail
                self.tidy()  # gives up: the charge is voided
                return
            finally:
                self.paying = False
        self.pay_seconds.append(time.monotonic() - t0)
        assert done["state"] == "completed", done
        self.completed.add(done["sale_id"])


def crashes(store: SellingStore) -> Counter[str]:
    """The crash points that ended a life, from the gateway's log (all lives append to it)."""
    return Counter(re.findall(r"crashpoint (\S+): exiting", store.gateway.log()))


@pytest.mark.timeout(240 + 8 * SALES)
def test_campaign_of_kills_leaves_the_cloud_with_exactly_the_sales_the_simulators_saw(
        selling: SellingStore) -> None:
    store = selling
    started = time.monotonic()
    goods = store.stock_the_shelves()
    run = Campaign(store, random.Random(SEED))
    run.c = store.cashier()
    barcodes = store.barcodes()

    for _ in range(SALES):
        try:
            if not store.gateway.alive():  # died at an armed point after the last reply, or killed idle
                raise httpx.ConnectError("the gateway is dead")
            run.sell(barcodes)
        except (httpx.TransportError, TimeoutError):
            run.died()
        except CheckoutRefused as exc:
            run.refused[exc.detail.split(":")[0]] += 1

    # the last life, unarmed: it recovers whatever the campaign left; an open sale is cancelled
    if run.paper_out:
        run.set_paper(True)
    run.up(None)
    run.tidy()
    sale = run.cashier.view()["sale"]
    if sale is not None and sale["state"] in ("open", "lines"):
        run.cancelled.add(run.cashier.cancel()["sale_id"])
    selling_s = time.monotonic() - started

    # the simulators' word
    fn = {r["fd_number"]: r for r in store.register.receipts()}
    purchases = store.purchases()
    voided = [e for e in purchases if e.voided]

    def caught_up() -> list[dict[str, Any]] | None:
        sales = store.sales()
        done = sum(s["status"] == "completed" for s in sales)
        gone = {s["sale_id"] for s in sales if s["status"] == "cancelled"}
        wanted = run.cancelled | {sale_of(e.order) for e in voided}
        return sales if done >= len(fn) and gone >= wanted else None

    t1 = time.monotonic()
    wait_for(caught_up, 60 + len(fn) / 5, "the cloud to have every receipt of the FN and every cancelled sale",
             step=0.5)
    time.sleep(3)  # anything still on the way (a late duplicate) would land now
    counts = ok(store.cloud.client.post("/api/v1/sales/ingest"))["counts"]
    assert counts.get("stored", 0) == 0 and counts.get("rejected", 0) == 0, counts
    catch_up_s = time.monotonic() - t1
    sales = store.sales()

    # one row per sale; completed or cancelled, nothing flagged, no problem reported
    per_sale = Counter(s["sale_id"] for s in sales)
    assert set(per_sale.values()) == {1}, per_sale.most_common(3)
    assert {s["status"] for s in sales} <= {"completed", "cancelled"}, Counter(s["status"] for s in sales)
    assert not [s for s in sales if s["flagged"]]
    assert store.cloud.get("/sales/problems") == []
    details = {s["sale_id"]: store.cloud.get(f"/sales/{s['id']}") for s in sales}
    completed = [d for d in details.values() if d["status"] == "completed"]
    cancelled = [d for d in details.values() if d["status"] == "cancelled"]

    # the completed sales are the FN's receipts: FD number, fiscal sign, total
    by_fd = {d["fiscal"]["fd_number"]: d for d in completed}
    assert len(by_fd) == len(completed), "two sales with one receipt"
    assert sorted(by_fd) == sorted(fn), (
        f"FN receipts without a sale in the cloud: {sorted(set(fn) - set(by_fd))}; "
        f"sales in the cloud without a receipt in the FN: {sorted(set(by_fd) - set(fn))}")
    for fd, d in by_fd.items():
        assert (d["fiscal"]["fiscal_sign"], kop(d["total"])) == (fn[fd]["fiscal_sign"], fn[fd]["total"]), (d, fn[fd])
        assert sum(kop(ln["amount"]) for ln in d["lines"]) == kop(d["total"]), d
        assert sum(kop(p["amount"]) for p in d["payments"]) == kop(d["total"]), d
        assert all(ln["status"] == "posted" for ln in d["lines"]), d["lines"]
    assert all(d["fiscal"]["fd_number"] is None for d in cancelled), "a cancelled sale with a receipt"

    # the bank: each card payment one live charge; each live charge a completed sale's payment
    per_operation = Counter(e.order for e in purchases)
    assert set(per_operation.values()) <= {1}, f"an operation charged twice: {per_operation.most_common(3)}"
    live_per_sale = Counter(sale_of(e.order) for e in purchases if not e.voided)
    assert set(live_per_sale.values()) <= {1}, f"a sale charged twice: {live_per_sale.most_common(3)}"
    paid = {p["operation_id"]: p for d in completed for p in d["payments"] if p["type"] == "card"}
    for op, p in paid.items():
        [charge] = [e for e in purchases if e.order == op]
        assert not charge.voided and charge.amount_kop == kop(p["amount"]) and charge.rrn == p["rrn"], (p, charge)
        assert not p["voided"], p
    for e in purchases:
        if not e.voided:
            assert e.order in paid, f"a charge without a receipt: {e.order} {e.amount_kop}"

    # every voided charge is a voided payment of a cancelled sale, voided once
    void_ops = {p["operation_id"]: p for d in cancelled for p in d["payments"] if p["type"] == "card"}
    assert all(p["voided"] for p in void_ops.values()), void_ops
    voids = Counter(e.original_rrn for e in store.voids())
    for e in voided:
        assert e.order in void_ops, f"a void nobody reported: {e.order}"
        assert kop(void_ops[e.order]["amount"]) == e.amount_kop and voids[e.rrn] == 1, (e, voids[e.rrn])
    assert set(void_ops) == {e.order for e in voided}

    # what the cashier saw
    assert run.completed <= {d["sale_id"] for d in completed}, run.completed - {d["sale_id"] for d in completed}
    assert run.cancelled <= {d["sale_id"] for d in cancelled}, run.cancelled - {d["sale_id"] for d in cancelled}

    # each completed sale's goods left the sales floor once: one sale row per line, at the sale's time
    by_id = {g.id: g for g in goods.values()}
    expected: dict[int, Counter[tuple[datetime, Decimal]]] = {g.id: Counter() for g in goods.values()}
    for d in completed:
        for ln in d["lines"]:
            expected[ln["product_id"]][(when(d["completed_at"]), -Decimal(ln["quantity"]))] += 1
    stock = {row["product_id"]: row for row in store.cloud.get("/inventory/stock", warehouse_id=store.floor)}
    for pid, want in expected.items():
        g: Goods = by_id[pid]
        moves = [m for m in store.all_movements(g) if m["doc_type"] == "sale"]
        assert not [m for m in moves if m["cancelled"]], (g.key, "a sale row cancelled")
        got = Counter((when(m["posted_at"]), Decimal(m["quantity"])) for m in moves)
        assert got == want, (g.key, "missing", want - got, "extra", got - want)
        assert all(Decimal(m["value"]) == (Decimal(m["quantity"]) * g.cost_kop / 100).quantize(KOP)
                   for m in moves), (g.key, moves)
        sold = -sum((q * n for (_t, q), n in want.items()), Decimal(0))
        assert Decimal(stock[pid]["quantity"]) == 1000 - sold, (g.key, stock[pid], sold)

    died_at = crashes(store)
    assert run.kills + sum(died_at.values()) >= SALES * KILL_RATE / 3, (run.kills, died_at)
    pays = sorted(run.pay_seconds)
    print(f"\ncampaign of {SALES} sales (seed {SEED}, kill rate {KILL_RATE}): {run.attempts} attempts, "
          f"{len(run.completed)} seen completed, {len(run.cancelled)} seen cancelled, "
          f"{sum(run.refused.values())} refused {dict(run.refused)}; {run.paper_outs} paper outs")
    print(f"gateway lives {run.lives}: {run.kills} SIGKILLs by the test ({run.mid_pay} of {run.timed} timed "
          f"ones mid-payment), "
          f"{sum(died_at.values())} crash points "
          f"{dict(died_at)}")
    print(f"FN receipts {len(fn)}; bank: {len(purchases)} charges, {len(voided)} voided, "
          f"{len(store.voids())} voids; cloud: {len(completed)} completed, {len(cancelled)} cancelled sales")
    print(f"selling {selling_s:.1f} s (pay p50 {pays[len(pays) // 2] if pays else 0:.2f} s), "
          f"cloud caught up {catch_up_s:.1f} s later; total {time.monotonic() - started:.1f} s")
