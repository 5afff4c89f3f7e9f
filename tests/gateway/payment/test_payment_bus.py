"""The payment family on the bus, gateway in process, terminal = the UPOS simulator executable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.runtime import Gateway
from simulators.payment.model import TerminalModel
from tests.gateway.payment.support import Bus, charges, terminal_device
from tests.gateway.support import BusWatcher, make_config, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def model(tmp_path: Path) -> TerminalModel:
    return TerminalModel(tmp_path / "upos-state.db")


@pytest.fixture
def bus(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str, model: TerminalModel) -> Iterator[Bus]:
    workdir = tmp_path / "upos"
    workdir.mkdir()
    config = make_config(tmp_path, mqtt_url, bus_root, bus_tenant, devices=[terminal_device(workdir, model.path)])
    watcher = BusWatcher(mqtt_url, [f"{config.address.prefix}/#"])
    gw = Gateway(config).start()
    try:
        assert gw.link.wait_connected(5)
        watcher.wait_for(lambda m: m.topic == gw.address.state() and m.json()["online"])
        wait_until(lambda: gw.devices.snapshots()["pos1"].state == "online")
        yield Bus(watcher, gw.address)
    finally:
        gw.stop()
        watcher.close()


def test_pay_round_trip_progress_slip_event_and_duplicate(bus: Bus, model: TerminalModel) -> None:
    mark = bus.send("pay", "sale-1", {"amount": 123456})
    done = bus.final("sale-1", mark)
    assert done["status"] == "done", done
    result = done["result"]
    assert (result["approved"], result["amount"], result["operation"]) == (True, 123456, "purchase")
    assert result["operation_id"] == "sale-1" and result["source"] == "terminal"
    assert "ОДОБРЕНО" in result["slip"] and result["rrn"] in result["slip"] and result["card_mask"].endswith("5678")
    replies = bus.replies("sale-1", mark)
    statuses = [r["status"] for r in replies]
    assert statuses[0] == "accepted" and statuses[-1] == "done"
    progress = [r for r in replies if r["status"] == "progress"]
    assert [p["stage"] for p in progress] == ["waiting_card", "pin_entry", "authorising"]
    assert progress[0]["message"].startswith("Ожидание карты")
    assert charges(model, "sale-1") == [result["rrn"]]
    [event] = wait_until(lambda: bus.events("payment", mark))
    assert event["data"]["rrn"] == result["rrn"] and event["data"]["result"] == "approved"
    assert event["data"]["amount"] == 123456
    # the cloud's retry: the stored outcome, the terminal untouched
    again = bus.send("pay", "sale-1", {"amount": 123456})
    dup = bus.final("sale-1", again)
    assert (dup["status"], dup["original"], dup["result"]["rrn"]) == ("duplicate", "done", result["rrn"])
    assert charges(model, "sale-1") == [result["rrn"]]
    status = bus.final("st-1", bus.send("status", "st-1"))
    assert status["status"] == "done" and status["result"]["state"] == "online"
    assert status["result"]["last_operation"]["rrn"] == result["rrn"]
    assert status["result"]["reconciliation_needed"] is False


def test_declined_is_failed_with_the_reason_and_not_rerun(bus: Bus, model: TerminalModel) -> None:
    model.configure(default_balance_kop=10_000)
    mark = bus.send("pay", "sale-2", {"amount": 10_001})
    failed = bus.final("sale-2", mark)
    assert (failed["status"], failed["code"]) == ("failed", "declined")
    assert failed["message"] == "Недостаточно средств на карте"
    last = failed["result"]["last"]
    assert (last["approved"], last["code"], last["device_code"], last["amount"]) == (
        False, "insufficient_funds", "4451", 10_001)
    [event] = wait_until(lambda: bus.events("payment", mark))
    assert event["data"]["result"] == "declined"
    model.configure(default_balance_kop=100_000_000)
    again = bus.final("sale-2", bus.send("pay", "sale-2", {"amount": 10_001}))
    assert (again["status"], again["original"], again["code"]) == ("duplicate", "failed", "declined")
    assert model.ledger() == []


def test_second_command_while_paying_is_refused_busy_at_once(bus: Bus, model: TerminalModel) -> None:
    model.configure(latency=3.0)
    first = bus.send("pay", "slow-1", {"amount": 500})
    bus.watcher.wait_for(lambda m: m.topic == bus.address.reply("slow-1") and m.json()["status"] == "progress")
    sent = time.monotonic()
    second = bus.send("pay", "fast-2", {"amount": 700})
    busy = bus.final("fast-2", second, timeout=5)
    assert time.monotonic() - sent < 1.0, "busy must be answered at once, not after the running payment"
    assert (busy["status"], busy["code"]) == ("failed", "busy")
    assert busy["message"].startswith("терминал занят: идёт операция pay (slow-1)")
    assert busy["result"]["running"] == {"command_id": "slow-1", "action": "pay"}
    status = bus.final("st-2", bus.send("status", "st-2"), timeout=5)
    assert status["code"] == "busy"
    assert [r["status"] for r in bus.replies("fast-2", second)] == ["failed"], "never accepted, never queued"
    assert bus.final("slow-1", first)["status"] == "done"
    assert model.charges("fast-2") == [] and len(model.charges("slow-1")) == 1
    # busy was not journaled: the same command_id runs once the terminal is free
    model.configure(latency=0.0)
    retried = bus.final("fast-2", bus.send("pay", "fast-2", {"amount": 700}))
    assert retried["status"] == "done" and len(model.charges("fast-2")) == 1


BAD_ARGS = [
    {"amount": -100}, {"amount": 0}, {"amount": 10.5}, {"amount": 100.0}, {"amount": "100"}, {"amount": True},
    {}, {"amount": 100, "tip": 5}, {"amount": 10**12},
]


def test_malformed_amounts_are_invalid_args_and_nothing_runs(bus: Bus, model: TerminalModel) -> None:
    for n, args in enumerate(BAD_ARGS):
        reply = bus.final(f"bad-{n}", bus.send("pay", f"bad-{n}", args))
        assert (reply["status"], reply["code"]) == ("failed", "invalid_args"), (args, reply)
        assert reply["message"].startswith("pay: ")
        assert [r["status"] for r in bus.replies(f"bad-{n}")] == ["failed"]
    assert model.ledger() == []
    # not journaled: the same command_id with good args runs; the gateway kept going
    good = bus.final("bad-0", bus.send("pay", "bad-0", {"amount": 100}))
    assert good["status"] == "done"
    assert len(model.ledger()) == 1


def test_refund_cancel_reconcile(bus: Bus, model: TerminalModel) -> None:
    sale = bus.final("sale-3", bus.send("pay", "sale-3", {"amount": 30_000}))["result"]
    refund = bus.final("ret-3", bus.send("refund", "ret-3", {"amount": 10_000, "original_operation_id": "sale-3"}))
    assert refund["status"] == "done" and refund["result"]["operation"] == "refund", refund
    both = bus.final("ret-x", bus.send("refund", "ret-x", {"amount": 1, "rrn": sale["rrn"],
                                                           "original_operation_id": "sale-3"}))
    assert both["code"] == "invalid_args"
    bus.final("sale-4", bus.send("pay", "sale-4", {"amount": 4_200}))
    void = bus.final("void-4", bus.send("cancel", "void-4", {"operation_id": "sale-4"}))
    assert void["status"] == "done" and void["result"]["operation"] == "cancel"
    missing = bus.final("void-5", bus.send("cancel", "void-5", {"operation_id": "never-was"}))
    assert (missing["status"], missing["code"]) == ("failed", "operation_not_found")
    assert [e.kind for e in model.ledger()] == ["purchase", "refund", "purchase", "void"]
    model.configure(reconcile_every=4)
    blocked = bus.final("sale-5", bus.send("pay", "sale-5", {"amount": 100}))
    assert blocked["code"] == "declined" and blocked["result"]["last"]["code"] == "reconcile_required"
    assert bus.final("st-3", bus.send("status", "st-3"))["result"]["reconciliation_needed"] is True
    mark = bus.send("reconcile", "rec-1")
    rec = bus.final("rec-1", mark)
    assert rec["status"] == "done" and rec["result"]["purchases"] == {"count": 2, "amount": 34_200}
    [event] = wait_until(lambda: bus.events("reconciliation", mark))
    assert event["data"]["batch"] == rec["result"]["batch"]
    assert bus.final("st-4", bus.send("status", "st-4"))["result"]["reconciliation_needed"] is False
    assert bus.final("sale-6", bus.send("pay", "sale-6", {"amount": 100}))["status"] == "done"


def test_status_is_busy_with_the_operation_while_a_payment_runs(bus: Bus, model: TerminalModel) -> None:
    model.configure(latency=1.0)
    topic = bus.address.device_status("pos1")
    mark = bus.send("pay", "busy-1", {"amount": 900})
    busy = wait_until(lambda: [m.json() for m in bus.watcher.messages[mark:]
                               if m.topic == topic and m.json()["state"] == "busy"], timeout=10)[0]
    assert busy["detail"] == "идёт операция: оплата (busy-1)"
    assert bus.final("busy-1", mark)["status"] == "done"
    states = wait_until(lambda: [m.json()["state"] for m in bus.watcher.messages[mark:] if m.topic == topic]
                        if any(m.topic == topic and m.json()["state"] == "online"
                               for m in bus.watcher.messages[mark:]) else None, timeout=10)
    assert states[:2] == ["busy", "online"]
