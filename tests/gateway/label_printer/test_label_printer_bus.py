"""The label printer family over the real broker, driving the ZPL simulator on TCP 9100-style ports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.config import DeviceConfig
from gateway.devices.label_printer.actions import PrintLabelArgs
from gateway.devices.label_printer.progress import SENDING, ProgressStore
from gateway.journal import Journal, args_hash
from gateway.runtime import Gateway
from protocols.bus import DeviceKind
from simulators.label.printer import LabelPrinterConfig, LabelPrinterSimulator
from tests.gateway.support import BusWatcher, command, make_config, wait_until

pytestmark = pytest.mark.integration

DEVICE = "lp1"
FINAL = ("done", "failed", "duplicate", "expired")
TAG = {"name": "Молоко 3,2% 1 л", "price": "89.90", "barcode": "460000000000"}


@dataclass
class Rig:
    gw: Gateway
    sim: LabelPrinterSimulator
    watcher: BusWatcher
    out: Path

    def send(self, command_id: str, action: str = "print_label", args: dict[str, Any] | None = None) -> int:
        mark = len(self.watcher.messages)
        self.watcher.publish(self.gw.address.command(DEVICE, action), command(command_id, args=args or {}))
        return mark

    def final(self, command_id: str, since: int, timeout: float = 20.0) -> dict[str, Any]:
        topic = self.gw.address.reply(command_id)
        found = wait_until(lambda: [m for m in self.watcher.messages[since:]
                                    if m.topic == topic and m.json()["status"] in FINAL], timeout)
        return dict(found[0].json())

    def status(self) -> dict[str, Any]:
        found = self.watcher.matching(lambda m: m.topic == self.gw.address.device_status(DEVICE))
        return dict(found[-1].json()) if found else {}

    def pngs(self) -> list[Path]:
        return sorted(self.out.glob("label-*.png"))


def device(url: str, state_file: Path) -> DeviceConfig:
    options = {
        "poll_interval_s": 0.2, "state_file": str(state_file), "settle": 0.3, "poll_interval": 0.05,
        "confirm_timeout": 10, "busy_timeout": 2,
    }
    return DeviceConfig(id=DEVICE, kind=DeviceKind.LABEL_PRINTER, driver="zpl", url=url, options=options)


def start(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str, sim: LabelPrinterSimulator) -> Rig:
    host, port = sim.serve_tcp(0)
    assert sim.config.out_dir is not None
    config = make_config(tmp_path, mqtt_url, bus_root, bus_tenant,
                         devices=[device(f"tcp://{host}:{port}", tmp_path / "label_jobs.db")])
    watcher = BusWatcher(mqtt_url, [f"{config.address.prefix}/#"])
    gw = Gateway(config, device_backoff=(0.1, 0.5)).start()
    watcher.wait_for(lambda m: m.topic == gw.address.state() and m.json()["online"])
    watcher.wait_for(lambda m: m.topic == gw.address.device_status(DEVICE) and m.json()["state"] == "online")
    return Rig(gw, sim, watcher, sim.config.out_dir)


@pytest.fixture
def rig(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Rig]:
    sim = LabelPrinterSimulator(LabelPrinterConfig(labels_per_second=10.0, paper_labels=3, out_dir=tmp_path / "out"))
    r = start(tmp_path, mqtt_url, bus_root, bus_tenant, sim)
    try:
        yield r
    finally:
        r.gw.stop()
        r.watcher.close()
        sim.stop()


def test_label_printed_and_rendered(rig: Rig) -> None:
    rig.sim.set_paper(None)
    mark = rig.send("lbl-1", args={"template": "price_tag", "data": TAG, "copies": 2})
    reply = rig.final("lbl-1", mark)
    assert reply["status"] == "done", reply
    assert reply["result"]["copies_confirmed"] == 2
    assert reply["result"]["copies_printed_now"] == 2
    pngs = rig.pngs()
    assert len(pngs) == 1 and pngs[0].stat().st_size > 0
    assert [(p.copies_requested, p.copies_printed) for p in rig.sim.printed] == [(2, 2)]
    assert any("Молоко" in t for t in rig.sim.printed[0].texts)
    # a repeat is answered from the journal: nothing printed again
    mark = rig.send("lbl-1", args={"template": "price_tag", "data": TAG, "copies": 2})
    again = rig.final("lbl-1", mark)
    assert again["status"] == "duplicate" and again["original"] == "done"
    assert len(rig.pngs()) == 1 and len(rig.sim.printed) == 1


def test_bad_label_data_names_the_field_and_sends_nothing(rig: Rig) -> None:
    bad = {**TAG, "barcode": "4600000000001"}  # wrong check digit
    mark = rig.send("lbl-bad", args={"template": "price_tag", "data": bad})
    reply = rig.final("lbl-bad", mark)
    assert reply["status"] == "failed" and reply["code"] == "invalid_args"
    assert "data.barcode" in reply["message"] and reply["result"]["field"] == "data.barcode"
    mark = rig.send("lbl-raw", action="print_raw", args={"zpl": "^XA^JUF^XZ"})
    refused = rig.final("lbl-raw", mark)
    assert refused["code"] == "unknown_action" and "print_raw" not in refused["result"]["known_actions"]
    assert rig.sim.printed == [] and len(rig.sim.queue) == 0


def test_paper_out_mid_batch_then_same_command_prints_only_the_rest(rig: Rig) -> None:
    args = {"template": "price_tag", "data": TAG, "copies": 5}
    mark = rig.send("lbl-5", args=args)
    first = rig.final("lbl-5", mark)
    assert first["status"] == "failed", first
    assert first["code"] == "paper_out"
    assert "закончились этикетки" in first["message"] and "Напечатано 3 из 5" in first["message"]
    last = first["result"]["last"]
    assert (last["copies_confirmed"], last["copies_remaining"], last["copies_requested"]) == (3, 2, 5)
    assert [p.copies_printed for p in rig.sim.printed] == [3]
    wait_until(lambda: rig.status().get("data", {}).get("paper_out") is True, timeout=5)
    assert "этикет" in rig.status()["data"]["message"]

    # the same command while the paper is still out: still nothing printed, still resumable
    mark = rig.send("lbl-5", args=args)
    still = rig.final("lbl-5", mark)
    assert still["status"] == "failed" and still["code"] == "paper_out"
    assert still["result"]["last"]["copies_confirmed"] == 3
    assert [p.copies_printed for p in rig.sim.printed] == [3]

    rig.sim.set_paper(None)  # a new roll
    wait_until(lambda: rig.status().get("data", {}).get("paper_out") is False, timeout=5)
    mark = rig.send("lbl-5", args=args)
    second = rig.final("lbl-5", mark)
    assert second["status"] == "done", second
    assert second["result"]["copies_printed_now"] == 2
    assert second["result"]["copies_confirmed"] == 5 and second["result"]["copies_remaining"] == 0
    assert [p.copies_printed for p in rig.sim.printed] == [3, 2]
    assert sum(p.copies_printed for p in rig.sim.printed) == 5
    assert len(rig.pngs()) == 2
    resumed = [r for r in rig.watcher.matching(lambda m: m.topic == rig.gw.address.reply("lbl-5"))
               if r.json()["status"] == "progress"]
    assert resumed and "2 из 5" in resumed[-1].json()["message"]

    # once done, a repeat is a duplicate of the done reply and prints nothing
    mark = rig.send("lbl-5", args=args)
    dup = rig.final("lbl-5", mark)
    assert dup["status"] == "duplicate" and dup["original"] == "done"
    # other args under the same id are refused, not printed
    mark = rig.send("lbl-5", args={**args, "copies": 6})
    assert rig.final("lbl-5", mark)["code"] == "command_id_reused"
    assert sum(p.copies_printed for p in rig.sim.printed) == 5 and len(rig.pngs()) == 2


def test_head_open_refuses_before_sending_and_the_retry_prints_everything(rig: Rig) -> None:
    rig.sim.set_paper(None)
    rig.sim.set_head_open(True)
    args = {"template": "price_tag", "data": TAG, "copies": 2}
    mark = rig.send("lbl-h", args=args)
    first = rig.final("lbl-h", mark)
    assert first["code"] == "head_open" and first["result"]["last"]["copies_confirmed"] == 0
    assert "головка" in first["message"]
    assert rig.sim.printed == []
    rig.sim.set_head_open(False)
    mark = rig.send("lbl-h", args=args)
    second = rig.final("lbl-h", mark)
    assert second["status"] == "done" and second["result"]["copies_printed_now"] == 2
    assert [p.copies_printed for p in rig.sim.printed] == [2]


def test_gateway_died_mid_batch_is_never_resumed_blindly(
    tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str
) -> None:
    """A journal row ``running`` with the family's row ``sending``: the count is unknown."""
    args = {"template": "price_tag", "data": TAG, "copies": 4}
    journal = Journal(tmp_path / "gw" / "journal.db")
    journal.begin("lbl-crash", DEVICE, "print_label", args_hash(args), args=args)
    journal.close()
    store = ProgressStore(tmp_path / "label_jobs.db")
    store.create("lbl-crash", args_hash(PrintLabelArgs.model_validate(args).model_dump(mode="json")), 4)
    store.sending("lbl-crash", 4)
    store.close()
    sim = LabelPrinterSimulator(LabelPrinterConfig(out_dir=tmp_path / "out"))
    rig = start(tmp_path, mqtt_url, bus_root, bus_tenant, sim)
    try:
        topic = rig.gw.address.reply("lbl-crash")
        recovered = rig.watcher.wait_for(lambda m: m.topic == topic and m.json()["status"] == "failed").json()
        assert recovered["code"] == "unknown_outcome"
        assert "не меньше 0 из 4" in recovered["message"]
        mark = rig.send("lbl-crash", args=args)
        again = rig.final("lbl-crash", mark)
        assert again["status"] == "duplicate" and again["code"] == "unknown_outcome"
        assert rig.sim.printed == [] and rig.pngs() == []
        row = ProgressStore(tmp_path / "label_jobs.db").get("lbl-crash")
        assert row is not None and row.state != SENDING
    finally:
        rig.gw.stop()
        rig.watcher.close()
        sim.stop()


def test_status_command_reports_the_printer(rig: Rig) -> None:
    rig.sim.set_paused(True)
    mark = rig.send("st-1", action="status")
    reply = rig.final("st-1", mark)
    assert reply["status"] == "done"
    result = reply["result"]
    assert result["paused"] is True and result["ready"] is False and "паузе" in result["message"]
    assert result["model"].startswith("ZD421")
    assert json.loads(json.dumps(result)) == result


def test_paper_out_makes_the_device_status_error_until_a_new_roll(rig: Rig) -> None:
    mark = rig.send("lbl-e", args={"template": "price_tag", "data": TAG, "copies": 5})
    assert rig.final("lbl-e", mark)["code"] == "paper_out"
    wait_until(lambda: rig.status().get("state") == "error", timeout=5)
    assert "этикет" in rig.status()["detail"] and rig.status()["data"]["paper_out"] is True
    rig.sim.set_paper(None)
    wait_until(lambda: rig.status().get("state") == "online", timeout=5)
    assert rig.status()["detail"] == ""
