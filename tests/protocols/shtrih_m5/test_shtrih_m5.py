"""Shtrih M5 scale protocol: byte vectors, codecs, error table, host/device pair, fuzz.

Vectors are built from the vendor's own code, byte by byte (``shtrih-m/opos``,
Source/SmScale/Units): ScaleFrame.pas ``Encode`` = STX + LEN + DATA + XOR(LEN, DATA);
M5ScaleDevice.pas: ``#$3A + IntToBin(Password, 4)`` (LE), ``#$32 + … + IntToBin(Value, 2)``,
``#$E8 + Chr(Number)``, ``#$EA``, ``#$FC``; ReadStatus answer = CMD, ERR, flags(2), weight(4),
tare(2); default password 30 (ScaleParameters.pas).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import shtrih_m5 as m5
from protocols.shtrih.frames import Control, Frame, FrameDecoder, encode_frame, lrc
from protocols.shtrih_m5 import errors as E

H = bytes.fromhex

REQUEST_VECTORS: list[tuple[m5.Request, bytes]] = [
    (m5.Zero(), H("02 05 30 1E 00 00 00 2B")),
    (m5.Tare(), H("02 05 31 1E 00 00 00 2A")),
    (m5.SetTare(500), H("02 07 32 1E 00 00 00 F4 01 DE")),
    (m5.ReadStatus(), H("02 05 3A 1E 00 00 00 21")),
    (m5.ReadStatus(password=0x04030201), H("02 05 3A 01 02 03 04 3B")),
    (m5.ReadChannelNumber(), H("02 01 EA EB")),
    (m5.ReadChannel(0), H("02 02 E8 00 EA")),
    (m5.ReadDeviceInfo(), H("02 01 FC FD")),
]

STABLE = m5.StatusFlag.FIXED | m5.StatusFlag.CHANNEL_ON | m5.StatusFlag.STABLE
ANSWER_VECTORS: list[tuple[m5.Answer, bytes]] = [
    (m5.Status(STABLE, 1234, 0), H("02 0A 3A 00 15 00 D2 04 00 00 00 00 F3")),
    (
        m5.Status(m5.StatusFlag.CHANNEL_ON | m5.StatusFlag.TARE_SET, -5, 250),
        H("02 0A 3A 00 0C 00 FB FF FF FF FA 00") + bytes([lrc(H("0A 3A 00 0C 00 FB FF FF FF FA 00"))]),
    ),
    (m5.Done(m5.Command.ZERO), H("02 02 30 00 32")),
    (m5.Refused(0x3A, 122), H("02 02 3A 7A 42")),
    (m5.ChannelNumber(0), H("02 03 EA 00 00 E9")),
]


def _items(chunks: list[bytes]) -> list[Frame | Control]:
    dec = FrameDecoder()
    out: list[Frame | Control] = []
    for chunk in chunks:
        dec.feed(chunk)
        while (item := dec.next_item()) is not None:
            out.append(item)
    return out


@pytest.mark.parametrize(("request_", "wire"), REQUEST_VECTORS)
def test_request_vectors(request_: m5.Request, wire: bytes) -> None:
    assert encode_frame(request_.encode()) == wire
    whole = _items([wire])
    bytewise = _items([bytes([b]) for b in wire])
    garbage = _items([b"\xaa\x00\x99" + wire + b"\x77\x02"])
    assert whole == bytewise == garbage == [Frame(request_.encode())]
    assert m5.decode_request(request_.encode()) == request_


@pytest.mark.parametrize(("answer", "wire"), ANSWER_VECTORS)
def test_answer_vectors(answer: m5.Answer, wire: bytes) -> None:
    assert encode_frame(m5.encode_answer(answer)) == wire
    for chunks in ([wire], [bytes([b]) for b in wire], [b"\x13\x37" + wire + b"\x00\x02"]):
        items = _items(chunks)
        assert len(items) == 1 and isinstance(items[0], Frame)
        assert m5.decode_answer(items[0].body) == answer


def test_status_flags_decode_as_the_vendor_names_them() -> None:
    flags = m5.StatusFlag(0x0340)
    assert (
        m5.StatusFlag.OVERLOAD in flags and m5.StatusFlag.UNDERLOAD in flags and m5.StatusFlag.NO_ADC in flags
    )
    status = m5.decode_answer(H("3A 00 50 00 00 00 00 00 00 00"))
    assert isinstance(status, m5.Status) and status.stable and status.overload and not status.underload


def test_longer_answers_are_accepted_shorter_are_malformed() -> None:
    assert m5.decode_answer(H("3A 00 15 00 D2 04 00 00 00 00 99 99")) == m5.Status(STABLE, 1234, 0)
    with pytest.raises(E.MalformedMessage, match="3Ah"):
        m5.decode_answer(H("3A 00 15 00 D2 04"))
    with pytest.raises(E.MalformedMessage):
        m5.decode_answer(H("3A"))
    with pytest.raises(E.MalformedMessage, match="неизвестную"):
        m5.decode_answer(H("77 00"))


def test_channel_and_device_info_round_trip() -> None:
    channel = m5.ChannelInfo(decimal_point=3, max_weight=15000, min_weight=40, max_tare=6000)
    body = m5.encode_answer(channel)
    assert len(body) == 2 + 22  # CheckMinLength(Answer, 22) in ReadChannel
    assert m5.decode_answer(body) == channel
    device = m5.DeviceInfo(1, 5, 2, 3, 1, 0, "ШТРИХ-М5")
    body = m5.encode_answer(device)
    assert body[8:] == "ШТРИХ-М5".encode("cp1251")
    assert m5.decode_answer(body) == device


def test_bad_requests_are_named() -> None:
    with pytest.raises(E.UnknownCommand):
        m5.decode_request(H("99 1E 00 00 00"))
    with pytest.raises(E.MalformedMessage, match="7"):
        m5.decode_request(H("32 1E 00 00 00 F4"))
    with pytest.raises(E.LocalProtocolError, match="Тара"):
        m5.SetTare(70000)
    with pytest.raises(E.LocalProtocolError, match="Пароль"):
        m5.ReadStatus(password=2**32)
    with pytest.raises(E.LocalProtocolError):
        m5.Status(STABLE, 2**31, 0)


def test_error_table_is_typed_and_russian() -> None:
    err = m5.Refused(0x31, 151).error()
    assert isinstance(err, E.TareRefused) and "Ошибка при установке тары" in str(err) and err.command == 0x31
    assert isinstance(E.refusal(122), E.WrongPassword)
    assert isinstance(E.refusal(150), E.ZeroRefused)
    assert isinstance(E.refusal(152), E.WeightNotFixed)
    assert isinstance(E.refusal(186), E.HardwareFault) and "АЦП" in E.refusal(186).message
    unknown = E.refusal(99)
    assert type(unknown) is E.ScaleRefused and "Неизвестная" in unknown.message
    with pytest.raises(ValueError):
        E.refusal(0)


# --- host ↔ device over an in-memory link ---------------------------------------------------


class Pair:
    def __init__(self) -> None:
        self.host = m5.HostConnection()
        self.device = m5.DeviceConnection()
        self.now = 0.0
        self.tamper_device_out = lambda data: data

    def call(self, request: m5.Request, answer_for: dict[int, m5.Answer]) -> m5.Answered | m5.LinkLost:
        self.host.send(request, self.now)
        for _ in range(50):
            out = self.host.data_to_send()
            if out:
                self.device.receive_data(out)
                while (event := self.device.next_event()) is not m5.NEED_DATA:
                    if isinstance(event, m5.RequestReceived):
                        self.device.send(answer_for[event.request.CODE])
                    elif isinstance(event, m5.BadRequest):
                        self.device.send(event.reply)
                back = self.tamper_device_out(self.device.data_to_send())
                if back:
                    self.host.receive_data(back, self.now)
            event = self.host.next_event()
            if isinstance(event, m5.Answered | m5.LinkLost):
                return event
            if not out:
                self.now = (self.host.deadline or self.now) + 0.01
                self.host.handle_timeout(self.now)
        raise AssertionError("no answer")


def test_host_device_pair_round_trip() -> None:
    pair = Pair()
    answer = m5.Status(STABLE, 1500, 0)
    event = pair.call(m5.ReadStatus(), {0x3A: answer})
    assert isinstance(event, m5.Answered) and event.answer == answer


def test_bad_lrc_answer_is_fetched_again() -> None:
    pair = Pair()
    corrupted = {"left": 1}

    def tamper(data: bytes) -> bytes:
        if corrupted["left"] and len(data) > 3:
            corrupted["left"] -= 1
            return data[:-1] + bytes([data[-1] ^ 0x55])
        return data

    pair.tamper_device_out = tamper
    answer = m5.Status(STABLE, 42, 0)
    event = pair.call(m5.ReadStatus(), {0x3A: answer})
    assert isinstance(event, m5.Answered) and event.answer == answer and corrupted["left"] == 0


def test_silent_device_is_link_lost() -> None:
    pair = Pair()
    pair.tamper_device_out = lambda data: b""
    event = pair.call(m5.Zero(), {0x30: m5.Done(m5.Command.ZERO)})
    assert isinstance(event, m5.LinkLost) and not event.command_sent  # ENQ never answered


def test_answer_to_another_command_is_dropped_not_taken() -> None:
    # The shared HostLink ACKs and drops an answer whose command byte is not ours (a stale
    # one); a device that only ever answers the wrong command ends as a lost link.
    pair = Pair()
    event = pair.call(m5.Zero(), {0x30: m5.Done(m5.Command.TARE)})
    assert isinstance(event, m5.LinkLost) and event.command_sent


# --- fuzz -----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_answers_parse_or_raise_the_peer_error(body: bytes) -> None:
    try:
        m5.decode_answer(body)
    except E.RemoteProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=12))
def test_fuzz_device_side_never_hangs_and_bounds_its_buffer(chunks: list[bytes]) -> None:
    device = m5.DeviceConnection()
    for chunk in chunks:
        device.receive_data(chunk)
        assert device.link._decoder.buffered <= 2 + 255 + 1
        for _ in range(len(chunk) + 1):
            event = device.next_event()
            if event is m5.NEED_DATA:
                break
            if isinstance(event, m5.BadRequest):
                assert event.reply.code in (120, 121)
        device.data_to_send()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_host_side_raises_only_the_peer_error(noise: bytes) -> None:
    host = m5.HostConnection()
    host.send(m5.ReadStatus(), 0.0)
    host.data_to_send()
    try:
        host.receive_data(b"\x15" + noise, 0.0)  # NAK: the frame goes out, then noise
        for _ in range(len(noise) + 2):
            if host.next_event() is m5.NEED_DATA:
                break
    except E.RemoteProtocolError:
        pass
