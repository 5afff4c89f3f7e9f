"""Commands end to end: API → real broker → a fake gateway thread → reply → API / database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from cloud.app import create_app
from cloud.db import unit_of_work
from protocols.bus import (
    Command,
    DeviceInfo,
    DeviceKind,
    GatewayState,
    Inventory,
    Reply,
    ReplyStatus,
    decode,
    parse_topic,
)
from tests.cloud.conftest import FakeGateway, wait_for

pytestmark = pytest.mark.integration


def answer_done(gw: FakeGateway, topic: str, payload: bytes) -> None:
    """A well-behaved gateway: accepted, then done with the args echoed."""
    cmd = decode(Command, payload)
    assert cmd.reply_to is not None
    gw.publish(cmd.reply_to, Reply(session=1, command_id=cmd.command_id, status=ReplyStatus.ACCEPTED))
    gw.publish(cmd.reply_to, Reply(session=1, command_id=cmd.command_id, status=ReplyStatus.DONE,
                                   result={"echo": cmd.args, "action": parse_topic(topic, gw.address.root).name}))


@pytest.fixture
def api(settings, consumer) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as client:
        wait_for(lambda: app.state.command_bus.subscribed.is_set())
        yield client


@pytest.fixture
def store(api, consumer, gateway_factory, sessions, tenant) -> tuple[FakeGateway, dict[str, str], int, int]:
    """(fake gateway online with a printer, auth headers, device id, gateway id)."""
    gw = gateway_factory()
    gw.publish(gw.address.state(), GatewayState(online=True, session=1), retain=True)
    gw.publish(gw.address.inventory(), Inventory(session=1, devices=(
        DeviceInfo(id="printer1", kind=DeviceKind.RECEIPT_PRINTER, driver="escpos"),)), retain=True)
    headers = {"Authorization": f"Bearer {tenant[2]}"}
    devices = wait_for(lambda: [d for d in api.get("/api/v1/devices", headers=headers).json() if d["present"]])
    return gw, headers, devices[0]["id"], devices[0]["gateway_id"]


def test_round_trip_returns_200_with_the_final_reply(api, store) -> None:
    gw, headers, device_id, _ = store
    gw.on_command = answer_done
    r = api.post(f"/api/v1/devices/{device_id}/commands",
                 json={"action": "print", "args": {"text": "Привет"}, "timeout_s": 5}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "done" and body["result"] == {"echo": {"text": "Привет"}, "action": "print"}
    topic, payload = gw.commands[0]
    sent = decode(Command, payload)
    assert topic == gw.address.command("printer1", "print")
    assert sent.command_id == body["command_id"] and sent.reply_to == gw.address.reply(body["command_id"])
    assert sent.expires_at is not None and sent.expires_at > datetime.fromisoformat(body["created_at"])
    got = api.get(f"/api/v1/commands/{body['command_id']}", headers=headers).json()
    assert got["status"] == "done" and got["result"] == body["result"]


def test_no_reply_in_time_gives_202_then_get_shows_the_late_final_status(api, store, consumer) -> None:
    gw, headers, device_id, _ = store
    r = api.post(f"/api/v1/devices/{device_id}/commands", json={"action": "print", "timeout_s": 0.3},
                 headers={**headers, "Idempotency-Key": "late-1"})
    assert r.status_code == 202 and r.json()["status"] == "pending" and r.json()["command_id"] == "late-1"
    wait_for(lambda: gw.commands)
    answer_done(gw, *gw.commands[0])  # the gateway answers after the API gave up waiting
    final = wait_for(lambda: (b := api.get("/api/v1/commands/late-1", headers=headers).json())["status"] == "done"
                     and b)
    assert final["result"]["action"] == "print"


def test_same_key_twice_sends_once_when_final_and_conflicting_args_are_409(api, store) -> None:
    gw, headers, device_id, _ = store
    gw.on_command = answer_done
    body = {"action": "print", "args": {"n": 1}, "idempotency_key": "once-1"}
    first = api.post(f"/api/v1/devices/{device_id}/commands", json=body, headers=headers)
    second = api.post(f"/api/v1/devices/{device_id}/commands", json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["result"] == second.json()["result"] and second.json()["command_id"] == "once-1"
    assert len(gw.commands) == 1
    clash = api.post(f"/api/v1/devices/{device_id}/commands", json={**body, "args": {"n": 2}}, headers=headers)
    assert clash.status_code == 409 and clash.json()["code"] == "idempotency_key_reused"
    assert "once-1" in clash.json()["detail"]


def test_same_key_while_not_final_republishes_with_the_same_command_id(api, store) -> None:
    gw, headers, device_id, _ = store
    body = {"action": "print", "idempotency_key": "again-1", "timeout_s": 0.2}
    assert api.post(f"/api/v1/devices/{device_id}/commands", json=body, headers=headers).status_code == 202
    assert api.post(f"/api/v1/devices/{device_id}/commands", json=body, headers=headers).status_code == 202
    wait_for(lambda: len(gw.commands) == 2)
    assert {json.loads(p)["command_id"] for _t, p in gw.commands} == {"again-1"}


def test_gateway_offline_and_device_not_present_are_409(api, store, consumer) -> None:
    gw, headers, device_id, gateway_id = store
    gw.publish(gw.address.inventory(), Inventory(session=1, devices=()), retain=True)
    wait_for(lambda: not api.get(f"/api/v1/devices/{device_id}", headers=headers).json()["present"])
    r = api.post(f"/api/v1/devices/{device_id}/commands", json={"action": "print"}, headers=headers)
    assert r.status_code == 409 and r.json()["code"] == "device_not_present"
    gw.publish(gw.address.state(), GatewayState(online=False, session=1), retain=True)
    wait_for(lambda: api.get(f"/api/v1/gateways/{gateway_id}", headers=headers).json()["status"] == "offline")
    r = api.post(f"/api/v1/gateways/{gateway_id}/commands", json={"action": "ping"}, headers=headers)
    assert r.status_code == 409 and r.json() == {"detail": "шлюз не в сети", "code": "gateway_offline",
                                                 "gateway_id": gateway_id}
    assert gw.commands == []


def test_gateway_command_round_trip_and_validation(api, store) -> None:
    gw, headers, _device_id, gateway_id = store
    gw.on_command = answer_done
    r = api.post(f"/api/v1/gateways/{gateway_id}/commands", json={"action": "ping"}, headers=headers)
    assert r.status_code == 200 and r.json()["device_id"] is None
    assert gw.commands[0][0] == gw.address.gateway_command("ping")
    r = api.post(f"/api/v1/gateways/{gateway_id}/commands", json={"action": "format"}, headers=headers)
    assert r.status_code == 422 and r.json()["code"] == "unknown_action"
    r = api.post(f"/api/v1/gateways/{gateway_id}/commands", json={"action": "ping", "timeout_s": 3600},
                 headers=headers)
    assert r.status_code == 422 and r.json()["code"] == "timeout_too_long"
    r = api.post(f"/api/v1/gateways/{gateway_id}/commands", json={"action": "ping"},
                 headers={**headers, "Idempotency-Key": "bad/key"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_idempotency_key"


def test_two_concurrent_posts_with_the_same_key_publish_once_and_both_get_the_reply(api, store, sessions) -> None:
    """The second POST arrives while the first waits: it publishes nothing (exactly one command on
    the bus), waits for the same reply, and both answer 200 with it. The row was committed, marked
    published, before the publish."""
    import threading
    import time

    from sqlmodel import select

    from cloud.commands.models import Command as CommandRow

    gw, headers, device_id, _ = store
    seen_rows: list[tuple[str, int]] = []

    def slow_done(g: FakeGateway, topic: str, payload: bytes) -> None:
        cid = decode(Command, payload).command_id
        with sessions() as session:  # the row exists (and says published) before the gateway hears it
            row = session.exec(select(CommandRow).where(CommandRow.command_id == cid)).one()
            seen_rows.append((row.status, row.publish_count))
        time.sleep(0.4)  # both requests are waiting now
        answer_done(g, topic, payload)

    gw.on_command = slow_done
    body = {"action": "print", "args": {"n": 7}, "idempotency_key": "twice-1", "timeout_s": 5}
    results: list = []

    def post() -> None:
        results.append(api.post(f"/api/v1/devices/{device_id}/commands", json=body, headers=headers))

    threads = [threading.Thread(target=post) for _ in range(2)]
    threads[0].start()
    wait_for(lambda: gw.commands)
    threads[1].start()
    for t in threads:
        t.join(10)
    assert [r.status_code for r in results] == [200, 200], [r.text for r in results]
    assert {r.json()["result"]["echo"]["n"] for r in results} == {7}
    assert len(gw.commands) == 1, "exactly one publish"
    assert seen_rows == [("pending", 1)]
    time.sleep(0.3)
    assert len(gw.commands) == 1


def test_a_reply_the_consumer_has_not_stored_yet_is_what_get_shows(api, store, sessions) -> None:
    """The request path writes nothing after the publish; a GET right after the 200 still shows
    the final status (this process heard it), and the consumer's row catches up."""
    from sqlmodel import select

    from cloud.commands.models import Command as CommandRow

    gw, headers, device_id, _ = store
    gw.on_command = answer_done
    r = api.post(f"/api/v1/devices/{device_id}/commands", json={"action": "print", "idempotency_key": "seen-1"},
                 headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "done"

    def stored_status() -> str:
        with sessions() as session:
            return session.exec(select(CommandRow).where(CommandRow.command_id == "seen-1")).one().status

    wait_for(lambda: stored_status() == "done")  # the consumer stored it (the API did not)
    with unit_of_work(sessions) as session:  # make the stored row lag behind, as if not consumed yet
        row = session.exec(select(CommandRow).where(CommandRow.command_id == "seen-1")).one()
        row.status, row.result = "accepted", None
        session.add(row)
        session.commit()
    got = api.get("/api/v1/commands/seen-1", headers=headers).json()
    assert got["status"] == "done" and got["result"] == r.json()["result"]
    assert stored_status() == "accepted", "a GET never writes"
