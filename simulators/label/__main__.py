"""``python -m simulators.label``: the label printer simulator CLI."""

from simulators.label.cli import app

app(prog_name="python -m simulators.label")
