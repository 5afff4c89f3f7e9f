"""The ``vitrina`` command: one CLI over the cloud, the gateway, the simulators and ``up``.

Sub-apps are imported lazily so that ``vitrina sim scale`` does not import FastAPI, and a
missing optional piece names itself in one line instead of a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(
    help="Vitrina: store operations for food retail and production chains.",
    no_args_is_help=True,
    add_completion=False,
)

# (group, sub-command, module, attribute, help)
_SUBAPPS: list[tuple[str | None, str, str, str, str]] = [
    (None, "cloud", "cloud.cli", "app", "The cloud back office: api, bus, worker, tenants."),
    (None, "gateway", "gateway.cli", "app", "The store gateway."),
    ("sim", "scale", "simulators.scale.cli", "app", "Simulated scales: MT-SICS, Massa-K, Shtrih M5."),
    ("sim", "fiscal", "simulators.fiscal.cli", "app", "Simulated Shtrih-M fiscal register."),
    ("sim", "label", "simulators.label.cli", "app", "Simulated ZPL label printer."),
    ("sim", "printer", "simulators.printer.cli", "app", "Simulated ESC/POS receipt printer."),
    ("sim", "scanner", "simulators.scanner.cli", "app", "Simulated barcode scanner."),
    ("sim", "label-scale", "simulators.label_scale.cli", "app", "Simulated CAS label scale (PLU table, labels)."),
]

sim_app = typer.Typer(help="Device simulators that speak the devices' real wire protocols.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")
app.add_typer(db_app, name="db")


def _mount() -> None:
    groups = {None: app, "sim": sim_app}
    for group, name, module, attr, help_text in _SUBAPPS:
        try:
            sub = getattr(importlib.import_module(module), attr)
        except ImportError:
            continue  # the piece is not installed in this build
        groups[group].add_typer(sub, name=name, help=help_text)


@db_app.command("upgrade")
def db_upgrade(
    database_url: str = typer.Option(None, "--database-url", envvar="VITRINA_DATABASE_URL", help="Defaults to settings."),
) -> None:
    """Run the Alembic migrations up to head."""
    from cloud.config import CloudSettings
    from cloud.db import upgrade

    url = database_url or CloudSettings().database_url
    upgrade(url)
    typer.echo(f"database at head: {url}")


@app.command()
def up(
    api_port: int = typer.Option(8000, envvar="VITRINA_API_PORT", help="API port (a taken one gets a free one)."),
    mqtt_port: int = typer.Option(1883, envvar="VITRINA_UP_MQTT_PORT", help="Embedded broker port."),
    data_dir: str = typer.Option("var", help="Where the SQLite database, journal and outbox live."),
) -> None:
    """Run the whole store on this machine: broker, cloud, task runner, gateway, simulated devices."""
    from vitrina.up import run_up

    raise typer.Exit(run_up(api_port=api_port, mqtt_port=mqtt_port, data_dir=data_dir))


def main() -> None:
    _mount()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
