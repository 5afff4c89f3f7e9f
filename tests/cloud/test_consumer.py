"""The bus consumer against the real broker: rows appear, replays are no-ops, bad input is dropped,
and a failed commit loses nothing (the message stays unacknowledged and is redelivered)."""

from __future__ import annotations

import json

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from cloud.bus.consumer import BusConsumer
from cloud.bus.mqtt import nodelay_is_set, parse_mqtt_url
from cloud.commands.models import Command
from cloud.registry.models import Device, Event, Gateway
from protocols.bus import (
    CloudState,
    DeviceInfo,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    GatewayState,
    Inventory,
    Reply,
    ReplyStatus,
    cloud_state_topic,
    decode,
)
from protocols.bus import Event as BusEvent
from tests.cloud.conftest import wait_for

pytestmark = pytest.mark.integration


def rows(sessions, model, *where):
    with sessions() as session:
        return session.exec(select(model).where(*where)).all()


def test_gateway_messages_become_rows(consumer: BusConsumer, sessions, gateway_factory) -> None:
    gw = gateway_factory()
    a = gw.address
    gw.publish(a.state(), GatewayState(online=True, session=3, version="0.1"), retain=True)
    gw.publish(a.inventory(), Inventory(session=3, devices=(
        DeviceInfo(id="scale1", kind=DeviceKind.SCALE, driver="massak"),)), retain=True)
    gw.publish(a.device_status("scale1"), DeviceStatus(session=3, state=DeviceState.BUSY, detail="взвешивание"),
               retain=True)
    gw.publish(a.event("scale1", "weight"), BusEvent(session=3, seq=1, data={"weight_g": 500}))
    wait_for(lambda: rows(sessions, Event))
    (g,) = rows(sessions, Gateway)
    (d,) = rows(sessions, Device)
    assert (g.online, g.status, g.session, g.version) == (True, "online", 3, "0.1")
    assert (d.kind, d.present, d.state, d.detail) == ("scale", True, "busy", "взвешивание")
    assert consumer.connected and nodelay_is_set(consumer._client)  # type: ignore[arg-type]


def test_cloud_state_is_online_while_running_and_offline_after_stop(settings, tenant, mqtt_url) -> None:
    seen: list[bool] = []
    probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    probe.on_message = lambda _c, _u, m: seen.append(decode(CloudState, m.payload).online) if m.payload else None
    endpoint = parse_mqtt_url(mqtt_url)
    probe.connect(endpoint.host, endpoint.port)
    probe.subscribe(cloud_state_topic(settings.bus_root), qos=1)
    probe.loop_start()
    try:
        consumer = BusConsumer(settings).start()
        wait_for(lambda: True in seen)
        consumer.stop()
        wait_for(lambda: seen[-1] is False)
    finally:
        probe.publish(cloud_state_topic(settings.bus_root), b"", qos=1, retain=True).wait_for_publish(5)
        probe.disconnect()
        probe.loop_stop()


def test_same_event_published_twice_is_one_row(consumer, sessions, gateway_factory) -> None:
    gw = gateway_factory()
    evt = BusEvent(session=1, seq=1, data={"code": "4601234567893"})
    gw.publish(gw.address.event("scan1", "scan"), evt)
    gw.publish(gw.address.event("scan1", "scan"), evt)
    assert consumer.wait_until(lambda s: s["duplicate"] >= 1 and s["stored"] >= 1)
    assert len(rows(sessions, Event)) == 1


def test_late_will_of_old_session_keeps_gateway_online(consumer, sessions, gateway_factory) -> None:
    gw = gateway_factory()
    gw.publish(gw.address.state(), GatewayState(online=True, session=8))
    gw.publish(gw.address.state(), GatewayState(online=False, session=7, reason="will"))
    assert consumer.wait_until(lambda s: s["ignored"] >= 1)
    (g,) = rows(sessions, Gateway)
    assert (g.online, g.status, g.session) == (True, "online", 8)


