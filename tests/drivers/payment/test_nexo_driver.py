"""The nexo driver against the nexo simulator: real TCP sockets, real protocol messages."""

from __future__ import annotations

import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.errors import DeviceProtocolError, DeviceUnavailable
from drivers.payment import open_payment_terminal
from drivers.payment.base import (
    InvalidAmount,
    OperationNotFound,
    OutcomeUnknown,
    PaymentResult,
    PaymentTerminal,
    TerminalBusy,
)
from drivers.payment.nexo import NexoTerminal, service_id_for
from protocols.nexo.messages import Message
from simulators.payment.model import TerminalModel
from simulators.payment.nexo import NexoSimulator, SimConfig


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[NexoSimulator]:
    with NexoSimulator(SimConfig(state=tmp_path / "nexo.db", poi_id="T1")) as server:
        yield server


@pytest.fixture
def model(sim: NexoSimulator) -> TerminalModel:
    return sim.model


def make(sim: NexoSimulator, **kw: object) -> NexoTerminal:
    host, port = sim.address
    options = {"host": host, "port": port, "sale_id": "POS1", "poi_id": "T1", "timeout": 10,
               "service_timeout": 5, **kw}
    terminal = open_payment_terminal("nexo", options)
    assert isinstance(terminal, NexoTerminal) and isinstance(terminal, PaymentTerminal)
    terminal.open()
    return terminal


@pytest.fixture
def terminal(sim: NexoSimulator) -> Iterator[NexoTerminal]:
    t = make(sim)
    yield t
    t.close()


def drop(kinds: set[str]) -> object:
    """An ``outgoing`` hook: the terminal never sends these bodies."""
    return lambda message, data: None if message.body_name in kinds else data


def test_purchase_approved_with_progress_slip_and_one_charge(terminal: NexoTerminal, model: TerminalModel) -> None:
    model.configure(latency=0.3)
    stages: list[str] = []
    result = terminal.purchase(Decimal("1234.56"), "op-1", progress=stages.append)
    assert result.approved and result.code == "approved" and result.amount == Decimal("1234.56")
    assert result.operation == "purchase" and result.message == "Операция одобрена"
    assert stages == ["waiting_card", "pin_entry", "authorising"]
    [charge] = model.charges("op-1")
    assert charge.amount_kop == 123456 and result.rrn == charge.rrn == result.reference
    assert result.auth_code == charge.auth_code and result.card_mask.endswith("5678")
    assert "ОДОБРЕНО" in result.slip and "op-1" in result.slip and "1234.56" in result.slip
    assert terminal.status().state == "idle"


@pytest.mark.parametrize(
    ("script", "balance", "code", "device_code"),
    [("approve", 10_000, "insufficient_funds", "Refusal/InsufficientFunds"),
     ("cancel", None, "customer_cancelled", "Cancel"),
     ("pin_timeout", None, "timeout", "Cancel/Timeout"),
     ("wrong_pin", None, "pin_error", "WrongPIN")],
)
def test_declines(terminal: NexoTerminal, model: TerminalModel, script: str, balance: int | None, code: str,
                  device_code: str) -> None:
    if balance is not None:
        model.configure(default_balance_kop=balance)
    model.push_script(script)
    result = terminal.purchase(Decimal("100.01"), "op-2")
    assert (result.approved, result.code, result.device_code) == (False, code, device_code)
    assert result.amount == Decimal("100.01") and result.message and result.rrn == ""
    assert model.ledger() == []
    found = terminal.find("op-2")
    assert found is not None and not found.approved and found.code == code


def test_bank_link_down_and_blocked_card(terminal: NexoTerminal, model: TerminalModel) -> None:
    model.configure(bank_link_down=True)
    assert terminal.purchase(Decimal("1.00"), "a").code == "no_bank_link"
    model.configure(bank_link_down=False, declined_bins={"5100": 2004})
    model.push_script("approve@5100001234567890")
    result = terminal.purchase(Decimal("1.00"), "b")
    assert (result.code, result.device_code) == ("card_blocked", "Refusal/CardBlocked")
    assert model.ledger() == []


