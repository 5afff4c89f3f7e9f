"""``python -m gateway run --config FILE`` (mounted by the lead as ``vitrina gateway``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from gateway.config import load_config
from gateway.errors import ConfigError, StorageError

app = typer.Typer(help="Vitrina store gateway: devices on the store bus.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Store gateway commands."""


@app.command()
def run(
    config: Path = typer.Option(..., "--config", "-c", help="gateway TOML config file"),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING, ERROR"),
) -> None:
    """Run the gateway until SIGINT/SIGTERM."""
    from gateway.runtime import Gateway

    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s",
    )
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        typer.echo(f"gateway: bad config: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    try:
        Gateway(cfg, config_path=config).run_forever()
    except StorageError as exc:
        typer.echo(f"gateway: storage error: {exc.message}", err=True)
        raise typer.Exit(1) from exc


@app.command("check-config")
def check_config(config: Path = typer.Option(..., "--config", "-c", help="gateway TOML config file")) -> None:
    """Validate a config file and print a summary (exit 2 on a bad config)."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        typer.echo(f"gateway: bad config: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"ok: {cfg.address.prefix}, {len(cfg.devices)} device(s), data in {cfg.resolved_data_dir}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
