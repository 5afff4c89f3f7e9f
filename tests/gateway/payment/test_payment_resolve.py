"""``resolve``: a person settles an ``unknown_outcome`` — after the terminal has been asked again.

Gateway in process, the terminal = the UPOS simulator executable (behind a switch that makes its
program fail: the control tape unreadable) or the nexo simulator server. The simulators' ledger
says what really happened; the journal's stored reply is what every repeat of the original
command_id gets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.config import DeviceConfig
from gateway.runtime import Gateway
from simulators.payment.model import TerminalModel
from simulators.payment.nexo.server import NexoSimulator, SimConfig
from tests.gateway.payment.support import Bus, charges, nexo_device, unpluggable_device
from tests.gateway.support import BusWatcher, make_config, wait_until

pytestmark = pytest.mark.integration

NOTE = "Кассир Иванова: на терминале чек ОДОБРЕНО, RRN не виден"


@contextlib.contextmanager
def _gateway(tmp_path: Path, mqtt_url: str, root: str, tenant: str, device: DeviceConfig) -> Iterator[Bus]:
    config = make_config(tmp_path, mqtt_url, root, tenant, devices=[device])
    watcher = BusWatcher(mqtt_url, [f"{config.address.prefix}/#"])
    gw = Gateway(config).start()
    try:
        assert gw.link.wait_connected(5)
        watcher.wait_for(lambda m: m.topic == gw.address.state() and m.json()["online"])
        wait_until(lambda: gw.devices.snapshots()["pos1"].state == "online", timeout=10)
        yield Bus(watcher, gw.address)
    finally:
        gw.stop()
        watcher.close()


@dataclass
class Upos:
    bus: Bus
    model: TerminalModel
    marker: Path

    def unplug(self) -> None:
        self.marker.touch()

    def plug(self) -> None:
        self.marker.unlink(missing_ok=True)


@dataclass
class Nexo:
    bus: Bus
    model: TerminalModel
    sim: NexoSimulator

    def settled(self) -> None:
        """Wait until the POI has finished every operation (TransactionStatus no longer InProgress)."""
        wait_until(lambda: not self.sim.journal.running(), timeout=20, interval=0.1)


@pytest.fixture
def upos(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Upos]:
    model = TerminalModel(tmp_path / "upos-state.db")
    workdir = tmp_path / "upos"
    workdir.mkdir()
    marker = tmp_path / "unplugged"
    device = unpluggable_device(workdir, model.path, marker, timeout=3, service_timeout=5)
    with _gateway(tmp_path, mqtt_url, bus_root, bus_tenant, device) as bus:
        yield Upos(bus, model, marker)


@pytest.fixture
def nexo(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Nexo]:
    sim = NexoSimulator(SimConfig(state=tmp_path / "nexo-state.db")).start()
    holder = Nexo(None, sim.model, sim)  # type: ignore[arg-type]
    device = nexo_device(sim.address[1], timeout=1, service_timeout=1, connect_timeout=1)
    try:
        with _gateway(tmp_path, mqtt_url, bus_root, bus_tenant, device) as bus:
            holder.bus = bus
            yield holder
    finally:
        holder.sim.stop()


def _resolve(bus: Bus, resolve_id: str, operation_id: str, outcome: str, note: str = NOTE) -> dict[str, Any]:
    return bus.final(resolve_id, bus.send("resolve", resolve_id,
                                          {"operation_id": operation_id, "outcome": outcome, "note": note}))


def _pay(bus: Bus, command_id: str, amount: int = 5_000, timeout: float = 30.0) -> dict[str, Any]:
    return bus.final(command_id, bus.send("pay", command_id, {"amount": amount}), timeout=timeout)


def _resolution_events(bus: Bus, operation_id: str) -> list[dict[str, Any]]:
    return [e["data"] for e in bus.events("payment")
            if e["data"]["operation_id"] == operation_id and e["data"].get("resolution")]


def _upos_unknown_after_a_charge(t: Upos, command_id: str) -> list[str]:
    """The bank charges, the program hangs, the tape becomes unreadable: ``unknown_outcome``."""
    t.model.configure(hang=30.0)
    t.model.push_script("hang_after")
    mark = t.bus.send("pay", command_id, {"amount": 5_000})
    charged = wait_until(lambda: [e.rrn for e in t.model.charges(command_id)], timeout=15)
    t.unplug()
    failed = t.bus.final(command_id, mark, timeout=30)
    assert (failed["status"], failed["code"]) == ("failed", "unknown_outcome"), failed
    dup = _pay(t.bus, command_id)
    assert (dup["status"], dup["code"]) == ("duplicate", "unknown_outcome")
    return list(charged)


def test_upos_tape_unreadable_person_confirms_the_charge(upos: Upos) -> None:
    charged = _upos_unknown_after_a_charge(upos, "sale-a")
    resolved = _resolve(upos.bus, "res-a", "sale-a", "approved")
    assert resolved["status"] == "done", resolved
    answer = resolved["result"]
    assert (answer["outcome"], answer["decided_by"], answer["overruled"]) == ("approved", "person", False)
    assert "контрольная лента" in answer["message"].lower(), "the reply says why the terminal could not tell"
    # the original command_id now answers the settled outcome, with the data known
    dup = _pay(upos.bus, "sale-a")
    assert (dup["status"], dup["original"]) == ("duplicate", "done"), dup
    data = dup["result"]
    assert (data["result"], data["approved"], data["amount"], data["source"], data["rrn"]) == (
        "approved", True, 5_000, "person", None)
    assert data["resolution"]["note"] == NOTE and data["resolution"]["command_id"] == "res-a"
    [event] = wait_until(lambda: _resolution_events(upos.bus, "sale-a"))
    assert event["resolution"] == {**data["resolution"]} and event["source"] == "person"
    # the resolve itself is exactly-once; a second person cannot overwrite the first
    again = _resolve(upos.bus, "res-a", "sale-a", "approved")
    assert (again["status"], again["original"], again["result"]["outcome"]) == ("duplicate", "done", "approved")
    other = _resolve(upos.bus, "res-a2", "sale-a", "not_performed", "Старший кассир: не было")
    assert (other["status"], other["code"]) == ("failed", "already_resolved"), other
    assert _pay(upos.bus, "sale-a")["original"] == "done"
    assert charges(upos.model, "sale-a") == charged, "nothing charged again"


def test_upos_tape_readable_again_the_terminal_overrules_the_person(upos: Upos) -> None:
    charged = _upos_unknown_after_a_charge(upos, "sale-b")
    upos.plug()
    resolved = _resolve(upos.bus, "res-b", "sale-b", "not_performed", "Кассир: кажется, не прошло")
    assert resolved["status"] == "done", resolved
    answer = resolved["result"]
    assert (answer["outcome"], answer["decided_by"], answer["claimed"], answer["overruled"]) == (
        "approved", "terminal", "not_performed", True)
    assert "Записан исход терминала" in answer["message"]
    dup = _pay(upos.bus, "sale-b")
    assert (dup["status"], dup["original"]) == ("duplicate", "done"), dup
    assert (dup["result"]["rrn"], dup["result"]["source"]) == (charged[0], "control_tape")
    assert dup["result"]["resolution"]["claimed"] == "not_performed"
    [event] = wait_until(lambda: _resolution_events(upos.bus, "sale-b"))
    assert event["rrn"] == charged[0] and event["resolution"]["decided_by"] == "terminal"
    assert charges(upos.model, "sale-b") == charged


def test_upos_person_says_not_performed_and_the_purchase_runs_again_once(upos: Upos) -> None:
    upos.unplug()  # the program fails before anything: nobody can tell, nothing charged
    failed = _pay(upos.bus, "sale-c")
    assert (failed["status"], failed["code"]) == ("failed", "unknown_outcome"), failed
    resolved = _resolve(upos.bus, "res-c", "sale-c", "not_performed", "Терминал был выключен, чека нет")
    assert resolved["status"] == "done"
    assert (resolved["result"]["outcome"], resolved["result"]["decided_by"]) == ("not_performed", "person")
    assert resolved["result"]["reply"] == {"status": "failed", "code": "not_performed"}
    [event] = wait_until(lambda: _resolution_events(upos.bus, "sale-c"))
    assert (event["result"], event["resolution"]["note"]) == ("not_performed", "Терминал был выключен, чека нет")
    # still unplugged: the re-run asks the terminal first, cannot tell, and charges nothing
    mark = upos.bus.send("pay", "sale-c", {"amount": 5_000})
    blocked = upos.bus.final("sale-c", mark)
    assert upos.bus.replies("sale-c", mark)[0]["message"] == "running again: not_performed"
    assert (blocked["status"], blocked["code"]) == ("failed", "unknown_outcome")
    assert upos.model.ledger() == []
    resolved = _resolve(upos.bus, "res-c2", "sale-c", "not_performed", "Повторная проверка: чека нет")
    assert resolved["result"]["decided_by"] == "person"
    upos.plug()
    rerun = _pay(upos.bus, "sale-c")
    assert rerun["status"] == "done", rerun
    assert charges(upos.model, "sale-c") == [rerun["result"]["rrn"]]
    assert _pay(upos.bus, "sale-c")["original"] == "done"
    assert len(charges(upos.model, "sale-c")) == 1


def test_resolve_refuses_what_is_not_an_unknown_outcome(upos: Upos) -> None:
    missing = _resolve(upos.bus, "res-x1", "never-was", "approved")
    assert (missing["status"], missing["code"]) == ("failed", "operation_not_found"), missing
    done = _pay(upos.bus, "sale-d")
    assert done["status"] == "done"
    known = _resolve(upos.bus, "res-x2", "sale-d", "not_performed")
    assert (known["status"], known["code"]) == ("failed", "nothing_to_resolve"), known
    assert _pay(upos.bus, "sale-d")["original"] == "done"
    for n, args in enumerate([{"operation_id": "sale-d", "outcome": "maybe", "note": "x"},
                              {"operation_id": "sale-d", "outcome": "approved", "note": "   "},
                              {"operation_id": "sale-d", "outcome": "approved"}]):
        bad = upos.bus.final(f"res-bad-{n}", upos.bus.send("resolve", f"res-bad-{n}", args))
        assert (bad["status"], bad["code"]) == ("failed", "invalid_args"), (args, bad)
    assert len(charges(upos.model, "sale-d")) == 1


def _nexo_unknown_after_a_charge(t: Nexo, command_id: str) -> list[str]:
    """The bank charges, the POI goes silent (``InProgress``) past the driver's patience."""
    t.model.configure(hang=8.0)
    t.model.push_script("hang_after")
    failed = _pay(t.bus, command_id)
    assert (failed["status"], failed["code"]) == ("failed", "unknown_outcome"), failed
    charged = [e.rrn for e in t.model.charges(command_id)]
    assert len(charged) == 1
    return charged