def test_cashier_abort_while_waiting_for_the_card(terminal: NexoTerminal, model: TerminalModel) -> None:
    model.configure(latency=9)  # 3 s per stage
    stages: list[str] = []
    outcome: list[PaymentResult] = []
    worker = threading.Thread(target=lambda: outcome.append(
        terminal.purchase(Decimal("5.00"), "op-3", progress=stages.append)))
    worker.start()
    deadline = time.monotonic() + 5
    while not stages and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stages == ["waiting_card"] and terminal.status().state == "busy"
    started = time.monotonic()
    assert terminal.abort()
    worker.join(5)
    assert time.monotonic() - started < 1.5
    [result] = outcome
    assert (result.approved, result.code, result.device_code) == (False, "aborted", "Aborted")
    assert model.ledger() == [] and terminal.status().state == "idle"
    assert not terminal.abort()  # nothing runs


def test_busy_on_this_object_and_on_the_terminal(sim: NexoSimulator, terminal: NexoTerminal,
                                                 model: TerminalModel) -> None:
    other_till = make(sim, sale_id="POS2")
    model.configure(latency=1.5)
    outcome: list[PaymentResult] = []
    worker = threading.Thread(target=lambda: outcome.append(terminal.purchase(Decimal("5.00"), "slow")))
    worker.start()
    time.sleep(0.3)
    for call in (lambda: terminal.purchase(Decimal("1.00"), "x"), terminal.reconcile,
                 lambda: terminal.find("slow"), lambda: terminal.cancel("slow")):
        started = time.monotonic()
        with pytest.raises(TerminalBusy):
            call()
        assert time.monotonic() - started < 0.2
    with pytest.raises(TerminalBusy, match="другой кассы"):  # the terminal itself answers Busy
        other_till.purchase(Decimal("1.00"), "y")
    assert other_till.find("slow") is None  # the terminal keeps each till's (SaleID's) operations apart
    restarted = make(sim)  # the same till from a second object (a restarted gateway)
    with pytest.raises(OutcomeUnknown, match="ещё выполняется"):
        restarted.find("slow")
    restarted.close()
    worker.join(10)
    assert outcome and outcome[0].approved
    assert [e.order for e in model.ledger()] == ["slow"]
    other_till.close()


def test_cancel_is_a_reversal_and_idempotent(terminal: NexoTerminal, model: TerminalModel) -> None:
    sale = terminal.purchase(Decimal("42.00"), "op-4")
    void = terminal.cancel("op-4")
    assert void.approved and void.operation == "cancel" and void.amount == Decimal("42.00") and "ОТМЕНА" in void.slip
    again = terminal.cancel("op-4")
    assert again.approved and again.rrn == void.rrn != sale.rrn
    assert [e.kind for e in model.ledger()] == ["purchase", "void"]
    assert model.balance(model.rules().default_card) == model.rules().default_balance_kop
    found = terminal.find("op-4")
    assert found is not None and found.approved and found.voided and found.operation == "purchase"
    with pytest.raises(OperationNotFound):
        terminal.cancel("never-was")
    model.push_script("cancel")
    assert not terminal.purchase(Decimal("1.00"), "declined").approved
    with pytest.raises(OperationNotFound):
        terminal.cancel("declined")


def test_reconciliation_required_then_reconcile_then_purchase(terminal: NexoTerminal, model: TerminalModel) -> None:
    model.configure(reconcile_every=2)
    assert terminal.purchase(Decimal("100.00"), "a").approved
    assert terminal.purchase(Decimal("50.50"), "b").approved
    blocked = terminal.purchase(Decimal("1.00"), "c")
    assert (blocked.approved, blocked.code, blocked.device_code) == (
        False, "reconcile_required", "NotAllowed/ReconciliationRequired")
    totals = terminal.reconcile()
    assert totals.ok and totals.batch == "1" and totals.purchases_count == 2
    assert totals.purchases_amount == Decimal("150.50") and "СВЕРКА ИТОГОВ" in totals.slip
    assert terminal.purchase(Decimal("1.00"), "c").approved
    with pytest.raises(OperationNotFound, match="оформите возврат"):
        terminal.cancel("a")  # its batch is closed
    model.configure(bank_link_down=True)
    failed = terminal.reconcile()
    assert (failed.ok, failed.code) == (False, "no_bank_link")