def test_bad_payloads_and_unknown_tenant_are_dropped_and_consumer_keeps_working(
    consumer, sessions, gateway_factory
) -> None:
    gw = gateway_factory()
    stranger = gateway_factory(tenant="no_such_tenant")
    gw.publish(gw.address.state(), b"{definitely not json")
    gw.publish(gw.address.state(), json.dumps({"v": 99, "online": True, "session": 1}).encode())
    gw.publish(gw.address.inventory(), json.dumps({"v": 1, "session": -1}).encode())
    stranger.publish(stranger.address.state(), GatewayState(online=True, session=1))
    assert consumer.wait_until(lambda s: s["dropped"] >= 4)
    assert rows(sessions, Gateway) == []
    gw.publish(gw.address.state(), GatewayState(online=True, session=1))
    wait_for(lambda: rows(sessions, Gateway))
    assert consumer.stats["errors"] == 0


def test_reply_updates_the_command_row(consumer, sessions, tenant, gateway_factory) -> None:
    from datetime import UTC, datetime

    from cloud.commands import service
    from cloud.db import unit_of_work

    gw = gateway_factory()
    gw.publish(gw.address.state(), GatewayState(online=True, session=1))
    wait_for(lambda: rows(sessions, Gateway))
    with unit_of_work(sessions) as session:
        g = session.exec(select(Gateway)).one()
        service.create_for_publish(session, tenant_id=tenant[0], gateway=g, device=None, action="ping", args={},
                                   key="cmd-1", ttl_s=60, now=datetime.now(UTC), publish=False)
    gw.publish(gw.address.reply("cmd-1"), Reply(session=1, command_id="cmd-1", status=ReplyStatus.ACCEPTED))
    gw.publish(gw.address.reply("cmd-1"), Reply(session=1, command_id="cmd-1", status=ReplyStatus.DONE,
                                                  result={"pong": True}))
    cmd = wait_for(lambda: [c for c in rows(sessions, Command) if c.status == "done"])[0]
    assert cmd.result == {"pong": True}


def test_failed_commit_is_not_acked_and_the_redelivered_message_is_stored_once(
    consumer: BusConsumer, sessions, gateway_factory
) -> None:
    """A real database error on commit: the consumer must not ack; after it resyncs (DB ping,
    reconnect with its persistent session) the broker redelivers and the event is stored once."""
    failures: list[int] = []

    def fail_first_commit(_conn) -> None:
        if not failures:
            failures.append(1)
            raise OperationalError("COMMIT", {}, Exception("injected: connection lost during commit"))

    event.listen(consumer.engine, "commit", fail_first_commit)
    try:
        gw = gateway_factory()
        gw.publish(gw.address.event("kkt1", "receipt"), BusEvent(session=1, seq=42, data={"fd": 1001}))
        assert consumer.wait_until(lambda s: s["db_errors"] >= 1 and s["resyncs"] >= 1 and s["stored"] >= 1, 20)
    finally:
        event.remove(consumer.engine, "commit", fail_first_commit)
    (stored,) = rows(sessions, Event)
    assert (stored.seq, stored.data) == (42, {"fd": 1001})
    assert consumer.stats["connects"] >= 2  # the redelivery came through a new connection


def test_retained_state_published_before_the_consumer_starts_is_ingested(
    settings, tenant, sessions, gateway_factory
) -> None:
    """Shared subscriptions receive no retained messages: the consumer's snapshot subscription must."""
    gw = gateway_factory()
    gw.publish(gw.address.state(), GatewayState(online=True, session=2, version="9"), retain=True)
    consumer = BusConsumer(settings).start()
    try:
        wait_for(lambda: rows(sessions, Gateway))
        assert rows(sessions, Gateway)[0].version == "9"
    finally:
        consumer.stop()


