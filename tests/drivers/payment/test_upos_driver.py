"""The UPOS driver against the UPOS simulator executable: real processes, real files."""

from __future__ import annotations

import stat
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.payment import open_payment_terminal
from drivers.payment.base import (
    InvalidAmount,
    OperationNotFound,
    OutcomeUnknown,
    PaymentTerminal,
    TerminalBusy,
)
from drivers.payment.upos import UposTerminal
from protocols.upos import TruncatedFile, WrongEncoding
from simulators.payment.model import TerminalModel

SIM = [sys.executable, "-m", "simulators.payment.upos"]


@pytest.fixture
def model(tmp_path: Path) -> TerminalModel:
    return TerminalModel(tmp_path / "state.db")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "upos"
    path.mkdir()
    return path


def make(model: TerminalModel, workdir: Path, **kw: object) -> UposTerminal:
    options = {"command": [*SIM, "--state", str(model.path)], "workdir": str(workdir), **kw}
    terminal = open_payment_terminal("upos", options)
    assert isinstance(terminal, UposTerminal) and isinstance(terminal, PaymentTerminal)
    terminal.open()
    return terminal


@pytest.fixture
def terminal(model: TerminalModel, workdir: Path) -> UposTerminal:
    return make(model, workdir, timeout=20, service_timeout=20)


def test_purchase_approved_with_slip_progress_and_one_charge(terminal: UposTerminal, model: TerminalModel) -> None:
    stages: list[str] = []
    result = terminal.purchase(Decimal("1234.56"), "op-1", progress=stages.append)
    assert result.approved and result.code == "approved" and result.amount == Decimal("1234.56")
    assert result.operation == "purchase" and result.message == "Операция одобрена"
    assert len(result.rrn) == 12 and result.auth_code and result.card_mask.endswith("5678")
    assert "ОДОБРЕНО" in result.slip and "op-1" in result.slip and result.rrn in result.slip
    assert stages == ["waiting_card", "pin_entry", "authorising"]
    [charge] = model.charges("op-1")
    assert charge.amount_kop == 123456 and charge.rrn == result.rrn


def test_declined_insufficient_funds(terminal: UposTerminal, model: TerminalModel) -> None:
    model.configure(default_balance_kop=10_000)
    result = terminal.purchase(Decimal("100.01"), "op-2")
    assert not result.approved and result.device_code == "4451" and result.code == "insufficient_funds"
    assert result.message == "Недостаточно средств на карте"
    assert model.ledger() == []


@pytest.mark.parametrize(
    ("script", "device_code", "code"),
    [("cancel", "2000", "customer_cancelled"), ("pin_timeout", "2002", "timeout"), ("wrong_pin", "4117", "pin_error")],
)
def test_customer_side_failures(terminal: UposTerminal, model: TerminalModel, script: str, device_code: str,
                                code: str) -> None:
    model.push_script(script)
    result = terminal.purchase(Decimal("10.00"), "op-3")
    assert (result.approved, result.device_code, result.code) == (False, device_code, code)
    assert model.ledger() == []


def test_bank_link_down_and_card_ranges(terminal: UposTerminal, model: TerminalModel) -> None:
    model.configure(bank_link_down=True)
    result = terminal.purchase(Decimal("10.00"), "op-4")
    assert (result.device_code, result.code) == ("4119", "no_bank_link")
    model.configure(bank_link_down=False, declined_bins={"5100": 2004})
    model.push_script("approve@5100001234567890")
    result = terminal.purchase(Decimal("10.00"), "op-5")
    assert (result.device_code, result.code) == ("2004", "card_blocked")
    model.configure(max_amount_kop=500)
    assert terminal.purchase(Decimal("5.01"), "op-6").code == "limit_exceeded"
    assert model.ledger() == []


