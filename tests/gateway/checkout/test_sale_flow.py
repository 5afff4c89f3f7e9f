"""A lane on a real gateway process: sales by card, cash and both, every kind of line, a return, the
paper-out policy, cash moves and the shift close with its comparison — checked against the
simulators' own records (the FN file, the terminal's ledger) and the events on the broker."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from protocols.bus import encode
from protocols.bus.sales import EVENT_SCHEMAS, pricelist_topic
from simulators.checkout import CheckoutRefused
from tests.gateway.checkout.rig import (
    BAG,
    BREAD,
    CASHIER_NAME,
    CHEESE_PLU,
    MILK,
    GatewayProcess,
    Store,
    marking,
    price_list,
    weight_label,
)
from tests.gateway.support import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _valid(store: Store, event_type: str) -> list[dict[str, Any]]:
    found = [e["data"] for e in store.events(event_type)]
    for data in found:
        EVENT_SCHEMAS[event_type].model_validate(data)
    return found


def test_a_shift_of_sales_returns_and_cash_agrees_with_the_fn_and_the_terminal(scale_store: Store) -> None:
    store = scale_store
    gw = GatewayProcess(store)
    try:
        c = store.cashier()
        with pytest.raises(CheckoutRefused, match="Смена закрыта"):
            c.scan(MILK)
        opened = c.open_shift()
        assert opened["shift_number"] == 1 and opened["fiscal"]["fd_number"] == 1

        # every kind of line: EAN, weight label (PLU + grams), marking code checked by the FN, the scale
        for code in (MILK, BREAD, weight_label(CHEESE_PLU, 734), marking("sN1")):
            sale = c.scan(code)
        assert store.scale is not None
        store.scale.set_weight(Decimal("0.250"))
        time.sleep(0.3)
        sale = c.weigh(CHEESE_PLU)
        lines = sale["lines"]
        assert [(x["quantity"], x["amount"], x["source"]) for x in lines] == [
            ("1", 8990, "scan"), ("1", 4500, "scan"), ("0.734", 33757, "weight_label"), ("1", 5900, "scan"),
            ("0.250", 11498, "scale")]
        assert lines[3]["marking_codes"] == [marking("sN1")] and lines[0]["vat_rate"] == "НДС 10%"
        with pytest.raises(CheckoutRefused, match="уже в чеке"):
            c.scan(marking("sN1"))
        with pytest.raises(CheckoutRefused, match="код маркировки"):
            c.scan("4600000000015")  # the water's EAN alone: a marked product needs its code
        with pytest.raises(CheckoutRefused, match="не найден"):
            c.scan("4000000000006")
        total = sale["total"]
        assert total == 8990 + 4500 + 33757 + 5900 + 11498

        # mixed payment: part cash (with change), part card with the sale id as the operation id
        done = c.pay(cash=30000, card=total - 20000)
        sale_id = done["sale_id"]
        assert done["state"] == "completed" and done["change"] == 10000
        charge = store.charges(f"{sale_id}.p1")
        assert [e.amount_kop for e in charge] == [total - 20000]
        fn = store.receipts()
        assert len(fn) == 1 and fn[0]["fd_number"] == done["fiscal"]["fd_number"]
        event = store.wait_event("sale_completed", "sale_id", sale_id)["data"]
        assert event["total"] == total and event["change"] == 10000
        assert event["payments"] == [
            {"type": "cash", "amount": 20000, "operation_id": None, "rrn": None, "auth_code": None, "card_mask": None},
            {"type": "card", "amount": total - 20000, "operation_id": f"{sale_id}.p1", "rrn": charge[0].rrn,
             "auth_code": charge[0].auth_code, "card_mask": charge[0].card_mask}]
        assert event["fiscal"]["fiscal_sign"] == fn[0]["fiscal_sign"] and event["cashier"]["name"] == CASHIER_NAME
        assert event["lines"][3]["marking_codes"] == [marking("sN1")]

        # a partial return of the marked water and the bread: to the card by RRN, marking code kept
        ret = c.return_sale(sale_id, [{"line_no": 4}, {"line_no": 2}])
        assert ret["state"] == "completed" and ret["total"] == 5900 + 4500
        assert ret["payments"][0]["type"] == "card" and ret["payments"][0]["amount"] == 10400
        refunds = [e for e in store.terminal.ledger() if e.kind == "refund"]
        assert len(refunds) == 1 and refunds[0].original_rrn == charge[0].rrn
        assert "ВОЗВРАТ ПРИХОДА" in store.register.tape()
        with pytest.raises(CheckoutRefused, match="не больше"):
            c.return_sale(sale_id, [{"line_no": 4}])
        returned = store.wait_event("return_completed", "return_id", ret["sale_id"])["data"]
        assert returned["sale_id"] == sale_id and returned["lines"][0]["marking_codes"] == [marking("sN1")]

        # a newer price list reaches the lane; an older one is ignored
        store.watcher.publish(pricelist_topic(store.address), encode(price_list(2, milk=9990)), retain=True)
        wait_until(lambda: c.view()["prices_version"] == 2, timeout=10)
        store.watcher.publish(pricelist_topic(store.address), encode(price_list(1, milk=100)), retain=True)
        time.sleep(0.5)
        assert c.scan(MILK)["lines"][0]["price"] == 9990 and c.view()["prices_version"] == 2

        # paper out after the card charge: retry, then give up → the charge is voided, no receipt
        c.scan(BAG)
        store.register.dev.paper_out()
        with pytest.raises(CheckoutRefused, match="Чек не напечатан"):
            c.pay(card=9990 + 700)
        failed = c.view()["sale"]
        assert failed["state"] == "fiscal_pending" and failed["fiscal_error"]["code"] == "fiscal_paper_out"
        with pytest.raises(CheckoutRefused, match="Чек не напечатан"):
            c.retry()
        cancelled = c.give_up()
        assert cancelled["state"] == "cancelled_refunded"
        op = f"{cancelled['sale_id']}.p1"
        assert len(store.charges(op)) == 1 and store.charges(op)[0].voided and len(store.voids(op)) == 1
        assert len(store.receipts()) == 2, "the sale and the return, not the cancelled one"
        gone = store.wait_event("sale_cancelled", "sale_id", cancelled["sale_id"])["data"]
        assert gone["state"] == "cancelled_refunded" and gone["voided"][0]["amount"] == 10690
        store.register.dev.paper_in()

        # cash only, cash moves, X report, then the close: Z, reconciliation, totals compared
        c.scan(BREAD)
        cash_sale = c.pay(cash=5000)
        assert cash_sale["change"] == 500
        c.cash("in", 100000, "размен")
        c.cash("out", 30000, "инкассация")
        closed = c.close_shift()
        assert closed["differences"] == [], closed["differences"]
        assert closed["fiscal_receipts"] == closed["fn_receipts"] == 3
        assert closed["totals"] == {"sales_count": 2, "sales_cash": 20000 + 4500, "sales_card": total - 20000,
                                    "returns_count": 1, "returns_cash": 0, "returns_card": 10400,
                                    "cash_in": 100000, "cash_out": 30000}
        assert closed["reconciliation"]["purchases"]["count"] == 2
        assert closed["z_report"]["fd_number"] == 5  # open, sale, return, sale, close: nothing else
        time.sleep(1.0)
        for event_type in EVENT_SCHEMAS:
            assert _valid(store, event_type), event_type
        assert [e["direction"] for e in _valid(store, "cash_moved")] == ["in", "out"]
        with pytest.raises(CheckoutRefused, match="Смена закрыта"):
            c.scan(MILK)
    finally:
        gw.stop()
