"""Service rules on a real database (no broker): ingestion, commands, tenancy, staleness."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, select

from cloud.bus.handlers import Message, Outcome, handle
from cloud.commands import service as commands
from cloud.commands.models import Command
from cloud.db import unit_of_work
from cloud.errors import Conflict, Invalid, Unauthorized
from cloud.registry import service as registry
from cloud.registry.models import Device, Event, Gateway
from cloud.tenancy.models import ApiToken
from cloud.tenancy.service import authenticate, create_tenant, hash_token, revoke_token
from protocols.bus import (
    DeviceInfo,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    GatewayAddress,
    GatewayState,
    Inventory,
    Reply,
    ReplyStatus,
    encode,
)
from protocols.bus import Event as BusEvent

ROOT = "vitrina"


@pytest.fixture
def addr(tenant: tuple[int, str, str]) -> GatewayAddress:
    return GatewayAddress(tenant[1], "store1", "gw1", ROOT)


def feed(sessions: sessionmaker[Session], topic: str, payload: object, *, retained: bool = False,
         now: datetime | None = None) -> Outcome:
    data = payload if isinstance(payload, bytes) else encode(payload)  # type: ignore[arg-type]
    with unit_of_work(sessions) as session:
        outcome = handle(session, Message(topic, data, retained), ROOT, now or datetime.now(UTC))
        if outcome != Outcome.DROPPED:
            session.commit()
    return outcome


def gateway_row(sessions: sessionmaker[Session]) -> Gateway:
    with sessions() as session:
        return session.exec(select(Gateway)).one()


def test_state_from_older_session_is_ignored(sessions, addr) -> None:
    assert feed(sessions, addr.state(), GatewayState(online=True, session=5, version="1.2")) == Outcome.STORED
    late_will = GatewayState(online=False, session=4)
    assert feed(sessions, addr.state(), late_will) == Outcome.IGNORED
    gw = gateway_row(sessions)
    assert (gw.online, gw.status, gw.session, gw.version) == (True, "online", 5, "1.2")
    assert feed(sessions, addr.state(), GatewayState(online=False, session=5)) == Outcome.STORED
    # a redelivered "online" of the same session after its own Will stays offline
    assert feed(sessions, addr.state(), GatewayState(online=True, session=5)) == Outcome.IGNORED
    assert gateway_row(sessions).status == "offline"
    assert feed(sessions, addr.state(), GatewayState(online=True, session=6)) == Outcome.STORED
    assert gateway_row(sessions).status == "online"


def test_inventory_upserts_and_marks_missing_devices_not_present(sessions, addr) -> None:
    scale = DeviceInfo(id="scale1", kind=DeviceKind.SCALE, driver="massak", capabilities=("weigh",))
    kkt = DeviceInfo(id="kkt1", kind=DeviceKind.FISCAL_REGISTER, driver="shtrih", port="/dev/ttyUSB0")
    feed(sessions, addr.inventory(), Inventory(session=1, devices=(scale, kkt)))
    feed(sessions, addr.inventory(), Inventory(session=2, devices=(scale,)))
    assert feed(sessions, addr.inventory(), Inventory(session=1, devices=())) == Outcome.IGNORED
    with sessions() as session:
        devices = {d.code: d for d in session.exec(select(Device)).all()}
    assert devices["scale1"].present and devices["scale1"].capabilities == ["weigh"]
    assert not devices["kkt1"].present and devices["kkt1"].driver == "shtrih"


def test_status_before_inventory_creates_a_placeholder_then_inventory_completes_it(sessions, addr) -> None:
    feed(sessions, addr.device_status("p1"), DeviceStatus(session=1, state=DeviceState.ERROR, detail="нет бумаги"))
    feed(sessions, addr.inventory(), Inventory(session=1, devices=(
        DeviceInfo(id="p1", kind=DeviceKind.RECEIPT_PRINTER, driver="escpos"),)))
    with sessions() as session:
        device = session.exec(select(Device)).one()
    assert (device.kind, device.present, device.state, device.detail) == ("receipt_printer", True, "error", "нет бумаги")


def test_same_event_twice_is_stored_once(sessions, addr) -> None:
    event = BusEvent(session=1, seq=7, data={"weight_g": 1250})
    assert feed(sessions, addr.event("scale1", "weight"), event) == Outcome.STORED
    assert feed(sessions, addr.event("scale1", "weight"), event) == Outcome.DUPLICATE
    with sessions() as session:
        rows = session.exec(select(Event)).all()
    assert len(rows) == 1 and rows[0].data == {"weight_g": 1250} and rows[0].type == "weight"


@pytest.mark.parametrize(
    ("payload", "why"),
    [(b"{not json", "malformed"), (b'{"v": 2, "online": true, "session": 1}', "version"),
     (b'{"v": 1, "online": "perhaps"}', "schema"), (b"[1, 2]", "not an object")],
)
def test_bad_payload_is_dropped_and_writes_nothing(sessions, addr, payload: bytes, why: str) -> None:
    assert feed(sessions, addr.state(), payload) == Outcome.DROPPED, why
    with sessions() as session:
        assert session.exec(select(Gateway)).first() is None


def test_unknown_tenant_and_bad_topic_are_dropped(sessions) -> None:
    stranger = GatewayAddress("nobody", "s", "g", ROOT)
    assert feed(sessions, stranger.state(), GatewayState(online=True, session=1)) == Outcome.DROPPED
    assert feed(sessions, f"{ROOT}/v1/t/s/g/what/ever", GatewayState(online=True, session=1)) == Outcome.DROPPED
    with sessions() as session:
        assert session.exec(select(Gateway)).first() is None


def test_retained_replay_does_not_refresh_last_seen_to_now(sessions, addr) -> None:
    old = datetime.now(UTC) - timedelta(hours=3)
    feed(sessions, addr.state(), GatewayState(online=True, session=1, ts=old), retained=True)
    assert abs((gateway_row(sessions).last_seen - old).total_seconds()) < 0.01  # type: ignore[operator]


def _command(sessions, tenant_id: int, addr: GatewayAddress, key: str = "k1", args: dict | None = None) -> Command:
    feed(sessions, addr.state(), GatewayState(online=True, session=1))
    with unit_of_work(sessions) as session:
        gw = session.exec(select(Gateway)).one()
        cmd, _, _ = commands.create_for_publish(session, tenant_id=tenant_id, gateway=gw, device=None,
                                               action="ping", args=args or {}, key=key, ttl_s=60,
                                               now=datetime.now(UTC), publish=False)
    return cmd


def test_reply_status_only_moves_forward(sessions, tenant, addr) -> None:
    _command(sessions, tenant[0], addr)
    topic = addr.reply("k1")
    for status, expected in [(ReplyStatus.PROGRESS, Outcome.STORED), (ReplyStatus.ACCEPTED, Outcome.IGNORED),
                             (ReplyStatus.DONE, Outcome.STORED), (ReplyStatus.FAILED, Outcome.IGNORED)]:
        reply = Reply(session=1, command_id="k1", status=status, result={"s": status.value})
        assert feed(sessions, topic, reply) == expected, status
    with sessions() as session:
        cmd = session.exec(select(Command)).one()
    assert (cmd.status, cmd.result) == ("done", {"s": "done"})


def test_duplicate_reply_takes_the_original_outcome(sessions, tenant, addr) -> None:
    _command(sessions, tenant[0], addr)
    feed(sessions, addr.reply("k1"), Reply(session=1, command_id="k1", status=ReplyStatus.DUPLICATE,
                                          original=ReplyStatus.FAILED, code="device_error"))
    with sessions() as session:
        cmd = session.exec(select(Command)).one()
    assert (cmd.status, cmd.code) == ("failed", "device_error")


def test_reply_from_another_gateway_does_not_complete_the_command(sessions, tenant, addr) -> None:
    _command(sessions, tenant[0], addr)
    other = GatewayAddress(addr.tenant, "store1", "gw2", ROOT)
    assert feed(sessions, other.reply("k1"), Reply(session=1, command_id="k1", status=ReplyStatus.DONE)) \
        == Outcome.IGNORED
    with sessions() as session:
        assert session.exec(select(Command)).one().status == "pending"


def test_same_key_same_intent_returns_stored_and_different_args_conflict(sessions, tenant, addr) -> None:
    first = _command(sessions, tenant[0], addr, args={"a": 1})
    with unit_of_work(sessions) as session:
        gw = session.exec(select(Gateway)).one()
        again, created, _ = commands.create_for_publish(session, tenant_id=tenant[0], gateway=gw, device=None,
                                                       action="ping", args={"a": 1}, key="k1", ttl_s=60,
                                                       now=datetime.now(UTC), publish=False)
        assert not created and again.id == first.id
        with pytest.raises(Conflict) as exc:
            commands.create_for_publish(session, tenant_id=tenant[0], gateway=gw, device=None, action="ping",
                                        args={"a": 2}, key="k1", ttl_s=60, now=datetime.now(UTC),
                                        publish=False)
    assert exc.value.code == "idempotency_key_reused"


def test_bad_idempotency_key_and_gateway_action_are_invalid() -> None:
    with pytest.raises(Invalid):
        commands.check_key("has/slash")
    with pytest.raises(Invalid):
        commands.check_action("format_disk", gateway_level=True)
    assert commands.check_action("rebirth", gateway_level=True) == "rebirth"


def test_mark_stale_gateways_only_touches_silent_online_ones(sessions, tenant) -> None:
    now = datetime.now(UTC)
    for code, online, age in [("quiet", True, 600), ("fresh", True, 5), ("gone", False, 600)]:
        a = GatewayAddress(tenant[1], "s", code, ROOT)
        feed(sessions, a.state(), GatewayState(online=online, session=1), now=now - timedelta(seconds=age))
    with unit_of_work(sessions) as session:
        ids = registry.mark_stale_gateways(session, now, 90)
        session.commit()
    with sessions() as session:
        status = {g.code: g.status for g in session.exec(select(Gateway)).all()}
    assert status == {"quiet": "stale", "fresh": "online", "gone": "offline"} and len(ids) == 1
    # any live message brings a stale gateway back
    feed(sessions, GatewayAddress(tenant[1], "s", "quiet", ROOT).event("d", "scan"), BusEvent(session=1, seq=1))
    with sessions() as session:
        assert session.exec(select(Gateway).where(Gateway.code == "quiet")).one().status == "online"


def test_tokens_are_stored_hashed_and_can_be_revoked(sessions) -> None:
    slug = f"t{uuid.uuid4().hex[:8]}"
    with unit_of_work(sessions) as session:
        _tenant, user, token = create_tenant(session, slug, "Сеть")
    with unit_of_work(sessions) as session:
        stored = session.exec(select(ApiToken).where(ApiToken.user_id == user.id)).one()
        assert stored.token_hash == hash_token(token) and token not in (stored.token_hash, stored.prefix)
        assert authenticate(session, token)[1].slug == slug
        revoke_token(session, token)
        session.commit()
    with unit_of_work(sessions) as session:
        with pytest.raises(Unauthorized) as exc:
            authenticate(session, token)
        assert exc.value.code == "token_revoked"
        with pytest.raises(Conflict):
            create_tenant(session, slug, "again")
        with pytest.raises(Invalid):
            create_tenant(session, "bad slug/", "x")
