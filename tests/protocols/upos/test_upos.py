from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.upos import (
    BadArguments,
    Category,
    ControlTape,
    LocalProtocolError,
    MalformedFile,
    Purchase,
    Reconcile,
    Refund,
    RemoteProtocolError,
    ResultFile,
    SlipCopy,
    TapeEntry,
    Totals,
    TruncatedFile,
    WrongEncoding,
    encode_reconciliation,
    encode_slip,
    encode_tape,
    lookup,
    parse_argv,
    parse_reconciliation,
    parse_result,
    parse_slip,
    parse_tape,
    stage_of,
)

APPROVED_E = ResultFile(
    code=0, message="ОДОБРЕНО", card_mask="************5678", expiry="12/29", auth_code="A1B2C3",
    op_number="0007", card_type="VISA", own_card=True, terminal_id="00123456", timestamp="20260528120102",
    rrn="000000000007", card_hash="ABCD",
)
SLIP = dict(
    merchant="ООО ВИТРИНА", terminal_id="00123456", kind="ОПЛАТА", amount_kop=123456, timestamp="28.05.26 12:01:02",
    op_number="0007", card_mask="************5678", auth_code="A1B2C3", rrn="000000000007", order="op-1",
)


def test_argv_forms_match_the_sb_pilot_contract() -> None:
    assert Purchase(12345, "op-1").argv() == ["1", "12345", "ORDER=op-1"]
    assert Refund(100, "000000000007", "r-1").argv() == ["3", "100", "RRN=000000000007", "ORDER=r-1"]
    assert Reconcile().argv() == ["7"]
    assert ControlTape().argv() == ["9", "1"]
    assert SlipCopy().argv() == ["12"]


@pytest.mark.parametrize("request_", [Purchase(1, "a"), Refund(5, "123456789012", "b:c"), Reconcile(), ControlTape(),
                                      SlipCopy()])
def test_argv_round_trip(request_: object) -> None:
    assert parse_argv(request_.argv()) == request_  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "make",
    [lambda: Purchase(0, "x"), lambda: Purchase(-5, "x"), lambda: Purchase(10, "has space"),
     lambda: Purchase(10, "semi;colon"), lambda: Purchase(10, "x" * 37), lambda: Refund(10, "12345", "x"),
     lambda: Purchase(True, "x"), lambda: Purchase(5_000_000_000, "x")],
)
def test_requests_we_cannot_express_are_our_fault(make: object) -> None:
    with pytest.raises(LocalProtocolError):
        make()  # type: ignore[operator]


@pytest.mark.parametrize("argv", [[], ["42"], ["1"], ["1", "12.50"], ["x"], ["3", "100", "RRN=abc"]])
def test_bad_command_lines_are_rejected_by_the_terminal_side(argv: list[str]) -> None:
    with pytest.raises(BadArguments):
        parse_argv(argv)


def test_result_file_round_trip_in_cp866() -> None:
    raw = APPROVED_E.encode()
    assert raw.startswith("0,ОДОБРЕНО\r\n".encode("cp866"))
    assert parse_result(raw, card_operation=True) == APPROVED_E


def test_decline_result_needs_only_the_first_line() -> None:
    result = parse_result("4451,НЕДОСТАТОЧНО СРЕДСТВ\r\n".encode("cp866"), card_operation=True)
    assert (result.code, result.message) == (4451, "НЕДОСТАТОЧНО СРЕДСТВ")


@pytest.mark.parametrize("cut", [1, 5, 30, 60])
def test_truncated_result_file(cut: int) -> None:
    raw = APPROVED_E.encode()
    with pytest.raises((TruncatedFile, MalformedFile)):
        parse_result(raw[: len(raw) - cut], card_operation=True)


def test_approved_card_operation_without_card_lines_is_truncated() -> None:
    with pytest.raises(TruncatedFile):
        parse_result(b"0,OK\r\n", card_operation=True)
    assert parse_result(b"0,OK\r\n", card_operation=False).code == 0


