"""The UPOS simulator executable on its own: the command-line contract, files and exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from protocols.upos import parse_result, parse_slip, parse_tape
from simulators.payment.model import TerminalModel


def run(tmp_path: Path, *words: str) -> int:
    cmd = [sys.executable, "-m", "simulators.payment.upos", "--state", str(tmp_path / "s.db"), *words]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, timeout=30).returncode


def test_purchase_files_and_exit_status(tmp_path: Path) -> None:
    assert run(tmp_path, "1", "10050", "ORDER=op-1") == 0
    result = parse_result((tmp_path / "e").read_bytes(), card_operation=True)
    slip = parse_slip((tmp_path / "p").read_bytes())
    assert result.code == 0 and slip.approved and slip.amount_kop == 10050 and slip.rrn == result.rrn
    assert run(tmp_path, "9", "1") == 0
    [entry] = parse_tape((tmp_path / "p").read_bytes()).by_order("op-1")
    assert entry.rrn == result.rrn


def test_decline_exit_status_is_the_code_truncated_to_8_bits(tmp_path: Path) -> None:
    TerminalModel(tmp_path / "s.db").configure(default_balance_kop=1)
    assert run(tmp_path, "1", "100", "ORDER=op-2") == 4451 & 0xFF
    assert parse_result((tmp_path / "e").read_bytes(), card_operation=True).code == 4451
    assert TerminalModel(tmp_path / "s.db").ledger() == []


def test_bad_arguments(tmp_path: Path) -> None:
    assert run(tmp_path, "1", "12.50") == 99
    assert parse_result((tmp_path / "e").read_bytes(), card_operation=False).code == 99