def test_nexo_the_terminal_knows_once_it_has_finished(nexo: Nexo) -> None:
    charged = _nexo_unknown_after_a_charge(nexo, "sale-n")
    nexo.settled()
    resolved = _resolve(nexo.bus, "res-n", "sale-n", "approved", "Кассир: на экране ОДОБРЕНО")
    answer = resolved["result"]
    assert (answer["outcome"], answer["decided_by"], answer["overruled"]) == ("approved", "terminal", False)
    assert "Терминал подтвердил" in answer["message"]
    dup = _pay(nexo.bus, "sale-n")
    assert (dup["original"], dup["result"]["rrn"], dup["result"]["source"]) == ("done", charged[0], "control_tape")
    assert charges(nexo.model, "sale-n") == charged


def test_nexo_a_wrong_not_performed_cannot_charge_twice(nexo: Nexo) -> None:
    charged = _nexo_unknown_after_a_charge(nexo, "sale-w")
    # the POI is still busy with it (InProgress): the terminal cannot tell, the person's word is taken
    resolved = _resolve(nexo.bus, "res-w", "sale-w", "not_performed", "Кассир: терминал завис, списания нет")
    assert (resolved["result"]["outcome"], resolved["result"]["decided_by"]) == ("not_performed", "person")
    nexo.settled()
    # the re-run this allows asks TransactionStatus before it charges: the purchase was approved
    rerun = _pay(nexo.bus, "sale-w")
    assert rerun["status"] == "done", rerun
    assert (rerun["result"]["rrn"], rerun["result"]["source"]) == (charged[0], "control_tape")
    assert charges(nexo.model, "sale-w") == charged, "never a second charge"


def test_nexo_terminal_unreachable_the_person_decides(nexo: Nexo, tmp_path: Path) -> None:
    charged = _nexo_unknown_after_a_charge(nexo, "sale-z")
    port = nexo.sim.address[1]
    nexo.sim.stop()
    resolved = _resolve(nexo.bus, "res-z", "sale-z", "approved", "Выписка банка: списание 50,00 ₽ есть")
    assert resolved["status"] == "done", resolved
    assert (resolved["result"]["outcome"], resolved["result"]["decided_by"]) == ("approved", "person")
    nexo.sim = NexoSimulator(SimConfig(state=tmp_path / "nexo-state.db", port=port)).start()
    dup = _pay(nexo.bus, "sale-z")
    assert (dup["original"], dup["result"]["source"], dup["result"]["amount"]) == ("done", "person", 5_000)
    [event] = wait_until(lambda: _resolution_events(nexo.bus, "sale-z"))
    assert event["resolution"]["note"] == "Выписка банка: списание 50,00 ₽ есть"
    assert charges(nexo.model, "sale-z") == charged
