"""The lane's own scanner and receipt printer on a real gateway process: scans from the serial scanner
simulator ring items up (and still reach the bus), refusals reach the cashier page's WebSocket and the
log, and the card slip lands on the ESC/POS simulator's paper exactly once — a printer fault never
fails the sale, a reprint is an explicit new print, a crash around the print never prints twice. A sale
given up (no receipt possible) gets the terminal's cancellation slip the same way."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from gateway.checkout.saga import CRASH_BEFORE_REPLY
from gateway.checkout.slips import CRASH_AFTER_SLIP, CRASH_BEFORE_SLIP
from simulators.checkout import CashierClient, CheckoutRefused
from tests.gateway.checkout.rig import (
    BREAD,
    LANE,
    MILK,
    PRINTER,
    SCANNER,
    GatewayProcess,
    Store,
    marking,
    wait_dead,
    weight_label,
)
from tests.gateway.support import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def store(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Store]:
    s = Store(tmp_path, mqtt_url, bus_root, bus_tenant, peripherals=True)
    yield s
    s.stop()


class PageSocket:
    """What the cashier page hears on its WebSocket (``lane`` snapshots, ``progress``, ``scan``)."""

    def __init__(self, store: Store, client: CashierClient) -> None:
        self.messages: list[dict[str, Any]] = []
        self.ws: ClientConnection = connect(f"ws://127.0.0.1:{store.port}/api/ws?token={client.token}")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for raw in self.ws:
                self.messages.append(json.loads(raw))
        except Exception:
            return

    def wait(self, match: Any, since: int = 0, timeout: float = 10.0) -> dict[str, Any]:
        found = wait_until(lambda: next((m for m in self.messages[since:] if match(m)), None), timeout=timeout)
        return dict(found)

    def close(self) -> None:
        self.ws.close()


def _scanner(store: Store) -> Any:
    assert store.scanner is not None
    return store.scanner


def _printer(store: Store) -> Any:
    assert store.printer is not None
    return store.printer


def _bus_scans(store: Store) -> list[str]:
    topic = store.address.event(SCANNER, "scan")
    return [m.json()["data"]["data"] for m in store.watcher.matching(lambda m: m.topic == topic)]


def _device_state(store: Store, device: str) -> str | None:
    topic = store.address.device_status(device)
    found = store.watcher.matching(lambda m: m.topic == topic and bool(m.payload))
    return str(found[-1].json()["state"]) if found else None


def _slip(client: CashierClient, sale_id: str) -> dict[str, Any]:
    result: dict[str, Any] = client._lane("POST", f"/sales/{sale_id}/slip")
    return result


def _copy(client: CashierClient, sale_id: str) -> dict[str, Any]:
    result: dict[str, Any] = client._lane("POST", f"/sales/{sale_id}/copy")
    return result


def test_hardware_scans_ring_up_the_open_sale_and_refusals_reach_the_page(store: Store) -> None:
    gw = GatewayProcess(store)
    page: PageSocket | None = None
    try:
        c = store.cashier(gw)
        page = PageSocket(store, c)
        page.wait(lambda m: m["type"] == "lane")
        scanner = _scanner(store)
        wait_until(lambda: _device_state(store, SCANNER) == "online", timeout=15)

        # no shift, so no sale can be open: refused with a clear message, logged, nothing rung up
        mark = len(page.messages)
        assert scanner.scan(MILK)
        refused = page.wait(lambda m: m["type"] == "scan", mark)
        assert refused["ok"] is False and refused["message"] == "Смена закрыта: откройте смену"
        assert refused["source"] == SCANNER
        assert c.view()["sale"] is None
        wait_until(lambda: "Смена закрыта" in gw.output(), timeout=5)
        wait_until(lambda: _bus_scans(store) == [MILK], timeout=10)  # the event still goes to the bus

        c.open_shift()
        mark = len(page.messages)
        assert scanner.scan(MILK)
        shown = page.wait(lambda m: m["type"] == "lane" and m["sale"] and len(m["sale"]["lines"]) == 1, mark)
        assert shown["sale"]["lines"][0]["name"] == "Молоко 3,2% 1 л" and shown["sale"]["lines"][0]["source"] == "scan"
        ok = page.wait(lambda m: m["type"] == "scan", mark)
        assert ok["ok"] is True and ok["line"]["amount"] == 8990

        # a marking code (GS sent as <GS> by the scanner, restored on the way), a weight label, a wedge scan
        assert scanner.scan(marking("hw1"))
        wait_until(lambda: len(c.view()["sale"]["lines"]) == 2, timeout=10)
        assert scanner.scan(weight_label(123, 734))
        wait_until(lambda: len(c.view()["sale"]["lines"]) == 3, timeout=10)
        sale = c.scan(BREAD)
        assert [(x["name"], x["quantity"]) for x in sale["lines"]] == [
            ("Молоко 3,2% 1 л", "1"), ("Вода питьевая 0,5 л", "1"), ("Сыр Российский весовой", "0.734"),
            ("Хлеб Бородинский", "1")]
        assert sale["lines"][1]["marking_codes"] == [marking("hw1")]

        # an unknown product and a repeated marking code are refused; the sale is untouched
        mark = len(page.messages)
        assert scanner.scan("4000000000006")
        assert "не найден в прайс-листе" in page.wait(lambda m: m["type"] == "scan", mark)["message"]
        mark = len(page.messages)
        assert scanner.scan(marking("hw1"))
        assert page.wait(lambda m: m["type"] == "scan", mark)["message"] == "Этот код маркировки уже в чеке"
        assert len(c.view()["sale"]["lines"]) == 4

        # the receipt cannot be printed (paper out in the register): the sale refuses scans until it ends
        total = c.view()["sale"]["total"]
        store.register.dev.paper_out()
        with pytest.raises(CheckoutRefused, match="Чек не напечатан"):
            c.pay(card=total)
        mark = len(page.messages)
        assert scanner.scan(BREAD)
        busy = page.wait(lambda m: m["type"] == "scan", mark)
        assert busy["ok"] is False and busy["message"].startswith("Текущий чек не завершён")
        store.register.dev.paper_in()
        done = c.retry()
        assert done["state"] == "completed" and len(done["lines"]) == 4
        assert gw.proc.poll() is None, "the gateway keeps running"

        # after the sale, the next hardware scan opens the next sale
        assert scanner.scan(BREAD)
        wait_until(lambda: (c.view()["sale"] or {}).get("sale_id") not in (None, done["sale_id"]), timeout=10)
        assert [x["name"] for x in c.view()["sale"]["lines"]] == ["Хлеб Бородинский"]
        wait_until(lambda: len(_bus_scans(store)) == 8, timeout=10)
        assert _bus_scans(store) == [MILK, MILK, marking("hw1"), weight_label(123, 734), "4000000000006",
                                     marking("hw1"), BREAD, BREAD]
    finally:
        if page is not None:
            page.close()
        gw.stop()


def test_card_slips_print_once_with_copies_on_request(store: Store) -> None:
    gw = GatewayProcess(store)
    try:
        c = store.cashier(gw)
        wait_until(lambda: _device_state(store, PRINTER) == "online", timeout=15)
        c.open_shift()
        c.scan(MILK)
        c.scan(BREAD)
        sale = c.pay(card=8990 + 4500)
        assert sale["state"] == "completed" and sale["slip"]["state"] == "printed", sale
        charge = store.charges(f"{sale['sale_id']}.p1")[0]
        paper = store.paper()
        assert len(paper) == 1
        slip = paper[0]
        assert "Оплата картой" in slip and "ПАО СБЕРБАНК" in slip, slip  # the terminal's own slip text
        assert "ОДОБРЕНО" in slip and f"RRN: {charge.rrn}" in slip and charge.auth_code in slip
        assert charge.card_mask in slip and "134,90" in slip.replace(".", ",")
        assert f"Касса {LANE}, чек {sale['sale_id']}" in " ".join(slip.split()) and "КОПИЯ" not in slip
        assert c.view()["sale"]["slip"] == {"state": "printed", "message": "Слип напечатан", "prints": 1,
                                            "can_reprint": True}

        # cash: no slip
        c.scan(BREAD)
        cash = c.pay(cash=5000)
        assert cash["slip"] is None and len(store.paper()) == 1

        # a card return prints the refund slip
        ret = c.return_sale(sale["sale_id"], [{"line_no": 2}])
        assert ret["state"] == "completed" and ret["slip"]["state"] == "printed"
        assert len(store.paper()) == 2
        refund = store.paper()[1]
        assert "Возврат на карту" in refund and "ВОЗВРАТ" in refund and "ОДОБРЕНО" in refund

        # on request: the slip again (marked as a copy) and a non-fiscal copy of the receipt
        again = _slip(c, sale["sale_id"])
        assert again["slip"]["prints"] == 2 and again["slip"]["state"] == "printed"
        assert "КОПИЯ" in store.paper()[2] and f"RRN: {charge.rrn}" in store.paper()[2]
        _copy(c, sale["sale_id"])
        copy = store.paper()[3]
        assert "Копия чека" in copy and "НЕ ЯВЛЯЕТСЯ ФИСКАЛЬНЫМ ДОКУМЕНТОМ" in copy
        assert "Молоко 3,2% 1 л" in copy and "134,90" in copy and f"ФД № {sale['fiscal']['fd_number']}" in copy
        with pytest.raises(CheckoutRefused, match="нет оплаты картой"):
            _slip(c, cash["sale_id"])

        # a restart prints nothing again
        gw.stop()
        gw = GatewayProcess(store)
        c = store.cashier(gw)
        time.sleep(1.0)
        assert len(store.paper()) == 4
    finally:
        gw.stop()


def test_printer_faults_never_fail_the_sale_and_the_slip_is_reprinted_later(store: Store) -> None:
    gw = GatewayProcess(store)
    try:
        c = store.cashier(gw)
        printer = _printer(store)
        wait_until(lambda: _device_state(store, PRINTER) == "online", timeout=15)
        c.open_shift()

        # paper out: refused before anything is sent; the sale completes, the slip waits for a reprint
        printer.set_paper(0)
        wait_until(lambda: _device_state(store, PRINTER) == "error", timeout=10)
        c.scan(MILK)
        sale = c.pay(card=8990)
        assert sale["state"] == "completed" and len(store.receipts()) == 1
        assert len(store.charges(f"{sale['sale_id']}.p1")) == 1
        slip = c.view()["sale"]["slip"]
        assert slip["state"] == "failed" and slip["can_reprint"], slip
        assert slip["message"].startswith("Слип не напечатан:") and "бумаг" in slip["message"]
        store.wait_event("sale_completed", "sale_id", sale["sale_id"])
        assert printer.documents == [] and len(printer.pending) == 0
        with pytest.raises(CheckoutRefused, match="Слип не напечатан"):
            _slip(c, sale["sale_id"])  # still no paper: an explicit new print, refused again
        printer.set_paper(None)
        wait_until(lambda: _device_state(store, PRINTER) == "online", timeout=10)
        again = _slip(c, sale["sale_id"])
        assert again["slip"] == {"state": "printed", "message": "Слип напечатан", "prints": 3, "can_reprint": True}
        assert len(store.paper()) == 1 and "ОДОБРЕНО" in store.paper()[0]
        assert "КОПИЯ" not in store.paper()[0], "nothing printed before: this is the slip, not a copy"

        # the printer is gone altogether: the same, with the offline reason
        printer.unplug()
        wait_until(lambda: _device_state(store, PRINTER) == "offline", timeout=15)
        c.scan(BREAD)
        second = c.pay(card=4500)
        assert second["state"] == "completed" and second["slip"]["state"] == "failed"
        assert "не в сети" in second["slip"]["message"]
        assert len(store.receipts()) == 2 and len(store.paper()) == 1
        printer.plug()
        wait_until(lambda: _device_state(store, PRINTER) == "online", timeout=30)
        assert _slip(c, second["sale_id"])["slip"]["state"] == "printed"
        assert len(store.paper()) == 2 and "45,00" in store.paper()[1].replace(".", ",")
    finally:
        gw.stop()


@pytest.mark.parametrize("point", [CRASH_BEFORE_REPLY, CRASH_BEFORE_SLIP, CRASH_AFTER_SLIP])
def test_killed_around_the_slip_it_is_printed_exactly_once(point: str, store: Store) -> None:
    gw = GatewayProcess(store, point)
    try:
        c = store.cashier(gw)
        wait_until(lambda: _device_state(store, PRINTER) == "online", timeout=15)
        c.open_shift()
        c.scan(MILK)
        sale_id = c.view()["sale"]["sale_id"]
        with pytest.raises((httpx.TransportError, CheckoutRefused)):
            c.pay(card=8990)
        assert wait_dead(gw) == 137
        assert f"crashpoint {point}" in gw.output()
        assert len(store.paper()) == (1 if point == CRASH_AFTER_SLIP else 0)

        gw = GatewayProcess(store)  # the next life, nothing armed: recovery finishes the slip
        c = store.cashier(gw)
        sale = c.view()["sale"]
        assert sale["sale_id"] == sale_id and sale["state"] == "completed"
        assert sale["slip"]["state"] == "printed" and sale["slip"]["prints"] == 1, sale["slip"]
        time.sleep(1.0)
        assert len(store.paper()) == 1 and "ОДОБРЕНО" in store.paper()[0]
        assert len(store.charges(f"{sale_id}.p1")) == 1 and len(store.receipts()) == 1

        c.scan(BREAD)  # the lane sells on: one more slip, no more
        assert c.pay(card=4500)["slip"]["state"] == "printed"
        assert len(store.paper()) == 2
    finally:
        gw.stop()


def _give_up_after_paper_out(store: Store, c: CashierClient) -> str:
    """A card sale whose receipt cannot be printed (no paper in the register); returns its id."""
    wait_until(lambda: _device_state(store, PRINTER) == "online", timeout=15)
    c.open_shift()
    c.scan(MILK)
    sale_id: str = c.view()["sale"]["sale_id"]
    store.register.dev.paper_out()
    with pytest.raises(CheckoutRefused, match="Чек не напечатан"):
        c.pay(card=8990)
    assert store.paper() == [], "no receipt, so no card slip"
    return sale_id


def test_give_up_prints_the_terminals_void_slip_once(store: Store) -> None:
    gw = GatewayProcess(store)
    try:
        c = store.cashier(gw)
        sale_id = _give_up_after_paper_out(store, c)
        done = c.give_up()
        assert done["state"] == "cancelled_refunded" and done["slip"]["state"] == "printed", done
        assert done["slip"]["message"] == "Слип отмены напечатан"
        charge = store.charges(f"{sale_id}.p1")[0]
        voids = store.voids(f"{sale_id}.p1")
        assert charge.voided and len(voids) == 1 and store.receipts() == []
        paper = store.paper()
        assert len(paper) == 1, paper
        slip = paper[0]
        assert "Отмена оплаты картой" in slip and "ПАО СБЕРБАНК" in slip, slip  # the terminal's own slip text
        assert "ОТМЕНА" in slip and "ОДОБРЕНО" in slip and "ОПЛАТА" not in slip
        assert f"RRN: {voids[0].rrn}" in slip and "89,90" in slip.replace(".", ",") and "КОПИЯ" not in slip
        assert "Чек не напечатан: оплата отменена" in " ".join(slip.split())
        store.wait_event("sale_cancelled", "sale_id", sale_id)

        # a restart prints nothing again; on request, the void slip again (marked as a copy)
        store.register.dev.paper_in()
        gw.stop()
        gw = GatewayProcess(store)
        c = store.cashier(gw)
        time.sleep(1.0)
        assert len(store.paper()) == 1
        again = _slip(c, sale_id)
        assert again["state"] == "cancelled_refunded" and again["slip"]["prints"] == 2
        assert len(store.paper()) == 2 and "КОПИЯ" in store.paper()[1] and "ОТМЕНА" in store.paper()[1]
        assert len(store.voids(f"{sale_id}.p1")) == 1, "a reprint never voids again"
    finally:
        gw.stop()


def test_a_printer_fault_never_fails_the_give_up(store: Store) -> None:
    gw = GatewayProcess(store)
    try:
        c = store.cashier(gw)
        sale_id = _give_up_after_paper_out(store, c)
        printer = _printer(store)
        printer.set_paper(0)
        wait_until(lambda: _device_state(store, PRINTER) == "error", timeout=10)
        done = c.give_up()
        assert done["state"] == "cancelled_refunded" and len(store.voids(f"{sale_id}.p1")) == 1
        assert done["slip"]["state"] == "failed" and done["slip"]["can_reprint"], done["slip"]
        assert done["slip"]["message"].startswith("Слип отмены не напечатан:")
        assert printer.documents == [] and c.view()["sale"] is None
        store.wait_event("sale_cancelled", "sale_id", sale_id)
        printer.set_paper(None)
        wait_until(lambda: _device_state(store, PRINTER) == "online", timeout=10)
        assert _slip(c, sale_id)["slip"]["state"] == "printed"
        assert len(store.paper()) == 1 and "ОТМЕНА" in store.paper()[0] and "КОПИЯ" not in store.paper()[0]
    finally:
        gw.stop()


@pytest.mark.parametrize("point", [CRASH_BEFORE_SLIP, CRASH_AFTER_SLIP])
def test_killed_around_the_void_slip_it_is_printed_exactly_once(point: str, store: Store) -> None:
    gw = GatewayProcess(store, point)
    try:
        c = store.cashier(gw)
        sale_id = _give_up_after_paper_out(store, c)
        with pytest.raises((httpx.TransportError, CheckoutRefused)):
            c.give_up()
        assert wait_dead(gw) == 137
        assert f"crashpoint {point}" in gw.output()
        assert len(store.paper()) == (1 if point == CRASH_AFTER_SLIP else 0)

        gw = GatewayProcess(store)  # the next life, nothing armed: recovery finishes the slip
        c = store.cashier(gw)
        time.sleep(1.0)
        assert len(store.paper()) == 1 and "ОТМЕНА" in store.paper()[0]
        assert len(store.voids(f"{sale_id}.p1")) == 1 and store.receipts() == []
        store.wait_event("sale_cancelled", "sale_id", sale_id)
        assert c.view()["sale"] is None
    finally:
        gw.stop()
