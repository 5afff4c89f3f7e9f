from __future__ import annotations

import json
import struct
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.nexo import (
    NEED_DATA,
    Connection,
    FrameTooLarge,
    MalformedMessage,
    RemoteProtocolError,
    decode,
    encode,
)
from protocols.nexo.messages import (
    AmountsReq,
    ErrorCondition,
    Message,
    MessageHeader,
    PaymentRequest,
    PaymentResponse,
    PaymentTransaction,
    Response,
    SaleData,
    TransactionIdentification,
)

HEADER = MessageHeader(MessageClass="Service", MessageCategory="Payment", MessageType="Request", SaleID="POS1",
                       POIID="T1", ServiceID="a1b2c3", ProtocolVersion="3.1")
SALE = SaleData(SaleTransactionID=TransactionIdentification(TransactionID="op-1", TimeStamp="2026-05-28T12:00:00"))
PAYMENT = Message(
    MessageHeader=HEADER,
    body=PaymentRequest(SaleData=SALE, PaymentTransaction=PaymentTransaction(
        AmountsReq=AmountsReq(RequestedAmount=Decimal("1234.56")))),
)


def test_payment_request_json_shape_and_exact_amount() -> None:
    data = json.loads(encode(PAYMENT), parse_float=Decimal)
    inner = data["SaleToPOIRequest"]
    assert inner["MessageHeader"]["MessageCategory"] == "Payment" and inner["MessageHeader"]["ServiceID"] == "a1b2c3"
    assert inner["PaymentRequest"]["PaymentTransaction"]["AmountsReq"]["RequestedAmount"] == Decimal("1234.56")
    assert b'"RequestedAmount":1234.56' in encode(PAYMENT)
    assert decode(encode(PAYMENT)) == PAYMENT


def test_frames_whole_byte_by_byte_and_back_to_back() -> None:
    conn = Connection()
    wire = conn.send(PAYMENT)
    assert struct.unpack(">I", wire[:4])[0] == len(wire) - 4
    peer = Connection()
    for i in range(len(wire)):
        assert peer.next_event() is NEED_DATA
        peer.receive_data(wire[i : i + 1])
    assert peer.next_event() == PAYMENT
    peer.receive_data(wire + wire)
    assert peer.next_event() == PAYMENT and peer.next_event() == PAYMENT and peer.next_event() is NEED_DATA


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"\xff\xfe", b"[]", b'{"Other":{}}', b'{"SaleToPOIRequest":{"MessageHeader":{}}}',
     json.dumps({"SaleToPOIResponse": json.loads(encode(PAYMENT))["SaleToPOIRequest"]}).encode()],
)
def test_malformed_frames_are_consumed_and_the_next_one_parses(payload: bytes) -> None:
    conn = Connection()
    conn.receive_data(struct.pack(">I", len(payload)) + payload + conn.send(PAYMENT))
    with pytest.raises(MalformedMessage):
        conn.next_event()
    assert conn.next_event() == PAYMENT


def test_invalid_amount_and_long_service_id_are_rejected() -> None:
    bad = encode(PAYMENT).replace(b"1234.56", b"12.345")
    with pytest.raises(MalformedMessage, match="RequestedAmount"):
        decode(bad)
    with pytest.raises(MalformedMessage, match="ServiceID"):
        decode(encode(PAYMENT).replace(b'"a1b2c3"', b'"01234567890"'))


def test_oversized_length_is_fatal_and_sticky() -> None:
    conn = Connection(max_frame=1024)
    conn.receive_data(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(FrameTooLarge):
        conn.next_event()
    with pytest.raises(FrameTooLarge):
        conn.next_event()


def test_response_with_error_condition() -> None:
    header = MessageHeader.model_validate({**HEADER.model_dump(), "MessageType": "Response"})
    message = Message(MessageHeader=header, body=PaymentResponse(
        Response=Response(Result="Failure", ErrorCondition="WrongPIN"), SaleData=SALE))
    back = decode(encode(message))
    assert back.body.Response.ErrorCondition is ErrorCondition.WRONG_PIN
    assert encode(message).startswith(b'{"SaleToPOIResponse"')


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_garbage_never_hangs_or_escapes_the_peer_error(data: bytes) -> None:
    conn = Connection(max_frame=256)
    conn.receive_data(data)
    for _ in range(len(data) + 2):
        try:
            if conn.next_event() is NEED_DATA:
                break
        except RemoteProtocolError as exc:
            if exc.fatal:
                break
