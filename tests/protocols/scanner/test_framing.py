"""LineDecoder: byte vectors whole, byte by byte and with garbage; timing; bounds; a fuzz rule."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.scanner import (
    NEED_DATA,
    BytesDiscarded,
    CodeScanned,
    FramingConfigError,
    LineDecoder,
    LineFraming,
    Symbology,
    encode_scan,
    parse_aim,
    parse_control,
)

GS = b"\x1d"
MILK = b"0104600439931256215bTxQ!" + GS + b"93dGVz"

# (framing, bytes on the wire, [(data, AIM id or None)])
VECTORS: list[tuple[LineFraming, bytes, list[tuple[bytes, str | None]]]] = [
    (LineFraming(), b"4600439931256\r", [(b"4600439931256", None)]),
    (
        LineFraming(suffix=b"\n"),
        b"4600439931256\n46004390\n",
        [(b"4600439931256", None), (b"46004390", None)],
    ),
    (LineFraming(suffix=b"\r\n"), b"2200123012340\r\n", [(b"2200123012340", None)]),
    (
        LineFraming(suffix=b"\t"),
        b"4600439931256\t12345670\t",
        [(b"4600439931256", None), (b"12345670", None)],
    ),
    (
        LineFraming(aim=True),
        b"]E04600439931256\r]d2" + MILK + b"\r",
        [(b"4600439931256", "]E0"), (MILK, "]d2")],
    ),
    (LineFraming(gs_substitute=b"~"), MILK.replace(GS, b"~") + b"\r", [(MILK, None)]),
    (
        LineFraming(gs_substitute=b"<GS>", aim=True),
        b"]d2" + MILK.replace(GS, b"<GS>") + b"\r",
        [(MILK, "]d2")],
    ),
    (LineFraming(prefix=b"\x02", suffix=b"\x03"), b"\x02]Q1hello\x03", [(b"]Q1hello", None)]),
    (
        LineFraming(prefix=b"#", suffix=b"\r\n", aim=True),
        b"#]C1" + b"00046004399312560015\r\n",
        [(b"00046004399312560015", "]C1")],
    ),
    # a scanner sending CRLF where CR was configured: LF is a line end too, not data
    (LineFraming(), b"4600439931256\r\n46004390\r\n", [(b"4600439931256", None), (b"46004390", None)]),
]


def _drain(decoder: LineDecoder, now: float | None = None) -> list[CodeScanned | BytesDiscarded]:
    events: list[CodeScanned | BytesDiscarded] = []
    while (event := decoder.next_event(now)) != NEED_DATA:
        assert isinstance(event, CodeScanned | BytesDiscarded)
        events.append(event)
    return events


def _scans(events: list[CodeScanned | BytesDiscarded]) -> list[tuple[bytes, str | None]]:
    return [(e.data, None if e.aim is None else str(e.aim)) for e in events if isinstance(e, CodeScanned)]


@pytest.mark.parametrize(("framing", "wire", "expected"), VECTORS)
def test_vectors_whole(framing: LineFraming, wire: bytes, expected: list[tuple[bytes, str | None]]) -> None:
    decoder = LineDecoder(framing)
    decoder.receive_data(wire, 0.0)
    events = _drain(decoder, 0.0)
    assert _scans(events) == expected
    assert not [e for e in events if isinstance(e, BytesDiscarded)]
    assert decoder.buffered == 0


@pytest.mark.parametrize(("framing", "wire", "expected"), VECTORS)
def test_vectors_byte_by_byte(
    framing: LineFraming, wire: bytes, expected: list[tuple[bytes, str | None]]
) -> None:
    decoder = LineDecoder(framing)
    events: list[CodeScanned | BytesDiscarded] = []
    for i in range(len(wire)):
        decoder.receive_data(wire[i : i + 1], i * 0.001)
        events += _drain(decoder, i * 0.001)
    assert _scans(events) == expected


@pytest.mark.parametrize(("framing", "wire", "expected"), VECTORS)
def test_vectors_after_terminated_garbage_and_before_trailing_garbage(
    framing: LineFraming, wire: bytes, expected: list[tuple[bytes, str | None]]
) -> None:
    decoder = LineDecoder(framing)
    end = framing.suffix
    decoder.receive_data(b"\x00\xff\x13noise" + end + wire + b"\x07partial", 0.0)
    events = _drain(decoder, 0.0)
    assert _scans(events) == expected
    discarded = [e for e in events if isinstance(e, BytesDiscarded)]
    assert len(discarded) == 1 and discarded[0].head.startswith(b"\x00\xff")
    assert decoder.buffered == len(b"\x07partial")


def test_aim_identifiers_map_to_symbologies() -> None:
    table = {
        b"]E0": Symbology.EAN13,
        b"]E4": Symbology.EAN8,
        b"]C0": Symbology.CODE128,
        b"]C1": Symbology.GS1_128,
        b"]d1": Symbology.DATAMATRIX,
        b"]d2": Symbology.GS1_DATAMATRIX,
        b"]Q1": Symbology.QR,
        b"]Q3": Symbology.GS1_QR,
        b"]e0": Symbology.GS1_DATABAR,
        b"]I1": Symbology.ITF,
        b"]A0": Symbology.CODE39,
        b"]y0": Symbology.UNKNOWN,
    }
    for head, symbology in table.items():
        aim = parse_aim(head + b"123")
        assert aim is not None and str(aim) == head.decode()
        assert aim.symbology is symbology, head
    assert parse_aim(b"]E") is None
    assert parse_aim(b"]1A") is None  # code character must be a letter
    assert parse_aim(b"E04600") is None


def test_line_without_aim_is_kept_without_identifier() -> None:
    decoder = LineDecoder(LineFraming(aim=True))
    decoder.receive_data(b"4600439931256\r", 0.0)
    assert _scans(_drain(decoder)) == [(b"4600439931256", None)]


def test_without_suffix_a_silence_ends_the_scan() -> None:
    decoder = LineDecoder(LineFraming(suffix=b"", intercharacter_timeout=0.1))
    decoder.receive_data(b"460043", 10.0)
    decoder.receive_data(b"9931256", 10.05)  # a second chunk within the gap: same scan
    assert decoder.next_event(10.1) == NEED_DATA
    assert decoder.deadline() == pytest.approx(10.15)
    event = decoder.next_event(10.16)
    assert isinstance(event, CodeScanned) and event.data == b"4600439931256" and event.at == 10.05
    decoder.receive_data(b"46004390", 11.0)
    decoder.receive_data(b"2200123012340", 11.5)  # after a gap: a new scan, the first one ends
    assert _scans(_drain(decoder, 11.5)) == [(b"46004390", None)]
    assert _scans(_drain(decoder, 12.0)) == [(b"2200123012340", None)]
    assert decoder.deadline() is None


def test_stale_partial_line_is_discarded_not_glued_to_the_next_scan() -> None:
    decoder = LineDecoder(LineFraming(stale_timeout=0.5))
    decoder.receive_data(b"\x00\xffnoise", 0.0)
    decoder.receive_data(b"4600439931256\r", 0.6)
    events = _drain(decoder)
    assert isinstance(events[0], BytesDiscarded) and events[0].head == b"\x00\xffnoise"
    assert _scans(events) == [(b"4600439931256", None)]


def test_split_scan_within_the_stale_timeout_is_reassembled() -> None:
    decoder = LineDecoder(LineFraming(stale_timeout=0.5))
    decoder.receive_data(b"]d20104600439931256215b", 0.0)
    decoder.receive_data(b"TxQ!\x1d93dGVz\r", 0.3)
    assert _scans(_drain(decoder)) == [(b"]d2" + MILK, None)]


def test_overlong_line_is_reported_once_and_skipped_to_the_next_suffix() -> None:
    decoder = LineDecoder(LineFraming(max_length=64))
    for i in range(20):
        decoder.receive_data(b"A" * 50, i * 0.01)
        assert decoder.buffered <= 64
    decoder.receive_data(b"tail of junk\r4600439931256\r", 0.3)
    events = _drain(decoder)
    discarded = [e for e in events if isinstance(e, BytesDiscarded)]
    assert len(discarded) == 1 and discarded[0].size > 64 and "64" in discarded[0].reason
    assert _scans(events) == [(b"4600439931256", None)]


def test_bytes_before_the_prefix_are_discarded_and_the_scan_kept() -> None:
    decoder = LineDecoder(LineFraming(prefix=b"\x02", suffix=b"\x03"))
    decoder.receive_data(b"junk\x024600439931256\x03no prefix\x03", 0.0)
    events = _drain(decoder)
    assert [
        (type(e).__name__, getattr(e, "head", None)) for e in events if isinstance(e, BytesDiscarded)
    ] == [
        ("BytesDiscarded", b"junk"),
        ("BytesDiscarded", b"no prefix"),
    ]
    assert _scans(events) == [(b"4600439931256", None)]


def test_control_bytes_and_empty_scans_are_discarded() -> None:
    decoder = LineDecoder(LineFraming(aim=True))
    decoder.receive_data(b"46004\x0099\r]E0\r\x7f\r", 0.0)
    events = _drain(decoder)
    assert all(isinstance(e, BytesDiscarded) for e in events) and len(events) == 3


def test_encoder_and_decoder_agree() -> None:
    for framing in (
        LineFraming(prefix=b"\x02", suffix=b"\r\n", aim=True, gs_substitute=b"<GS>"),
        LineFraming(suffix=b"\t", gs_substitute=b"~"),
        LineFraming(),
    ):
        wire = encode_scan(MILK, framing, "]d2")
        decoder = LineDecoder(framing)
        decoder.receive_data(wire, 0.0)
        assert _scans(_drain(decoder)) == [(MILK, "]d2" if framing.aim else None)]
    assert encode_scan(
        MILK, LineFraming(prefix=b"\x02", suffix=b"\r\n", aim=True, gs_substitute=b"<GS>"), "]d2"
    ) == (b"\x02]d20104600439931256215bTxQ!<GS>93dGVz\r\n")


def test_config_spellings() -> None:
    assert parse_control("crlf") == b"\r\n"
    assert parse_control("TAB") == b"\t"
    assert parse_control("none") == b""
    assert parse_control("STX") == b"\x02"
    assert parse_control("\\x02#\\r") == b"\x02#\r"
    assert parse_control("<GS>") == b"<GS>"
    framing = LineFraming.from_names(prefix="STX", suffix="ETX", gs_substitute="~", aim=True)
    assert (framing.prefix, framing.suffix, framing.gs_substitute, framing.aim) == (
        b"\x02",
        b"\x03",
        b"~",
        True,
    )
    with pytest.raises(FramingConfigError):
        parse_control("ж")
    with pytest.raises(FramingConfigError):
        LineFraming(gs_substitute=b"\r")
    with pytest.raises(FramingConfigError):
        LineFraming(prefix=b"\r#")
    with pytest.raises(FramingConfigError):
        LineFraming(max_length=4)
    with pytest.raises(FramingConfigError):
        LineFraming(suffix=b"", intercharacter_timeout=0)


FRAMINGS = st.sampled_from(
    [
        LineFraming(max_length=64),
        LineFraming(prefix=b"\x02", suffix=b"\x03", aim=True, max_length=64),
        LineFraming(suffix=b"\r\n", gs_substitute=b"<GS>", max_length=64),
        LineFraming(suffix=b"\t", max_length=64),
    ]
)


@settings(max_examples=300, deadline=None)
@given(framing=FRAMINGS, garbage=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_fuzz_garbage_never_hangs_stays_bounded_and_the_next_scan_gets_through(
    framing: LineFraming, garbage: bytes, cuts: list[int]
) -> None:
    decoder = LineDecoder(framing)
    wire = garbage + framing.suffix + encode_scan(MILK, framing, "]d2")
    points = sorted({0, len(wire), *(c for c in cuts if c < len(wire))})
    events: list[CodeScanned | BytesDiscarded] = []
    for a, b in itertools.pairwise(points):
        decoder.receive_data(wire[a:b], 0.0)
        assert decoder.buffered <= framing.max_length
        events += _drain(decoder, 0.0)
    assert events, "the final scan must come out"
    last = events[-1]
    assert isinstance(last, CodeScanned) and last.data == MILK