def test_reconciliation_required_then_reconcile_then_purchase(terminal: UposTerminal, model: TerminalModel) -> None:
    model.configure(reconcile_every=2)
    assert terminal.purchase(Decimal("100.00"), "a").approved
    assert terminal.purchase(Decimal("50.50"), "b").approved
    blocked = terminal.purchase(Decimal("1.00"), "c")
    assert (blocked.approved, blocked.device_code, blocked.code) == (False, "4134", "reconcile_required")
    totals = terminal.reconcile()
    assert totals.ok and totals.purchases_count == 2 and totals.purchases_amount == Decimal("150.50")
    assert "СВЕРКА ИТОГОВ" in totals.slip
    assert terminal.purchase(Decimal("1.00"), "c").approved
    model.force_day_change()
    assert terminal.purchase(Decimal("1.00"), "d").device_code == "4134"
    assert terminal.reconcile().purchases_count == 1


def test_refund_after_reconciliation(terminal: UposTerminal, model: TerminalModel) -> None:
    sale = terminal.purchase(Decimal("300.00"), "sale-1")
    terminal.reconcile()
    refund = terminal.refund(Decimal("100.00"), "ret-1", sale)
    assert refund.approved and refund.operation == "refund" and "ВОЗВРАТ" in refund.slip
    by_rrn = terminal.refund(Decimal("200.00"), "ret-2", sale.rrn)
    assert by_rrn.approved
    too_much = terminal.refund(Decimal("0.01"), "ret-3", sale)
    assert not too_much.approved and too_much.device_code == "4140"
    assert [e.kind for e in model.ledger()] == ["purchase", "refund", "refund"]
    assert model.balance(model.rules().default_card) == model.rules().default_balance_kop


def test_cancel_voids_and_is_idempotent(terminal: UposTerminal, model: TerminalModel) -> None:
    terminal.purchase(Decimal("42.00"), "op-7")
    void = terminal.cancel("op-7")
    assert void.approved and void.operation == "cancel" and "ОТМЕНА" in void.slip
    again = terminal.cancel("op-7")
    assert again.approved and again.rrn == void.rrn
    assert [e.kind for e in model.ledger()] == ["purchase", "void"]
    found = terminal.find("op-7")
    assert found is not None and found.voided and found.operation == "purchase"
    with pytest.raises(OperationNotFound):
        terminal.cancel("never-was")


def test_copy_of_the_last_slip_and_control_tape(terminal: UposTerminal) -> None:
    sale = terminal.purchase(Decimal("77.70"), "op-8")
    copy = terminal.last_slip()
    assert "КОПИЯ" in copy and sale.rrn in copy and "77.70" in copy
    found = terminal.find("op-8")
    assert found is not None and found.approved and found.rrn == sale.rrn and found.amount == Decimal("77.70")
    assert terminal.find("op-unknown") is None


def test_terminal_that_never_answers_is_killed_and_the_tape_proves_nothing_moved(
    model: TerminalModel, workdir: Path
) -> None:
    terminal = make(model, workdir, timeout=1.5, service_timeout=20)
    model.configure(hang=60)
    model.push_script("hang")
    started = time.monotonic()
    result = terminal.purchase(Decimal("10.00"), "op-9")
    assert time.monotonic() - started < 10
    assert not result.approved and result.code == "not_performed" and "не ответил" in result.message
    assert model.ledger() == []
    # The gateway's retry after a lost answer: find first, then (only if None) purchase again.
    assert terminal.find("op-9") is None
    assert terminal.purchase(Decimal("10.00"), "op-9").approved
    assert len(model.charges("op-9")) == 1


@pytest.mark.parametrize("fault", ["hang_after", "lose_answer"])
def test_lost_answer_after_the_charge_is_learned_from_the_tape(model: TerminalModel, workdir: Path,
                                                               fault: str) -> None:
    terminal = make(model, workdir, timeout=1.5, service_timeout=20)
    model.configure(hang=60)
    model.push_script(fault)
    result = terminal.purchase(Decimal("10.00"), "op-10")
    assert result.approved and result.rrn and "контрольной ленте" in result.message
    found = terminal.find("op-10")  # what the gateway does before any retry
    assert found is not None and found.approved
    assert len(model.charges("op-10")) == 1


