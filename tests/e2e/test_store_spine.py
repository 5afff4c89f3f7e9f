"""The spine end to end: scale on a pty → gateway process → broker → cloud → database → API."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from protocols import mtsics
from protocols.bus import Command, GatewayAddress, Reply, ReplyStatus, decode, encode
from simulators.scale.mtsics import MtSicsSimulator
from tests.e2e.conftest import gateway_config
from tests.e2e.harness import Cloud, GatewayProcess, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _online_scale(cloud: Cloud, gw: GatewayProcess) -> dict:
    return wait_for(
        lambda: (d := cloud.device("scale-1")) and d["state"] == "online" and d,
        20,
        f"scale-1 online in the API (gateway log: {gw.log()[-2000:]})",
    )


def test_scale_weight_and_zero_through_the_whole_spine(store):
    cloud, gw, sim = store
    device = _online_scale(cloud, gw)
    gateway = cloud.gateway()
    assert gateway["online"] is True and gateway["status"] == "online"

    sim.set_weight(Decimal("1.235"))
    event = wait_for(
        lambda: next((e for e in cloud.events() if e["data"].get("net") == "1.235"), None), 15, "weight 1.235 in the DB"
    )
    assert event["data"]["stable"] is True
    assert event["device_id"] == device["id"]

    response = cloud.command(device["id"], "weigh")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"
    assert response.json()["result"]["net"] == "1.235"

    sim.set_weight(Decimal("0.010"))  # crumbs on an empty platform: within the zero range
    wait_for(lambda: cloud.command(device["id"], "weigh").json()["result"]["net"] == "0.010", 10, "0.010 on the scale")
    response = cloud.command(device["id"], "zero", key="zero-1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "done", body
    after = cloud.command(device["id"], "weigh").json()
    assert after["result"]["net"] == "0.000"
    # the same idempotency key again: the stored result, the scale is not zeroed twice
    zeros_before = sum(1 for c in sim.commands if isinstance(c, mtsics.Zero))
    again = cloud.command(device["id"], "zero", key="zero-1")
    assert again.status_code == 200 and again.json()["command_id"] == body["command_id"]
    assert sum(1 for c in sim.commands if isinstance(c, mtsics.Zero)) == zeros_before


def test_garbage_from_the_scale_is_survived(store):
    cloud, gw, sim = store
    device = _online_scale(cloud, gw)
    sim.set_weight(Decimal("0.500"))
    sim.inject_garbage(b"\x00\xff\x13garbage\r\n\x8d\x8d")
    wait_for(lambda: cloud.command(device["id"], "weigh").json().get("result", {}).get("net") == "0.500", 10, "weigh after garbage")
    assert gw.alive()


def test_kill_9_marks_the_gateway_offline_and_a_restart_brings_it_back(store):
    cloud, gw, _sim = store
    _online_scale(cloud, gw)
    first = cloud.gateway()
    gw.kill()
    t0 = time.monotonic()
    wait_for(lambda: cloud.gateway()["online"] is False, 10, "gateway offline after kill -9 (Will)")
    # keepalive is 2 s: the broker publishes the Will after 1.5 × keepalive
    assert time.monotonic() - t0 < 8
    assert cloud.gateway()["status"] == "offline"

    gw.start()
    wait_for(lambda: cloud.gateway()["online"] is True, 20, "gateway online after restart")
    again = cloud.gateway()
    assert again["session"] > first["session"]
    assert [d["code"] for d in cloud.get("/devices")] == ["scale-1"]
    _online_scale(cloud, gw)


def test_the_same_command_id_runs_once_across_a_gateway_restart(store, mqtt_url, bus_root, bus_tenant):
    cloud, gw, sim = store
    _online_scale(cloud, gw)
    sim.set_weight(Decimal("0.250"))
    address = GatewayAddress(bus_tenant, "store-1", "gw-1", root=bus_root)
    replies: list[Reply] = []
    got = threading.Condition()

    def on_message(_c, _u, msg):
        with got:
            replies.append(decode(Reply, msg.payload))
            got.notify_all()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"e2e-cmd-{bus_tenant}")
    client.on_message = on_message
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    client.connect(host, int(port))
    client.loop_start()
    try:
        client.subscribe(address.reply("tare-once"), qos=1)
        time.sleep(0.3)
        command = Command(command_id="tare-once", args={})

        def final_replies():
            return [r for r in replies if r.status.is_final]

        wait_for(lambda: cloud.command(cloud.device("scale-1")["id"], "weigh").json()["result"]["net"] == "0.250", 10, "0.250")
        client.publish(address.command("scale-1", "tare"), encode(command), qos=1)
        wait_for(lambda: len(final_replies()) >= 1, 10, "first reply")
        first = final_replies()[0]
        assert first.status is ReplyStatus.DONE, first
        tares = sum(1 for c in sim.commands if isinstance(c, mtsics.Tare))
        assert tares == 1

        gw.stop()
        gw.start()
        wait_for(lambda: cloud.gateway()["online"] is True, 20, "gateway back")
        client.publish(address.command("scale-1", "tare"), encode(command), qos=1)
        wait_for(lambda: len(final_replies()) >= 2, 10, "reply to the repeat")
        second = final_replies()[1]
        assert second.status is ReplyStatus.DUPLICATE
        assert second.original is ReplyStatus.DONE
        assert second.result == first.result
        assert sum(1 for c in sim.commands if isinstance(c, mtsics.Tare)) == 1
    finally:
        client.loop_stop()
        client.disconnect()


def test_broker_down_for_10_s_loses_and_duplicates_nothing(
    private_broker, bus_root, bus_tenant, fresh_database_url, tmp_path: Path, scale_sim: MtSicsSimulator
):
    cloud = Cloud(fresh_database_url, private_broker.url, bus_root, bus_tenant)
    pty = scale_sim.serve_pty()
    gw = GatewayProcess(tmp_path, gateway_config(private_broker.url, bus_root, bus_tenant, tmp_path / "gw", pty)).start()
    try:
        _online_scale(cloud, gw)
        weights = [Decimal("0.100"), Decimal("0.200"), Decimal("0.300")]
        for w in weights:
            scale_sim.set_weight(w)
            wait_for(lambda w=w: any(e["data"]["net"] == str(w) for e in cloud.events()), 10, f"{w} before the outage")

        private_broker.stop()
        outage = [Decimal("1.100"), Decimal("1.200"), Decimal("1.300"), Decimal("1.400"), Decimal("1.500")]
        t0 = time.monotonic()
        for w in outage:
            scale_sim.set_weight(w)
            time.sleep(1.5)  # stable, polled, appended to the outbox
        time.sleep(max(0.0, 10 - (time.monotonic() - t0)))
        private_broker.start()

        def all_outage_weights_arrived():
            nets = {e["data"]["net"] for e in cloud.events()}
            return all(str(w) in nets for w in outage)

        wait_for(all_outage_weights_arrived, 30, "every weight of the outage in the DB")
        events = cloud.events()
        ids = [e["event_id"] for e in events]
        assert len(ids) == len(set(ids)), "an event stored twice"
        seqs = sorted(e["seq"] for e in events)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"a gap in seq: {seqs}"
    finally:
        gw.stop()
        cloud.stop()
