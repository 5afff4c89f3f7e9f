import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.bus import GatewayAddress, TopicError, TopicKind, cloud_filters, cloud_state_topic, parse_topic

ident = st.from_regex(r"\A[A-Za-z0-9_.\-]{1,64}\Z")


@given(ident, ident, ident, ident, ident)
def test_every_builder_round_trips_through_the_parser(tenant, store, gateway, device, name):
    a = GatewayAddress(tenant, store, gateway)
    assert parse_topic(a.state()).kind is TopicKind.STATE
    assert parse_topic(a.inventory()).kind is TopicKind.INVENTORY
    p = parse_topic(a.device_status(device))
    assert (p.kind, p.address, p.device) == (TopicKind.DEVICE_STATUS, a, device)
    p = parse_topic(a.event(device, name))
    assert (p.kind, p.device, p.name) == (TopicKind.EVENT, device, name)
    p = parse_topic(a.command(device, name))
    assert (p.kind, p.device, p.name) == (TopicKind.COMMAND, device, name)
    p = parse_topic(a.reply(name))
    assert (p.kind, p.device, p.name) == (TopicKind.REPLY, None, name)
    p = parse_topic(a.gateway_command(name))
    assert (p.kind, p.address, p.name) == (TopicKind.GATEWAY_COMMAND, a, name)


def test_cloud_state_and_root():
    assert parse_topic("vitrina/v1/cloud/state").kind is TopicKind.CLOUD_STATE
    a = GatewayAddress("t", "s", "g", root="vt1")
    assert a.state() == "vt1/v1/t/s/g/state"
    assert parse_topic(a.state(), root="vt1").address == a
    assert cloud_state_topic("vt1") == "vt1/v1/cloud/state"
    with pytest.raises(TopicError):
        parse_topic(a.state())  # other root


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "vitrina/v1/t/s",
        "vitrina/v1/t/s/g/unknown",
        "vitrina/v1/t/s/g/dev/d/evt",
        "vitrina/v1/t/s/g/dev/d/evt/a/b",
        "other/v1/t/s/g/state",
        "vitrina/v1/t/s/g/dev/+/status",
        "vitrina/v1/t/s/g/dev/#/status",
        "vitrina/v1/t/s/g/dev/ /status",
    ],
)
def test_foreign_and_malformed_topics_raise_topic_error(bad):
    with pytest.raises(TopicError):
        parse_topic(bad)


def test_wrong_version_has_its_own_code():
    with pytest.raises(TopicError) as exc:
        parse_topic("vitrina/v2/t/s/g/state")
    assert exc.value.code == "unsupported_version"


@pytest.mark.parametrize("bad", ["a/b", "+", "#", "a b", "", "x" * 65, "д"])
def test_identifiers_cannot_inject_levels_or_wildcards(bad):
    with pytest.raises(TopicError):
        GatewayAddress(bad, "s", "g")
    with pytest.raises(TopicError):
        GatewayAddress("t", "s", "g").command(bad, "zero")


def test_cloud_filters_cover_every_gateway_topic():
    a = GatewayAddress("t1", "s1", "g1")
    filters = cloud_filters()
    concrete = [a.state(), a.inventory(), a.device_status("d"), a.event("d", "weight"), a.reply("c1")]
    for topic in concrete:
        assert any(_matches(f, topic) for f in filters), topic
    assert not any(_matches(f, a.command("d", "zero")) for f in filters)


def _matches(pattern: str, topic: str) -> bool:
    p, t = pattern.split("/"), topic.split("/")
    if len(p) != len(t):
        return False
    return all(a == "+" or a == b for a, b in zip(p, t, strict=True))
