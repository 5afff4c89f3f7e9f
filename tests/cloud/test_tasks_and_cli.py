"""The stale-gateway task (Celery eager and the in-process runner) and the cloud CLI."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from cloud.cli import app as cli
from cloud.config import get_settings
from cloud.registry.models import Gateway
from cloud.worker import PERIODIC, PeriodicRunner, create_celery
from protocols.bus import GatewayAddress, GatewayState
from tests.cloud.conftest import wait_for
from tests.cloud.test_services import ROOT, feed


def _two_gateways(sessions, slug: str) -> None:
    now = datetime.now(UTC)
    feed(sessions, GatewayAddress(slug, "s", "quiet", ROOT).state(), GatewayState(online=True, session=1),
         now=now - timedelta(seconds=300))
    feed(sessions, GatewayAddress(slug, "s", "busy", ROOT).state(), GatewayState(online=True, session=1), now=now)


def _statuses(sessions) -> dict[str, str]:
    with sessions() as session:
        return {g.code: g.status for g in session.exec(select(Gateway)).all()}


def test_mark_stale_gateways_task_runs_eagerly_without_redis(settings, sessions, tenant) -> None:
    _two_gateways(sessions, tenant[1])
    app = create_celery(settings.model_copy(update={"redis_url": None}))
    assert app.conf.task_always_eager
    result = app.tasks["cloud.registry.mark_stale_gateways"].delay(database_url=settings.database_url,
                                                                   stale_after_s=90)
    assert len(result.get(timeout=10)) == 1
    assert _statuses(sessions) == {"quiet": "stale", "busy": "online"}


def test_celery_with_redis_has_the_beat_schedule(settings) -> None:
    app = create_celery(settings.model_copy(update={"redis_url": "redis://127.0.0.1:6379/0"}))
    assert not app.conf.task_always_eager and app.conf.broker_url == "redis://127.0.0.1:6379/0"
    schedule = app.conf.beat_schedule
    assert schedule["cloud.registry.mark_stale_gateways"]["schedule"] == 30.0
    assert schedule["cloud.inventory.recompute_dirty"]["schedule"] == 15.0
    assert {"cloud.registry.mark_stale_gateways", "cloud.inventory.recompute_dirty", "cloud.finance.import_operations"} <= set(app.tasks)


def test_periodic_runner_runs_the_task_in_process(settings, sessions, tenant) -> None:
    _two_gateways(sessions, tenant[1])
    stale = next(p for p in PERIODIC if p.task == "cloud.registry.mark_stale_gateways")
    runner = PeriodicRunner(settings, (replace(stale, every_s=0.1),),
                            create_celery(settings.model_copy(update={"redis_url": None})))
    runner.start()
    try:
        wait_for(lambda: _statuses(sessions)["quiet"] == "stale")
        wait_for(lambda: runner.runs >= 2)
    finally:
        runner.stop()
    assert not runner.is_alive()


@pytest.fixture
def cli_env(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli' / 'vitrina.db'}"
    monkeypatch.setenv("VITRINA_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_cli_db_upgrade_and_tenant_create_prints_a_working_token(cli_env: str) -> None:
    from cloud.db import make_engine, session_factory
    from cloud.tenancy.service import authenticate

    runner = CliRunner()
    assert runner.invoke(cli, ["db-upgrade"]).exit_code == 0
    out = runner.invoke(cli, ["tenant-create", "--slug", "demo", "--name", "Демо"])
    assert out.exit_code == 0, out.output
    token = out.output.split("token: ")[1].strip()
    engine = make_engine(cli_env)
    try:
        with session_factory(engine)() as session:
            assert authenticate(session, token)[1].slug == "demo"
    finally:
        engine.dispose()
    again = runner.invoke(cli, ["tenant-create", "--slug", "demo", "--name", "Демо"])
    assert again.exit_code == 1 and "tenant_exists" in again.output
