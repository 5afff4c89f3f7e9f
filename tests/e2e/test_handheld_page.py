"""The handheld page in a real headless Chromium against a real gateway over the real broker.

Log in, open a count task, scan three codes the way a keyboard-wedge scanner does (characters
then Enter into the focused field), complete: the gateway publishes three ``task_line`` events
and one ``task_completed``. A screenshot at 480×800 is kept in the test's tmp dir.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.runtime import Gateway
from tests.gateway.handheld.support import (
    BREAD,
    CHEESE_PLU,
    MILK,
    PIN,
    assign,
    base_url,
    count_task,
    events,
    handheld_config,
    start_gateway,
    weight_label,
)
from tests.gateway.support import BusWatcher, wait_until

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture
def gateway_and_bus(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[tuple[Gateway, BusWatcher]]:
    config = handheld_config(tmp_path, mqtt_url, bus_root, bus_tenant)
    watcher = BusWatcher(mqtt_url, [f"{config.address.prefix}/#"])
    gw = start_gateway(config, watcher)
    try:
        yield gw, watcher
    finally:
        gw.stop()
        watcher.close()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("no system chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 480, "height": 800}, locale="ru-RU", has_touch=True)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def test_count_task_on_the_mobile_page(gateway_and_bus: tuple[Gateway, BusWatcher], page: Any, tmp_path: Path) -> None:
    gw, watcher = gateway_and_bus
    task = count_task(title="Молочный отдел, стеллаж 3")
    assign(watcher, gw, task)

    page.goto(base_url(gw) + "/")
    page.get_by_role("button", name="tsd1").click()  # first run: which handheld is this
    page.select_option("#login-user", "")  # "Другой сотрудник…": the store PIN
    page.fill("#login-name", "Петрова")
    page.fill("#login-pin", PIN)
    page.get_by_role("button", name="Войти").click()
    page.locator(f"[data-task='{task['task_id']}']").click()
    page.wait_for_selector("#screen-task:not([hidden])")
    wait_until(lambda: gw.devices.snapshots()["tsd1"].state == "online", timeout=5)

    scan = page.locator("#scan")
    assert page.evaluate("document.activeElement.id") == "scan"  # focus is in the scan field
    for code, shown in ((MILK, "Молоко 3,2% 1 л +1 шт"), (BREAD, "Хлеб Бородинский +1 шт"),
                        (weight_label(CHEESE_PLU, 1234), "Сыр Российский +1,234 кг")):
        page.keyboard.type(code)  # a wedge scanner types into whatever has the focus…
        page.keyboard.press("Enter")  # …and ends with Enter
        page.wait_for_function("t => document.getElementById('result').textContent.startsWith(t)", arg=shown)
        assert scan.input_value() == ""
    page.keyboard.type("4600000000008")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('result').classList.contains('err')")
    assert page.locator("#result").text_content().startswith("Штрихкод не найден в задании")
    page.click("#progress")  # a tap elsewhere gives the focus back to the scan field
    page.wait_for_function("() => document.activeElement.id === 'scan'")
    page.screenshot(path=str(tmp_path / "handheld-480x800.png"))
    Path(os.environ.get("HANDHELD_SCREENSHOT", tmp_path / "copy.png")).write_bytes(
        (tmp_path / "handheld-480x800.png").read_bytes()
    )

    page.click("#complete")
    page.get_by_role("button", name="Да, завершить").click()
    page.wait_for_selector("#screen-tasks:not([hidden])")
    assert page.locator("#tasks-empty").is_visible()

    watcher.wait_for(lambda m: m.topic.endswith("/dev/tsd1/evt/task_completed"), timeout=10)
    lines = events(watcher, gw, "task_line")
    assert [e["data"]["product_id"] for e in lines] == ["milk", "bread", "cheese"]
    assert {e["data"]["user"] for e in lines} == {"Петрова"}
    (completed,) = events(watcher, gw, "task_completed")
    assert completed["data"]["task_id"] == task["task_id"] and completed["data"]["lines"] == 3


def test_cloud_assigns_and_reads_back_the_lines(
    tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str, fresh_database_url: str
) -> None:
    """Cloud API → assign_task on the gateway process's pool → a handheld scans → GET shows the lines once each."""
    from simulators.handheld import HandheldClient, Scan
    from tests.e2e.harness import Cloud, GatewayProcess, wait_for
    from tests.gateway.handheld.support import free_port

    port = free_port()
    cloud = Cloud(fresh_database_url, mqtt_url, bus_root, bus_tenant)
    config = {
        "tenant": bus_tenant, "store": "store-1", "gateway": "gw-1", "bus_root": bus_root,
        "data_dir": str(tmp_path / "gw-data"),
        "broker": {"url": mqtt_url, "keepalive": 2, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "handheld": {"host": "127.0.0.1", "port": port, "store_pin": PIN},
        "devices": [{"id": "handhelds", "kind": "handheld", "driver": "pool", "url": "local"},
                    {"id": "tsd1", "kind": "handheld", "driver": "web", "url": "wifi"}],
    }
    gw = GatewayProcess(tmp_path, config).start()
    hh = HandheldClient(f"http://127.0.0.1:{port}", "tsd1")
    try:
        pool = wait_for(lambda: (d := cloud.device("handhelds")) and d["state"] == "online" and d, what="pool online")
        store_id = cloud.get("/stores")[0]["id"]
        task = count_task()
        tid = task["task_id"]
        posted = cloud.client.post(f"/api/v1/stores/{store_id}/handheld-tasks", json=task)
        assert posted.status_code == 200, posted.text
        assert posted.json()["status"] == "done" and posted.json()["device_id"] == pool["id"]
        again = cloud.client.post(f"/api/v1/stores/{store_id}/handheld-tasks", json=task)  # a retried POST
        assert again.status_code == 200 and again.json()["command_id"] == posted.json()["command_id"]

        hh.login("Орлова", PIN)
        hh.open(tid)
        hh.scan(tid, Scan(MILK, line_id="e2e-line-0001"))
        hh.scan(tid, Scan(MILK, line_id="e2e-line-0001"))  # resent: counted once
        hh.scan(tid, Scan(BREAD, qty="2", line_id="e2e-line-0002"))
        hh.complete(tid)

        def read() -> dict[str, Any] | None:
            body: dict[str, Any] = cloud.get(f"/stores/{store_id}/handheld-tasks/{tid}")
            return body if body["status"] == "completed" and len(body["lines"]) == 2 else None

        body = wait_for(read, what="the task's lines in the cloud")
        assert [(line["product_id"], line["qty"]) for line in body["lines"]] == [("milk", "1.000"), ("bread", "2.000")]
        assert body["opened_by"] == ["tsd1"] and body["completed"]["lines"] == 2 and body["assigned"] == "done"
        missing = cloud.client.get(f"/api/v1/stores/{store_id}/handheld-tasks/nope")
        assert missing.status_code == 404 and missing.json()["code"] == "handheld_task_not_found"
    finally:
        hh.close()
        gw.stop()
        cloud.stop()
