"""A task from the cloud's command to the handheld's lines on the bus, over the real broker and real HTTP/WS."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from gateway.runtime import Gateway
from simulators.handheld import HandheldClient, HandheldRefused, Scan
from tests.gateway.handheld.support import (
    BREAD,
    CHEESE_PLU,
    GTIN_WATER,
    MILK,
    PIN,
    assign,
    base_url,
    count_task,
    events,
    marking,
    weight_label,
)
from tests.gateway.support import BusWatcher, wait_until


def _status(watcher: BusWatcher, gw: Gateway, device: str) -> dict:
    topic = gw.address.device_status(device)
    msgs = watcher.matching(lambda m: m.topic == topic)
    return msgs[-1].json() if msgs else {}


def test_count_task_round_trip(hh_gateway: Gateway, hh_watcher: BusWatcher) -> None:
    gw, watcher = hh_gateway, hh_watcher
    task = count_task()
    reply = assign(watcher, gw, task)
    assert reply["status"] == "done" and reply["result"] == {"task_id": task["task_id"], "created": True, "status": "new"}

    hh = HandheldClient(base_url(gw), "tsd1", battery=0.81)
    try:
        assert hh.login("ivanova", "1234")["name"] == "Иванова А."
        hh.connect()
        wait_until(lambda: _status(watcher, gw, "tsd1").get("state") == "online", timeout=5)
        assert [t["task_id"] for t in hh.tasks()] == [task["task_id"]]
        view = hh.open(task["task_id"])
        assert view["status"] == "in_progress" and len(view["expected"]) == 4
        tid = task["task_id"]
        hh.scan(tid, MILK)
        hh.scan(tid, Scan(MILK, qty="2"))
        hh.scan(tid, BREAD)
        cheese = hh.scan(tid, weight_label(CHEESE_PLU, 1234))
        assert cheese["line"]["qty"] == "1.234" and cheese["line"]["unit"] == "kg" and cheese["line"]["code_type"] == "weight"
        water = hh.scan(tid, marking(GTIN_WATER, "SERIAL0000001"))
        assert water["line"]["marking"] == f"01{GTIN_WATER}21SERIAL0000001"
        wait_until(lambda: (s := _status(watcher, gw, "tsd1").get("data", {})) and s.get("task_id") == tid
                   and s.get("battery_percent") == 81 and s.get("user") == "ivanova", timeout=5)
        done = hh.complete(tid)
        assert done["status"] == "completed" and done["already"] is False
        assert hh.complete(tid)["already"] is True  # a repeat (lost answer) is harmless
    finally:
        hh.close()

    watcher.wait_for(lambda m: m.topic.endswith("/dev/tsd1/evt/task_completed"), timeout=10)
    lines = events(watcher, gw, "task_line")
    assert [e["data"]["product_id"] for e in lines] == ["milk", "milk", "bread", "cheese", "water"]
    assert all(m.topic.startswith(gw.address.prefix + "/dev/tsd1/evt/") for m in
               watcher.matching(lambda m: "/evt/task_" in m.topic))
    assert len(events(watcher, gw, "task_opened")) == 1
    (completed,) = events(watcher, gw, "task_completed")
    totals = {t["product_id"]: Decimal(t["scanned_qty"]) for t in completed["data"]["totals"]}
    assert totals == {"milk": Decimal(3), "bread": Decimal(1), "cheese": Decimal("1.234"), "water": Decimal(1)}
    assert completed["data"]["lines"] == 5 and completed["data"]["user"] == "ivanova"
    # the handheld disconnected: its device goes offline on the bus, the last user/task kept
    wait_until(lambda: _status(watcher, gw, "tsd1").get("state") == "offline", timeout=5)


def test_bad_input_gets_clear_russian_messages(hh_gateway: Gateway, hh_watcher: BusWatcher) -> None:
    gw, watcher = hh_gateway, hh_watcher
    task = count_task()
    tid = task["task_id"]
    assign(watcher, gw, task)
    hh = HandheldClient(base_url(gw), "tsd2")
    try:
        with pytest.raises(HandheldRefused) as wrong:
            hh.login("Петров", "0000")
        assert wrong.value.detail == "Неверный PIN" and wrong.value.status == 401
        hh.login("Петров", PIN)
        hh.open(tid)

        def refused(scan: Scan | str) -> HandheldRefused:
            with pytest.raises(HandheldRefused) as err:
                hh.scan(tid, scan)
            return err.value

        assert refused("4600000000008").detail == "Штрихкод не найден в задании"
        assert refused("hello").detail.startswith("Штрихкод не найден в задании. Код не распознан")
        other = refused(marking("04609999999997", "SERIAL0000002"))
        assert other.code == "marking_not_in_task" and "нет в задании" in other.detail
        hh.scan(tid, marking(GTIN_WATER, "SERIAL0000003"))
        dup = refused(marking(GTIN_WATER, "SERIAL0000003"))
        assert dup.code == "duplicate_marking" and dup.detail.startswith("Этот код маркировки уже отсканирован")
        assert refused(GTIN_WATER[1:]).code == "marking_required"
        assert refused(Scan(MILK, qty="1.5")).code == "fractional_pieces"
        assert refused(Scan(MILK, qty="0")).code == "zero_qty"
        hh.scan(tid, MILK)
        hh.complete(tid)
        after = refused(BREAD)
        assert after.status == 409 and after.detail == "Задание уже завершено — сканирование невозможно"
        with pytest.raises(HandheldRefused) as gone:
            hh.open(tid)
        assert gone.value.code == "task_completed"
        raw = httpx.post(f"{base_url(gw)}/api/tasks/{tid}/lines", json={"line_id": "x"},
                         headers={"Authorization": f"Bearer {hh.token}"})
        assert raw.status_code == 422 and raw.json()["detail"].startswith("Неверные данные запроса")
        assert httpx.get(f"{base_url(gw)}/api/tasks").json()["code"] == "not_logged_in"
    finally:
        hh.close()
    watcher.wait_for(lambda m: m.topic.endswith("/evt/task_completed"), timeout=10)
    assert len(events(watcher, gw, "task_line")) == 2  # refused scans are never events


def test_pin_lockout(hh_gateway: Gateway) -> None:
    hh = HandheldClient(base_url(hh_gateway), "tsd1")
    try:
        for _ in range(5):
            with pytest.raises(HandheldRefused):
                hh.login("ivanova", "9999")
        with pytest.raises(HandheldRefused) as locked:
            hh.login("ivanova", "1234")
        assert locked.value.status == 429 and locked.value.detail.startswith("Слишком много неверных PIN")
        with pytest.raises(HandheldRefused) as unknown:
            HandheldClient(base_url(hh_gateway), "tsd9").login("ivanova", "1234")
        assert unknown.value.code == "unknown_terminal"
    finally:
        hh.close()


def test_assign_is_idempotent_by_task_id(hh_gateway: Gateway, hh_watcher: BusWatcher) -> None:
    gw, watcher = hh_gateway, hh_watcher
    task = count_task()
    assert assign(watcher, gw, task, "cmd-a")["result"]["created"] is True
    again = assign(watcher, gw, task, "cmd-b")  # another command id, the same task: stored once
    assert again["status"] == "done" and again["result"]["created"] is False
    repeat = assign(watcher, gw, task, "cmd-a")  # the same command id: the journal answers
    assert repeat["status"] == "duplicate"
    changed = {**task, "title": "Другое"}
    conflict = assign(watcher, gw, changed, "cmd-c")
    assert conflict["status"] == "failed" and conflict["code"] == "task_conflict"
    bad = assign(watcher, gw, {**task, "task_id": "t-bad", "lines": [{"line_no": 1, "product_id": "x", "name": "x"}]})
    assert bad["status"] == "failed" and bad["code"] == "invalid_args"
