"""``python -m simulators.scanner``: the scanner simulator CLI."""

from simulators.scanner.cli import app

app(prog_name="python -m simulators.scanner")
