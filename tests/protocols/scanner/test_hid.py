"""HID POS scanned-data reports and boot-keyboard reports: byte vectors, round trips, fuzz."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.scanner import (
    NEED_DATA,
    BytesDiscarded,
    CodeScanned,
    HidPosDecoder,
    KeyboardDecoder,
    LineDecoder,
    LineFraming,
    MalformedReport,
    Symbology,
    encode_keyboard,
    encode_pos_reports,
)

GS = b"\x1d"
FULL = (
    b"0104600439931256215k(J&Xhb.YF;f"
    + GS
    + b"91EE07"
    + GS
    + b"92"
    + b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqr"
)


def _pos_report(size: int, aim: bytes, data: bytes, flags: int = 0) -> bytes:
    body = bytes([0x02, size]) + aim + data
    return body + bytes(63 - len(body)) + bytes([flags])


def _events(decoder: HidPosDecoder) -> list[CodeScanned | BytesDiscarded]:
    out: list[CodeScanned | BytesDiscarded] = []
    while (event := decoder.next_event()) != NEED_DATA:
        assert isinstance(event, CodeScanned | BytesDiscarded)
        out.append(event)
    return out


def test_pos_report_vector_ean13_with_aim() -> None:
    report = bytes.fromhex("02 0d 5d 45 30 34 36 30 30 34 33 39 39 33 31 32 35 36" + " 00" * 45 + " 00")
    assert len(report) == 64
    decoder = HidPosDecoder()
    decoder.receive_report(report, 1.0)
    [event] = _events(decoder)
    assert isinstance(event, CodeScanned)
    assert event.data == b"4600439931256" and str(event.aim) == "]E0" and event.at == 1.0
    assert event.aim is not None and event.aim.symbology is Symbology.EAN13


def test_pos_report_without_identifier_and_with_cr_suffix() -> None:
    decoder = HidPosDecoder()
    decoder.receive_report(_pos_report(9, b"\x00\x00\x00", b"46004390\r"), 0.0)
    [event] = _events(decoder)
    assert isinstance(event, CodeScanned) and event.data == b"46004390" and event.aim is None


def test_long_code_spans_continued_reports() -> None:
    reports = encode_pos_reports(FULL, "]d2")
    assert len(reports) == 2 and reports[0][63] == 0x01 and reports[1][63] == 0x00
    assert reports[0][1] == 56 and reports[1][1] == len(FULL) - 56
    decoder = HidPosDecoder()
    decoder.receive_report(reports[0], 0.0)
    assert _events(decoder) == []
    decoder.receive_report(reports[1], 0.01)
    [event] = _events(decoder)
    assert isinstance(event, CodeScanned) and event.data == FULL and str(event.aim) == "]d2"


def test_other_reports_are_ignored_and_broken_ones_raise() -> None:
    decoder = HidPosDecoder()
    decoder.receive_report(b"\x04\x01\x00", 0.0)  # a status report: not scanned data
    decoder.receive_report(b"", 0.0)
    assert _events(decoder) == []
    with pytest.raises(MalformedReport):
        decoder.receive_report(b"\x02\x05]E0123", 0.0)
    with pytest.raises(MalformedReport):
        decoder.receive_report(_pos_report(57, b"]E0", b""), 0.0)


def test_pos_overlong_scan_is_discarded_once() -> None:
    decoder = HidPosDecoder(max_length=100)
    for _ in range(5):
        decoder.receive_report(_pos_report(56, b"]X0", b"A" * 56, flags=1), 0.0)
    decoder.receive_report(_pos_report(3, b"]X0", b"end"), 0.0)
    decoder.receive_report(encode_pos_reports(b"46004390", "]E4")[0], 0.0)
    events = _events(decoder)
    assert isinstance(events[0], BytesDiscarded)
    assert [e.data for e in events if isinstance(e, CodeScanned)] == [b"46004390"]


# --- keyboard wedge ------------------------------------------------------------------------

RELEASE = bytes(8)


def _kbd(modifiers: int, *keys: int) -> bytes:
    return bytes([modifiers, 0, *keys, *([0] * (6 - len(keys)))])


def _type(reports: list[bytes]) -> bytes:
    decoder = KeyboardDecoder()
    return b"".join(decoder.receive_report(r) for r in reports)


def test_keyboard_vectors_us_layout() -> None:
    assert _type([_kbd(0, 0x1E), RELEASE, _kbd(0, 0x1E), RELEASE]) == b"11"  # release makes the repeat
    assert _type([_kbd(0, 0x1E), _kbd(0, 0x1E), RELEASE]) == b"1"  # held key: typed once
    assert _type([_kbd(0x02, 0x04), RELEASE, _kbd(0x20, 0x1F), RELEASE, _kbd(0, 0x04)]) == b"A@a"
    assert _type([_kbd(0, 0x28), RELEASE, _kbd(0, 0x2B), RELEASE, _kbd(0, 0x58)]) == b"\r\t\r"
    assert _type([_kbd(0x01, 0x30), RELEASE]) == GS  # Ctrl+]
    assert _type([_kbd(0x10, 0x30), RELEASE]) == GS  # right Ctrl+]
    assert _type([_kbd(0x02, 0x30), _kbd(0x02, 0x2E), RELEASE, _kbd(0x02, 0x38)]) == b"}+?"
    assert _type([_kbd(0, 0x59), _kbd(0, 0x59, 0x62), RELEASE]) == b"10"  # keypad, two keys down
    # Alt + keypad 0 2 9, then Alt released: GS (a Windows Alt code)
    alt = [_kbd(0x04, 0x62), _kbd(0x04), _kbd(0x04, 0x5A), _kbd(0x04), _kbd(0x04, 0x61), _kbd(0x04), RELEASE]
    assert _type([*alt, _kbd(0, 0x20), RELEASE]) == GS + b"3"
    assert _type([_kbd(0, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01), RELEASE]) == b""  # rollover error
    assert _type([_kbd(0, 0x3A), RELEASE]) == b""  # F1: nothing typed
    assert KeyboardDecoder().receive_report(b"\x01" + _kbd(0, 0x27)) == b"0"  # with a report ID


def test_keyboard_report_of_wrong_size_raises() -> None:
    with pytest.raises(MalformedReport):
        KeyboardDecoder().receive_report(b"\x00\x00\x04")


def test_wedge_marking_code_round_trip_through_line_decoder() -> None:
    code = b"0104600439931256215bTxQ!" + GS + b"93dGVz"
    reports = encode_keyboard(code + b"\r")
    assert reports[0] == _kbd(0, 0x27) and reports[1] == RELEASE
    assert _kbd(0x01, 0x30) in reports  # GS typed as Ctrl+]
    keyboard, lines = KeyboardDecoder(), LineDecoder(LineFraming())
    for i, report in enumerate(reports):
        lines.receive_data(keyboard.receive_report(report), i * 0.001)
    event = lines.next_event()
    assert isinstance(event, CodeScanned) and event.data == code
    with pytest.raises(ValueError, match="0x7F"):
        encode_keyboard(b"\x7f")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=70), max_size=20))
def test_fuzz_reports_decode_or_raise_malformed(reports: list[bytes]) -> None:
    pos, keyboard = HidPosDecoder(max_length=200), KeyboardDecoder()
    for report in reports:
        for feed in (lambda r: pos.receive_report(r, 0.0), keyboard.receive_report):
            try:
                feed(report)
            except MalformedReport:
                pass
    for event in _events(pos):
        assert isinstance(event, CodeScanned | BytesDiscarded)
        if isinstance(event, CodeScanned):
            assert 0 < len(event.data) <= 200
