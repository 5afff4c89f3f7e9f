"""Kill tests with the nexo terminal: the gateway dies mid-purchase, the nexo simulator goes on.

Real gateway processes (``python -m gateway run``), real crash points (``VITRINA_CRASHPOINT``) and a
real SIGKILL while the simulator — a process of its own, like a POI on the counter — is inside its
latency window. After a restart the same command_id gets the original outcome, learned from the
terminal with ``TransactionStatus`` (``find``); the simulator's ledger is the proof that money moved
once, never twice. With the terminal unreachable at recovery, every repeat is ``unknown_outcome``
and nothing is attempted until the terminal answers again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.devices.payment.const import CRASH_AFTER_TERMINAL, CRASH_BEFORE_REPLY, CRASH_BEFORE_TERMINAL
from simulators.payment.model import TerminalModel
from tests.gateway.payment.support import NexoProcess, StoreRig, charges, nexo_device
from tests.gateway.support import command, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class NexoStore(StoreRig):
    """A store with a nexo terminal: the simulator process, its model (ledger, rules), the gateway."""

    def __init__(self, tmp_path: Path, mqtt_url: str, root: str, tenant: str) -> None:
        self.state = tmp_path / "nexo-state.db"
        self.model = TerminalModel(self.state)
        self.sim = NexoProcess(self.state)
        super().__init__(tmp_path, mqtt_url, root, tenant, nexo_device(self.sim.port))

    def restart_terminal(self) -> None:
        """The simulator again, on the same port and state (it finishes what it left running)."""
        self.sim = NexoProcess(self.state, self.sim.port)

    def close(self) -> None:
        super().close()
        self.sim.kill()


@pytest.fixture
def store(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[NexoStore]:
    s = NexoStore(tmp_path, mqtt_url, bus_root, bus_tenant)
    try:
        yield s
    finally:
        s.close()


def _one_event_per_charge(store: NexoStore, command_id: str, charged: list[str]) -> None:
    events = wait_until(lambda: [e for e in store.bus.events("payment") if e["data"]["operation_id"] == command_id])
    assert {e["data"]["rrn"] for e in events} == set(charged)
    assert len({e["event_id"] for e in events}) == 1, "one payment event per charge"


@pytest.mark.parametrize("point", [CRASH_BEFORE_TERMINAL, CRASH_AFTER_TERMINAL, CRASH_BEFORE_REPLY])
def test_crash_at_every_step_then_restart_charges_once(store: NexoStore, point: str) -> None:
    store.dies_mid_purchase(point, "sale-n")
    charged = charges(store.model, "sale-n")
    assert len(charged) == (0 if point == CRASH_BEFORE_TERMINAL else 1)
    gw = store.start()
    stored = store.journaled("sale-n")
    if point == CRASH_BEFORE_TERMINAL:
        # TransactionStatus: NotFound — the POI never saw it: re-runnable with the same command_id
        assert (stored["status"], stored["code"]) == ("failed", "not_performed"), stored
        mark = store.bus.send("pay", "sale-n", {"amount": 5_000})
        final = store.bus.final("sale-n", mark)
        assert final["status"] == "done", final
        assert store.bus.replies("sale-n", mark)[0]["message"] == "running again: not_performed"
        charged = charges(store.model, "sale-n")
        assert charged == [final["result"]["rrn"]]
    else:
        assert stored["status"] == "done" and stored["result"]["rrn"] == charged[0], stored
        expected_source = "control_tape" if point == CRASH_AFTER_TERMINAL else "terminal"
        assert stored["result"]["source"] == expected_source
        assert stored["result"]["amount"] == 5_000 and stored["result"]["operation_id"] == "sale-n"
    for _ in range(2):
        dup = store.bus.final("sale-n", store.bus.send("pay", "sale-n", {"amount": 5_000}))
        assert (dup["status"], dup["original"], dup["result"]["rrn"]) == ("duplicate", "done", charged[0])
    _one_event_per_charge(store, "sale-n", charged)
    assert len(charges(store.model, "sale-n")) == 1
    assert store.bus.ping("ping-n")["status"] == "done"
    gw.stop()
    assert gw.proc.returncode == 0


@pytest.mark.parametrize("stage", ["pin_entry", "authorising"])
def test_kill_9_while_the_terminal_is_in_its_latency_window(store: NexoStore, stage: str) -> None:
    """SIGKILL of the gateway mid-purchase (card at 0 s, PIN at 4 s, bank at 8 s, charge at 12 s).

    The POI does not care that its sale system died: it completes the purchase on its own. The
    restarted gateway asks TransactionStatus, hears ``InProgress`` while the customer is still at
    the PIN pad, asks again, and answers the purchase approved — never a second charge.
    """
    store.model.configure(latency=12.0)
    gw = store.start()
    mark = store.bus.send("pay", "sale-9", {"amount": 7_700})
    store.watcher.wait_for(lambda m: m.topic == store.address.reply("sale-9") and m.json().get("stage") == stage,
                           timeout=15)
    gw.kill()
    assert charges(store.model, "sale-9") == [], "killed before the bank charged"
    assert store.sim.proc.poll() is None, "the terminal keeps running"
    again = store.start()
    stored = store.journaled("sale-9", timeout=60)
    charged = charges(store.model, "sale-9")
    assert len(charged) == 1, "the POI finished the purchase after the gateway died"
    assert stored["status"] == "done", stored
    assert (stored["result"]["rrn"], stored["result"]["source"]) == (charged[0], "control_tape")
    if stage == "pin_entry":  # restarted long before the charge: recovery had to wait for the POI
        assert "the terminal cannot tell yet" in again.output()
    # the recovered reply is published once (held until the link was up), repeats get it as duplicate
    done = store.bus.final("sale-9", mark, timeout=30)
    assert done["status"] == "done" and done["result"]["rrn"] == charged[0]
    assert [r["status"] for r in store.bus.replies("sale-9", mark)].count("done") == 1
    dup = store.bus.final("sale-9", store.bus.send("pay", "sale-9", {"amount": 7_700}))
    assert (dup["status"], dup["original"], dup["result"]["rrn"]) == ("duplicate", "done", charged[0])
    _one_event_per_charge(store, "sale-9", charged)
    assert charges(store.model, "sale-9") == charged


def test_terminal_unreachable_at_recovery_is_unknown_and_nothing_is_attempted(store: NexoStore) -> None:
    store.dies_mid_purchase(CRASH_AFTER_TERMINAL, "sale-u")
    charged = charges(store.model, "sale-u")
    assert len(charged) == 1
    store.sim.stop()  # the terminal is switched off while the gateway restarts
    gw = store.start(device_online=False)
    for _ in range(2):
        answer = store.bus.final("sale-u", store.bus.send("pay", "sale-u", {"amount": 5_000}), timeout=45)  # a cold gateway under CI load
        assert (answer["status"], answer["code"]) == ("failed", "unknown_outcome"), answer
        assert "Не проводите оплату заново" in answer["message"], answer
        assert answer["result"]["recovering"] is True
        assert store.row("sale-u") == (None, 1), "still running: recovery waits for the terminal, no re-run"
    assert charges(store.model, "sale-u") == charged
    assert "not_performed" not in gw.output()
    # the terminal is back: recovery asks it, the original outcome is stored and announced
    store.restart_terminal()
    mark = len(store.watcher.messages)
    assert store.bus.ping("ping-u")["status"] == "done"
    store.watcher.publish(store.address.gateway_command("rescan"), command("rescan-u"))  # reopen now
    stored = store.journaled("sale-u", timeout=60)
    assert stored["status"] == "done" and stored["result"]["rrn"] == charged[0], stored
    assert stored["result"]["source"] == "control_tape"
    assert store.bus.final("sale-u", mark)["status"] == "done", "the recovered outcome is published unasked"
    dup = store.bus.final("sale-u", store.bus.send("pay", "sale-u", {"amount": 5_000}))
    assert (dup["status"], dup["original"], dup["result"]["rrn"]) == ("duplicate", "done", charged[0])
    assert charges(store.model, "sale-u") == charged
