"""``python -m gateway …``."""

from gateway.cli import app

app(prog_name="gateway")
