"""A real Celery worker on a real Redis runs the stale-gateway task (production mode).

The Redis is a private ``redis-server`` of this test on a free port, so no other run's tasks mix
in; without a redis-server binary the one-machine mode (eager tasks, in-process runner) is the
only mode there is, and the tests in test_tasks_and_cli.py cover it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloud.worker import create_celery
from tests.cloud.test_tasks_and_cli import _statuses, _two_gateways
from tests.support.backends import free_port, redis_answers

ROOT = Path(__file__).resolve().parents[2]
REDIS = shutil.which("redis-server")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(REDIS is None, reason="no redis-server on this machine: tasks run in-process"),
]


@pytest.fixture
def private_redis(tmp_path: Path):
    port = free_port()
    proc = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not redis_answers("127.0.0.1", port):
        assert time.monotonic() < deadline, "private redis did not start"
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def test_a_celery_worker_on_redis_marks_stale_gateways(settings, sessions, tenant, private_redis, tmp_path) -> None:
    _two_gateways(sessions, tenant[1])
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "VITRINA_REDIS_URL": private_redis,
        "VITRINA_DATABASE_URL": settings.database_url,
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cloud.worker:celery_app", "worker", "--pool=solo", "--loglevel=WARNING"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        app = create_celery(settings.model_copy(update={"redis_url": private_redis}))
        result = app.send_task(
            "cloud.registry.mark_stale_gateways", kwargs={"database_url": settings.database_url, "stale_after_s": 90}
        )
        ids = result.get(timeout=60)
        assert len(ids) == 1
        assert _statuses(sessions) == {"quiet": "stale", "busy": "online"}
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)
