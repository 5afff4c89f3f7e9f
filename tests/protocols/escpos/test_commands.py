"""The printer-side ESC/POS tokenizer, on bytes python-escpos really sends."""

from __future__ import annotations

import pytest
from escpos.printer import Dummy
from hypothesis import given
from hypothesis import strategies as st

from protocols.escpos import NEED_DATA, Control, EscPosParser, RealTimeRequest, RemoteProtocolError, Text


def events(data: bytes, chunk: int | None = None) -> list[object]:
    parser = EscPosParser()
    out: list[object] = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces:
        parser.receive_data(piece)
        while (event := parser.next_event()) is not NEED_DATA:
            out.append(event)
    return out


def merged(evs: list[object]) -> list[object]:
    """Join adjacent Text events (chunking may split text)."""
    out: list[object] = []
    for e in evs:
        if isinstance(e, Text) and out and isinstance(out[-1], Text):
            out[-1] = Text(out[-1].data + e.data)
        else:
            out.append(e)
    return out


@pytest.fixture
def sample() -> bytes:
    p = Dummy(profile="default")
    p.hw("INIT")
    p.charcode("CP866")
    p.set(align="center", bold=True, double_height=True, normal_textsize=False)
    p.textln("Привет")
    p.barcode("4600000000008", "EAN13", function_type="B", check=False)
    p.barcode("460000000000", "EAN13", function_type="A")
    p.qr("https://x.ru/1", native=True, size=4)
    p.cut()
    return bytes(p.output)


def test_python_escpos_output(sample: bytes) -> None:
    evs = events(sample)
    names = [e.name for e in evs if isinstance(e, Control)]
    assert names[:2] == ["ESC @", "ESC t"]
    assert evs[1] == Control("ESC t", b"\x11")  # 17 = PC866 in the default profile
    assert Text("Привет".encode("cp866")) in evs
    bars = [e for e in evs if isinstance(e, Control) and e.name == "GS k"]
    assert [(b.arg(0), b.payload) for b in bars] == [(67, b"4600000000008"), (2, b"460000000000")]
    qr = [e.payload for e in evs if isinstance(e, Control) and e.name == "GS ( k"]
    assert b"1P0https://x.ru/1" in qr and b"1Q0" in qr
    assert names[-2:] == ["ESC d", "GS V"]
    assert all(e.known for e in evs if isinstance(e, Control))


def test_byte_by_byte_and_trailing_garbage(sample: bytes) -> None:
    whole = events(sample)
    assert merged(events(sample, chunk=1)) == merged(whole)
    tail = events(sample + b"\x1b\xee\x1d\xee")
    assert tail[: len(whole)] == whole
    assert [e.known for e in tail[len(whole) :] if isinstance(e, Control)] == [False, False]


def test_real_time_requests_and_cut_variants() -> None:
    evs = events(b"\x10\x04\x01\x1dVA\x03\x1dV\x01\x10\x04\x04\x1dV\x42\x00")
    assert evs == [
        RealTimeRequest(1),
        Control("GS V", b"A\x03"),
        Control("GS V", b"\x01"),
        RealTimeRequest(4),
        Control("GS V", b"B\x00"),
    ]


def test_raster_image_payload_is_skipped_whole() -> None:
    img = b"\x1dv0\x00\x02\x00\x03\x00" + bytes(6)
    assert events(img + b"A") == [Control("GS v", b"0\x00\x02\x00\x03\x00", bytes(6)), Text(b"A")]


def test_oversized_payload_raises_and_resyncs() -> None:
    parser = EscPosParser(max_payload=100)
    parser.receive_data(b"\x1d(k\xff\xffXYZ")
    with pytest.raises(RemoteProtocolError):
        parser.next_event()
    assert parser.next_event() == Text(b"XYZ")  # the header was dropped, the rest reads as text


@given(st.binary(max_size=300))
def test_fuzz_never_hangs(data: bytes) -> None:
    parser = EscPosParser(max_payload=256)
    parser.receive_data(data)
    for _ in range(len(data) + 2):
        try:
            event = parser.next_event()
        except RemoteProtocolError:
            continue
        if event is NEED_DATA:
            return
        assert isinstance(event, Text | Control | RealTimeRequest)
    pytest.fail("parser did not settle")
