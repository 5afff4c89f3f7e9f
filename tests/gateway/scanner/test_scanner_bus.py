"""The scanner family over the real broker, reading the scanner simulator on a pty."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.config import DeviceConfig
from gateway.runtime import Gateway
from protocols.bus import DeviceKind
from protocols.scanner import LineFraming
from simulators.scanner import ScannerConfig, ScannerSimulator
from tests.gateway.support import BusWatcher, command, make_config, wait_until

pytestmark = pytest.mark.integration

DEVICE = "sc1"
EAN13 = "4600439931256"
WEIGHT = "2300123012347"  # prefix 23, PLU 123, 1.234 kg
MILK = "0104600439931256215bTxQ!\x1d93dGVz"
NOT_WEIGHT = "2600123012348"  # a 26 prefix the store did not configure as weight
BAD = "4600439931257"  # wrong check digit


@dataclass
class Rig:
    gw: Gateway
    sim: ScannerSimulator
    watcher: BusWatcher

    def scans(self) -> list[dict[str, Any]]:
        topic = self.gw.address.event(DEVICE, "scan")
        return [m.json() for m in self.watcher.matching(lambda m: m.topic == topic)]

    def states(self) -> list[str]:
        topic = self.gw.address.device_status(DEVICE)
        return [m.json()["state"] for m in self.watcher.matching(lambda m: m.topic == topic)]


@pytest.fixture
def rig(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Rig]:
    framing = LineFraming.from_names(prefix="STX", suffix="CRLF", aim=True, gs_substitute="<GS>")
    sim = ScannerSimulator(ScannerConfig(framing=framing))
    path = sim.serve_pty()
    options = {"prefix": "STX", "suffix": "CRLF", "aim": True, "gs_substitute": "<GS>",
               "weight_prefixes": ["22", "23"], "read_timeout_s": 0.1}
    dev = DeviceConfig(id=DEVICE, kind=DeviceKind.SCANNER, driver="serial", url=path, options=options)
    config = make_config(tmp_path, mqtt_url, bus_root, bus_tenant, devices=[dev])
    watcher = BusWatcher(mqtt_url, [f"{config.address.prefix}/#"])
    gw = Gateway(config, device_backoff=(0.1, 0.5)).start()
    try:
        watcher.wait_for(lambda m: m.topic == gw.address.device_status(DEVICE) and m.json()["state"] == "online")
        yield Rig(gw, sim, watcher)
    finally:
        gw.stop()
        watcher.close()
        sim.stop()


def test_three_scans_become_three_events_with_their_meaning(rig: Rig) -> None:
    for code in (EAN13, WEIGHT, MILK, NOT_WEIGHT, BAD):
        assert rig.sim.scan(code)
    events = wait_until(lambda: rig.scans() if len(rig.scans()) >= 5 else None, timeout=5)
    assert len(events) == 5
    ean, weight, milk, other, bad = (e["data"] for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)

    assert ean["symbology"] == "EAN-13" and ean["aim"] == "]E0" and ean["data"] == EAN13
    assert ean["parsed"] == {"kind": "product", "gtin": EAN13, "gtin14": "0" + EAN13, "symbology": "EAN-13"}

    assert weight["data"] == WEIGHT
    assert weight["parsed"]["kind"] == "weight"
    assert weight["parsed"]["plu"] == 123 and weight["parsed"]["grams"] == 1234
    assert weight["parsed"]["weight_kg"] == "1.234" and weight["parsed"]["prefix"] == "23"

    assert milk["symbology"] == "GS1 DataMatrix" and milk["aim"] == "]d2"
    assert milk["data"] == MILK  # GS kept, restored from the scanner's <GS>
    assert milk["parsed"]["kind"] == "marking"
    assert milk["parsed"]["gtin"] == "04600439931256" and milk["parsed"]["serial"] == "5bTxQ!"
    assert milk["parsed"]["gs_restored"] is False

    # prefix 26 is not a weight prefix in this store: an ordinary (restricted) EAN-13
    assert other["parsed"]["kind"] == "product" and other["parsed"]["gtin"] == NOT_WEIGHT
    assert bad["parsed"]["kind"] == "unknown" and "контрольная цифра" in bad["parsed"]["reason"]
    assert bad["data"] == BAD

    # on the wire the GS is a JSON escape, not a raw control byte
    raw = next(m.payload for m in rig.watcher.matching(lambda m: m.topic.endswith("/evt/scan") and b"93dGVz" in m.payload))
    assert b"\\u001d93dGVz" in raw and b"\x1d" not in raw
    assert json.loads(raw)["data"]["data"] == MILK


def test_garbage_is_counted_not_published(rig: Rig) -> None:
    assert rig.sim.inject_garbage(b"\x00\xffnoise\r\n")
    assert rig.sim.scan(EAN13)
    wait_until(lambda: len(rig.scans()) == 1, timeout=5)
    mark = len(rig.watcher.messages)
    rig.watcher.publish(rig.gw.address.command(DEVICE, "status"), command("st-1"))
    topic = rig.gw.address.reply("st-1")
    reply = wait_until(lambda: [m.json() for m in rig.watcher.messages[mark:]
                                if m.topic == topic and m.json()["status"] == "done"], timeout=5)[0]
    assert reply["result"]["scans"] == 1 and reply["result"]["discarded"] >= 1
    assert reply["result"]["weight_prefixes"] == ["22", "23"]
    assert [e["data"]["data"] for e in rig.scans()] == [EAN13]


def test_unplug_goes_offline_and_plug_comes_back(rig: Rig) -> None:
    rig.sim.unplug()
    wait_until(lambda: rig.states()[-1] == "offline", timeout=10)
    assert not rig.sim.scan(EAN13)  # nobody to receive it while unplugged
    rig.sim.plug()
    wait_until(lambda: rig.states()[-1] == "online", timeout=10)
    assert rig.states()[-2:] == ["offline", "online"]
    assert rig.sim.scan(WEIGHT)
    events = wait_until(lambda: rig.scans() or None, timeout=5)
    assert [e["data"]["data"] for e in events] == [WEIGHT]