def test_refund_by_result_and_by_reference(terminal: NexoTerminal, model: TerminalModel) -> None:
    sale = terminal.purchase(Decimal("300.00"), "sale-1")
    terminal.reconcile()
    refund = terminal.refund(Decimal("100.00"), "ret-1", sale)
    assert refund.approved and refund.operation == "refund" and "ВОЗВРАТ" in refund.slip
    assert terminal.refund(Decimal("200.00"), "ret-2", sale.reference).approved
    too_much = terminal.refund(Decimal("0.01"), "ret-3", sale)
    assert (too_much.approved, too_much.code) == (False, "not_found")
    assert [e.kind for e in model.ledger()] == ["purchase", "refund", "refund"]
    found = terminal.find("ret-1")
    assert found is not None and found.operation == "refund" and found.amount == Decimal("100.00")


def test_connection_drop_after_the_charge_is_resolved_by_transaction_status(terminal: NexoTerminal,
                                                                             model: TerminalModel) -> None:
    model.push_script("lose_answer")
    result = terminal.purchase(Decimal("10.00"), "op-5")
    assert result.approved and "по запросу состояния" in result.message
    [charge] = model.charges("op-5")
    assert result.rrn == charge.rrn and "ОДОБРЕНО" in result.slip  # the receipt comes back with the status
    found = terminal.find("op-5")  # what the gateway does before any retry
    assert found is not None and found.approved and found.rrn == charge.rrn
    assert len(model.charges("op-5")) == 1


def test_terminal_that_never_answers_gives_outcome_unknown_and_find_prevents_a_double_charge(
    sim: NexoSimulator, model: TerminalModel
) -> None:
    terminal = make(sim, timeout=1, service_timeout=1)
    sim.config.outgoing = drop({"PaymentResponse", "TransactionStatusResponse"})  # type: ignore[assignment]
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown) as info:
        terminal.purchase(Decimal("10.00"), "op-6")
    assert time.monotonic() - started < 1 + 1 + 1 + 1.5  # timeout + abort grace + status polling + slack
    assert info.value.operation_id == "op-6" and "не повторяйте" in info.value.message
    with pytest.raises(OutcomeUnknown):
        terminal.find("op-6")
    sim.config.outgoing = None
    # The gateway's retry: find first, purchase only on None.
    found = terminal.find("op-6")
    assert found is not None and found.approved
    assert len(model.charges("op-6")) == 1


def test_silent_before_the_bank_is_aborted_and_a_retry_after_find_charges_once(sim: NexoSimulator,
                                                                               model: TerminalModel) -> None:
    terminal = make(sim, timeout=1, service_timeout=2)
    model.configure(hang=60)
    model.push_script("hang")
    started = time.monotonic()
    result = terminal.purchase(Decimal("10.00"), "op-7")
    assert time.monotonic() - started < 3
    assert (result.approved, result.code) == (False, "aborted")
    assert model.ledger() == []
    found = terminal.find("op-7")
    assert found is not None and not found.approved  # proven not charged: a retry is safe
    assert terminal.purchase(Decimal("10.00"), "op-7").approved
    assert len(model.charges("op-7")) == 1


def test_never_seen_operation_is_none_and_a_lost_request_is_not_performed(sim: NexoSimulator,
                                                                          terminal: NexoTerminal) -> None:
    assert terminal.find("op-never") is None
    # The terminal drops the link as the request arrives, before it runs: TransactionStatus says NotFound.
    with NexoSimulator(SimConfig(state=sim.config.state, poi_id="T1")) as closing:
        closing.handle = lambda session, message: (  # type: ignore[method-assign]
            session.kill() if message.body_name == "PaymentRequest"
            else NexoSimulator.handle(closing, session, message))
        lossy = make(closing, service_timeout=2)
        result = lossy.purchase(Decimal("3.00"), "op-8")
        assert (result.approved, result.code) == (False, "not_performed")
        assert "списания не было" in result.message
        lossy.close()
    assert sim.model.charges("op-8") == []


