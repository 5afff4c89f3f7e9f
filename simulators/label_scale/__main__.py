"""``python -m simulators.label_scale``: the label-scale simulator CLI."""

from simulators.label_scale.cli import app

app(prog_name="python -m simulators.label_scale")