def test_falls_back_to_mqtt_311_on_a_broker_without_v5(settings, tenant, sessions, gateway_factory) -> None:
    from paho.mqtt.enums import MQTTProtocolVersion

    from tests.cloud.conftest import FakeGateway
    from vitrina.broker import EmbeddedBroker

    broker = EmbeddedBroker(port=0).start()
    consumer = BusConsumer(settings.model_copy(update={"mqtt_url": broker.url})).start()
    gw = None
    try:
        assert consumer.wait_until(lambda s: s["subscribed"] >= 1)
        assert consumer.protocol == MQTTProtocolVersion.MQTTv311 and not consumer.shared
        gw = FakeGateway(broker.url, gateway_factory().address)
        gw.publish(gw.address.event("d1", "scan"), BusEvent(session=1, seq=1))
        wait_for(lambda: rows(sessions, Event))
    finally:
        if gw is not None:
            gw.close()
        consumer.stop()
        broker.stop()


def test_uses_shared_subscription_on_mosquitto(consumer: BusConsumer, mqtt_url: str) -> None:
    from paho.mqtt.enums import MQTTProtocolVersion

    if consumer.protocol != MQTTProtocolVersion.MQTTv5:
        pytest.skip(f"broker at {mqtt_url} does not speak MQTT 5")
    assert consumer.shared


def test_a_stopping_consumer_does_not_take_the_cloud_offline_while_another_runs(settings, tenant, mqtt_url) -> None:
    seen: list[bool] = []
    probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    probe.on_message = lambda _c, _u, m: seen.append(decode(CloudState, m.payload).online) if m.payload else None
    endpoint = parse_mqtt_url(mqtt_url)
    probe.connect(endpoint.host, endpoint.port)
    probe.subscribe(cloud_state_topic(settings.bus_root), qos=1)
    probe.loop_start()
    first = BusConsumer(settings.model_copy(update={"instance_id": settings.instance_id + "-a"})).start()
    second = BusConsumer(settings.model_copy(update={"instance_id": settings.instance_id + "-b"})).start()
    try:
        wait_for(lambda: first.connected and second.connected and True in seen)
        first.stop()
        wait_for(lambda: False in seen)  # the stopping one said offline…
        wait_for(lambda: seen[-1] is True)  # …and the running one corrected it
        assert second.wait_until(lambda c: c["cloud_state_reasserted"] >= 1)
    finally:
        second.stop()
        probe.publish(cloud_state_topic(settings.bus_root), b"", qos=1, retain=True).wait_for_publish(5)
        probe.disconnect()
        probe.loop_stop()


# ---------------------------------------------------------------- batches (one transaction, then acks)


class AckRecorder:
    """Stands in for the paho client of a consumer that is not started: records acks."""

    def __init__(self) -> None:
        self.acks: list[int] = []

    def ack(self, mid: int, qos: int) -> int:
        self.acks.append(mid)
        return 0

    def is_connected(self) -> bool:
        return False


def _batch(consumer: BusConsumer, items: list[tuple[str, bytes]]):
    from cloud.bus.consumer import _Inbound
    from cloud.bus.handlers import Message

    return [_Inbound(Message(topic, payload), mid, 1, consumer._epoch) for mid, (topic, payload) in
            enumerate(items, start=1)]


def _messages(gw_address) -> list[tuple[str, bytes]]:
    from protocols.bus import encode

    a = gw_address
    return [
        (a.state(), encode(GatewayState(online=True, session=1))),
        (a.event("scale1", "weight"), encode(BusEvent(session=1, seq=1, data={"net": "1.000"}))),
        (a.device_status("boom"), encode(DeviceStatus(session=1, state=DeviceState.ONLINE))),  # the bad one
        (a.event("scale1", "weight"), encode(BusEvent(session=1, seq=2, data={"net": "2.000"}))),
        (a.state(), b"{not json"),  # invalid: dropped before the database
        (a.device_status("scale1"), encode(DeviceStatus(session=1, state=DeviceState.BUSY))),
    ]


