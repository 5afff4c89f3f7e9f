"""The real MT-SICS driver against its simulator on a pty; MQTT 3.1.1 fallback; the loop watchdog."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.runtime import Gateway
from simulators.scale.mtsics import MtSicsConfig, MtSicsSimulator
from tests.gateway.support import BusWatcher, command, make_config, scale_device, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def simulator() -> Iterator[MtSicsSimulator]:
    sim = MtSicsSimulator(MtSicsConfig(unstable_after_change=0.1))
    yield sim
    sim.stop()


def test_mtsics_simulator_on_pty(
    tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str, simulator: MtSicsSimulator
) -> None:
    url = simulator.serve_pty()
    config = make_config(tmp_path, mqtt_url, bus_root, bus_tenant,
                         devices=[scale_device(url=url, poll_interval_s=0.1, timeout=0.5)])
    watcher = BusWatcher(mqtt_url, [f"{config.address.prefix}/#"])
    gw = Gateway(config, device_backoff=(0.1, 0.5)).start()
    try:
        watcher.wait_for(lambda m: m.topic == gw.address.device_status("scale1") and m.json()["state"] == "online")
        simulator.set_weight(Decimal("2.345"))
        event = watcher.wait_for(lambda m: m.topic == gw.address.event("scale1", "weight")
                                 and m.json()["data"]["net"] == "2.345").json()
        assert event["data"]["stable"] is True
        watcher.publish(gw.address.command("scale1", "weigh"), command("sim-1", args={"timeout": 2}))
        reply = watcher.wait_for(lambda m: m.topic == gw.address.reply("sim-1") and m.json()["status"] == "done")
        assert reply.json()["result"]["net"] == "2.345"
        sent = len(simulator.commands)
        watcher.publish(gw.address.command("scale1", "weigh"), command("sim-1", args={"timeout": 2}))
        watcher.wait_for(lambda m: m.topic == gw.address.reply("sim-1") and m.json()["status"] == "duplicate")
        weighs = [c for c in simulator.commands[sent:] if type(c).__name__ == "SendStableWeight"]
        assert weighs == [], "the duplicate did not reach the scale"
        # unplugged: offline (retained), then back online by itself
        simulator.unplug()
        watcher.wait_for(lambda m: m.topic == gw.address.device_status("scale1") and m.json()["state"] == "offline",
                         timeout=10)
        simulator.plug()
        wait_until(lambda: gw.devices.snapshots()["scale1"].state == "online", timeout=10)
    finally:
        gw.stop()
        watcher.close()


def test_falls_back_to_mqtt_311_on_amqtt(tmp_path: Path, bus_root: str, bus_tenant: str) -> None:
    from vitrina.broker import EmbeddedBroker

    broker = EmbeddedBroker(port=0).start()
    try:
        config = make_config(tmp_path, broker.url, bus_root, bus_tenant, devices=[])
        watcher = BusWatcher(broker.url, [f"{config.address.prefix}/#"])
        gw = Gateway(config).start()
        try:
            assert gw.link.wait_connected(10)
            assert gw.link.protocol_name == "3.1.1"
            watcher.wait_for(lambda m: m.topic == gw.address.state() and m.json()["online"])
            watcher.publish(gw.address.gateway_command("ping"), command("p-311"))
            reply = watcher.wait_for(lambda m: m.topic == gw.address.reply("p-311") and m.json()["status"] == "done")
            assert reply.json()["result"]["mqtt"]["protocol"] == "3.1.1"
        finally:
            gw.stop()
            watcher.close()
    finally:
        broker.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_watchdog_restarts_a_dead_paho_thread(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> None:
    config = make_config(tmp_path, mqtt_url, bus_root, bus_tenant, devices=[])
    gw = Gateway(config).start()
    try:
        assert gw.link.wait_connected(5)
        assert gw.link.protocol_name == "5"
        client = gw.link._client
        assert client is not None
        original = client._loop

        def explode(*args: object, **kwargs: object) -> object:
            client._loop = original  # type: ignore[method-assign]
            raise RuntimeError("simulated crash of paho's network thread")

        client._loop = explode  # type: ignore[method-assign]
        wait_until(lambda: gw.link.loop_restarts == 1, timeout=5)
        wait_until(lambda: gw.link.is_connected and gw.link.connects == 2, timeout=10)
        assert gw.ping()["mqtt"]["loop_restarts"] == 1
    finally:
        gw.stop()