@pytest.mark.parametrize(
    "corrupt",
    [lambda data: data[:4] + b"{garbage" + b" " * (len(data) - 12),  # same length, not JSON
     lambda data: b"\x7f\xff\xff\xff"],  # the framing is lost
    ids=["garbled-response", "lost-framing"],
)
def test_malformed_answers_are_resolved_by_transaction_status(sim: NexoSimulator, model: TerminalModel,
                                                              corrupt: object) -> None:
    terminal = make(sim, service_timeout=3)
    spoiled: list[bool] = []

    def hook(message: Message, data: bytes) -> bytes:
        if message.body_name == "PaymentResponse" and not spoiled:
            spoiled.append(True)
            return corrupt(data)  # type: ignore[operator, no-any-return]
        return data

    sim.config.outgoing = hook
    result = terminal.purchase(Decimal("10.00"), "op-9")
    assert spoiled and result.approved and "по запросу состояния" in result.message
    assert len(model.charges("op-9")) == 1
    assert terminal.purchase(Decimal("1.00"), "op-10").approved  # the driver keeps working


def test_a_peer_that_speaks_garbage_or_nothing(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    answers = [b"\x00\x00\x00\x05hello", b""]  # a garbage frame to the Login, then silence

    def serve() -> None:
        for answer in answers:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(answer)
                time.sleep(1)

    threading.Thread(target=serve, daemon=True).start()
    terminal = NexoTerminal("127.0.0.1", port, "POS1", "T1", timeout=1, service_timeout=0.5)
    with pytest.raises(DeviceProtocolError):
        terminal.open()
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown):
        terminal.find("op-11")  # the Login times out: the terminal cannot tell now
    assert time.monotonic() - started < 2
    time.sleep(1)
    listener.close()


def test_unreachable_terminal(tmp_path: Path) -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    terminal = NexoTerminal("127.0.0.1", port, "POS1", "T1", service_timeout=0.5, connect_timeout=0.5)
    assert terminal.status().state == "offline"
    with pytest.raises(DeviceUnavailable):
        terminal.purchase(Decimal("1.00"), "op-12")  # nothing was sent
    with pytest.raises(OutcomeUnknown, match="Нет связи"):
        terminal.find("op-12")


def test_uuid_operation_ids_bad_amounts_and_last_slip(terminal: NexoTerminal, model: TerminalModel) -> None:
    command_id = str(uuid.uuid4())
    assert len(command_id) == 36 and len(service_id_for(command_id)) == 10
    assert terminal.purchase(Decimal("77.70"), command_id).approved
    [charge] = model.charges(uuid.UUID(command_id).hex)
    found = terminal.find(command_id)
    assert found is not None and found.operation_id == command_id and found.rrn == charge.rrn
    copy = terminal.last_slip()
    assert copy.startswith("КОПИЯ") and charge.rrn in copy and "77.70" in copy
    for bad in (Decimal("1.005"), Decimal("0"), Decimal("-1"), Decimal("NaN")):
        with pytest.raises(InvalidAmount):
            terminal.purchase(bad, "op-13")
    assert len(model.ledger()) == 1


def test_frames_on_the_wire_are_length_prefixed_json(sim: NexoSimulator) -> None:
    """A byte-level look at what the driver's peer receives: anchors both sides to the framing."""
    seen: list[bytes] = []
    sim.config.outgoing = lambda message, data: seen.append(data) or data  # type: ignore[assignment, func-returns-value]
    make(sim).purchase(Decimal("1.50"), "op-14")
    login, *rest = seen
    assert struct.unpack(">I", login[:4])[0] == len(login) - 4
    assert login[4:].startswith(b'{"SaleToPOIResponse":{"MessageHeader":{"MessageClass":"Service",'
                                b'"MessageCategory":"Login"')
    assert b'"AuthorizedAmount":1.50' in rest[-1]
