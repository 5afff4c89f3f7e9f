"""CAS CL label-scale codec: vectors laid out from the device source, decoder, fuzz.

Source (read, not copied): JeongJiMin-github/CL5200N-CL5500N-trunk — src/mode_commun.c
``serial_proc`` states 30–39 ("WxxAxx,xxLxx:<data><bcc>", BCC = XOR of the data bytes) and
80–81 ("Wxx:<E|O>xx<0x0a>"); src/mode_commun_recv.c ``commun_recv_plu`` (fields
"F=<ptype>.<stype>,<len>:<raw>"); src/plu_manager.h (PTYPE 4/6/10/11/16/85, PLU_INF sizes).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import cas
from protocols.cas import codec

PLU = cas.Plu(number=0x1F, name="Яблоки", price=12990, shelf_life_days=5, item_code=123, barcode_format=1)
DATA = (
    b"F=04.00,01:\x01"
    + b"F=0A.00,06:"
    + "Яблоки".encode("cp1251")
    + b"F=06.00,04:"
    + (12990).to_bytes(4, "little")
    + b"F=0B.00,04:{\x00\x00\x00"
    + b"F=10.00,04:\x05\x00\x00\x00"
    + b"F=55.00,02:\x01\x00"
)


def _xor(data: bytes) -> int:
    out = 0
    for b in data:
        out ^= b
    return out


WIRE = b"W02A1F,1L" + f"{len(DATA):X}".encode() + b":" + DATA + bytes([_xor(DATA)])


def _events(chunks: list[bytes]) -> list[codec.Event]:
    dec = cas.Decoder()
    out: list[codec.Event] = []
    for chunk in chunks:
        dec.feed(chunk)
        while (ev := dec.next_event()) is not None:
            out.append(ev)
    return out


def test_write_plu_vector() -> None:
    assert cas.encode_write_plu(PLU) == WIRE
    for chunks in ([WIRE], [bytes([b]) for b in WIRE], [b"\x00\xffjunk" + WIRE + b"\x13"]):
        assert _events(chunks) == [cas.WritePlu(PLU)]


@pytest.mark.parametrize(
    ("wire", "event"),
    [
        (b"R02F1F,1\n", cas.ReadPlu(31, 1)),
        (b"C02F1F,1\n", cas.DeletePlu(31, 1)),
        (b"W02:O01\n", cas.Reply(2, True, 1)),
        (b"W02:E82\n", cas.Reply(2, False, 0x82)),
    ],
)
def test_line_vectors_whole_bytewise_and_with_garbage(wire: bytes, event: codec.Event) -> None:
    for chunks in ([wire], [bytes([b]) for b in wire], [b"\x7f\x00" + wire + b"\x00"]):
        assert _events(chunks) == [event]


def test_encoders_for_lines() -> None:
    assert cas.encode_read_plu(31) == b"R02F1F,1\n"
    assert cas.encode_delete_plu(31) == b"C02F1F,1\n"
    assert cas.encode_reply() == b"W02:O01\n"
    assert cas.encode_reply(0xFE, ok=False) == b"W02:EFE\n"


def test_bad_bcc_and_bad_fields_answer_the_vendor_codes() -> None:
    bad = WIRE[:-1] + bytes([WIRE[-1] ^ 1])
    [event] = _events([bad])
    assert isinstance(event, codec.BadMessage) and event.reply == b"W02:EFE\n"
    data = b"F=0A.00,10:short"
    [event] = _events([b"W02A1,1L" + f"{len(data):X}".encode() + b":" + data + bytes([_xor(data)])])
    assert isinstance(event, codec.BadMessage) and event.reply == b"W02:E84\n"


def test_plu_validation_is_our_fault() -> None:
    with pytest.raises(cas.LocalProtocolError, match="40"):
        cas.Plu(1, "Я" * 41, 100)
    with pytest.raises(cas.LocalProtocolError, match="цена"):
        cas.Plu(1, "Хлеб", 2**32)
    with pytest.raises(cas.LocalProtocolError, match="cp1251"):
        cas.Plu(1, "Ἀθῆναι", 100)
    with pytest.raises(cas.LocalProtocolError):
        cas.Plu(0, "Хлеб", 100)
    assert "Память" in cas.Reply(2, False, 0x99).error().message


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=120), max_size=10))
def test_fuzz_decoder_never_hangs_and_bounds_its_buffer(chunks: list[bytes]) -> None:
    dec = cas.Decoder()
    for chunk in chunks:
        dec.feed(chunk)
        assert dec.buffered <= 32 + codec.MAX_DATA + 1
        while dec.next_event() is not None:
            pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_plu_fields_parse_or_raise_the_peer_error(data: bytes) -> None:
    try:
        codec.decode_plu_fields(1, 1, data)
    except cas.RemoteProtocolError:
        pass
