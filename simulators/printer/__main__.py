"""``python -m simulators.printer``: the receipt printer simulator CLI."""

from simulators.printer.cli import app

app(prog_name="python -m simulators.printer")
