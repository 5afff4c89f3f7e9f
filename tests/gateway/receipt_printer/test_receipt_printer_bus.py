"""The receipt printer family over the real broker, driving the ESC/POS simulator over TCP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.config import DeviceConfig
from gateway.runtime import Gateway
from protocols.bus import DeviceKind
from simulators.printer.device import ReceiptPrinterConfig, ReceiptPrinterSimulator
from tests.gateway.support import BusWatcher, command, make_config, wait_until

pytestmark = pytest.mark.integration

DEVICE = "rp1"
FINAL = ("done", "failed", "duplicate", "expired")
DOC: dict[str, Any] = {
    "title": "Сборочный лист №12",
    "blocks": [
        {"type": "text", "text": "Заказ 4711 — доставка к 18:00"},
        {"type": "separator"},
        {"type": "table", "columns": [{"title": "Товар"}, {"title": "Кол.", "width": 6, "align": "right"}],
         "rows": [["Молоко 3,2% 1 л", "2"], ["Хлеб бородинский", "1"]]},
        {"type": "totals", "items": [["Итого позиций", "3"]]},
        {"type": "barcode", "data": "ORDER-4711"},
        {"type": "qr", "data": "https://example.ru/o/4711", "size": 4},
    ],
}


@dataclass
class Rig:
    gw: Gateway
    sim: ReceiptPrinterSimulator
    watcher: BusWatcher
    out: Path

    def send(self, command_id: str, action: str = "print_document", args: dict[str, Any] | None = None) -> int:
        mark = len(self.watcher.messages)
        self.watcher.publish(self.gw.address.command(DEVICE, action), command(command_id, args=args or {}))
        return mark

    def final(self, command_id: str, since: int, timeout: float = 15.0) -> dict[str, Any]:
        topic = self.gw.address.reply(command_id)
        found = wait_until(lambda: [m for m in self.watcher.messages[since:]
                                    if m.topic == topic and m.json()["status"] in FINAL], timeout)
        return dict(found[0].json())

    def status_data(self) -> dict[str, Any]:
        found = self.watcher.matching(lambda m: m.topic == self.gw.address.device_status(DEVICE))
        return dict(found[-1].json().get("data", {})) if found else {}


@pytest.fixture
def rig(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Rig]:
    sim = ReceiptPrinterSimulator(ReceiptPrinterConfig(width=48, near_end_lines=5, out_dir=tmp_path / "out"))
    host, port = sim.serve_tcp(0)
    options = {"poll_interval_s": 0.2, "settle": 0.2, "timeout": 1.0, "width": 48}
    dev = DeviceConfig(id=DEVICE, kind=DeviceKind.RECEIPT_PRINTER, driver="escpos", url=f"tcp://{host}:{port}",
                       options=options)
    config = make_config(tmp_path, mqtt_url, bus_root, bus_tenant, devices=[dev])
    watcher = BusWatcher(mqtt_url, [f"{config.address.prefix}/#"])
    gw = Gateway(config, device_backoff=(0.1, 0.5)).start()
    try:
        watcher.wait_for(lambda m: m.topic == gw.address.device_status(DEVICE) and m.json()["state"] == "online")
        yield Rig(gw, sim, watcher, tmp_path / "out")
    finally:
        gw.stop()
        watcher.close()
        sim.stop()


def test_document_printed_as_text(rig: Rig) -> None:
    mark = rig.send("doc-1", args=DOC)
    reply = rig.final("doc-1", mark)
    assert reply["status"] == "done", reply
    assert reply["result"]["printed"] is True and reply["result"]["state"] == "printed"
    files = sorted(rig.out.glob("doc-*.txt"))
    assert len(files) == 1
    text = files[0].read_text(encoding="utf-8")
    assert "Сборочный лист №12" in text
    assert 'Заказ 4711 - доставка к 18:00' in text  # the dash mapped for CP866
    assert "Молоко 3,2% 1 л" in text and "Хлеб бородинский" in text
    assert any(line.startswith("Итого позиций") and line.endswith("3") for line in text.splitlines())
    assert "[CODE128 ORDER-4711]" in text and "[QR https://example.ru/o/4711]" in text
    assert rig.status_data()["paper"] == "ok" and rig.status_data()["cover"] == "closed"
    mark = rig.send("doc-1", args=DOC)
    assert rig.final("doc-1", mark)["status"] == "duplicate"
    assert len(rig.sim.documents) == 1


def test_table_wider_than_the_paper_is_refused_before_the_journal(rig: Rig) -> None:
    wide = {"title": "T", "blocks": [{"type": "table", "columns": [{"title": "a", "width": 30}, {"title": "b", "width": 30}],
                                      "rows": []}]}
    mark = rig.send("doc-wide", args=wide)
    reply = rig.final("doc-wide", mark)
    assert reply["code"] == "invalid_args" and "шире бумаги" in reply["message"]
    mark = rig.send("doc-bad", args={"title": "T", "blocks": [{"type": "picture"}]})
    assert rig.final("doc-bad", mark)["code"] == "invalid_args"
    assert rig.sim.documents == [] and len(rig.sim.pending) == 0


def test_paper_out_before_printing_fails_and_nothing_is_sent(rig: Rig) -> None:
    rig.sim.set_paper(0)
    wait_until(lambda: rig.status_data().get("paper") == "out", timeout=5)
    assert "бумага" in rig.status_data()["message"]
    mark = rig.send("doc-2", args=DOC)
    reply = rig.final("doc-2", mark)
    assert reply["status"] == "failed" and reply["code"] == "paper_out"
    assert "закончилась бумага" in reply["message"]
    assert reply["result"]["last"]["printed"] is False
    assert len(rig.sim.pending) == 0 and rig.sim.documents == []


def test_paper_out_while_printing_is_incomplete_and_never_resent(rig: Rig) -> None:
    rig.sim.set_paper(6)  # the document needs about 20 lines
    mark = rig.send("doc-3", args=DOC)
    reply = rig.final("doc-3", mark)
    assert reply["status"] == "failed", reply
    assert reply["code"] == "print_incomplete"
    assert "закончилась бумага" in reply["message"] and "не будет отправлен повторно" in reply["message"]
    assert reply["result"]["last"]["reason"] == "paper_out" and reply["result"]["last"]["state"] == "incomplete"
    assert rig.sim.documents == [] and len(rig.sim.pending) > 0  # the rest waits in the printer's buffer
    wait_until(lambda: rig.status_data().get("paper") == "out", timeout=5)
    pending = len(rig.sim.pending)
    # the cloud retries the same command: answered from the journal, nothing sent again
    mark = rig.send("doc-3", args=DOC)
    again = rig.final("doc-3", mark)
    assert again["status"] == "duplicate" and again["original"] == "failed" and again["code"] == "print_incomplete"
    assert len(rig.sim.pending) == pending
    # paper loaded: the printer finishes the document from its buffer, once
    rig.sim.set_paper(None)
    wait_until(lambda: rig.status_data().get("paper") == "ok", timeout=5)
    assert len(rig.sim.documents) == 1
    assert len(sorted(rig.out.glob("doc-*.txt"))) == 1


def test_status_command_and_near_end(rig: Rig) -> None:
    rig.sim.set_paper(4)
    rig.sim.set_cover_open(True)
    mark = rig.send("st-1", action="status")
    reply = rig.final("st-1", mark)
    assert reply["status"] == "done"
    assert reply["result"]["cover"] == "open" and reply["result"]["paper"] == "near_end"
    assert reply["result"]["faults"][0] == "cover_open" and "крышка" in reply["result"]["message"]


def test_cover_open_makes_the_device_status_error_until_closed(rig: Rig) -> None:
    topic = rig.gw.address.device_status(DEVICE)

    def last() -> dict[str, Any]:
        found = rig.watcher.matching(lambda m: m.topic == topic)
        return dict(found[-1].json()) if found else {}

    rig.sim.set_cover_open(True)
    wait_until(lambda: last().get("state") == "error", timeout=5)
    assert "крышка" in last()["detail"] and last()["data"]["cover"] == "open"
    rig.sim.set_cover_open(False)
    wait_until(lambda: last().get("state") == "online", timeout=5)
    assert last()["detail"] == ""
