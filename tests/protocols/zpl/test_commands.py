"""The printer-side ZPL tokenizer: commands, formats, control commands, bounds, fuzz."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.zpl.commands import (
    NEED_DATA,
    Command,
    ControlCommand,
    LabelFormat,
    StrayCommand,
    ZplStreamParser,
    decode_datamatrix_escapes,
    tokenize,
    unescape_field_hex,
)
from protocols.zpl.errors import RemoteProtocolError

# The ^BX example of the ZPL II Programming Guide (Data Matrix, quality 200).
GUIDE_BX = b"^XA\r\n^FO100,100^BXN,10,200^FDZEBRA TECHNOLOGIES CORPORATION^FS\r\n^XZ"


def events_of(data: bytes, chunk: int | None = None) -> list[object]:
    parser = ZplStreamParser()
    out: list[object] = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces:
        parser.receive_data(piece)
        while (event := parser.next_event()) is not NEED_DATA:
            out.append(event)
    return out


def test_tokenize_guide_example() -> None:
    commands = tokenize(GUIDE_BX)
    assert [c.code for c in commands] == ["^XA", "^FO", "^BX", "^FD", "^FS", "^XZ"]
    assert commands[1].args() == ["100", "100"]
    assert commands[2].args() == ["N", "10", "200"]
    assert commands[3].params == b"ZEBRA TECHNOLOGIES CORPORATION"


def test_font_command_name_rules() -> None:
    a0, a_at = tokenize(b"^A0N,30,20^A@N,25,25,E:TT0003M_.TTF")
    assert (a0.name, a0.args()) == ("A", ["0N", "30", "20"])
    assert (a_at.name, a_at.int_arg(1, 0)) == ("A@", 25)


def test_stream_whole_byte_by_byte_and_trailing_garbage() -> None:
    whole = events_of(GUIDE_BX)
    assert len(whole) == 1 and isinstance(whole[0], LabelFormat)
    assert [c.code for c in whole[0].commands] == ["^FO", "^BX", "^FD", "^FS"]
    assert events_of(GUIDE_BX, chunk=1) == whole
    noisy = events_of(b"\x00\xffnoise" + GUIDE_BX + b"tail garbage \x1b")
    assert noisy == whole


def test_control_commands_act_inside_a_format() -> None:
    events = events_of(b"^XA^FO1,2~HS^FDx^FS^XZ~HI~JA")
    assert [type(e).__name__ for e in events] == [
        "ControlCommand",
        "LabelFormat",
        "ControlCommand",
        "ControlCommand",
    ]
    first = events[0]
    assert isinstance(first, ControlCommand) and first.command.code == "~HS"
    fmt = events[1]
    assert isinstance(fmt, LabelFormat) and [c.code for c in fmt.commands] == ["^FO", "^FD", "^FS"]


def test_stray_commands_outside_a_format_are_reported() -> None:
    events = events_of(b"^FO1,1^XA^XZ")
    assert isinstance(events[0], StrayCommand) and events[0].command.code == "^FO"
    assert events[1] == LabelFormat(())


def test_hs_is_answered_before_the_next_prefix_arrives() -> None:
    parser = ZplStreamParser()
    parser.receive_data(b"~HS")
    assert parser.next_event() == ControlCommand(Command("~", "HS"))


def test_format_is_bounded() -> None:
    parser = ZplStreamParser(max_format=100)
    parser.receive_data(b"^XA^FD" + b"x" * 200)
    with pytest.raises(RemoteProtocolError):
        parser.next_event()
    parser.receive_data(b"^XA^FDok^FS^XZ")
    event = parser.next_event()
    assert isinstance(event, LabelFormat) and event.commands[0].params == b"ok"


def test_field_hex_and_datamatrix_escapes() -> None:
    assert unescape_field_hex(b"a_5Eb_7E_5F_zz_") == b"a^b~__zz_"
    gs1, content = decode_datamatrix_escapes(b"_10104600000000008215abc_d095de_193dGVz")
    assert gs1 and content == b"0104600000000008215abc_de\x1d93dGVz"
    assert decode_datamatrix_escapes(b"plain__x") == (False, b"plain_x")


@given(st.binary(max_size=500))
def test_fuzz_stream_parser_never_hangs(data: bytes) -> None:
    parser = ZplStreamParser(max_format=256)
    parser.receive_data(data)
    for _ in range(len(data) + 2):
        try:
            event = parser.next_event()
        except RemoteProtocolError:
            continue
        if event is NEED_DATA:
            return
        assert isinstance(event, LabelFormat | ControlCommand | StrayCommand)
    pytest.fail("parser did not settle")


@given(
    st.lists(
        st.sampled_from([b"^XA", b"^XZ", b"~HS", b"^FO1,2", b"^FDabc", b"^FS", b"\r\n", b"x"]), max_size=40
    )
)
def test_fuzz_split_points_do_not_change_events(parts: list[bytes]) -> None:
    data = b"".join(parts) + b"^XA^XZ"  # a final prefix flushes the last command
    assert events_of(data, chunk=1) == events_of(data)
