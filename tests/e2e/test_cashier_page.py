"""The cashier page in a real headless Chromium against a real gateway process, the Shtrih-M and
UPOS simulators and the real broker: log in, open the shift, scan three items and a weight label the
way a keyboard-wedge scanner does (characters then Enter into the focused field), pay by card, see the
receipt on the register's tape and the charge in the terminal's ledger, return one item. A
1280×800 screenshot is kept in the test's tmp dir. A second lane setup adds a serial scanner and a
receipt printer: reads of the scanner show on the page without a reload (refusals too), and a slip
the printer could not print is offered for reprint."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.checkout.rig import BAG, BREAD, CASHIER_NAME, MILK, GatewayProcess, Store, weight_label
from tests.gateway.support import wait_until

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture
def store(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Store]:
    s = Store(tmp_path, mqtt_url, bus_root, bus_tenant)
    gw = GatewayProcess(s)
    try:
        s.cashier().close()  # up, recovered, price list in
        yield s
    finally:
        gw.stop()
        s.stop()


@pytest.fixture
def hardware_store(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Store]:
    """The same lane with its own serial scanner and ESC/POS receipt printer (simulated)."""
    s = Store(tmp_path, mqtt_url, bus_root, bus_tenant, peripherals=True)
    gw = GatewayProcess(s)
    try:
        s.cashier().close()
        yield s
    finally:
        gw.stop()
        s.stop()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("no system chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU")
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def _scan(page: Any, code: str) -> None:
    """A keyboard-wedge scanner: it types into whatever has the focus, then Enter."""
    assert page.evaluate("document.activeElement.id") == "scan", "the scan field must keep the focus"
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")


def test_card_sale_and_return_on_the_cashier_page(store: Store, page: Any, tmp_path: Path) -> None:
    page.goto(store.url + "/")
    page.select_option("#login-user", "ivanova")
    page.fill("#login-pin", "1234")
    page.get_by_role("button", name="Войти").click()
    page.wait_for_selector("#screen-sale:not([hidden])")
    page.keyboard.press("F2")
    page.wait_for_function("document.getElementById('shift').textContent.includes('открыта')")
    assert CASHIER_NAME in page.text_content("#cashier")

    page.locator("#scan").focus()
    for n, code in enumerate((MILK, BREAD, BAG, weight_label(123, 734)), start=1):
        _scan(page, code)
        page.wait_for_function(f"document.querySelectorAll('#lines tr').length === {n}")
    assert "Сыр Российский весовой: 0,734 кг × 459,90 = 337,57" in page.text_content("#message")
    total = 8990 + 4500 + 700 + 33757
    assert page.text_content("#total") == "479,47"

    page.keyboard.press("F5")  # card: the amount is prefilled, Enter pays
    page.wait_for_selector("#pay-panel:not([hidden])")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('state').textContent === 'Чек напечатан'", timeout=30000)
    assert "ФД № 2" in page.text_content("#fiscal")
    receipts = store.receipts()
    assert len(receipts) == 1 and receipts[0]["total"] == total
    tape = store.register.tape()
    assert "КАССОВЫЙ ЧЕК / ПРИХОД" in tape and "Сыр Российский весовой" in tape
    purchases = store.purchases()
    assert [e.amount_kop for e in purchases] == [total]
    page.screenshot(path=str(tmp_path / "cashier-sale.png"))

    # return the bread to the card: F8, pick the receipt, pick the line, confirm
    page.keyboard.press("F8")
    page.wait_for_selector("#return-panel:not([hidden]) [data-sale]")
    page.locator("[data-sale]").first.click()
    page.locator("#return-lines [data-line='2']").click()
    page.get_by_role("button", name="Оформить возврат").click()
    page.wait_for_function("document.getElementById('state').textContent === 'Возврат: Чек напечатан'",
                           timeout=30000)
    assert page.text_content("#total") == "45,00"
    assert "ВОЗВРАТ ПРИХОДА" in store.register.tape() and len(store.receipts()) == 2
    refunds = [e for e in store.terminal.ledger() if e.kind == "refund"]
    assert [e.amount_kop for e in refunds] == [4500] and refunds[0].original_rrn == purchases[0].rrn
    wait_until(lambda: store.events("return_completed"), timeout=10)
    assert store.events("sale_completed")[0]["data"]["total"] == total
    page.screenshot(path=str(tmp_path / "cashier-return.png"))


def test_hardware_scanner_reads_and_slip_reprint_on_the_cashier_page(hardware_store: Store, page: Any) -> None:
    store = hardware_store
    assert store.scanner is not None and store.printer is not None
    page.goto(store.url + "/")
    page.select_option("#login-user", "ivanova")
    page.fill("#login-pin", "1234")
    page.get_by_role("button", name="Войти").click()
    page.wait_for_selector("#screen-sale:not([hidden])")
    page.wait_for_function("!document.getElementById('net').classList.contains('off')")  # the WebSocket is up

    # the shift is closed: the scanner's read is refused on the page, nothing is rung up
    assert store.scanner.scan(MILK)
    page.wait_for_function("document.getElementById('message').textContent === 'Смена закрыта: откройте смену'")
    assert page.locator("#lines tr").count() == 0

    page.keyboard.press("F2")
    page.wait_for_function("document.getElementById('shift').textContent.includes('открыта')")
    for n, code in enumerate((MILK, BREAD), start=1):
        assert store.scanner.scan(code)
        page.wait_for_function(f"document.querySelectorAll('#lines tr').length === {n}")
    assert "Хлеб Бородинский: 1 шт × 45,00 = 45,00" in page.text_content("#message")
    assert page.text_content("#total") == "134,90"

    # paper out in the receipt printer: the card sale completes, the slip is offered for reprint
    store.printer.set_paper(0)
    page.keyboard.press("F5")
    page.wait_for_selector("#pay-panel:not([hidden])")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('state').textContent === 'Чек напечатан'", timeout=30000)
    page.wait_for_selector("#slip-panel:not([hidden])")
    assert "Слип не напечатан" in page.text_content("#slip-text")
    assert store.printer.documents == []
    store.printer.set_paper(None)
    page.locator("#slip-reprint").click()
    page.wait_for_function("document.getElementById('message').textContent === 'Слип напечатан'", timeout=15000)
    page.wait_for_selector("#slip-panel", state="hidden")
    assert len(store.printer.documents) == 1 and "ОДОБРЕНО" in store.printer.documents[0].text
