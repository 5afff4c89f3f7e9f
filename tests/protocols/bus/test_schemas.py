import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.bus import (
    CloudState,
    Command,
    DeviceInfo,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    Event,
    GatewayState,
    Inventory,
    MalformedJSON,
    PayloadError,
    Reply,
    ReplyStatus,
    UnsupportedVersion,
    decode,
    encode,
    peek,
    uuid7,
    uuid7_time_ms,
)

ident = st.from_regex(r"\A[A-Za-z0-9_.\-]{1,64}\Z")
aware = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=(d.microsecond // 1000) * 1000))
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=20))
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
args = st.dictionaries(st.text(max_size=10), json_value, max_size=5)
session = st.integers(0, 2**31)

payloads = st.one_of(
    st.builds(GatewayState, online=st.booleans(), session=session, version=st.text(max_size=10), ts=aware),
    st.builds(
        Inventory,
        session=session,
        ts=aware,
        devices=st.lists(
            st.builds(
                DeviceInfo,
                id=ident,
                kind=st.sampled_from(DeviceKind),
                driver=ident,
                model=st.text(max_size=10),
                capabilities=st.lists(ident, max_size=4).map(tuple),
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(DeviceStatus, session=session, ts=aware, state=st.sampled_from(DeviceState), detail=st.text(max_size=20), data=args),
    st.builds(Event, session=session, ts=aware, seq=st.integers(0, 2**62), data=args, historical=st.booleans()),
    st.builds(Command, command_id=ident, ts=aware, args=args, expires_at=st.none() | aware, reply_to=st.none() | ident),
    st.builds(
        Reply,
        session=session,
        command_id=ident,
        ts=aware,
        status=st.sampled_from(ReplyStatus),
        code=st.none() | ident,
        message=st.none() | st.text(max_size=30),
        result=st.none() | args,
    ),
    st.builds(CloudState, online=st.booleans(), ts=aware),
)


@given(payloads)
def test_every_payload_round_trips(message):
    assert decode(type(message), encode(message)) == message


def test_timestamps_are_normalised_to_utc():
    msk = timezone(timedelta(hours=3))
    c = Command(command_id="c1", ts=datetime(2026, 1, 1, 12, 0, tzinfo=msk))
    assert c.ts == datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    assert c.ts.tzinfo == UTC


def test_naive_timestamps_are_rejected():
    with pytest.raises(PayloadError, match="ts"):
        decode(Command, json.dumps({"v": 1, "ts": "2026-01-01T10:00:00", "command_id": "c"}))


def test_malformed_json_has_its_own_code():
    with pytest.raises(MalformedJSON) as exc:
        decode(Command, b"{not json")
    assert exc.value.code == "malformed_json"
    with pytest.raises(MalformedJSON):
        decode(Command, b"\xff\xfe")


def test_wrong_version_is_named():
    with pytest.raises(UnsupportedVersion, match="v=2"):
        decode(Command, json.dumps({"v": 2, "command_id": "c"}))
    with pytest.raises(UnsupportedVersion):
        decode(Command, json.dumps({"command_id": "c"}))


def test_schema_errors_name_the_field():
    with pytest.raises(PayloadError) as exc:
        decode(Command, json.dumps({"v": 1, "command_id": "bad id/with slash"}))
    assert exc.value.code == "invalid_schema"
    assert "command_id" in str(exc.value)
    with pytest.raises(PayloadError, match="JSON object, got list"):
        decode(Command, b"[1,2]")


def test_unknown_fields_are_tolerated_for_forward_compatibility():
    c = decode(Command, json.dumps({"v": 1, "command_id": "c", "new_field": 1}))
    assert c.command_id == "c"


def test_expiry():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert Command(command_id="c", expires_at=now).expired(now)
    assert not Command(command_id="c", expires_at=now + timedelta(seconds=1)).expired(now)
    assert not Command(command_id="c").expired(now)


def test_peek_reads_fields_of_an_invalid_payload():
    raw = json.dumps({"v": 9, "command_id": "c7", "reply_to": "x/y"})
    assert peek(raw, "command_id") == "c7"
    assert peek(b"garbage", "command_id") is None
    assert peek(b"[]", "command_id") is None


def test_final_statuses():
    assert not ReplyStatus.ACCEPTED.is_final
    assert not ReplyStatus.PROGRESS.is_final
    assert all(s.is_final for s in (ReplyStatus.DONE, ReplyStatus.FAILED, ReplyStatus.DUPLICATE, ReplyStatus.EXPIRED))


def test_uuid7_is_version_7_and_monotonic():
    ids = [uuid7() for _ in range(5000)]
    assert all(i.version == 7 and i.variant == "specified in RFC 4122" for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    fixed = uuid7(now_ms=1_700_000_000_000)
    assert uuid7_time_ms(fixed) >= 1_700_000_000_000
    assert isinstance(Event(session=0, seq=0).event_id, UUID)
