"""kill -9 at each step of a receipt, restart, repeat the command_id: one receipt in the FN, always.

The gateway runs as ``python -m gateway run`` against a Shtrih-M simulator on a pty in this
process (FN persisted to a file, the ground truth of what was fiscalized). A crash point
(``VITRINA_CRASHPOINT``) makes the gateway ``os._exit(137)`` — what SIGKILL gives, no cleanup —
at an exact step; the restarted gateway must answer the interrupted sale with *its* document,
found in the FN or made once, never printed twice.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.devices.fiscal import const
from simulators.fiscal.device import DOC_RECEIPT
from tests.gateway.fiscal.rig import CASHIER, FIVE_ITEMS_TOTAL, Bus, Register, five_items, spawn, write_config
from tests.gateway.support import BusWatcher

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def register(tmp_path: Path) -> Iterator[Register]:
    reg = Register(tmp_path)
    yield reg
    reg.stop()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.parametrize("point", const.CRASH_POINTS)
def test_killed_at_each_step_of_a_receipt_sells_exactly_once(
    point: str, tmp_path: Path, register: Register, mqtt_url: str, bus_root: str, bus_tenant: str
) -> None:
    config = write_config(tmp_path / "gateway.toml", mqtt_url, bus_root, bus_tenant, register.url)
    prefix = f"{bus_root}/v1/{bus_tenant}/s1/gwf"
    watcher = BusWatcher(mqtt_url, [f"{prefix}/#"])
    bus = Bus(watcher, prefix)
    log = tmp_path / "gateway.log"
    proc = spawn(config, log, crashpoint=point)
    try:
        bus.wait_online()
        opened = bus.call("open_shift", "shift-1", {"cashier": CASHIER})
        assert opened["status"] == "done", opened
        assert bus.events("shift_opened")[0]["data"]["fd_number"] == opened["result"]["fd_number"] == 1

        bus.send("sell", "sale-1", five_items())
        assert proc.wait(15) == 137, log.read_text()
        assert f"crashpoint {point}" in log.read_text()
        fiscalized_before_kill = point in (const.CRASH_AFTER_CLOSE, const.CRASH_BEFORE_REPLY)
        assert len(register.receipts()) == int(fiscalized_before_kill)
        assert (register.dev.receipt is not None) == (point == const.CRASH_AFTER_ITEMS), "the open receipt"
        assert not bus.watcher.matching(
            lambda m: m.topic.endswith("/reply/sale-1") and m.json()["status"] not in ("accepted", "progress")
        ), "no final reply went out before the kill"

        proc = spawn(config, log)  # no crash point: the next life of the same gateway
        recovered = bus.final("sale-1", timeout=20)
        assert recovered["status"] == "done", recovered
        doc = recovered["result"]
        receipts = register.receipts()
        assert len(receipts) == 1, f"FN holds {len(receipts)} receipts for one sale"
        fn = receipts[0]
        assert (doc["fd_number"], doc["fiscal_sign"], doc["total"]) == (fn["fd_number"], fn["fiscal_sign"],
                                                                        FIVE_ITEMS_TOTAL)
        assert (doc["shift_number"], doc["receipt_number"]) == (fn["shift_number"], fn["receipt_number"]) == (1, 1)
        assert doc["fn_number"] == register.dev.fn.fn_number and doc["sign"] == 1 and len(doc["items"]) == 5

        # the cloud retries with the same command_id: the stored sale, not a new one
        again = bus.call("sell", "sale-1", five_items())
        assert (again["status"], again["original"]) == ("duplicate", "done")
        assert again["result"] == doc
        assert len(register.receipts()) == 1

        # a new sale after recovery is one more receipt, no more
        second = bus.call("sell", "sale-2", five_items())
        assert second["status"] == "done" and second["result"]["fd_number"] == doc["fd_number"] + 1
        assert len(register.receipts()) == 2
        assert [d.doc_type for d in register.dev.fn.documents].count(DOC_RECEIPT) == 2, "in memory too"

        # one fiscal_document event per document, whatever died when
        bus.watcher.wait_for(lambda m: m.topic.endswith("/evt/fiscal_document")
                             and m.json()["data"]["fd_number"] == second["result"]["fd_number"], timeout=15)
        events = bus.events("fiscal_document")
        ours = [e for e in events if e["data"]["fd_number"] == doc["fd_number"]]
        assert ours and {e["event_id"] for e in ours} == {ours[0]["event_id"]}
        assert ours[0]["data"] == doc
        tape = register.tape()
        assert tape.count("КАССОВЫЙ ЧЕК / ПРИХОД") == 2
        assert tape.count("ЧЕК АННУЛИРОВАН") == int(point == const.CRASH_AFTER_ITEMS)
    finally:
        _stop(proc)
        watcher.close()


def test_register_offline_after_the_crash_keeps_the_sale_unresolved_until_it_answers(
    tmp_path: Path, register: Register, mqtt_url: str, bus_root: str, bus_tenant: str
) -> None:
    config = write_config(tmp_path / "gateway.toml", mqtt_url, bus_root, bus_tenant, register.url)
    prefix = f"{bus_root}/v1/{bus_tenant}/s1/gwf"
    watcher = BusWatcher(mqtt_url, [f"{prefix}/#"])
    bus = Bus(watcher, prefix)
    log = tmp_path / "gateway.log"
    proc = spawn(config, log, crashpoint=const.CRASH_AFTER_CLOSE)
    try:
        bus.wait_online()
        assert bus.call("open_shift", "shift-1", {"cashier": CASHIER})["status"] == "done"
        bus.send("sell", "sale-1", five_items())
        assert proc.wait(15) == 137
        register.endpoint.unplug()  # the register is off while the gateway restarts
        proc = spawn(config, log)
        bus.watcher.wait_for(lambda m: m.topic.endswith("/dev/kkt1/status") and m.json()["state"] == "offline"
                             and m.json()["session"] >= 2, timeout=15)
        mark = len(bus.watcher.messages)
        bus.send("sell", "sale-1", five_items())  # the cloud retries meanwhile: never a blind sale
        repeat = bus.watcher.wait_for(lambda m: m.topic.endswith("/reply/sale-1")
                                      and bus.watcher.messages.index(m) >= mark, timeout=15).json()
        # the recovery waits for the register: the outcome is unknown, said so (not "already running")
        assert (repeat["status"], repeat["code"]) == ("failed", "unknown_outcome"), repeat
        assert repeat["message"].startswith("исход неизвестен: проверьте ККТ")
        assert len(register.receipts()) == 1
        with sqlite3.connect(f"file:{tmp_path / 'gw' / 'journal.db'}?mode=ro", uri=True) as db:
            row = db.execute("SELECT finished_at FROM commands WHERE command_id = 'sale-1'").fetchone()
        assert row == (None,), "the journal row stays running until the register answers"
        register.endpoint.plug()
        recovered = bus.final("sale-1", "done", timeout=20)
        assert recovered["result"]["fd_number"] == register.receipts()[0]["fd_number"]
        assert len(register.receipts()) == 1
    finally:
        _stop(proc)
        watcher.close()
