"""The nexo simulator on its own: a raw Sale-side client over TCP with the protocol codec."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from protocols.nexo import NEED_DATA, Connection, encode
from protocols.nexo.messages import (
    AbortRequest,
    AmountsReq,
    ErrorCondition,
    LoginRequest,
    Message,
    MessageHeader,
    MessageReference,
    PaymentRequest,
    PaymentResponse,
    PaymentTransaction,
    POIData,
    Result,
    ReversalRequest,
    SaleData,
    SaleSoftware,
    TransactionIdentification,
    TransactionStatusRequest,
)
from simulators.payment.model import PURCHASE, TerminalModel
from simulators.payment.nexo import NexoSimulator, SimConfig
from simulators.payment.nexo.journal import Journal


def header(category: str, sid: str | None, sale: str = "POS1", poi: str = "POI1") -> MessageHeader:
    return MessageHeader(MessageClass="Service", MessageCategory=category, MessageType="Request", SaleID=sale,
                         POIID=poi, ServiceID=sid, ProtocolVersion="3.1")


def login(sid: str = "L1", sale: str = "POS1", poi: str = "POI1") -> Message:
    return Message(MessageHeader=header("Login", sid, sale, poi), body=LoginRequest(
        DateTime="2026-05-28T12:00:00", SaleSoftware=SaleSoftware(ManufacturerID="t", ApplicationName="t",
                                                                  SoftwareVersion="1")))


def payment(sid: str, order: str, amount: str = "10.00", sale: str = "POS1") -> Message:
    return Message(MessageHeader=header("Payment", sid, sale), body=PaymentRequest(
        SaleData=SaleData(SaleTransactionID=TransactionIdentification(TransactionID=order, TimeStamp="t")),
        PaymentTransaction=PaymentTransaction(AmountsReq=AmountsReq(RequestedAmount=Decimal(amount)))))


def status(sid: str, ref_category: str, ref_sid: str) -> Message:
    return Message(MessageHeader=header("TransactionStatus", sid), body=TransactionStatusRequest(
        MessageReference=MessageReference(MessageCategory=ref_category, ServiceID=ref_sid)))


class Client:
    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=5)
        self.conn = Connection()

    def send(self, message: Message) -> None:
        self.sock.sendall(self.conn.send(message))

    def raw(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def recv(self) -> Message:
        while True:
            event = self.conn.next_event()
            if event is not NEED_DATA:
                assert isinstance(event, Message)
                return event
            data = self.sock.recv(65536)
            assert data, "the simulator closed the connection"
            self.conn.receive_data(data)

    def until(self, body_name: str) -> tuple[Message, list[Message]]:
        seen = []
        while True:
            message = self.recv()
            if message.body_name == body_name:
                return message, seen
            seen.append(message)

    def closed(self) -> bool:
        self.sock.settimeout(5)
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        return True


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[NexoSimulator]:
    with NexoSimulator(SimConfig(state=tmp_path / "nexo.db")) as server:
        yield server


@pytest.fixture
def client(sim: NexoSimulator) -> Client:
    c = Client(sim.address)
    c.send(login())
    assert c.recv().body.Response.Result is Result.SUCCESS
    return c


def test_login_comes_first_and_names_this_poi(sim: NexoSimulator) -> None:
    c = Client(sim.address)
    c.send(payment("P1", "op-1"))
    answer = c.recv()
    assert answer.body_name == "PaymentResponse" and answer.MessageHeader.ServiceID == "P1"
    assert answer.body.Response.ErrorCondition is ErrorCondition.LOGGED_OUT
    assert answer.body.SaleData.SaleTransactionID.TransactionID == "op-1"
    c.send(login(poi="OTHER"))
    assert c.recv().body.Response.ErrorCondition is ErrorCondition.NOT_ALLOWED
    c.send(login())
    assert c.recv().body.Response.Result is Result.SUCCESS
    c.send(payment("P2", "op-2", sale="POS9"))  # another SaleID than the one logged in
    assert c.recv().body.Response.ErrorCondition is ErrorCondition.LOGGED_OUT
    assert sim.model.ledger() == []


def test_payment_progress_then_response_then_transaction_status(sim: NexoSimulator, client: Client) -> None:
    client.send(payment("P1", "op-1", "1234.56"))
    answer, before = client.until("PaymentResponse")
    assert [m.body_name for m in before] == ["DisplayRequest", "EventNotification", "DisplayRequest",
                                             "DisplayRequest"]
    assert [m.body.text for m in before if m.body_name == "DisplayRequest"] == [
        "ПРИЛОЖИТЕ ИЛИ ВСТАВЬТЕ КАРТУ", "ВВЕДИТЕ ПИН-КОД", "СВЯЗЬ С БАНКОМ..."]
    body = answer.body
    assert body.Response.Result is Result.SUCCESS
    assert body.PaymentResult.AmountsResp.AuthorizedAmount == Decimal("1234.56")
    assert b'"AuthorizedAmount":1234.56' in encode(answer)
    [charge] = sim.model.charges("op-1")
    assert body.POIData.POITransactionID.TransactionID == charge.rrn and "ОДОБРЕНО" in body.PaymentReceipt[0].text
    client.send(status("S1", "Payment", "P1"))
    repeated = client.recv().body
    assert repeated.Response.Result is Result.SUCCESS and repeated.MessageReference.ServiceID == "P1"
    assert repeated.RepeatedMessageResponse.RepeatedResponseMessageBody.PaymentResponse.PaymentReceipt == ()
    assert repeated.RepeatedMessageResponse.RepeatedResponseMessageBody.PaymentResponse.POIData == body.POIData
    client.send(status("S2", "Payment", "NEVER"))
    assert client.recv().body.Response.ErrorCondition is ErrorCondition.NOT_FOUND


def test_busy_and_in_progress_while_a_payment_runs(sim: NexoSimulator, client: Client) -> None:
    sim.model.configure(latency=1.5)
    client.send(payment("P1", "slow"))
    other = Client(sim.address)
    other.send(login("L2", sale="POS2"))
    other.recv()
    time.sleep(0.2)
    other.send(payment("Q1", "second", sale="POS2"))
    busy, _ = other.until("PaymentResponse")
    assert busy.body.Response.ErrorCondition is ErrorCondition.BUSY
    client.send(status("S1", "Payment", "P1"))
    in_progress, _ = client.until("TransactionStatusResponse")
    assert in_progress.body.Response.ErrorCondition is ErrorCondition.IN_PROGRESS
    done, _ = client.until("PaymentResponse")
    assert done.body.Response.Result is Result.SUCCESS
    assert [e.order for e in sim.model.ledger()] == ["slow"]


def test_malformed_input_gets_reject_or_error_and_the_server_keeps_serving(sim: NexoSimulator,
                                                                            client: Client) -> None:
    for garbage in (b"not json", b"\xff\xfe", b'{"SaleToPOIRequest":{"MessageHeader":{}}}',
                    encode(payment("P1", "op-1")).replace(b"10.00", b"10.005")):
        client.raw(garbage)
        reject = client.recv()
        assert reject.body_name == "EventNotification" and reject.body.EventToNotify == "Reject"
        assert reject.body.EventDetails
    client.send(payment(None, "op-1"))  # type: ignore[arg-type]
    assert client.recv().body.Response.ErrorCondition is ErrorCondition.MESSAGE_FORMAT
    client.raw(b"x" * 10)  # a frame-level mess: a huge length prefix
    client.sock.sendall(b"\xff\xff\xff\xff")
    assert client.closed()
    fresh = Client(sim.address)
    fresh.send(login())
    fresh.recv()
    fresh.send(payment("P2", "op-2"))
    assert fresh.until("PaymentResponse")[0].body.Response.Result is Result.SUCCESS
    assert [e.order for e in sim.model.ledger()] == ["op-2"]


def test_reversal_by_sale_reference_and_abort(sim: NexoSimulator, client: Client) -> None:
    client.send(payment("P1", "op-1"))
    client.until("PaymentResponse")
    reversal = Message(MessageHeader=header("Reversal", "P1"), body=ReversalRequest(
        OriginalPOITransaction=POIData(POITransactionID=TransactionIdentification(TransactionID="op-1",
                                                                                  TimeStamp="t"))))
    client.send(reversal)
    answer, _ = client.until("ReversalResponse")
    assert answer.body.Response.Result is Result.SUCCESS and answer.body.ReversedAmount == Decimal("10.00")
    client.send(reversal)
    again, _ = client.until("ReversalResponse")
    assert again.body.Response.ErrorCondition is ErrorCondition.NOT_ALLOWED
    assert again.body.Response.AdditionalResponse == "reason=AlreadyReversed"
    assert [e.kind for e in sim.model.ledger()] == ["purchase", "void"]
    sim.model.configure(latency=30)
    client.send(payment("P2", "op-2"))
    client.until("DisplayRequest")
    client.send(Message(MessageHeader=header("Abort", "A1"), body=AbortRequest(
        MessageReference=MessageReference(MessageCategory="Payment", ServiceID="P2"))))
    aborted, _ = client.until("PaymentResponse")
    assert aborted.body.Response.ErrorCondition is ErrorCondition.ABORTED
    assert len(sim.model.ledger()) == 2


def test_a_restarted_simulator_answers_for_an_interrupted_payment_from_the_ledger(tmp_path: Path) -> None:
    state = tmp_path / "nexo.db"
    model = TerminalModel(state)
    journal = Journal(state)
    started = "2000-01-01T00:00:00"
    journal.begin("POS1", "Payment", "P1", encode(payment("P1", "charged")), started)
    journal.begin("POS1", "Payment", "P2", encode(payment("P2", "not-charged")), started)
    model.run(PURCHASE, 1000, "charged")  # the bank charged, then the process died
    with NexoSimulator(SimConfig(state=state)) as sim:
        c = Client(sim.address)
        c.send(login())
        c.recv()
        c.send(status("S1", "Payment", "P1"))
        charged = c.recv().body.RepeatedMessageResponse.RepeatedResponseMessageBody.PaymentResponse
        assert isinstance(charged, PaymentResponse) and charged.Response.Result is Result.SUCCESS
        assert charged.POIData.POITransactionID.TransactionID == model.charges("charged")[0].rrn
        c.send(status("S2", "Payment", "P2"))
        lost = c.recv().body.RepeatedMessageResponse.RepeatedResponseMessageBody.PaymentResponse
        assert lost.Response.ErrorCondition is ErrorCondition.ABORTED


def test_entry_point_serves_on_a_free_port(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.payment.nexo", "--port", "0", "--state", str(tmp_path / "s.db")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:")
        c = Client(("127.0.0.1", int(line.rsplit(":", 1)[1])))
        c.send(login())
        assert c.recv().body.Response.Result is Result.SUCCESS
        c.send(payment("P1", "cli-op"))
        assert c.until("PaymentResponse")[0].body.Response.Result is Result.SUCCESS
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert len(TerminalModel(tmp_path / "s.db").charges("cli-op")) == 1

