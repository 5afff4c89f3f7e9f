"""~HS / ~HI answers: vectors laid out per the ZPL II Programming Guide (~HS "Host Status
Return": three STX…ETX CR LF lines of 12/11/2 fields; ~HI "model,version,dpmm,memory")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.zpl import NEED_DATA, AnswerParser, HostIdentification, HostStatus, RemoteProtocolError
from protocols.zpl.status import HOST_IDENTIFICATION, FrameReader, parse_host_status

# Idle printer: interface settings 030, label length 406 dots, thermal transfer, tear-off (2).
HS_IDLE = (
    b"\x02030,0,0,0406,000,0,0,0,000,0,0,0\x03\r\n"
    b"\x02001,0,0,0,1,2,6,0,00000000,1,000\x03\r\n"
    b"\x021234,0\x03\r\n"
)
# Paper out + paused, two formats waiting, head up, ribbon out, 3 labels of the batch left.
HS_FAULTS = (
    b"\x02030,1,1,0406,002,0,0,0,000,0,0,0\x03\r\n"
    b"\x02001,0,1,1,1,2,6,0,00000003,1,000\x03\r\n"
    b"\x021234,0\x03\r\n"
)
HI = b"\x02ZD421-203dpi,V93.21.26Z,8,8192KB\x03\r\n"


def parse_all(data: bytes, expect: bytes = b"~HS", chunk: int | None = None) -> list[object]:
    parser = AnswerParser(expect)
    events: list[object] = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces:
        parser.receive_data(piece)
        while (event := parser.next_event()) is not NEED_DATA:
            events.append(event)
    return events


def test_idle_vector_whole() -> None:
    [status] = parse_all(HS_IDLE)
    assert isinstance(status, HostStatus)
    assert status.faults == ()
    assert status.idle
    assert status.label_length_dots == 406
    assert status.interface_settings == 30
    assert status.thermal_transfer and status.print_mode == "2" and status.print_width_mode == 6
    assert status.password == "1234" and not status.static_ram
    assert status.format_while_printing


def test_fault_vector_fields() -> None:
    [status] = parse_all(HS_FAULTS)
    assert isinstance(status, HostStatus)
    assert status.paper_out and status.paused and status.head_open and status.ribbon_out
    assert status.formats_in_buffer == 2
    assert status.labels_remaining == 3
    assert status.faults == ("head_open", "paper_out", "ribbon_out", "paused")
    assert not status.idle


@pytest.mark.parametrize("vector", [HS_IDLE, HS_FAULTS])
def test_byte_by_byte_and_trailing_garbage(vector: bytes) -> None:
    whole = parse_all(vector)
    assert parse_all(vector, chunk=1) == whole
    # noise before, between answers and after: still exactly the answers
    events = parse_all(b"\xff\x00junk" + vector + b"\r\n\x7f" + vector + b"garbage\x03\x02\x02")
    assert events == whole * 2


def test_encode_round_trip() -> None:
    [status] = parse_all(HS_FAULTS)
    assert isinstance(status, HostStatus)
    assert status.encode() == HS_FAULTS
    [idle] = parse_all(HS_IDLE)
    assert isinstance(idle, HostStatus)
    assert idle.encode() == HS_IDLE


def test_hi_vector() -> None:
    [info] = parse_all(HI, HOST_IDENTIFICATION)
    assert info == HostIdentification("ZD421-203dpi", "V93.21.26Z", 8, "8192KB")
    assert info.dpi == 203 and info.memory_kb == 8192
    assert info.encode() == HI
    [with_options] = parse_all(b"\x02ZT410-300dpi,V75.19.15Z,12,8176KB,RFID\x03\r\n", HOST_IDENTIFICATION)
    assert isinstance(with_options, HostIdentification)
    assert with_options.dpi == 300 and with_options.options == ("RFID",)
    assert parse_all(HI, HOST_IDENTIFICATION, chunk=1) == [info]


def test_out_of_order_line_is_dropped_and_next_answer_parses() -> None:
    line2_only = HS_IDLE.split(b"\r\n")[1] + b"\r\n"
    parser = AnswerParser()
    parser.receive_data(line2_only + HS_FAULTS)
    with pytest.raises(RemoteProtocolError):
        parser.next_event()
    status = parser.next_event()
    assert isinstance(status, HostStatus) and status.paper_out


def test_stale_first_line_is_replaced_by_a_fresh_answer() -> None:
    first_line = HS_IDLE.split(b"\r\n")[0] + b"\r\n"
    [status] = parse_all(first_line + HS_FAULTS)
    assert isinstance(status, HostStatus) and status.paper_out


@pytest.mark.parametrize(
    "bad",
    [
        b"\x02030,2,0,0406,000,0,0,0,000,0,0,0\x03",  # flag 2
        b"\x0203x,0,0,0406,000,0,0,0,000,0,0,0\x03",  # non-numeric
        b"\x02only,three,fields\x03",
    ],
)
def test_malformed_lines_raise_remote_error(bad: bytes) -> None:
    parser = AnswerParser()
    parser.receive_data(bad + HS_IDLE[HS_IDLE.index(b"\x02001") :])
    with pytest.raises(RemoteProtocolError):
        while parser.next_event() is not NEED_DATA:
            pass


def test_frame_buffer_is_bounded() -> None:
    reader = FrameReader(max_frame=32)
    reader.receive_data(b"\x02" + b"A" * 100)
    with pytest.raises(RemoteProtocolError):
        reader.next_frame()
    reader.receive_data(HI)
    assert reader.next_frame() == HI[1:-3]


def test_parse_host_status_requires_three_lines() -> None:
    with pytest.raises(RemoteProtocolError):
        parse_host_status([b"a", b"b"])


@given(st.binary(max_size=400))
def test_fuzz_garbage_parses_or_raises_remote_error(data: bytes) -> None:
    for expect in (b"~HS", b"~HI"):
        parser = AnswerParser(expect)
        parser.receive_data(data)
        for _ in range(len(data) + 2):
            try:
                event = parser.next_event()
            except RemoteProtocolError:
                continue
            if event is NEED_DATA:
                break
            assert isinstance(event, HostStatus | HostIdentification)
        else:
            pytest.fail("parser did not settle")


@given(st.binary(max_size=200))
def test_fuzz_garbage_before_a_real_answer_never_hides_it(noise: bytes) -> None:
    clean = noise.replace(b"\x02", b"")
    events = []
    parser = AnswerParser()
    parser.receive_data(clean + HS_FAULTS)
    while True:
        try:
            event = parser.next_event()
        except RemoteProtocolError:
            continue
        if event is NEED_DATA:
            break
        events.append(event)
    assert events and isinstance(events[-1], HostStatus) and events[-1].labels_remaining == 3
