"""``vitrina cloud …`` commands: api, bus, worker, tenant-create, db-upgrade."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Annotated

import typer

from cloud.config import get_settings

app = typer.Typer(help="Vitrina cloud: API, bus consumer, worker, tenants, migrations.", no_args_is_help=True)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def api(
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    host: Annotated[str | None, typer.Option(help="default: VITRINA_API_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default: VITRINA_API_PORT")] = None,
) -> None:
    """Serve the HTTP API with uvicorn (run db-upgrade first)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "cloud.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
    )


@app.command()
def bus() -> None:
    """Run the bus consumer until SIGINT/SIGTERM."""
    from cloud.bus.consumer import BusConsumer

    _logging()
    BusConsumer(get_settings()).run_forever()


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Celery worker processes (with Redis)")] = 2,
) -> None:
    """Celery worker with beat when VITRINA_REDIS_URL is set; the in-process runner otherwise."""
    _logging()
    settings = get_settings()
    if settings.redis_url:
        cmd = [sys.executable, "-m", "celery", "-A", "cloud.worker:celery_app", "worker", "--beat",
               "--loglevel=INFO", f"--concurrency={concurrency}"]
        raise typer.Exit(subprocess.call(cmd))
    from cloud.worker import PeriodicRunner

    runner = PeriodicRunner(settings)
    runner.start()
    typer.echo("no VITRINA_REDIS_URL: running periodic tasks in this process (Ctrl+C to stop)")
    try:
        while runner.is_alive():
            runner.join(1.0)
    except KeyboardInterrupt:
        runner.stop()


@app.command("tenant-create")
def tenant_create(
    slug: Annotated[str, typer.Option(help="topic-safe id: A-Z a-z 0-9 _ . -")],
    name: Annotated[str, typer.Option(help="display name")],
) -> None:
    """Create a tenant with an owner and print its API token (shown only this once)."""
    from cloud.db import make_engine, session_factory, unit_of_work
    from cloud.errors import CloudError
    from cloud.tenancy.service import create_tenant

    engine = make_engine(get_settings().database_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            tenant, _user, token = create_tenant(session, slug, name)
    except CloudError as exc:
        typer.echo(f"error ({exc.code}): {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    typer.echo(f"tenant {tenant.slug} (id {tenant.id}) created")
    typer.echo(f"token: {token}")


@app.command("db-upgrade")
def db_upgrade() -> None:
    """Apply the migrations to VITRINA_DATABASE_URL."""
    from cloud.db import upgrade

    upgrade(get_settings().database_url)
    typer.echo("database is at the latest revision")