def test_a_bad_message_inside_a_batch_is_dropped_and_acked_while_the_others_are_stored(
    settings, tenant, sessions, monkeypatch
) -> None:
    """One message trips a bug inside its SAVEPOINT: it alone is rolled back and dropped; the
    batch commits and every message of it (the bad and the invalid ones too) is acknowledged."""
    from cloud.bus import consumer as consumer_module
    from protocols.bus import GatewayAddress

    real_apply = consumer_module.apply

    def apply(session, decoded, now):
        outcome = real_apply(session, decoded, now)  # writes first, so the rollback is real
        if decoded.device == "boom":
            raise RuntimeError("injected bug")
        return outcome

    monkeypatch.setattr(consumer_module, "apply", apply)
    consumer = BusConsumer(settings)
    consumer._client = AckRecorder()  # type: ignore[assignment]
    address = GatewayAddress(tenant[1], "s1", "gw1", settings.bus_root)
    messages = _messages(address)
    consumer._run_batch(_batch(consumer, messages))
    assert consumer._client.acks == [1, 2, 3, 4, 5, 6]  # type: ignore[attr-defined]
    assert sorted(e.seq for e in rows(sessions, Event)) == [1, 2]
    devices = {d.code: d for d in rows(sessions, Device)}
    assert "boom" not in devices, "the bad message's writes were rolled back with its savepoint"
    assert devices["scale1"].state == "busy"
    assert rows(sessions, Gateway)[0].online
    assert consumer.stats["errors"] == 1 and consumer.stats["batches"] == 1
    assert consumer.stats["stored"] == 4 and consumer.stats["dropped"] == 2
    # the same batch again (a redelivery): events are not duplicated
    consumer._run_batch(_batch(consumer, messages))
    assert len(rows(sessions, Event)) == 2 and consumer.stats["duplicate"] == 2
    consumer.engine.dispose()


def test_a_database_error_mid_batch_leaves_the_whole_batch_unacked_and_it_is_stored_once_after(
    settings, tenant, sessions
) -> None:
    from sqlalchemy.exc import OperationalError as SAOperationalError

    from protocols.bus import GatewayAddress

    consumer = BusConsumer(settings)
    consumer._client = AckRecorder()  # type: ignore[assignment]
    address = GatewayAddress(tenant[1], "s1", "gw1", settings.bus_root)
    failures: list[str] = []

    def fail_on_events_insert(_conn, _cursor, statement, *_args) -> None:
        if "INSERT INTO events" in statement and not failures:
            failures.append(statement)
            raise SAOperationalError(statement, {}, Exception("injected: server closed the connection"))

    messages = _messages(address)
    event.listen(consumer.engine, "before_cursor_execute", fail_on_events_insert)
    try:
        consumer._run_batch(_batch(consumer, messages))
    finally:
        event.remove(consumer.engine, "before_cursor_execute", fail_on_events_insert)
    assert failures, "the injected failure did not fire"
    assert consumer._client.acks == [], "nothing of a failed batch is acknowledged"  # type: ignore[attr-defined]
    assert rows(sessions, Event) == [] and rows(sessions, Gateway) == [], "nothing of it is committed"
    assert consumer._paused.is_set() and consumer._resync.is_set() and consumer.stats["db_errors"] == 1
    # the supervisor's resync reconnects: the broker redelivers on the new connection
    consumer._paused.clear()
    consumer._resync.clear()
    consumer._new_epoch()
    consumer._run_batch(_batch(consumer, messages))
    consumer._run_batch(_batch(consumer, messages))  # and once more: still stored once
    assert consumer._client.acks == [1, 2, 3, 4, 5, 6] * 2  # type: ignore[attr-defined]
    assert sorted(e.seq for e in rows(sessions, Event)) == [1, 2]
    consumer.engine.dispose()


def test_messages_of_an_earlier_connection_are_never_acked_on_a_later_one(settings, tenant, sessions) -> None:
    """A packet id belongs to its connection: after a reconnect the broker may reuse it."""
    from protocols.bus import GatewayAddress

    consumer = BusConsumer(settings)
    consumer._client = AckRecorder()  # type: ignore[assignment]
    address = GatewayAddress(tenant[1], "s1", "gw1", settings.bus_root)
    batch = _batch(consumer, _messages(address))
    consumer._new_epoch()  # the connection dropped after these were received
    consumer._run_batch(batch)
    assert consumer._client.acks == []  # type: ignore[attr-defined]
    assert rows(sessions, Event) == [], "they are redelivered on the new connection and stored then"
    consumer.engine.dispose()


