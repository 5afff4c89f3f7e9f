"""The tester console of the scale simulator CLI."""

import io
from decimal import Decimal

from typer.testing import CliRunner

from simulators.scale.cli import app, run_console
from simulators.scale.mtsics import MtSicsSimulator


def test_console_commands_drive_the_model() -> None:
    sim = MtSicsSimulator()
    out = io.StringIO()
    run_console(sim, io.StringIO("1,250\nbogus\nu\no\nq\n2.000\n"), out)
    assert sim.gross == sim.config.capacity + 1  # "o" ran, "q" stopped before 2.000
    text = out.getvalue()
    assert "1.250" in text and "Непонятная команда" in text and "Перегрузка" in text
    run_console(sim, io.StringIO("z\n"), out)
    assert sim.gross == Decimal("0.000")


def test_cli_serves_tcp_and_quits() -> None:
    result = CliRunner().invoke(app, ["mtsics", "--tcp", "0"], input="0.500\nq\n")
    assert result.exit_code == 0, result.output
    assert "tcp://127.0.0.1:" in result.output and "0.500" in result.output
