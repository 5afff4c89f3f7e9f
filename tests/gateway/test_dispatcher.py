"""Every bad command gets its specific reply; nothing bad is executed; the gateway keeps going."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from gateway.runtime import Gateway
from tests.gateway.support import BusWatcher, FakeScaleFactory, command

pytestmark = pytest.mark.integration


def _reply(watcher: BusWatcher, gw: Gateway, command_id: str, status: str | None = None) -> dict:
    topic = gw.address.reply(command_id)
    msg = watcher.wait_for(
        lambda m: m.topic == topic and (status is None or json.loads(m.payload)["status"] == status)
    )
    return msg.json()


def _final(watcher: BusWatcher, gw: Gateway, command_id: str) -> dict:
    topic = gw.address.reply(command_id)
    msg = watcher.wait_for(lambda m: m.topic == topic and json.loads(m.payload)["status"] not in ("accepted",))
    return msg.json()


def _ping_ok(watcher: BusWatcher, gw: Gateway, cid: str = "ping-after") -> dict:
    watcher.publish(gw.address.gateway_command("ping"), command(cid))
    reply = _final(watcher, gw, cid)
    assert reply["status"] == "done"
    return reply


def test_malformed_json(gateway: Gateway, watcher: BusWatcher, factory: FakeScaleFactory) -> None:
    inbox = f"{gateway.address.prefix}/reply/inbox-x"
    watcher.publish(gateway.address.command("scale1", "zero"), b'{"v": 1, "command_id": "c-bad", "args": {')
    watcher.publish(gateway.address.command("scale1", "zero"),
                    f'{{"command_id": "c-mal", "reply_to": "{inbox}", "args": [}}'.encode())
    bad = _final(watcher, gateway, "c-bad")
    assert (bad["status"], bad["code"]) == ("failed", "malformed_json")
    mal = watcher.wait_for(lambda m: m.topic == inbox).json()
    assert (mal["command_id"], mal["code"]) == ("c-mal", "malformed_json")
    # no command_id at all, binary garbage: nobody to answer, counted and shown in ping
    watcher.publish(gateway.address.command("scale1", "zero"), b"\xff\xfe garbage")
    watcher.publish(gateway.address.command("scale1", "zero"), b'{"v": 1, "args": {}}')
    ping = _ping_ok(watcher, gateway)
    assert ping["result"]["commands"]["rejected_unaddressable"] == 2
    assert "invalid_schema" in ping["result"]["commands"]["last_rejection"]
    assert factory.scale.calls.get("zero", 0) == 0


def test_schema_errors_are_answered(gateway: Gateway, watcher: BusWatcher, factory: FakeScaleFactory) -> None:
    topic = gateway.address.command("scale1", "zero")
    watcher.publish(topic, json.dumps({"v": 2, "command_id": "c-v2"}))
    watcher.publish(topic, json.dumps({"v": 1, "command_id": "c-schema", "args": "not-an-object"}))
    watcher.publish(topic, json.dumps({"v": 1, "command_id": "c-ts", "expires_at": "yesterday"}))
    assert _final(watcher, gateway, "c-v2")["code"] == "unsupported_version"
    schema = _final(watcher, gateway, "c-schema")
    assert (schema["status"], schema["code"]) == ("failed", "invalid_schema")
    assert "args" in schema["message"]
    assert _final(watcher, gateway, "c-ts")["code"] == "invalid_schema"
    assert factory.scale.calls.get("zero", 0) == 0
    _ping_ok(watcher, gateway)


def test_unknown_device_action_and_bad_args(gateway: Gateway, watcher: BusWatcher, factory: FakeScaleFactory) -> None:
    watcher.publish(gateway.address.command("nosuch", "weigh"), command("c-dev"))
    watcher.publish(gateway.address.command("scale1", "explode"), command("c-act"))
    watcher.publish(gateway.address.command("scale1", "weigh"), command("c-args", args={"timeout": -1}))
    watcher.publish(gateway.address.gateway_command("reboot"), command("c-gw"))
    dev = _final(watcher, gateway, "c-dev")
    assert (dev["status"], dev["code"]) == ("failed", "unknown_device")
    assert dev["result"]["known_devices"] == ["scale1"]
    act = _final(watcher, gateway, "c-act")
    assert act["code"] == "unknown_action"
    assert act["result"]["known_actions"] == ["clear_tare", "status", "tare", "weigh", "zero"]
    args = _final(watcher, gateway, "c-args")
    assert args["code"] == "invalid_args" and "timeout" in args["message"]
    assert _final(watcher, gateway, "c-gw")["result"]["known_actions"] == ["ping", "rebirth", "rescan"]
    assert factory.scale.calls.get("weigh_stable", 0) == 0
    # none of them is journaled: a retry after a fix may still run
    assert gateway.journal.lookup("c-args") is None


def test_expired_command_is_never_executed(gateway: Gateway, watcher: BusWatcher, factory: FakeScaleFactory) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    watcher.publish(gateway.address.command("scale1", "tare"), command("c-exp", expires_at=past))
    reply = _final(watcher, gateway, "c-exp")
    assert (reply["status"], reply["code"]) == ("expired", "expired")
    # the retry gets the same answer, as a duplicate
    watcher.publish(gateway.address.command("scale1", "tare"), command("c-exp", expires_at=past))
    dup = _reply(watcher, gateway, "c-exp", "duplicate")
    assert dup["original"] == "expired"
    assert factory.scale.calls.get("tare", 0) == 0


def test_retained_command_is_dropped_and_cleared(
    gateway: Gateway, watcher: BusWatcher, factory: FakeScaleFactory, mqtt_url: str
) -> None:
    topic = gateway.address.command("scale1", "tare")
    # a retained command stored on the broker while the gateway was away, replayed on subscribe
    gateway.link.stop()
    watcher.publish(topic, command("c-ret"), retain=True)
    gateway.link.start()
    assert gateway.link.wait_connected(5)
    reply = _reply(watcher, gateway, "c-ret", "failed")
    assert reply["code"] == "retained_command"
    assert factory.scale.calls.get("tare", 0) == 0
    # the gateway cleared it: a fresh subscriber sees no retained command
    fresh = BusWatcher(mqtt_url, [topic])
    try:
        assert not fresh.matching(lambda m: m.retain and bool(m.payload))
    finally:
        fresh.close()
    _ping_ok(watcher, gateway)


def test_reply_to_and_bad_reply_to(gateway: Gateway, watcher: BusWatcher) -> None:
    custom = f"{gateway.address.prefix}/reply/custom-inbox"
    watcher.publish(gateway.address.command("scale1", "status"), command("c-rt", reply_to=custom))
    watcher.wait_for(lambda m: m.topic == custom and m.json()["status"] == "done")
    watcher.publish(gateway.address.command("scale1", "status"), command("c-wild", reply_to="a/+/b"))
    reply = _final(watcher, gateway, "c-wild")
    assert reply["code"] == "invalid_schema"


def test_the_final_reply_never_overtakes_accepted(gateway: Gateway, watcher: BusWatcher,
                                                  factory: FakeScaleFactory) -> None:
    """The device runs while ``accepted`` is being published; when the device is the faster one,
    its final reply still goes out second."""
    import time

    publish = gateway.dispatcher._publish_reply

    def slow_accepted(topic: str, payload: bytes, correlation: bytes | None) -> bool:
        if json.loads(payload)["status"] == "accepted":
            time.sleep(0.3)
        return publish(topic, payload, correlation)

    gateway.dispatcher._publish_reply = slow_accepted
    t0 = time.monotonic()
    watcher.publish(gateway.address.command("scale1", "weigh"), command("c-order"))
    final = _final(watcher, gateway, "c-order")
    assert final["status"] == "done" and time.monotonic() - t0 >= 0.3
    statuses = [m.json()["status"] for m in watcher.messages if m.topic == gateway.address.reply("c-order")]
    assert statuses == ["accepted", "done"]
    assert factory.scale.calls.get("weigh_stable", 0) == 1
