"""kill -9 at each step of a card sale, restart: one charge in the bank's ledger, one receipt in the
FN, one ``sale_completed`` — and a seeded campaign of sales with random kill points that must leave
the ledger, the FN and the events in agreement.

The gateway is ``python -m gateway run``; a crash point (``VITRINA_CRASHPOINT``) ends it with
``os._exit(137)`` — no cleanup, exactly like SIGKILL — at an exact step of the saga or of the
fiscal/payment families. The simulators keep running: the FN file and the terminal's SQLite ledger
are the ground truth of what was printed and charged.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from typing import Any

import httpx
import pytest

from gateway.checkout.saga import (
    CRASH_AFTER_CHARGE_SAVED,
    CRASH_AFTER_LINES,
    CRASH_AFTER_RECEIPT,
    CRASH_BEFORE_REPLY,
)
from gateway.devices.fiscal import const as fiscal
from gateway.devices.payment import const as payment
from simulators.checkout import CashierClient, CheckoutRefused
from tests.gateway.checkout.rig import (
    BAG,
    BREAD,
    CAMPAIGN_POINTS,
    MILK,
    GatewayProcess,
    Store,
    wait_dead,
    weight_label,
)
from tests.gateway.support import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STEPS = [
    CRASH_AFTER_LINES,  # a line is saved; nothing paid
    payment.CRASH_AFTER_TERMINAL,  # the bank charged; nobody recorded it
    CRASH_AFTER_CHARGE_SAVED,  # the charge is saved in the sale; no receipt yet
    fiscal.CRASH_AFTER_CLOSE,  # the FN has the receipt; nobody recorded it
    CRASH_AFTER_RECEIPT,  # the receipt is recorded by the fiscal family; the sale does not know
    CRASH_BEFORE_REPLY,  # everything stored; the cashier got no answer
]


def _distinct_events(store: Store, event_type: str, sale_id: str) -> set[str]:
    return {e["event_id"] for e in store.events(event_type) if e["data"].get("sale_id") == sale_id}


@pytest.mark.parametrize("point", STEPS)
def test_killed_at_each_step_of_a_card_sale(point: str, store: Store) -> None:
    gw = GatewayProcess(store, point)
    try:
        c = store.cashier()
        c.open_shift()
        sale_id = c.view()["sale"] and c.view()["sale"]["sale_id"]
        with pytest.raises((httpx.TransportError, CheckoutRefused)):
            c.scan(MILK)
            c.scan(weight_label(123, 734))
            sale_id = c.view()["sale"]["sale_id"]
            c.pay(card=8990 + 33757)
        assert wait_dead(gw) == 137
        assert f"crashpoint {point}" in gw.output()

        gw = GatewayProcess(store)  # the next life, nothing armed
        c = store.cashier()
        sale = c.view()["sale"]
        if point == CRASH_AFTER_LINES:  # the sale is still open with its saved line: go on selling it
            assert sale["state"] == "lines" and [x["name"] for x in sale["lines"]] == ["Молоко 3,2% 1 л"]
            assert store.purchases() == [] and store.receipts() == []
            c.scan(weight_label(123, 734))
            sale = c.pay(card=8990 + 33757)
        sale_id = sale["sale_id"]
        assert sale["state"] == "completed", sale
        charged = store.charges(f"{sale_id}.p1")
        assert len(store.purchases()) == len(charged) == 1 and not charged[0].voided
        assert charged[0].amount_kop == 8990 + 33757
        receipts = store.receipts()
        assert len(receipts) == 1 and receipts[0]["fd_number"] == sale["fiscal"]["fd_number"]
        event = store.wait_event("sale_completed", "sale_id", sale_id)["data"]
        assert event["payments"][0]["rrn"] == charged[0].rrn
        assert (event["fiscal"]["fd_number"], event["fiscal"]["fiscal_sign"]) == (receipts[0]["fd_number"],
                                                                                  receipts[0]["fiscal_sign"])
        assert len(_distinct_events(store, "sale_completed", sale_id)) == 1

        # the lane sells on: one more charge and one more receipt, no more
        c.scan(BREAD)
        nxt = c.pay(card=4500)
        assert nxt["state"] == "completed" and len(store.purchases()) == 2 and len(store.receipts()) == 2
    finally:
        gw.stop()


def test_killed_while_paper_is_out_the_paid_sale_waits_for_the_cashier(store: Store) -> None:
    """Policy: charged, receipt impossible → kept fiscal_pending across a crash; give up → void, no receipt."""
    gw = GatewayProcess(store)
    try:
        c = store.cashier()
        c.open_shift()
        c.scan(BAG)
        store.register.dev.paper_out()
        with pytest.raises(CheckoutRefused, match="Чек не напечатан"):
            c.pay(card=700)
        gw.kill()
        gw = GatewayProcess(store)
        c = store.cashier()
        sale = c.view()["sale"]
        assert sale["state"] == "fiscal_pending" and sale["fiscal_error"]["code"] == "fiscal_paper_out"
        done = c.give_up()
        assert done["state"] == "cancelled_refunded"
        op = f"{done['sale_id']}.p1"
        assert len(store.charges(op)) == 1 and store.charges(op)[0].voided and len(store.voids(op)) == 1
        assert store.receipts() == []
        store.wait_event("sale_cancelled", "sale_id", done["sale_id"])
        assert not store.events("sale_completed")
    finally:
        gw.stop()


SALES = int(os.environ.get("VITRINA_CHECKOUT_CAMPAIGN", "50"))
KILL_RATE = float(os.environ.get("VITRINA_CHECKOUT_KILL_RATE", "0.1"))


# 50 sales and a dozen gateway lives take ~80 s here, more on a loaded CI box; the full 500 took 290 s on an
# idle box — too close to a fixed 300 s, so the limit grows with the size
@pytest.mark.timeout(max(300, 4 * SALES))
def test_campaign_of_sales_with_random_kills_keeps_ledger_fn_and_events_in_agreement(store: Store) -> None:
    """``SALES`` sales (``VITRINA_CHECKOUT_CAMPAIGN``, 500 for the benchmark) with seeded random kills.

    After a crash the next gateway starts armed with the next kill point of the schedule, so a
    crash may also hit the recovery of the sale before: that is part of the test. At the end an
    unarmed gateway recovers everything, and then every charge has exactly one receipt and one
    ``sale_completed``, every voided charge a ``sale_cancelled``, and the FN nothing else.
    """
    rng = random.Random(20260101)
    basket = [MILK, BREAD, BAG, weight_label(123, 250)]
    gw = GatewayProcess(store)
    kills = 0
    c: CashierClient | None = None

    def up(point: str | None) -> CashierClient:
        """Start the next life armed with ``point``; it may die again in the recovery: start another."""
        nonlocal gw
        for _ in range(4):
            gw = GatewayProcess(store, point)
            try:
                return store.cashier(gw)
            except (httpx.TransportError, TimeoutError):
                wait_dead(gw)
                point = None
        raise AssertionError("the gateway keeps dying without a crash point")

    try:
        c = store.cashier()
        c.open_shift()
        for _ in range(SALES):
            try:
                if gw.proc.poll() is not None:  # died in a recovery: next life
                    raise httpx.ConnectError("dead")
                if rng.random() < KILL_RATE:
                    point = rng.choice(CAMPAIGN_POINTS)
                    gw.kill()
                    kills += 1
                    c = up(point)
                sale: dict[str, Any] = {}
                for code in rng.sample(basket, rng.randint(1, 3)):
                    sale = c.scan(code)
                kind = rng.choice(("card", "card", "mixed", "cash"))
                total = sale["total"]
                tender = {"card": total} if kind == "card" else {"cash": total + 1000} if kind == "cash" else \
                    {"cash": total // 2, "card": total - total // 2}
                c.pay(**tender)
            except (httpx.TransportError, TimeoutError):
                wait_dead(gw)
                c = up(rng.choice(CAMPAIGN_POINTS) if rng.random() < 0.3 else None)
            except CheckoutRefused:
                pass  # e.g. a sale left needs_attention; the lane refuses until a person decides
        gw.kill()
        gw = GatewayProcess(store)
        c = store.cashier()
        wait_until(lambda: store.watcher.matching(lambda m: True), timeout=5)
        _check_agreement(store)
        assert kills >= SALES * KILL_RATE / 3, f"only {kills} kills"  # the seed gives several
    finally:
        gw.stop()


def _check_agreement(store: Store) -> None:
    fn = {r["fd_number"]: r for r in store.receipts()}
    ledger = store.purchases()
    orders = Counter(e.order for e in ledger)
    assert all(n == 1 for n in orders.values()), f"an operation charged twice: {orders.most_common(3)}"

    def settled() -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for e in store.events("sale_completed"):
            seen.setdefault(e["data"]["sale_id"], e["data"])
        return list(seen.values())

    completed = wait_until(lambda: (lambda s: s if len(s) == len(fn) else None)(settled()), timeout=20)
    by_fd = {s["fiscal"]["fd_number"]: s for s in completed}
    assert sorted(by_fd) == sorted(fn), "every receipt in the FN is one completed sale and vice versa"
    for fd, sale in by_fd.items():
        assert (fn[fd]["fiscal_sign"], fn[fd]["total"]) == (sale["fiscal"]["fiscal_sign"], sale["total"])
        assert sum(x["amount"] for x in sale["lines"]) == sale["total"]
        for p in sale["payments"]:
            if p["type"] == "card":
                charge = [e for e in ledger if e.order == p["operation_id"]]
                assert len(charge) == 1 and not charge[0].voided and charge[0].amount_kop == p["amount"], sale
    paid_ops = {p["operation_id"] for s in completed for p in s["payments"] if p["type"] == "card"}
    cancelled = {e["data"]["sale_id"]: e["data"] for e in store.events("sale_cancelled")}
    voided_ops = {p["operation_id"] for s in cancelled.values() for p in s["voided"]}
    for e in ledger:
        if e.voided:
            assert e.order in voided_ops, f"a void nobody reported: {e.order}"
        else:
            assert e.order in paid_ops, f"a charge without a receipt: {e.order} {e.amount_kop}"
