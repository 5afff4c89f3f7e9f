"""The scale family with the Massa-K (Protocol 100) and Modbus drivers, over the real broker.

Each scale's simulator plays the device; the bus round trips are weigh / tare / clear_tare /
zero, a refused zero, and the polled ``weight`` event. The Modbus case uses a register map that
differs from the driver's defaults, configured through the device options: it only reads right
if the family passes driver options through to ``open_scale``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pytest

from gateway.config import DeviceConfig
from gateway.runtime import Gateway
from protocols.bus import DeviceKind
from simulators.scale.massak import MassaKConfig, MassaKSimulator
from simulators.scale.modbus import ModbusScaleSimConfig, ModbusScaleSimulator
from tests.gateway.support import BusWatcher, command, make_config, wait_until

pytestmark = pytest.mark.integration

DEVICE = "scale1"
FINAL = ("done", "failed", "duplicate", "expired")
_ids = itertools.count(1)


class ScaleSim(Protocol):
    tare: Decimal
    zero_offset: Decimal

    def set_weight(self, kg: Decimal) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Rig:
    gw: Gateway
    sim: ScaleSim
    watcher: BusWatcher

    def call(self, action: str, **args: Any) -> dict[str, Any]:
        command_id = f"{action}-{next(_ids)}"
        mark = len(self.watcher.messages)
        self.watcher.publish(self.gw.address.command(DEVICE, action), command(command_id, args=args))
        topic = self.gw.address.reply(command_id)
        found = wait_until(lambda: [m.json() for m in self.watcher.messages[mark:]
                                    if m.topic == topic and m.json()["status"] in FINAL], timeout=10)
        return dict(found[0])

    def weigh(self) -> dict[str, Any]:
        reply = self.call("weigh", timeout=3)
        assert reply["status"] == "done", reply
        return dict(reply["result"])


def massak_pty() -> tuple[ScaleSim, str, dict[str, Any]]:
    sim = MassaKSimulator(MassaKConfig(unstable_after_change=0.1))
    return sim, sim.serve_pty(), {"timeout": 0.5, "poll_interval": 0.05}


def massak_tcp() -> tuple[ScaleSim, str, dict[str, Any]]:
    sim = MassaKSimulator(MassaKConfig(unstable_after_change=0.1))
    host, port = sim.serve_tcp()
    return sim, f"tcp://{host}:{port}", {"timeout": 0.5, "poll_interval": 0.05}


_MAP = {"weight_address": 6, "word_order": "little", "status_address": 8, "tare_address": 12, "command_address": 20}


def modbus_tcp() -> tuple[ScaleSim, str, dict[str, Any]]:
    sim = ModbusScaleSimulator(ModbusScaleSimConfig(unstable_after_change=0.1, **_MAP))  # type: ignore[arg-type]
    host, port = sim.serve_tcp()
    return sim, f"tcp://{host}:{port}", {"timeout": 0.5, "poll_interval": 0.05, **_MAP}


SCALES: dict[str, tuple[str, Callable[[], tuple[ScaleSim, str, dict[str, Any]]]]] = {
    "massak-pty": ("massak", massak_pty),
    "massak-tcp": ("massak", massak_tcp),
    "modbus-tcp": ("modbus", modbus_tcp),
}


@pytest.fixture(params=sorted(SCALES))
def rig(request: pytest.FixtureRequest, tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Rig]:
    driver, make = SCALES[request.param]
    sim, url, options = make()
    dev = DeviceConfig(id=DEVICE, kind=DeviceKind.SCALE, driver=driver, url=url,
                       options={"poll_interval_s": 0.1, **options})
    config = make_config(tmp_path, mqtt_url, bus_root, bus_tenant, devices=[dev])
    watcher = BusWatcher(mqtt_url, [f"{config.address.prefix}/#"])
    gw = Gateway(config, device_backoff=(0.1, 0.5)).start()
    try:
        watcher.wait_for(lambda m: m.topic == gw.address.device_status(DEVICE) and m.json()["state"] == "online",
                         timeout=10)
        yield Rig(gw, sim, watcher)
    finally:
        gw.stop()
        watcher.close()
        sim.stop()


def test_weigh_tare_clear_tare_and_weight_events(rig: Rig) -> None:
    rig.sim.set_weight(Decimal("0.500"))
    event_topic = rig.gw.address.event(DEVICE, "weight")
    rig.watcher.wait_for(lambda m: m.topic == event_topic and m.json()["data"]["net"] == "0.500", timeout=10)
    assert rig.weigh()["net"] == "0.500"

    tared = rig.call("tare")
    assert tared["status"] == "done", tared
    assert tared["result"]["tare"] == "0.500" and tared["result"]["net"] == "0.000"
    assert rig.sim.tare == Decimal("0.500")

    rig.sim.set_weight(Decimal("1.750"))
    reading = rig.weigh()
    assert reading["net"] == "1.250" and reading["tare"] == "0.500" and reading["stable"] is True

    cleared = rig.call("clear_tare")
    assert cleared["status"] == "done", cleared
    assert rig.sim.tare == 0
    assert rig.weigh()["net"] == "1.750"

    status = rig.call("status")
    assert status["status"] == "done" and status["result"]["overload"] is False


def test_zero_round_trip_and_a_refused_zero(rig: Rig) -> None:
    rig.sim.set_weight(Decimal("0.100"))  # drift within the zero-setting range
    assert rig.weigh()["net"] == "0.100"
    zeroed = rig.call("zero")
    assert zeroed["status"] == "done", zeroed
    assert rig.sim.zero_offset == Decimal("0.100")
    assert rig.weigh()["net"] == "0.000"

    rig.sim.set_weight(Decimal("5.000"))  # a load on the platform: the scale refuses to zero
    assert rig.weigh()["net"] == "4.900"
    refused = rig.call("zero")
    assert refused["status"] == "failed" and refused["code"], refused
    assert rig.sim.zero_offset == Decimal("0.100")
    assert rig.weigh()["net"] == "4.900"
