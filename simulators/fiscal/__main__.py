from simulators.fiscal.cli import app

app()
