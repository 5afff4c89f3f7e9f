"""Exactly-once across crashes: a real gateway process dies at every step of a purchase.

The terminal is the UPOS simulator executable; its ledger (``TerminalModel.charges``) is the
bank's word on how many times money moved. The gateway dies by ``os._exit(137)`` at a crash
point or by a real SIGKILL, restarts on the same data directory, and the cloud retries with the
same command_id.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.devices.payment.const import CRASH_AFTER_TERMINAL, CRASH_BEFORE_REPLY, CRASH_BEFORE_TERMINAL
from simulators.payment.model import TerminalModel
from tests.gateway.payment.support import Bus, GatewayProcess, charges, terminal_device, write_config
from tests.gateway.support import BusWatcher, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Store:
    """One store: a terminal (simulator state + workdir), a gateway config, the cloud's bus view."""

    def __init__(self, tmp_path: Path, mqtt_url: str, root: str, tenant: str) -> None:
        self.model = TerminalModel(tmp_path / "upos-state.db")
        self.workdir = tmp_path / "upos"
        self.workdir.mkdir()
        self.config = tmp_path / "gateway.toml"
        self.kw = {"mqtt_url": mqtt_url, "root": root, "tenant": tenant}
        self.address = self.configure(self.model.path)
        self.watcher = BusWatcher(mqtt_url, [f"{self.address.prefix}/#"])
        self.bus = Bus(self.watcher, self.address)
        self.processes: list[GatewayProcess] = []

    def configure(self, state: Path) -> Any:
        return write_config(self.config, device=terminal_device(self.workdir, state), **self.kw)

    def start(self, crash_point: str | None = None) -> GatewayProcess:
        mark = len(self.watcher.messages)
        proc = GatewayProcess(self.config, crash_point=crash_point)
        self.processes.append(proc)
        self.bus.online(mark)
        topic = self.address.device_status("pos1")
        wait_until(lambda: [m for m in self.watcher.messages[mark:] if m.topic == topic
                            and m.json()["state"] == "online"], 20)
        return proc

    def journaled(self, command_id: str) -> dict[str, Any]:
        """The final reply the gateway's journal holds for ``command_id`` (waits for it)."""
        path = self.config.parent / "data" / "journal.db"

        def read() -> dict[str, Any] | None:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                row = db.execute("SELECT reply FROM commands WHERE command_id = ?", (command_id,)).fetchone()
            import json

            return json.loads(row[0]) if row and row[0] else None

        return dict(wait_until(read, timeout=60))

    def close(self) -> None:
        for proc in self.processes:
            proc.kill()
        self.watcher.close()


@pytest.fixture
def store(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Store]:
    s = Store(tmp_path, mqtt_url, bus_root, bus_tenant)
    try:
        yield s
    finally:
        s.close()


def _dies_mid_purchase(store: Store, point: str, command_id: str) -> GatewayProcess:
    proc = store.start(crash_point=point)
    mark = store.bus.send("pay", command_id, {"amount": 5_000})
    assert proc.wait(30) == 137, proc.output()[-2000:]
    assert f"crashpoint {point}" in proc.output()
    replies = store.bus.replies(command_id, mark)
    assert [r["status"] for r in replies if r["status"] not in ("accepted", "progress")] == [], replies
    return proc


@pytest.mark.parametrize("point", [CRASH_BEFORE_TERMINAL, CRASH_AFTER_TERMINAL, CRASH_BEFORE_REPLY])
def test_crash_at_every_step_then_restart_charges_once(store: Store, point: str) -> None:
    _dies_mid_purchase(store, point, "sale-k")
    charged = charges(store.model, "sale-k")
    assert len(charged) == (0 if point == CRASH_BEFORE_TERMINAL else 1)
    gw = store.start()
    stored = store.journaled("sale-k")  # recovery (or, for before_reply, the first run) decided
    if point == CRASH_BEFORE_TERMINAL:
        # find() proved the purchase never happened: re-runnable with the same command_id
        assert (stored["status"], stored["code"]) == ("failed", "not_performed"), stored
        assert "Можно повторить с тем же command_id" in stored["message"]
        mark = store.bus.send("pay", "sale-k", {"amount": 5_000})
        final = store.bus.final("sale-k", mark)
        assert final["status"] == "done", final
        assert store.bus.replies("sale-k", mark)[0]["message"] == "running again: not_performed"
        charged = charges(store.model, "sale-k")
        assert charged == [final["result"]["rrn"]]
    else:
        assert stored["status"] == "done" and stored["result"]["rrn"] == charged[0], stored
        expected_source = "control_tape" if point == CRASH_AFTER_TERMINAL else "terminal"
        assert stored["result"]["source"] == expected_source
    # every later retry: the same outcome from the journal, the terminal never charged again
    for _ in range(2):
        dup = store.bus.final("sale-k", store.bus.send("pay", "sale-k", {"amount": 5_000}))
        assert (dup["status"], dup["original"], dup["result"]["rrn"]) == ("duplicate", "done", charged[0])
    events = wait_until(lambda: [e for e in store.bus.events("payment") if e["data"]["operation_id"] == "sale-k"])
    assert {e["data"]["rrn"] for e in events} == set(charged)
    assert len({e["event_id"] for e in events}) == 1, "one payment event per charge"
    assert len(charges(store.model, "sale-k")) == 1
    assert store.bus.ping("ping-k")["status"] == "done"
    gw.stop()
    assert gw.proc.returncode == 0