def test_wrong_encodings_are_named() -> None:
    text = "0,ОДОБРЕНО\r\n"
    with pytest.raises(WrongEncoding, match="UTF-8"):
        parse_result(text.encode("utf-8"), card_operation=False)
    with pytest.raises(WrongEncoding, match="CP1251"):
        parse_result(text.encode("cp1251"), card_operation=False)


@pytest.mark.parametrize("raw", [b"", b"\x00\x01\x02\r\n", b"garbage\r\n", b"0,OK\r\nnot-a-mask\r\n" * 6])
def test_garbage_result_files(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_result(raw, card_operation=True)


def test_slip_round_trip() -> None:
    slip = parse_slip(encode_slip(**SLIP))  # type: ignore[arg-type]
    assert slip.approved and slip.kind == "ОПЛАТА" and slip.amount_kop == 123456
    assert (slip.rrn, slip.auth_code, slip.card_mask, slip.order) == ("000000000007", "A1B2C3", "************5678", "op-1")
    assert "ОДОБРЕНО" in slip.text and not slip.copy
    assert parse_slip(encode_slip(**SLIP, copy=True)).copy  # type: ignore[arg-type]


def test_slip_cut_short_is_truncated() -> None:
    raw = encode_slip(**SLIP)  # type: ignore[arg-type]
    with pytest.raises(TruncatedFile):
        parse_slip(raw[: raw.index(b"~S")])


def test_slip_with_a_bad_amount_is_malformed() -> None:
    raw = encode_slip(**SLIP).replace("1234.56".encode("cp866"), b"12,34")  # type: ignore[arg-type]
    with pytest.raises(MalformedFile):
        parse_slip(raw)


def test_reconciliation_report_round_trip() -> None:
    raw = encode_reconciliation(merchant="M", terminal_id="T", batch="3", timestamp="t", purchases=Totals(2, 300),
                                refunds=Totals(1, 100), voids=Totals(0, 0))
    report = parse_reconciliation(raw)
    assert report.matched and report.batch == "3"
    assert (report.purchases, report.refunds, report.voids) == (Totals(2, 300), Totals(1, 100), Totals(0, 0))


def test_tape_round_trip_and_count_check() -> None:
    entries = [TapeEntry("0001", "28.05.26 12:00:00", "ОПЛАТА", 100, "****1234", "AB12", "000000000001", "op-1"),
               TapeEntry("0002", "28.05.26 12:01:00", "ОТМЕНА", 100, "****1234", "CD34", "000000000002", "op-1", True)]
    raw = encode_tape(terminal_id="T", batch="1", entries=entries)
    tape = parse_tape(raw)
    assert tape.entries == tuple(entries) and [e.op_number for e in tape.by_order("op-1")] == ["0001", "0002"]
    lines = raw.split(b"\r\n")
    dropped = b"\r\n".join(lines[:3] + lines[4:])
    with pytest.raises(TruncatedFile, match="count"):
        parse_tape(dropped)
    with pytest.raises(TruncatedFile):
        parse_tape(raw[:40])


def test_code_table() -> None:
    assert lookup(0).approved
    assert lookup(2000).category is Category.CUSTOMER_CANCELLED
    assert lookup(2002).category is Category.TIMEOUT
    assert lookup(4134).category is Category.RECONCILE_REQUIRED
    assert lookup(4451).category is Category.INSUFFICIENT_FUNDS and lookup(521).message == lookup(4451).message
    assert lookup(4100).category is lookup(4119).category is Category.NO_BANK_LINK
    assert lookup(4117).category is Category.PIN_ERROR
    unknown = lookup(31337)
    assert unknown.category is Category.TERMINAL_ERROR and "31337" in unknown.message


def test_prompts_map_to_progress_stages() -> None:
    assert stage_of("Вставьте карту") == "waiting_card"
    assert stage_of("ВВЕДИТЕ ПИН-КОД") == "pin_entry"
    assert stage_of("СВЯЗЬ С БАНКОМ...") == "authorising"
    assert stage_of("что-то ещё") is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_any_bytes_parse_or_raise_the_peer_error(raw: bytes) -> None:
    for parse in (lambda b: parse_result(b, card_operation=True), parse_slip, parse_tape, parse_reconciliation):
        try:
            parse(raw)
        except RemoteProtocolError:
            pass