def fake_terminal(tmp_path: Path, model: TerminalModel, body: str) -> list[str]:
    """An sb_pilot that misbehaves for op 1 (``body``) and hands other ops to the simulator."""
    script = tmp_path / "sb_pilot"
    script.write_text(
        f"#!{sys.executable}\n"
        "import os, sys, time\n"
        "if sys.argv[1] != '1':\n"
        f"    os.execv({sys.executable!r}, [{sys.executable!r}, '-m', 'simulators.payment.upos', "
        f"'--state', {str(model.path)!r}, *sys.argv[1:]])\n"
        f"{body}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return [str(script)]


@pytest.mark.parametrize(
    "body",
    [
        "open('e', 'wb').write(b'\\x00\\x01\\xff garbage')",
        "open('e', 'wb').write('0,ОДОБРЕНО\\r\\n************5678\\r\\n'.encode('cp866'))",
        "open('e', 'wb').write('0,ОДОБРЕНО\\r\\n'.encode('utf-8'))",
        "sys.exit(3)",
    ],
    ids=["garbage", "truncated", "utf8", "no-e-file"],
)
def test_malformed_answers_are_resolved_by_the_tape(tmp_path: Path, model: TerminalModel, workdir: Path,
                                                    body: str) -> None:
    terminal = UposTerminal(fake_terminal(tmp_path, model, body), workdir, timeout=10, service_timeout=20)
    result = terminal.purchase(Decimal("10.00"), "op-11")
    assert not result.approved and result.code == "not_performed" and "повреждён" in result.message


def test_unreadable_tape_means_outcome_unknown(tmp_path: Path, workdir: Path) -> None:
    script = tmp_path / "sb_pilot"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "if sys.argv[1] == '9':\n"
        "    open('e', 'wb').write(b'0,OK\\r\\n'); open('p', 'wb').write('КОНТРОЛЬНАЯ ЛЕНТА\\r\\n'.encode('utf-8'))\n"
        "else:\n"
        "    open('e', 'wb').write('0,ОДОБРЕНО\\r\\n'.encode('cp866'))\n"
    )
    script.chmod(0o755)
    terminal = UposTerminal([str(script)], workdir, timeout=10, service_timeout=10)
    with pytest.raises(OutcomeUnknown) as info:
        terminal.purchase(Decimal("10.00"), "op-12")
    assert info.value.operation_id == "op-12" and info.value.code == "outcome_unknown"
    assert isinstance(info.value.__cause__, TruncatedFile)
    with pytest.raises(OutcomeUnknown) as again:
        terminal.find("op-12")
    assert isinstance(again.value.__cause__, WrongEncoding)


def test_busy_terminal_refuses_a_second_operation_at_once(model: TerminalModel, workdir: Path) -> None:
    terminal = make(model, workdir, timeout=20, service_timeout=20)
    other_process_view = make(model, workdir, timeout=20, service_timeout=20)
    model.configure(latency=2.0)
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(terminal.purchase(Decimal("5.00"), "slow")))
    worker.start()
    time.sleep(0.5)
    assert terminal.status().state == "busy"
    for call in (lambda: terminal.purchase(Decimal("1.00"), "x"), terminal.reconcile,
                 lambda: other_process_view.find("slow")):
        started = time.monotonic()
        with pytest.raises(TerminalBusy):
            call()
        assert time.monotonic() - started < 0.2
    worker.join(20)
    assert outcome and outcome[0].approved  # type: ignore[attr-defined]
    assert terminal.status().state == "idle"
    assert len(model.ledger()) == 1


def test_bad_amounts_and_missing_program(terminal: UposTerminal, workdir: Path) -> None:
    for bad in (Decimal("1.005"), Decimal("0"), Decimal("-1"), Decimal("NaN")):
        with pytest.raises(InvalidAmount):
            terminal.purchase(bad, "op-13")
    missing = UposTerminal(["/nonexistent/sb_pilot"], workdir)
    assert missing.status().state == "offline"
