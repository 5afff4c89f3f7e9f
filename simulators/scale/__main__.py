"""``python -m simulators.scale``: the scale simulator CLI."""

from simulators.scale.cli import app

app(prog_name="python -m simulators.scale")
