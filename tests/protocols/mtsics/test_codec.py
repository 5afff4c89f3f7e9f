"""MT-SICS byte vectors (MT-SICS reference manual, level 0/1 examples), framing and resync."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import mtsics
from protocols.mtsics.frames import LineBuffer
from protocols.mtsics.messages import Status

# (bytes on the wire, the reply they mean)
REPLY_VECTORS = [
    (b"S S      1.234 kg\r\n", mtsics.WeightReply("S", Status.STABLE, Decimal("1.234"), "kg")),
    (b"S D      1.230 kg\r\n", mtsics.WeightReply("S", Status.DYNAMIC, Decimal("1.230"), "kg")),
    (b"S S     100.00 g\r\n", mtsics.WeightReply("S", Status.STABLE, Decimal("100.00"), "g")),
    (b"S S     -0.005 kg\r\n", mtsics.WeightReply("S", Status.STABLE, Decimal("-0.005"), "kg")),
    (b"S +\r\n", mtsics.StatusReply("S", Status.ABOVE)),
    (b"S -\r\n", mtsics.StatusReply("S", Status.BELOW)),
    (b"S I\r\n", mtsics.StatusReply("S", Status.NOT_EXECUTABLE)),
    (b"Z A\r\n", mtsics.StatusReply("Z", Status.EXECUTED)),
    (b"Z +\r\n", mtsics.StatusReply("Z", Status.ABOVE)),
    (b"Z -\r\n", mtsics.StatusReply("Z", Status.BELOW)),
    (b"T S      0.500 kg\r\n", mtsics.WeightReply("T", Status.STABLE, Decimal("0.500"), "kg")),
    (b"TA A      0.500 kg\r\n", mtsics.WeightReply("TA", Status.EXECUTED, Decimal("0.500"), "kg")),
    (b"TA L\r\n", mtsics.StatusReply("TA", Status.PARAMETER_ERROR)),
    (b"TAC A\r\n", mtsics.StatusReply("TAC", Status.EXECUTED)),
    (b'I4 A "0123456789"\r\n', mtsics.TextReply("I4", Status.EXECUTED, ("0123456789",))),
    (b'I2 A "PB3002-S 3100.0 g"\r\n', mtsics.TextReply("I2", Status.EXECUTED, ("PB3002-S 3100.0 g",))),
    (b'I3 A "2.10 10.28.0.493.142"\r\n', mtsics.TextReply("I3", Status.EXECUTED, ("2.10 10.28.0.493.142",))),
    (b"ES\r\n", mtsics.ErrorReply("ES")),
    (b"ET\r\n", mtsics.ErrorReply("ET")),
    (b"EL\r\n", mtsics.ErrorReply("EL")),
]

COMMAND_VECTORS = [
    (mtsics.SendStableWeight(), b"S\r\n"),
    (mtsics.SendImmediateWeight(), b"SI\r\n"),
    (mtsics.Zero(), b"Z\r\n"),
    (mtsics.Tare(), b"T\r\n"),
    (mtsics.QueryTare(), b"TA\r\n"),
    (mtsics.PresetTare(Decimal("0.500"), "kg"), b"TA 0.500 kg\r\n"),
    (mtsics.ClearTare(), b"TAC\r\n"),
    (mtsics.Reset(), b"@\r\n"),
    (mtsics.QueryBalanceData(), b"I2\r\n"),
    (mtsics.QuerySoftwareVersion(), b"I3\r\n"),
    (mtsics.QuerySerialNumber(), b"I4\r\n"),
]

COMMAND_FOR_REPLY = {
    "S": mtsics.SendStableWeight(),
    "Z": mtsics.Zero(),
    "T": mtsics.Tare(),
    "TA": mtsics.QueryTare(),
    "TAC": mtsics.ClearTare(),
    "I4": mtsics.QuerySerialNumber(),
    "I2": mtsics.QueryBalanceData(),
    "I3": mtsics.QuerySoftwareVersion(),
}


def _host_waiting_for(reply: mtsics.Reply) -> mtsics.HostConnection:
    host = mtsics.HostConnection()
    ident = reply.code if isinstance(reply, mtsics.ErrorReply) else reply.command
    host.send(COMMAND_FOR_REPLY.get(ident, mtsics.SendStableWeight()))
    return host


@pytest.mark.parametrize(("wire", "reply"), REPLY_VECTORS)
def test_reply_vector_whole(wire: bytes, reply: mtsics.Reply) -> None:
    host = _host_waiting_for(reply)
    host.receive_data(wire)
    assert host.next_event() == reply
    assert host.next_event() is mtsics.NEED_DATA
    assert host.state is mtsics.HostState.IDLE


@pytest.mark.parametrize(("wire", "reply"), REPLY_VECTORS)
def test_reply_vector_byte_by_byte(wire: bytes, reply: mtsics.Reply) -> None:
    host = _host_waiting_for(reply)
    events = []
    for i in range(len(wire)):
        host.receive_data(wire[i : i + 1])
        event = host.next_event()
        if event is not mtsics.NEED_DATA:
            events.append(event)
    assert events == [reply]


@pytest.mark.parametrize(("wire", "reply"), REPLY_VECTORS)
def test_reply_vector_with_trailing_garbage(wire: bytes, reply: mtsics.Reply) -> None:
    host = _host_waiting_for(reply)
    host.receive_data(wire + b"\x00\xffgarbage")
    assert host.next_event() == reply
    assert host.next_event() is mtsics.NEED_DATA  # the garbage has no CR LF yet


@pytest.mark.parametrize(("wire", "reply"), [v for v in REPLY_VECTORS if not isinstance(v[1], mtsics.TextReply)])
def test_reply_encodes_to_the_manual_bytes(wire: bytes, reply: mtsics.Reply) -> None:
    assert reply.encode() == wire


@pytest.mark.parametrize(("command", "wire"), COMMAND_VECTORS)
def test_command_vectors(command: mtsics.Command, wire: bytes) -> None:
    assert command.encode() == wire
    assert mtsics.parse_command(wire[:-2]) == command


@pytest.mark.parametrize(
    "line",
    [b"S X 1.000 kg", b"S S 1.0.0 kg", b"S S 1.000", b"S S abc kg", b"s s 1 kg", b"S", b"", b"S S1.000 kg",
     b"I4 A \"unterminated", b"S S \xff1.000 kg", b"TA A 1e5 kg", b"S S 1.000 kg extra"],
)
def test_malformed_reply_lines(line: bytes) -> None:
    with pytest.raises(mtsics.MalformedLine):
        mtsics.parse_reply(line)


def test_garbage_line_is_consumed_and_the_next_reply_parses() -> None:
    host = mtsics.HostConnection()
    host.send(mtsics.SendStableWeight())
    host.receive_data(b"\x00\x13noise\r\nS S      2.000 kg\r\n")
    with pytest.raises(mtsics.RemoteProtocolError):
        host.next_event()
    assert host.next_event() == mtsics.WeightReply("S", Status.STABLE, Decimal("2.000"), "kg")


def test_reply_to_another_command_is_unexpected_and_waiting_continues() -> None:
    host = mtsics.HostConnection()
    host.send(mtsics.Zero())
    host.receive_data(b"S S      1.000 kg\r\nZ A\r\n")
    with pytest.raises(mtsics.UnexpectedReply):
        host.next_event()
    assert host.next_event() == mtsics.StatusReply("Z", Status.EXECUTED)


def test_reset_is_answered_with_i4() -> None:
    host = mtsics.HostConnection()
    assert host.send(mtsics.Reset()) == b"@\r\n"
    host.receive_data(b'I4 A "B207696838"\r\n')
    assert host.next_event() == mtsics.TextReply("I4", Status.EXECUTED, ("B207696838",))


def test_unsolicited_reply_when_idle() -> None:
    host = mtsics.HostConnection()
    host.receive_data(b"S S      1.000 kg\r\n")
    with pytest.raises(mtsics.UnexpectedReply):
        host.next_event()


def test_second_command_while_waiting_is_our_fault_and_names_the_state() -> None:
    host = mtsics.HostConnection()
    host.send(mtsics.SendStableWeight())
    with pytest.raises(mtsics.LocalProtocolError, match="awaiting_reply"):
        host.send(mtsics.Zero())
    host.abandon()
    assert host.send(mtsics.Zero()) == b"Z\r\n"


def test_multi_line_reply_keeps_waiting_until_final() -> None:
    host = mtsics.HostConnection()
    host.send(mtsics.SendStableWeight())
    host.receive_data(b"S B\r\nS A\r\n")
    assert host.next_event() == mtsics.StatusReply("S", Status.MORE)
    assert host.state is mtsics.HostState.AWAITING_REPLY
    assert host.next_event() == mtsics.StatusReply("S", Status.EXECUTED)
    assert host.state is mtsics.HostState.IDLE


def test_stream_without_crlf_is_bounded_and_reported_once() -> None:
    buf = LineBuffer(max_line=64)
    for _ in range(1000):
        buf.feed(b"x" * 100)
        assert buf.buffered <= 64
    with pytest.raises(mtsics.LineTooLong):
        buf.next_line()
    assert buf.next_line() is None
    buf.feed(b"tail of the junk\r\nZ A\r\n")
    assert buf.next_line() == b"Z A"


def test_overlong_split_across_cr_and_lf() -> None:
    buf = LineBuffer(max_line=8)
    buf.feed(b"y" * 20 + b"\r")
    buf.feed(b"\nS I\r\n")
    with pytest.raises(mtsics.LineTooLong):
        buf.next_line()
    assert buf.next_line() == b"S I"


def test_invalid_messages_cannot_be_built() -> None:
    with pytest.raises(mtsics.LocalProtocolError):
        mtsics.PresetTare(Decimal("NaN"))
    with pytest.raises(mtsics.LocalProtocolError):
        mtsics.PresetTare(Decimal("1"), "kilo grams")
    with pytest.raises(mtsics.LocalProtocolError):
        mtsics.WeightReply("S", Status.STABLE, 1.5, "kg")  # type: ignore[arg-type]
    with pytest.raises(mtsics.LocalProtocolError):
        mtsics.ErrorReply("EX")  # type: ignore[arg-type]


def test_device_side_answers_garbage_with_es_or_et() -> None:
    dev = mtsics.DeviceConnection()
    dev.receive_data(b"S\r\nXYZ\r\nS\xff\r\nTA 0.250 kg\r\n" + b"q" * 300 + b"\r\nZ\r\n")
    events = []
    while (event := dev.next_event()) is not mtsics.NEED_DATA:
        events.append(event)
    assert events[0] == mtsics.SendStableWeight()
    assert isinstance(events[1], mtsics.CommandRejected) and events[1].reply == mtsics.ErrorReply("ES")
    assert isinstance(events[2], mtsics.CommandRejected) and events[2].reply == mtsics.ErrorReply("ET")
    assert events[3] == mtsics.PresetTare(Decimal("0.250"), "kg")
    assert isinstance(events[4], mtsics.CommandRejected) and events[4].reply == mtsics.ErrorReply("ES")
    assert events[5] == mtsics.Zero()


def test_host_and_device_pair_in_memory() -> None:
    host, dev = mtsics.HostConnection(), mtsics.DeviceConnection()
    dev.receive_data(host.send(mtsics.PresetTare(Decimal("0.250"))))
    command = dev.next_event()
    assert command == mtsics.PresetTare(Decimal("0.250"), "kg")
    host.receive_data(dev.send(mtsics.WeightReply("TA", Status.EXECUTED, Decimal("0.250"), "kg")))
    assert host.next_event() == mtsics.WeightReply("TA", Status.EXECUTED, Decimal("0.250"), "kg")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.binary(max_size=600), st.sampled_from([w for w, _ in REPLY_VECTORS]), st.just(b"\r\n")),
        max_size=12,
    )
)
def test_fuzz_host_never_hangs_or_raises_anything_else(chunks: list[bytes]) -> None:
    host = mtsics.HostConnection(max_line=128)
    host.send(mtsics.SendStableWeight())
    for chunk in chunks:
        host.receive_data(chunk)
        for _ in range(len(chunk) + 2):  # each call consumes a line: this many always suffice
            try:
                event = host.next_event()
            except mtsics.RemoteProtocolError:
                continue
            if event is mtsics.NEED_DATA:
                break
            if host.state is mtsics.HostState.IDLE:
                host.send(mtsics.SendStableWeight())
        else:
            raise AssertionError("next_event kept producing events")
        assert host._lines.buffered <= 128


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_device_side_always_answers(data: bytes) -> None:
    dev = mtsics.DeviceConnection(max_line=128)
    dev.receive_data(data)
    for _ in range(len(data) + 2):
        event = dev.next_event()
        if event is mtsics.NEED_DATA:
            break
        assert isinstance(event, mtsics.Command | mtsics.CommandRejected)
    else:
        raise AssertionError("next_event kept producing events")
