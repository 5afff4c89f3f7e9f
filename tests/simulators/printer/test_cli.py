"""The receipt printer simulator CLI: serves on a free port, applies keyboard commands, quits."""

from __future__ import annotations

import io
from pathlib import Path

from typer.testing import CliRunner

from simulators.printer.cli import app, run_console
from simulators.printer.device import ReceiptPrinterSimulator


def test_console_commands_toggle_faults() -> None:
    sim = ReceiptPrinterSimulator()
    out = io.StringIO()
    run_console(sim, io.StringIO("p\nc\nx\ni\nbad\nq\n"), out)
    assert sim.paper_out and sim.cover_open and sim.cutter_error
    assert "неисправности: cover_open, paper_out, cutter_error" in out.getvalue()
    run_console(sim, io.StringIO("p\nn\ni\n"), out)
    assert not sim.paper_out and sim.status().paper_near_end


def test_cli_serves_on_a_free_port_and_quits(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--tcp", "0", "--out", str(tmp_path), "--width", "42"], input="i\nq\n")
    assert result.exit_code == 0, result.output
    assert "Принтер чеков (ESC/POS) на tcp://127.0.0.1:" in result.output
    bad = CliRunner().invoke(app, ["--tcp", "0", "--width", "40"])
    assert bad.exit_code != 0
