from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import massak

I32 = st.integers(-(2**31), 2**31 - 1)

requests = st.one_of(
    st.just(massak.GetMassa()),
    st.just(massak.SetZero()),
    st.just(massak.GetScalePar()),
    st.builds(massak.SetTare, I32),
)
replies = st.one_of(
    st.builds(massak.Massa, I32, st.sampled_from(list(massak.Division)), st.booleans(), st.booleans(), st.booleans(), I32),
    st.sampled_from([massak.ZeroSet(), massak.TareSet(), massak.TareRefused(), massak.Nack()]),
    st.builds(massak.ErrorReply, st.integers(0, 255)),
    st.builds(
        massak.ScaleParameters,
        st.lists(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12), max_size=8).map(tuple),
    ),
)


def test_weight_answer_vector() -> None:
    # Reference note §5: 1.234 kg stable, 1 g division, no tare.
    frame = bytes.fromhex("F855CE0D00" + "24D20400000101000000000000" + "1154")
    host = massak.HostConnection()
    assert host.send(massak.GetMassa()) == bytes.fromhex("F855CE0100232300")
    host.receive_data(frame)
    reply = host.next_event()
    assert reply == massak.Massa(1234, massak.Division.D_1_G, True, False, False, 0)
    assert isinstance(reply, massak.Massa) and reply.weight_kg == Decimal("1.234")
    assert host.state is massak.HostState.IDLE


def test_set_tare_encoding() -> None:
    assert massak.encode_frame(massak.SetTare(500).encode())[:10] == bytes.fromhex("F855CE0500A3F4010000")


@given(requests)
def test_request_round_trip(request: massak.Request) -> None:
    device = massak.DeviceConnection()
    device.receive_data(massak.HostConnection().send(request))
    assert device.next_event() == request
    assert device.next_event() is massak.NEED_DATA


@given(replies)
def test_reply_round_trip(reply: massak.Reply) -> None:
    assert massak.parse_reply(reply.encode()) == reply


@given(st.binary(min_size=1, max_size=40))
def test_reply_body_fuzz(body: bytes) -> None:
    try:
        massak.parse_reply(body)
    except massak.RemoteProtocolError:
        pass


@given(st.binary(min_size=1, max_size=40))
def test_request_body_fuzz(body: bytes) -> None:
    try:
        massak.parse_request(body)
    except massak.RemoteProtocolError:
        pass


@given(st.binary(max_size=300))
def test_device_never_raises_on_host_bytes(data: bytes) -> None:
    device = massak.DeviceConnection()
    device.receive_data(data + massak.encode_frame(b"\x23"))
    events = []
    while (event := device.next_event()) is not massak.NEED_DATA:
        events.append(event)
    assert events[-1] == massak.GetMassa()


def test_device_rejects_unknown_and_malformed_requests() -> None:
    device = massak.DeviceConnection()
    device.receive_data(massak.encode_frame(b"\x99") + massak.encode_frame(b"\xa3\x01"))
    unknown = device.next_event()
    assert isinstance(unknown, massak.RequestRejected) and unknown.reply == massak.Nack()
    short = device.next_event()
    assert isinstance(short, massak.RequestRejected)
    assert short.reply == massak.ErrorReply(massak.ErrorCode.BAD_INPUT)


def test_host_state_table() -> None:
    host = massak.HostConnection()
    host.send(massak.GetMassa())
    with pytest.raises(massak.LocalProtocolError, match="awaiting_reply"):
        host.send(massak.SetZero())
    # A reply to another request is the peer's fault and keeps the host waiting.
    host.receive_data(massak.encode_frame(massak.ZeroSet().encode()))
    with pytest.raises(massak.UnexpectedReply):
        host.next_event()
    assert host.state is massak.HostState.AWAITING_REPLY
    host.receive_data(massak.encode_frame(massak.ErrorReply(0x17).encode()))
    reply = host.next_event()
    assert isinstance(reply, massak.ErrorReply) and "АЦП" in reply.text
    host.receive_data(massak.encode_frame(massak.ZeroSet().encode()))
    with pytest.raises(massak.UnexpectedReply, match="без запроса"):
        host.next_event()


def test_messages_validate_when_built() -> None:
    with pytest.raises(massak.LocalProtocolError):
        massak.SetTare(2**31)
    with pytest.raises(massak.LocalProtocolError):
        massak.ErrorReply(256)
    with pytest.raises(massak.LocalProtocolError):
        massak.ScaleParameters(("a\r\nb",))
    with pytest.raises(massak.MalformedMessage, match="дискретности"):
        massak.parse_reply(bytes.fromhex("24D20400000901000000000000"))  # division 9
    with pytest.raises(massak.MalformedMessage, match="флаг"):
        massak.parse_reply(bytes.fromhex("24D20400000102000000000000"))


def test_scale_parameters_lines() -> None:
    reply = massak.parse_reply(b"\x7615 kg\r\n0.04 kg\r\n5 g\r\n6 kg\r\n")
    assert isinstance(reply, massak.ScaleParameters)
    assert reply.as_dict() == {"max": "15 kg", "min": "0.04 kg", "e": "5 g", "tare_max": "6 kg"}
