"""Commands end to end: API → real broker → a fake gateway thread → reply → API / database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from cloud.app import create_app
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