def test_a_burst_through_the_broker_is_stored_in_batches(consumer: BusConsumer, sessions, gateway_factory) -> None:
    gw = gateway_factory()
    for seq in range(1, 301):
        gw.client.publish(gw.address.event("scale1", "weight"), encode_event(seq), qos=1)
    gw.publish(gw.address.event("scale1", "weight"), BusEvent(session=1, seq=301))
    assert consumer.wait_until(lambda s: s["stored"] >= 301, 20)
    assert len(rows(sessions, Event)) == 301
    assert consumer.stats["batches"] < 301


def encode_event(seq: int) -> bytes:
    from protocols.bus import encode

    return encode(BusEvent(session=1, seq=seq, data={"net": "1.000"}))


# ---------------------------------------------------------------- command replies (the one-statement path)


def test_replies_only_move_a_command_forward_whatever_order_and_batch_they_arrive_in(
    settings, tenant, sessions
) -> None:
    """Replies in one batch and across batches: a late ``accepted`` never undoes ``done``, a
    ``progress`` may repeat, a reply from another gateway or for an unknown command changes nothing."""
    from datetime import UTC, datetime

    from cloud.commands import service
    from cloud.db import unit_of_work
    from protocols.bus import GatewayAddress, encode

    consumer = BusConsumer(settings)
    consumer._client = AckRecorder()  # type: ignore[assignment]
    a = GatewayAddress(tenant[1], "s1", "gw1", settings.bus_root)
    other = GatewayAddress(tenant[1], "s1", "gw2", settings.bus_root)
    consumer._run_batch(_batch(consumer, [(a.state(), encode(GatewayState(online=True, session=1))),
                                          (other.state(), encode(GatewayState(online=True, session=1)))]))
    with unit_of_work(sessions) as session:
        gw = session.exec(select(Gateway).where(Gateway.code == "gw1")).one()
        for key in ("c-1", "c-2"):
            service.create_for_publish(session, tenant_id=tenant[0], gateway=gw, device=None, action="ping",
                                       args={}, key=key, ttl_s=60, now=datetime.now(UTC), publish=False)

    def reply(address, cid, status, **kw):
        return address.reply(cid), encode(Reply(session=1, command_id=cid, status=status, **kw))

    def status(cid):
        return next(c for c in rows(sessions, Command) if c.command_id == cid)

    # one batch, out of order: done first, then a stale accepted and progress
    consumer._run_batch(_batch(consumer, [
        reply(a, "c-1", ReplyStatus.DONE, result={"pong": True}),
        reply(a, "c-1", ReplyStatus.ACCEPTED),
        reply(a, "c-1", ReplyStatus.PROGRESS, stage="late"),
    ]))
    c1 = status("c-1")
    assert (c1.status, c1.result, c1.stage) == ("done", {"pong": True}, None)
    # in order across batches, progress repeating, then a final one that must stay final
    consumer._run_batch(_batch(consumer, [reply(a, "c-2", ReplyStatus.ACCEPTED),
                                          reply(a, "c-2", ReplyStatus.PROGRESS, stage="card")]))
    consumer._run_batch(_batch(consumer, [reply(a, "c-2", ReplyStatus.PROGRESS, stage="pin")]))
    assert (status("c-2").status, status("c-2").stage) == ("progress", "pin")
    consumer._run_batch(_batch(consumer, [
        reply(other, "c-2", ReplyStatus.FAILED, code="x"),  # another gateway cannot finish it
        reply(a, "nope", ReplyStatus.DONE),  # unknown command: ignored
        reply(a, "c-2", ReplyStatus.FAILED, code="declined", message="карта отклонена"),
        reply(a, "c-2", ReplyStatus.DONE, result={"too": "late"}),
    ]))
    c2 = status("c-2")
    assert (c2.status, c2.code, c2.message, c2.result) == ("failed", "declined", "карта отклонена", None)
    assert consumer.stats["errors"] == 0 and consumer.stats["db_errors"] == 0
    assert consumer._client.acks[-4:] == [1, 2, 3, 4]  # type: ignore[attr-defined]  # the last batch: all acked
    consumer.engine.dispose()
