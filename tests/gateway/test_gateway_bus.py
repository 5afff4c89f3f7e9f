"""The gateway on the real broker: births, command round trips, idempotency, events, rescan."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.config import GatewayConfig
from gateway.runtime import Gateway
from protocols.bus import DeviceKind
from tests.gateway.support import (
    BusWatcher,
    FakeScaleFactory,
    cloud_online,
    command,
    make_config,
    scale_device,
    wait_until,
)

pytestmark = pytest.mark.integration


def _final(watcher: BusWatcher, gw: Gateway, cid: str, status: str | None = None) -> dict:
    topic = gw.address.reply(cid)
    return watcher.wait_for(
        lambda m: m.topic == topic and m.json()["status"] != "accepted"
        and (status is None or m.json()["status"] == status)
    ).json()


def test_births_are_retained(gateway: Gateway, mqtt_url: str) -> None:
    fresh = BusWatcher(mqtt_url, [f"{gateway.address.prefix}/#"])
    try:
        state = fresh.wait_for(lambda m: m.topic == gateway.address.state()).json()
        inventory = fresh.wait_for(lambda m: m.topic == gateway.address.inventory())
        status = fresh.wait_for(lambda m: m.topic == gateway.address.device_status("scale1"))
    finally:
        fresh.close()
    assert state["online"] is True and state["session"] == gateway.link.session >= 1
    assert inventory.retain and status.retain
    devices = inventory.json()["devices"]
    assert [(d["id"], d["kind"], d["driver"]) for d in devices] == [("scale1", "scale", "mtsics")]
    assert set(devices[0]["capabilities"]) == {"weigh", "zero", "tare", "clear_tare", "status"}
    assert status.json()["state"] == "online"


def test_command_round_trip_and_duplicate(gateway: Gateway, watcher: BusWatcher, factory: FakeScaleFactory) -> None:
    factory.scale.weight = Decimal("1.25")
    topic = gateway.address.command("scale1", "weigh")
    watcher.publish(topic, command("w-1", args={"stable": True, "timeout": 2}))
    accepted = watcher.wait_for(lambda m: m.topic == gateway.address.reply("w-1")).json()
    assert accepted["status"] == "accepted"
    done = _final(watcher, gateway, "w-1")
    assert done["status"] == "done"
    assert done["result"] == {"net": "1.250", "stable": True, "unit": "kg", "tare": "0.000"}
    # the sender retries with the same command_id: answered from the journal, not re-run
    watcher.publish(topic, command("w-1", args={"stable": True, "timeout": 2}))
    dup = _final(watcher, gateway, "w-1", "duplicate")
    assert dup["original"] == "done" and dup["result"] == done["result"]
    assert factory.scale.calls["weigh_stable"] == 1
    # same id, other work: refused, not confused with the first
    watcher.publish(topic, command("w-1", args={"stable": False}))
    assert _final(watcher, gateway, "w-1", "failed")["code"] == "command_id_reused"
    assert factory.scale.calls["weigh_stable"] == 1


def test_driver_errors_become_failed_replies(gateway: Gateway, watcher: BusWatcher, factory: FakeScaleFactory) -> None:
    factory.scale.unstable_forever = True
    watcher.publish(gateway.address.command("scale1", "weigh"), command("u-1", args={"timeout": 0.5}))
    reply = _final(watcher, gateway, "u-1")
    assert (reply["status"], reply["code"]) == ("failed", "unstable")
    assert reply["result"]["last"]["stable"] is False
    # an unplugged scale: the command fails with device_offline, the status goes offline (retained)
    factory.scale.unplugged = True
    watcher.wait_for(
        lambda m: m.topic == gateway.address.device_status("scale1") and m.json()["state"] == "offline"
    )
    watcher.publish(gateway.address.command("scale1", "zero"), command("z-1"))
    assert _final(watcher, gateway, "z-1")["code"] == "device_offline"
    factory.scale.unplugged = False
    watcher.publish(gateway.address.gateway_command("rescan"), command("rs-1"))
    watcher.wait_for(
        lambda m: m.topic == gateway.address.device_status("scale1") and m.json()["state"] == "online"
        and m.json()["session"] == gateway.link.session,
        timeout=5,
    )
    # the device came back: the retry of z-1 is answered from the journal (its first run failed)
    watcher.publish(gateway.address.command("scale1", "zero"), command("z-1"))
    assert _final(watcher, gateway, "z-1", "duplicate")["original"] == "failed"


def test_duplicate_across_restart(
    gw_config: GatewayConfig, factory: FakeScaleFactory, watcher: BusWatcher
) -> None:
    gw = Gateway(gw_config, factories={DeviceKind.SCALE: factory}).start()
    try:
        wait_until(lambda: gw.devices.snapshots()["scale1"].state == "online")
        watcher.wait_for(lambda m: m.topic == gw.address.state() and m.json()["online"])
        watcher.publish(gw.address.command("scale1", "tare"), command("t-1"))
        first = _final(watcher, gw, "t-1")
        first_session = gw.link.session
    finally:
        gw.stop()
    offline = watcher.wait_for(lambda m: m.topic == gw.address.state() and not m.json()["online"]).json()
    assert (offline["session"], offline["reason"]) == (first_session, "shutdown")
    gw2 = Gateway(gw_config, factories={DeviceKind.SCALE: factory}).start()
    try:
        watcher.wait_for(lambda m: m.topic == gw2.address.state() and m.json()["session"] == first_session + 1)
        watcher.publish(gw2.address.command("scale1", "tare"), command("t-1"))
        dup = _final(watcher, gw2, "t-1", "duplicate")
    finally:
        gw2.stop()
    assert dup["original"] == "done" and dup["result"] == first["result"]
    assert factory.scale.calls["tare"] == 1


def test_weight_events_go_through_the_outbox_when_cloud_online(
    tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str, factory: FakeScaleFactory
) -> None:
    config = make_config(tmp_path, mqtt_url, bus_root, bus_tenant, require_cloud_online=True,
                         devices=[scale_device(deadband_kg="0.010")])
    cloud = BusWatcher(mqtt_url, [f"{config.address.prefix}/dev/+/evt/+"])
    factory.scale.weight = Decimal("0.500")
    gw = Gateway(config, factories={DeviceKind.SCALE: factory}).start()
    try:
        wait_until(lambda: gw.outbox.depth >= 1)
        factory.scale.weight = Decimal("0.505")  # inside the deadband: no event
        polls = factory.scale.calls["weigh_now"]
        wait_until(lambda: factory.scale.calls["weigh_now"] >= polls + 3)
        assert gw.outbox.depth == 1
        factory.scale.weight = Decimal("0.750")
        wait_until(lambda: gw.outbox.depth >= 2)
        assert not cloud.messages, "events must wait for the cloud to be online"
        cloud.publish(*cloud_online(bus_root)[:2], retain=True)
        wait_until(lambda: len(cloud.messages) >= 2 and gw.outbox.depth == 0)
        events = [m.json() for m in cloud.messages]
        assert [e["data"]["net"] for e in events] == ["0.500", "0.750"]
        assert [e["seq"] for e in events] == [1, 2]
        assert all(e["data"]["stable"] for e in events)
        ping = gw.ping()
        assert ping["outbox"]["depth"] == 0 and ping["outbox"]["dropped"] == 0 and ping["cloud_online"]
    finally:
        gw.stop()
        cloud.publish(*cloud_online(bus_root)[:1], b"", retain=True)
        cloud.close()


def test_rescan_rereads_config_devices(
    tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str, factory: FakeScaleFactory, watcher: BusWatcher,
    gw_config: GatewayConfig,
) -> None:
    path = tmp_path / "gateway.toml"
    base = (f'tenant = "{bus_tenant}"\nstore = "s1"\ngateway = "gw1"\nbus_root = "{bus_root}"\n'
            f'data_dir = "{tmp_path / "gw"}"\n[broker]\nurl = "{mqtt_url}"\nkeepalive = 5\n')
    path.write_text(base)
    from gateway.config import load_config

    gw = Gateway(load_config(path), config_path=path, factories={DeviceKind.SCALE: factory}).start()
    try:
        watcher.wait_for(lambda m: m.topic == gw.address.inventory() and m.json()["devices"] == [])
        path.write_text(base + '[[devices]]\nid = "scale9"\nkind = "scale"\ndriver = "mtsics"\nurl = "x"\n'
                        '[[devices]]\nid = "printer1"\nkind = "lane"\ndriver = "checkout"\nurl = "y"\n')
        watcher.publish(gw.address.gateway_command("rescan"), command("rs-2"))
        reply = _final(watcher, gw, "rs-2")
        assert reply["result"]["added"] == ["printer1", "scale9"] or sorted(reply["result"]["added"]) == [
            "printer1", "scale9"]
        inv = watcher.wait_for(lambda m: m.topic == gw.address.inventory() and len(m.json()["devices"]) == 2)
        assert {d["id"] for d in inv.json()["devices"]} == {"printer1", "scale9"}
        # a kind without a family yet: listed, status error with the reason, commands refused
        err = watcher.wait_for(lambda m: m.topic == gw.address.device_status("printer1")).json()
        assert err["state"] == "error" and "lane" in err["detail"]
        watcher.publish(gw.address.command("printer1", "sell"), command("p-1"))
        assert _final(watcher, gw, "p-1")["code"] == "driver_config"
        # a broken config file: the rescan fails with the reason, the gateway keeps its devices
        path.write_text(base + "[[devices]]\nid = 'bad id!'\n")
        watcher.publish(gw.address.gateway_command("rescan"), command("rs-3"))
        bad = _final(watcher, gw, "rs-3")
        assert bad["code"] == "config_error" and "devices[0]" in bad["message"]
        assert set(gw.devices.snapshots()) == {"printer1", "scale9"}
    finally:
        gw.stop()
    assert json.loads(json.dumps(gw_config.model_dump(mode="json")))  # config is serialisable
