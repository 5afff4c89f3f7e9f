from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import massak

H = bytes.fromhex

# (frame, body): vendor-quoted vectors (VladStandard/WeightService CmdQueries.cs comments,
# reference note §5) and the weight answer recomputed from the documented layout.
VECTORS = [
    (H("F855CE0100232300"), H("23")),
    (H("F855CE08009201000000000000B5EF"), H("9201000000000000")),
    (H("F855CE060055072C010000441F"), H("55072C010000")),
    (H("F855CE0D00" + "24D20400000101000000000000" + "1154"), H("24D20400000101000000000000")),
]


def test_vector_table_is_well_formed() -> None:
    for frame, body in VECTORS:
        assert int.from_bytes(frame[3:5], "little") == len(body) == len(frame) - 7


@pytest.mark.parametrize(("frame", "body"), VECTORS)
def test_crc_and_encode_match_vendor_vectors(frame: bytes, body: bytes) -> None:
    assert massak.crc16(body) == int.from_bytes(frame[-2:], "little")
    assert massak.encode_frame(body) == frame


@pytest.mark.parametrize(("frame", "body"), VECTORS)
def test_parse_whole(frame: bytes, body: bytes) -> None:
    p = massak.FrameParser()
    p.feed(frame)
    assert p.next_body() == body
    assert p.next_body() is None and p.buffered == 0


@pytest.mark.parametrize(("frame", "body"), VECTORS)
def test_parse_byte_by_byte(frame: bytes, body: bytes) -> None:
    p = massak.FrameParser()
    for i, b in enumerate(frame):
        assert p.next_body() is None, i
        p.feed(bytes([b]))
    assert p.next_body() == body


@pytest.mark.parametrize(("frame", "body"), VECTORS)
def test_trailing_and_leading_garbage(frame: bytes, body: bytes) -> None:
    p = massak.FrameParser()
    p.feed(b"\x00\xf8\x55junk" + frame + b"\x01\x02\xf8")
    with pytest.raises(massak.Garbage) as info:
        p.next_body()
    assert info.value.data.startswith(b"\x00\xf8\x55junk")
    assert p.next_body() == body
    with pytest.raises(massak.Garbage):
        p.next_body()
    assert p.next_body() is None
    assert p.buffered == 1  # a possible header start is kept
    p.feed(frame[1:])
    assert p.next_body() == body


def test_bad_crc_then_good_frame_is_found() -> None:
    good = massak.encode_frame(b"\x23")
    bad = good[:-1] + b"\x99"
    p = massak.FrameParser()
    p.feed(bad + good)
    with pytest.raises(massak.BadCrc):
        p.next_body()
    assert p.next_body() == b"\x23"
    assert p.next_body() is None


def test_frame_hidden_inside_a_bad_length_header_is_found() -> None:
    good = massak.encode_frame(b"\x24" + bytes(12))
    p = massak.FrameParser()
    p.feed(b"\xf8\x55\xce\xff\xff" + good)
    with pytest.raises(massak.BadLength):
        p.next_body()
    assert p.next_body() == b"\x24" + bytes(12)


def test_zero_length_is_rejected_and_buffer_is_bounded() -> None:
    p = massak.FrameParser(max_body=64)
    p.feed(b"\xf8\x55\xce\x00\x00")
    with pytest.raises(massak.BadLength):
        p.next_body()
    p.feed(b"\xaa" * 100_000)
    assert p.buffered <= 2
    p.feed(b"\xf8\x55\xce\x40\x00" + b"\x00" * 60)
    assert p.buffered <= 5 + 64 + 2


def test_encode_frame_limits() -> None:
    with pytest.raises(ValueError):
        massak.encode_frame(b"")
    with pytest.raises(ValueError):
        massak.encode_frame(bytes(massak.MAX_BODY + 1))


@given(st.binary(max_size=600), st.lists(st.integers(1, 50), max_size=20))
def test_fuzz_parser_only_raises_remote_errors(data: bytes, cuts: list[int]) -> None:
    p = massak.FrameParser()
    pos = 0
    for cut in [*cuts, len(data)]:
        p.feed(data[pos : pos + cut])
        pos += cut
        for _ in range(len(data) + 2):
            try:
                if p.next_body() is None:
                    break
            except massak.RemoteProtocolError:
                continue
        else:
            pytest.fail("parser kept producing events")
    assert p.buffered <= 5 + massak.MAX_BODY + 2


@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8), st.binary(max_size=30))
def test_frames_survive_garbage_between_them(bodies: list[bytes], junk: bytes) -> None:
    junk = junk.replace(b"\xf8", b"")  # no partial header inside the junk
    stream = b"".join(junk + massak.encode_frame(b) for b in bodies)
    p = massak.FrameParser()
    p.feed(stream)
    got = []
    while True:
        try:
            body = p.next_body()
        except massak.Garbage:
            continue
        if body is None:
            break
        got.append(body)
    assert got == bodies
