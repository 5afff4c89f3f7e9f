"""DLE EOT n answers: bit tables of the Epson ESC/POS reference (same in the Citizen CT-S2000,
CBM-1000 and Bixolon SRP-350 manuals): fixed bits 0=0, 1=1, 4=1, 7=0."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.escpos import (
    NEED_DATA,
    ErrorCause,
    OfflineCause,
    PaperSensors,
    PrinterStatus,
    RealTimeStatus,
    RemoteProtocolError,
    StatusKind,
    StatusParser,
    parse_status_byte,
    request,
)
from protocols.escpos.status import combine

VECTORS = [
    # (n, byte, expected) — the manual's hex columns added up
    (1, 0x12, PrinterStatus()),
    (1, 0x16, PrinterStatus(drawer_pin3_high=True)),
    (1, 0x1A, PrinterStatus(offline=True)),
    (1, 0x3A, PrinterStatus(offline=True, waiting_recovery=True)),
    (1, 0x52, PrinterStatus(feed_button=True)),
    (2, 0x12, OfflineCause()),
    (2, 0x16, OfflineCause(cover_open=True)),
    (2, 0x32, OfflineCause(paper_end_stop=True)),
    (2, 0x72, OfflineCause(paper_end_stop=True, error=True)),
    (2, 0x1A, OfflineCause(feeding_by_button=True)),
    (3, 0x12, ErrorCause()),
    (3, 0x1A, ErrorCause(autocutter=True)),
    (3, 0x32, ErrorCause(unrecoverable=True)),
    (3, 0x52, ErrorCause(auto_recoverable=True)),
    (3, 0x16, ErrorCause(mechanical=True)),
    (4, 0x12, PaperSensors()),
    (4, 0x1E, PaperSensors(near_end=True)),  # python-escpos RT_MASK_LOWPAPER
    (4, 0x72, PaperSensors(paper_out=True)),  # python-escpos RT_MASK_NOPAPER
    (4, 0x7E, PaperSensors(near_end=True, paper_out=True)),
    (4, 0x16, PaperSensors(near_end=True)),  # Citizen: near-end sensor 1 only
    (4, 0x32, PaperSensors(paper_out=True)),  # Citizen: paper-end sensor only
]


def test_requests() -> None:
    assert request(StatusKind.PRINTER) == b"\x10\x04\x01"
    assert request(4) == b"\x10\x04\x04"
    with pytest.raises(ValueError):
        request(5)


@pytest.mark.parametrize(("n", "value", "expected"), VECTORS)
def test_vectors(n: int, value: int, expected: object) -> None:
    assert parse_status_byte(n, value) == expected


@pytest.mark.parametrize(
    ("n", "value", "expected"), [v for v in VECTORS if not (v[0] == 4 and v[1] in (0x16, 0x32))]
)
def test_encode_round_trip(
    n: int, value: int, expected: PrinterStatus | OfflineCause | ErrorCause | PaperSensors
) -> None:
    assert expected.encode() == value  # single-sensor paper variants encode as both bits: left out


@pytest.mark.parametrize("value", [0x00, 0xFF, 0x10, 0x02, 0x92, 0x13, 0x41])
def test_bytes_without_the_fixed_bits_are_rejected(value: int) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_status_byte(1, value)


def test_parser_in_order_byte_by_byte_with_garbage() -> None:
    parser = StatusParser()
    for kind in StatusKind:
        parser.expect(kind)
    stream = b"\x00\x12" + b"\xff\x16" + b"\x1a" + b"\x7e" + b"junk"
    got = []
    for byte in stream:
        parser.receive_data(bytes([byte]))
        while True:
            try:
                event = parser.next_event()
            except RemoteProtocolError:
                continue
            if event is NEED_DATA:
                break
            got.append(event)
    assert [k for k, _ in got] == list(StatusKind)
    status = combine(dict(got))  # type: ignore[arg-type]
    assert status.cover_open and status.paper_out and status.paper_near_end
    assert status.error.autocutter
    assert status.faults == ("cover_open", "paper_out", "cutter_error")
    assert parser.pending == 0


def test_aggregate_status() -> None:
    idle = RealTimeStatus(PrinterStatus(), OfflineCause(), ErrorCause(), PaperSensors())
    assert idle.faults == () and idle.online and idle.encode() == b"\x12\x12\x12\x12"
    offline = RealTimeStatus(PrinterStatus(offline=True), OfflineCause(), ErrorCause(), PaperSensors())
    assert offline.faults == ("offline",)
    near = RealTimeStatus(PrinterStatus(), OfflineCause(), ErrorCause(), PaperSensors(near_end=True))
    assert near.faults == () and near.paper_near_end


@given(st.binary(max_size=100), st.lists(st.sampled_from(list(StatusKind)), max_size=20))
def test_fuzz_parser(data: bytes, kinds: list[StatusKind]) -> None:
    parser = StatusParser()
    for k in kinds:
        parser.expect(k)
    parser.receive_data(data)
    for _ in range(len(data) + 2):
        try:
            event = parser.next_event()
        except RemoteProtocolError:
            continue
        if event is NEED_DATA:
            return
        _kind, value = event
        assert isinstance(value, PrinterStatus | OfflineCause | ErrorCause | PaperSensors)
    pytest.fail("parser did not settle")


@given(st.integers(0, 255), st.sampled_from(list(StatusKind)))
def test_fuzz_single_byte(value: int, kind: StatusKind) -> None:
    try:
        parsed = parse_status_byte(kind, value)
    except RemoteProtocolError:
        assert value & 0x93 != 0x12
    else:
        assert value & 0x93 == 0x12 and parsed is not None
