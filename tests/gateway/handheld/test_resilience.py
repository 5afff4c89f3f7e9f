"""Nothing lost, nothing counted twice: resends, reconnects, a gateway restart, the cloud away, a taken port, load."""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path
from typing import Any

from gateway.runtime import Gateway
from simulators.handheld import HandheldClient, LoadConfig, Scan, run_load
from tests.gateway.handheld.support import (
    BREAD,
    MILK,
    PIN,
    assign,
    base_url,
    count_task,
    events,
    handheld_config,
    start_gateway,
)
from tests.gateway.support import BusWatcher, cloud_online, wait_until


def _state(watcher: BusWatcher, gw: Gateway, device: str) -> str | None:
    msgs = watcher.matching(lambda m: m.topic == gw.address.device_status(device))
    return msgs[-1].json()["state"] if msgs else None


def test_resend_reconnect_and_restart_resume_the_task(hh_config: Any, hh_watcher: BusWatcher) -> None:
    watcher = hh_watcher
    gw = start_gateway(hh_config, watcher)
    task = count_task()
    tid = task["task_id"]
    assign(watcher, gw, task)
    hh = HandheldClient(base_url(gw), "tsd1")
    hh.login("Сидоров", PIN)
    hh.connect()
    hh.open(tid)
    first = hh.scan(tid, Scan(MILK, line_id="line-0001-aaaa"))
    assert first["duplicate"] is False
    again = hh.scan(tid, Scan(MILK, line_id="line-0001-aaaa"))  # the page lost the answer and resends
    assert again["duplicate"] is True and again["scanned_qty"] == "1.000"
    hh.scan(tid, Scan(BREAD, line_id="line-0002-aaaa"))
    hh.disconnect()  # the handheld left the Wi-Fi mid-task
    wait_until(lambda: _state(watcher, gw, "tsd1") == "offline", timeout=5)
    gw.stop()  # and the gateway restarts meanwhile

    gw = Gateway(hh_config).start()
    try:
        wait_until(lambda: gw.devices.snapshots()["handhelds"].state == "online", timeout=10)
        hh.http.base_url = base_url(gw)  # type: ignore[assignment]
        hh.base_url = base_url(gw)
        hh.connect()  # the session survived the restart
        wait_until(lambda: _state(watcher, gw, "tsd1") == "online", timeout=5)
        view = hh.task(tid)
        assert view["status"] == "in_progress" and view["lines_scanned"] == 2
        assert [r["line_id"] for r in view["recent"]] == ["line-0002-aaaa", "line-0001-aaaa"]
        assert hh.scan(tid, Scan(BREAD, line_id="line-0002-aaaa"))["duplicate"] is True
        hh.scan(tid, Scan(MILK, line_id="line-0003-aaaa"))
        done = hh.complete(tid)
        assert done["status"] == "completed"
        watcher.wait_for(lambda m: m.topic.endswith("/evt/task_completed"), timeout=10)
        line_ids = [e["data"]["line_id"] for e in events(watcher, gw, "task_line")]
        assert sorted(line_ids) == ["line-0001-aaaa", "line-0002-aaaa", "line-0003-aaaa"]
        (completed,) = events(watcher, gw, "task_completed")
        assert completed["data"]["lines"] == 3
    finally:
        hh.close()
        gw.stop()


def test_lines_wait_in_the_outbox_while_the_cloud_is_away(
    tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str, hh_watcher: BusWatcher
) -> None:
    config = handheld_config(tmp_path, mqtt_url, bus_root, bus_tenant)
    config = config.model_copy(update={"outbox": config.outbox.model_copy(update={"require_cloud_online": True})})
    gw = start_gateway(config, hh_watcher)
    hh = HandheldClient(base_url(gw), "tsd1")
    try:
        task = count_task()
        tid = task["task_id"]
        assign(hh_watcher, gw, task)
        hh.login("Сидоров", PIN)
        hh.open(tid)
        for _ in range(4):
            hh.scan(tid, MILK)
        hh.complete(tid)
        assert gw.outbox.depth == 6  # opened + 4 lines + completed, durable; nothing published yet
        assert events(hh_watcher, gw, "task_line") == []
        hh_watcher.publish(*cloud_online(bus_root)[:2], retain=True)
        hh_watcher.wait_for(lambda m: m.topic.endswith("/evt/task_completed"), timeout=10)
        assert len(events(hh_watcher, gw, "task_line")) == 4
    finally:
        hh.close()
        hh_watcher.publish(cloud_online(bus_root)[0], b"", retain=True)
        gw.stop()


def test_a_taken_port_is_a_clear_status_and_is_retried(
    tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str, hh_watcher: BusWatcher
) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    gw = Gateway(handheld_config(tmp_path, mqtt_url, bus_root, bus_tenant, port=port)).start()
    try:
        assert gw.handheld is not None
        gw.handheld._retry_s = 0.5  # the retry loop reads it on every turn
        status = hh_watcher.wait_for(
            lambda m: m.topic == gw.address.device_status("handhelds") and "address already in use" in m.json()["detail"],
            timeout=10,
        ).json()
        assert status["state"] == "offline" and f"127.0.0.1:{port}" in status["detail"]
        assert gw.link.is_connected  # the rest of the gateway runs
        blocker.close()
        wait_until(lambda: gw.devices.snapshots()["handhelds"].state == "online", timeout=10)
        assert HandheldClient(f"http://127.0.0.1:{port}", "tsd1").login("Сидоров", PIN)["terminal"] == "tsd1"
    finally:
        blocker.close()
        gw.stop()


def test_twenty_handhelds_at_once_lose_and_double_nothing(
    tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str, hh_watcher: BusWatcher
) -> None:
    terminals = [f"tsd{i:02d}" for i in range(20)]
    gw = start_gateway(handheld_config(tmp_path, mqtt_url, bus_root, bus_tenant, terminals=terminals), hh_watcher)
    try:
        tasks = []
        for t in terminals:
            task = count_task(f"inv-{t}", assignee=t)
            assign(hh_watcher, gw, task)
            tasks.append(task["task_id"])
        result = run_load(LoadConfig(base_url(gw), tuple(terminals), tuple(tasks), (MILK, BREAD), scans=12))
        assert result.errors == []
        assert result.duplicates_answered == 20 * 4  # lines 0, 3, 6, 9 of each were resent
        hh_watcher.wait_for(lambda m: len(events(hh_watcher, gw, "task_completed")) == 20 or False, timeout=20)
        lines = events(hh_watcher, gw, "task_line")
        sent = sorted(i for ids in result.sent.values() for i in ids)
        assert sorted(e["data"]["line_id"] for e in lines) == sent and len(sent) == 240
        for e in lines:  # every line on its own handheld and task
            assert e["data"]["line_id"].startswith(e["data"]["terminal"]) and e["data"]["task_id"] == f"inv-{e['data']['terminal']}"
        per_task = Counter(e["data"]["task_id"] for e in events(hh_watcher, gw, "task_completed"))
        assert set(per_task.values()) == {1}
        for completed in events(hh_watcher, gw, "task_completed"):
            totals = {t["product_id"]: t["scanned_qty"] for t in completed["data"]["totals"]}
            assert totals["milk"] == "6.000" and totals["bread"] == "6.000"
    finally:
        gw.stop()
