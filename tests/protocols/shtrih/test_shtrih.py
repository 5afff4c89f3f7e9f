"""Shtrih-M protocol: vendor byte vectors, message codecs, error table, link machines, fuzz."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.shtrih import errors as E
from protocols.shtrih import messages as M
from protocols.shtrih.frames import Control, Frame, FrameDecoder, encode_frame, lrc
from protocols.shtrih.machine import (
    NEED_DATA,
    AnswerReceived,
    CommandReceived,
    DeviceLink,
    HostLink,
    HostState,
    LinkLost,
    StaleAnswerDropped,
)

H = bytes.fromhex

# Vectors from the reference notes (recomputed from pyshtrih/OPOS) and javapos FSFindDocumentTests.
FRAME_VECTORS = [
    (M.ShortStatus(), H("02 05 10 1E 00 00 00 0B")),
    (M.OpenShift(), H("02 05 E0 1E 00 00 00 FB")),
    (M.ZReport(), H("02 05 41 1E 00 00 00 5A")),
    (M.FnStatus(), H("02 06 FF 01 1E 00 00 00 E6")),
]


@pytest.mark.parametrize(("request_", "wire"), FRAME_VECTORS)
def test_request_vectors_encode(request_: M.Request, wire: bytes) -> None:
    assert encode_frame(request_.encode()) == wire


def _decode_all(chunks: list[bytes]) -> list[Frame | Control]:
    dec = FrameDecoder()
    out: list[Frame | Control] = []
    for chunk in chunks:
        dec.feed(chunk)
        while (item := dec.next_item()) is not None:
            out.append(item)
    return out


@pytest.mark.parametrize(("request_", "wire"), FRAME_VECTORS)
def test_vectors_decode_whole_bytewise_and_with_garbage(request_: M.Request, wire: bytes) -> None:
    whole = _decode_all([wire])
    bytewise = _decode_all([bytes([b]) for b in wire])
    garbage = _decode_all([b"\xaa\x00\x99" + wire + b"\x77\x02"])
    assert whole == bytewise == garbage == [Frame(request_.encode())]
    assert M.decode_request(whole[0].body) == request_  # type: ignore[union-attr]


def test_answer_vector_ok_operator_30() -> None:
    (frame,) = _decode_all([H("02 03 88 00 1E 95")])
    assert isinstance(frame, Frame)
    decoded = M.decode_answer(frame.body)
    assert decoded == M.Answered(0x88, M.OperatorAnswer(30))


def test_find_document_vectors_from_javapos() -> None:
    assert M.FindDocument(163).encode() == H("FF 0A 1E 00 00 00 A3 00 00 00")
    receipt = M.decode_answer(H("FF 0A 00 03 00 11 03 18 14 35 A3 00 00 00 EB EA 4B 2E 01 20 4E 00 00 00"))
    assert isinstance(receipt, M.Answered)
    ans = receipt.answer
    assert isinstance(ans, M.FindDocumentAnswer)
    assert (ans.document_type, ans.ofd_ticket, ans.fd_number) == (3, 0, 0xA3)
    assert ans.issued_at == dt.datetime(2017, 3, 24, 20, 53)
    assert ans.fiscal_sign == 0x2E4BEAEB
    assert (ans.receipt_operation, ans.receipt_total) == (1, 20000)
    shift_close = M.decode_answer(H("FF 0A 00 05 00 11 07 06 02 36 06 00 00 00 FD 00 61 D9 01 00"))
    assert isinstance(shift_close, M.Answered)
    assert isinstance(shift_close.answer, M.FindDocumentAnswer)
    assert shift_close.answer.fiscal_sign == 3647013117
    assert shift_close.answer.receipt_total is None


def test_frame_sizes_match_vendor_lengths() -> None:
    # FF45 "Длина сообщения: 182 байт", FF46 160, FF4A 69 (javapos command comments).
    assert len(M.CloseReceiptV2(payments=(0,) * 16, text="т" * 64).encode()) == 182
    assert len(M.OperationV2(1, 1, 1, 1, 1, 1, 1, 4, 1, "я" * 128).encode()) == 160
    assert len(M.CorrectionV2(0, 1, 100).encode()) == 69


def test_get_device_type_has_no_password() -> None:
    # Vendor: "FCH. Длина сообщения: 1 байт" (no password); answer 8+X bytes, name in WIN1251.
    assert encode_frame(M.GetDeviceType().encode()) == H("02 01 FC FD")
    with pytest.raises(E.MalformedMessage):
        M.decode_request(H("FC 1E 00 00 00"))
    answered = M.decode_answer(H("FC 00 00 00 01 00 00 00") + "ШТРИХ-М-01Ф".encode("cp1251"))
    assert answered == M.Answered(0xFC, M.DeviceTypeAnswer(0, 0, 1, 0, 0, 0, "ШТРИХ-М-01Ф"))


def test_legacy_text_is_40_bytes_out_and_any_width_in() -> None:
    # 80h "60 или 20+Y байт", text "40 или до Y байт": we send the classic 40, and read the
    # print width vendor drivers send (OPOS WriteString(Text, PrintWidth); pyshtrih 48 on M-01F).
    sale = M.Sale(734, 45_990, text="Сыр")
    assert len(sale.encode()) == 60 and len(M.CloseReceipt(500).encode()) == 71
    wide = sale.encode()[:20] + "Сыр".encode("cp1251").ljust(48, b"\x00")
    assert M.decode_request(wide) == sale
    assert M.decode_request(sale.encode()[:20] + b"\x00" * 32) == M.Sale(734, 45_990)
    with pytest.raises(E.MalformedMessage):
        M.decode_request(sale.encode()[:20] + b"x" * 129)


def test_operation_v2_layout() -> None:
    op = M.OperationV2(
        operation=1,
        quantity=734_000,
        price=45_990,
        amount=0xFFFFFFFFFF,
        tax_amount=0xFFFFFFFFFF,
        tax_rate=0x02,
        department=1,
        payment_method=4,
        item_type=1,
        name="Сыр",
    )
    body = op.encode()
    assert body[:6] == H("FF 46 1E 00 00 00")
    assert body[6] == 1
    assert body[7:13] == (734_000).to_bytes(6, "little")
    assert body[13:18] == (45_990).to_bytes(5, "little")
    assert body[18:28] == b"\xff" * 10
    assert body[28:32] == bytes([0x02, 1, 4, 1])
    assert body[32:] == "Сыр".encode("cp1251")
    assert M.decode_request(body) == op


def test_all_request_types_roundtrip() -> None:
    samples: list[M.Request] = [
        M.GetDeviceType(), M.ShortStatus(), M.FullStatus(), M.OpenShift(), M.XReport(), M.ZReport(), M.ContinuePrint(),
        M.OpenReceipt(2), M.Sale(1000, 100, text="Хлеб"), M.ReturnSale(1000, 100), M.CloseReceipt(500),
        M.CancelReceipt(), M.FnStatus(), M.FnExpiry(), M.FindDocument(7), M.WriteTlv(H("F5 03 02 00 41 42")),
        M.BeginCorrection(), M.ShiftParameters(), M.CloseReceiptV2(payments=tuple(range(16))),
        M.CorrectionV2(1, 3, 5, cash=5), M.CheckMarkingCode(1, b"0104600000000000215abc\x1d93dGVz"),
        M.AcceptMarkingCode(1), M.BindMarkingCode(b"code"),
    ]  # fmt: skip
    assert {type(s).CODE for s in samples} | {0xFF46} == set(M.REQUESTS)
    for s in samples:
        assert M.decode_request(s.encode()) == s


def test_building_invalid_messages_is_our_fault() -> None:
    with pytest.raises(E.LocalProtocolError):
        M.Sale(quantity=1, price=1 << 40)
    with pytest.raises(E.LocalProtocolError):
        M.OperationV2(1, 1, 1, 1, 1, 1, 1, 4, 1, "€uro ✓")  # ✓ is not cp1251
    with pytest.raises(E.LocalProtocolError):
        M.CloseReceiptV2(payments=(0,) * 15)
    with pytest.raises(E.LocalProtocolError):
        M.CloseReceiptV2(payments=(0,) * 16, taxation=3)  # two bits
    with pytest.raises(E.LocalProtocolError):
        M.ShortStatus(password=-1)


def test_refusal_decodes_to_typed_error_with_russian_message() -> None:
    refused = M.decode_answer(H("E0 3D"))
    assert refused == M.Refused(0xE0, 0x3D)
    err = refused.error()  # type: ignore[union-attr]
    assert isinstance(err, E.ShiftNotOpen)
    assert err.message == "Смена не открыта – операция невозможна"


@pytest.mark.parametrize(
    ("code", "cls", "text"),
    [
        (0x33, E.BadParameters, "Некорректные параметры в команде"),
        (0x45, E.PaymentError, "Сумма всех типов оплаты меньше итога чека"),
        (0x4E, E.ShiftExpired, "Смена превысила 24 часа"),
        (0x6B, E.PaperOut, "Нет чековой ленты"),
        (0x73, E.NotSupportedInMode, "Команда не поддерживается в данном режиме"),
        (0x02, E.FiscalStorageError, "ФН: Неверное состояние ФН"),
        (0x16, E.ShiftExpired, "ФН: Продолжительность смены более 24 часов"),
    ],
)
def test_error_table(code: int, cls: type[E.DeviceRefused], text: str) -> None:
    err = E.refusal(code, 0x80)
    assert type(err) is cls and err.message == text and err.code == code


def test_error_table_is_complete_and_russian() -> None:
    assert len(E.ERROR_TABLE) > 100
    for code, (message, cls) in E.ERROR_TABLE.items():
        assert 1 <= code <= 0xFF and issubclass(cls, E.DeviceRefused)
        assert any("а" <= ch <= "я" for ch in message.lower())
    assert type(E.refusal(0xFE)) is E.DeviceRefused


def test_bad_checksum_is_reported_then_stream_continues() -> None:
    dec = FrameDecoder()
    good = encode_frame(b"\x10\x1e\x00\x00\x00")
    dec.feed(good[:-1] + bytes([good[-1] ^ 1]) + good)
    with pytest.raises(E.BadChecksum):
        dec.next_item()
    assert dec.next_item() == Frame(good[1:-1][1:])


def test_truncated_answer_is_malformed() -> None:
    with pytest.raises(E.MalformedMessage):
        M.decode_answer(H("FF 01 00 01 02"))
    with pytest.raises(E.MalformedMessage):
        M.decode_request(H("FF 99 1E 00 00 00"))


# --- link machines over an in-memory wire ------------------------------------------------


class Wire:
    """Host ↔ device with a device model that answers every command with OK + operator."""

    def __init__(self) -> None:
        self.host = HostLink(enq_timeout=0.1, ack_timeout=0.1, frame_timeout=0.1, attempts=3)
        self.dev = DeviceLink()
        self.executed: list[bytes] = []
        self.drop_to_host = 0  # drop the next N device→host transmissions
        self.corrupt_to_host = 0

    def pump(self, now: float) -> None:
        for _ in range(20):
            h = self.host.data_to_send()
            if h:
                self.dev.receive_data(h)
            while isinstance(ev := self.dev.next_event(), CommandReceived):
                self.executed.append(ev.body)
                self.dev.send_answer(bytes([ev.body[0], 0, 30]))
            d = self.dev.data_to_send()
            if d:
                if self.drop_to_host:
                    self.drop_to_host -= 1
                    d = b""
                elif self.corrupt_to_host and len(d) > 3:
                    self.corrupt_to_host -= 1
                    d = d[:-1] + bytes([d[-1] ^ 0xFF])
                self.host.receive_data(d, now)
            if not h and not d:
                return


def test_host_device_roundtrip() -> None:
    w = Wire()
    w.host.start(M.CancelReceipt().encode(), 0.0)
    assert w.host.data_to_send() == bytes([Control.ENQ])
    w.dev.receive_data(bytes([Control.ENQ]))
    assert w.dev.data_to_send() == bytes([Control.NAK])
    w.host.receive_data(bytes([Control.NAK]), 0.01)
    frame = w.host.data_to_send()
    assert frame == encode_frame(M.CancelReceipt().encode())
    w.dev.receive_data(frame)
    w.pump(0.02)
    assert w.host.next_event() == AnswerReceived(H("88 00 1E"))
    assert w.host.state is HostState.IDLE


def test_lost_answer_is_recovered_by_enq_without_running_the_command_twice() -> None:
    w = Wire()
    w.host.start(M.CancelReceipt().encode(), 0.0)
    w.pump(0.0)  # ENQ → NAK → frame; device ACK+answer …
    assert len(w.executed) == 1
    w2 = Wire()
    w2.host.start(M.CancelReceipt().encode(), 0.0)
    w2.host.data_to_send()
    w2.dev.receive_data(bytes([Control.ENQ]))
    w2.host.receive_data(w2.dev.data_to_send(), 0.0)
    w2.dev.receive_data(w2.host.data_to_send())  # the command
    ev = w2.dev.next_event()
    assert isinstance(ev, CommandReceived)
    w2.dev.send_answer(H("88 00 1E"))
    w2.dev.data_to_send()  # ACK + answer lost on the wire
    assert w2.host.next_event() is NEED_DATA
    w2.host.handle_timeout(0.2)  # no ACK in time → ENQ
    w2.pump(0.2)  # device: ACK + the pending answer again
    assert w2.host.next_event() == AnswerReceived(H("88 00 1E"))
    assert w2.dev.next_event() is NEED_DATA  # executed once


def test_corrupted_answer_gets_nak_then_resend() -> None:
    w = Wire()
    w.corrupt_to_host = 1
    w.host.start(M.XReport().encode(), 0.0)
    w.pump(0.0)
    events = []
    while (ev := w.host.next_event()) is not NEED_DATA:
        events.append(ev)
    assert events == [AnswerReceived(H("40 00 1E"))]
    assert len(w.executed) == 1


def test_stale_answer_is_drained_first() -> None:
    w = Wire()
    w.dev.send_answer(H("85 00 1E 00 00 00 00 00"))  # left from a previous host
    w.dev.data_to_send()
    w.host.start(M.ShortStatus().encode(), 0.0)
    w.host.data_to_send()
    w.dev.receive_data(bytes([Control.ENQ]))
    w.host.receive_data(w.dev.data_to_send(), 0.0)
    w.pump(0.0)
    assert w.host.next_event() == StaleAnswerDropped(H("85 00 1E 00 00 00 00 00"))
    assert w.host.next_event() == AnswerReceived(H("10 00 1E"))


def test_silence_fails_after_attempts_and_is_sticky() -> None:
    host = HostLink(enq_timeout=0.1, attempts=3)
    host.start(M.ShortStatus().encode(), 0.0)
    now = 0.0
    while host.state is not HostState.FAILED:
        now += 0.2
        host.handle_timeout(now)
    assert host.data_to_send() == bytes([Control.ENQ]) * 3
    assert host.next_event() == LinkLost("ККТ не отвечает", False)
    with pytest.raises(E.LinkFailed):
        host.start(M.ShortStatus().encode(), now)
    host.reset()
    host.start(M.ShortStatus().encode(), now)
    with pytest.raises(E.LocalProtocolError):
        host.start(M.ShortStatus().encode(), now)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_decoder_and_answer_parser(data: bytes) -> None:
    dec = FrameDecoder()
    dec.feed(data)
    for _ in range(len(data) + 1):
        try:
            item = dec.next_item()
        except E.RemoteProtocolError:
            continue
        if item is None:
            break
        if isinstance(item, Frame):
            try:
                M.decode_answer(item.body)
            except E.RemoteProtocolError:
                pass
            try:
                M.decode_request(item.body)
            except E.RemoteProtocolError:
                pass
    else:
        pytest.fail("decoder did not drain")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=10))
def test_fuzz_host_machine_never_raises_on_peer_bytes(chunks: list[bytes]) -> None:
    host = HostLink(attempts=2)
    host.start(M.ShortStatus().encode(), 0.0)
    now = 0.0
    for chunk in chunks:
        now += 0.3
        host.receive_data(chunk, now)
        host.handle_timeout(now)
        host.data_to_send()
    assert lrc(b"") == 0