@pytest.mark.parametrize("stage", ["authorising"])  # "pin_entry" works too (nothing charged, re-run once)
def test_kill_9_while_the_terminal_program_runs(store: Store, stage: str) -> None:
    """SIGKILL in the simulator's latency window (card at 0 s, PIN at 2.5 s, bank at 5 s, charge at 7.5 s).

    Killed at ``pin_entry``, the program dies on its next prompt (its stdout pipe is gone): nothing
    is charged and the purchase re-runs once. Killed at ``authorising`` (its last prompt), the
    orphaned program goes on and the bank charges after the gateway is back: recovery must wait for
    it before asking the control tape, or it would call a charged purchase "not performed".
    """
    store.model.configure(latency=7.5)
    gw = store.start()
    mark = store.bus.send("pay", "sale-9", {"amount": 7_700})
    store.watcher.wait_for(lambda m: m.topic == store.address.reply("sale-9") and m.json().get("stage") == stage,
                           timeout=15)
    gw.kill()
    assert charges(store.model, "sale-9") == [], "killed before the bank charged"
    store.model.configure(latency=0.0)  # the orphan keeps its pace; the tape answers at once
    store.start()
    stored = store.journaled("sale-9")
    if stage == "pin_entry":
        assert (stored["status"], stored["code"]) == ("failed", "not_performed"), stored
        assert charges(store.model, "sale-9") == []
        rerun = store.bus.final("sale-9", store.bus.send("pay", "sale-9", {"amount": 7_700}))
        assert rerun["status"] == "done", rerun
        charged = charges(store.model, "sale-9")
        assert charged == [rerun["result"]["rrn"]]
    else:
        charged = charges(store.model, "sale-9")
        assert len(charged) == 1, "the orphaned terminal program finished the purchase"
        assert stored["status"] == "done", stored
        assert (stored["result"]["rrn"], stored["result"]["source"]) == (charged[0], "control_tape")
        # the recovered reply was held until the link was up and published then (never twice)
    assert [r["status"] for r in store.bus.replies("sale-9", mark)].count("done") <= 1
    dup = store.bus.final("sale-9", store.bus.send("pay", "sale-9", {"amount": 7_700}))
    assert (dup["status"], dup["original"], dup["result"]["rrn"]) == ("duplicate", "done", charged[0])
    assert charges(store.model, "sale-9") == charged


def test_unknown_outcome_is_never_retried_blindly(store: Store, tmp_path: Path) -> None:
    _dies_mid_purchase(store, CRASH_AFTER_TERMINAL, "sale-u")
    assert len(charges(store.model, "sale-u")) == 1
    # the terminal cannot read its own control tape now (its program fails on every call)
    store.configure(tmp_path / "unplugged" / "state.db")
    store.start()
    stored = store.journaled("sale-u")
    assert (stored["status"], stored["code"]) == ("failed", "unknown_outcome"), stored
    assert "Не повторяйте оплату" in stored["message"] and stored["result"]["last"]["result"] == "unknown"
    for _ in range(2):
        dup = store.bus.final("sale-u", store.bus.send("pay", "sale-u", {"amount": 5_000}))
        assert (dup["status"], dup["original"], dup["code"]) == ("duplicate", "failed", "unknown_outcome")
    for proc in store.processes:
        proc.stop()
    # the terminal is back: the answer stays the same until a person resolves it
    store.configure(store.model.path)
    store.start()
    dup = store.bus.final("sale-u", store.bus.send("pay", "sale-u", {"amount": 5_000}))
    assert (dup["status"], dup["code"]) == ("duplicate", "unknown_outcome")
    assert len(charges(store.model, "sale-u")) == 1
    assert store.bus.ping("ping-u")["status"] == "done"
