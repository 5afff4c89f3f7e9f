"""The label simulator CLI: serves on a free port, applies keyboard commands, quits."""

from __future__ import annotations

import io
from pathlib import Path

from typer.testing import CliRunner

from simulators.label.cli import app, run_console
from simulators.label.printer import LabelPrinterConfig, LabelPrinterSimulator


def test_console_commands_toggle_faults() -> None:
    sim = LabelPrinterSimulator(LabelPrinterConfig(render=False))
    out = io.StringIO()
    run_console(sim, io.StringIO("p\nh\ns\nr\ni\nwhat\nq\nh\n"), out)
    assert sim.paper_out and sim.head_open and sim.paused and sim.ribbon_out
    text = out.getvalue()
    assert "неисправности: head_open, paper_out, ribbon_out, paused" in text
    assert "Непонятная команда" in text


def test_cli_serves_on_a_free_port_and_quits(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--tcp", "0", "--out", str(tmp_path)], input="i\nq\n")
    assert result.exit_code == 0, result.output
    assert "Принтер этикеток (ZPL) на tcp://127.0.0.1:" in result.output
    assert "неисправности: нет" in result.output
