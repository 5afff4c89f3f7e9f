"""A whole store for end-to-end tests: the real cloud (migrated DB, bus consumer, API with its
own MQTT client), a real gateway process, and simulated devices on ptys, over a real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi.testclient import TestClient

from cloud.app import create_app
from cloud.bus.consumer import BusConsumer
from cloud.config import CloudSettings
from cloud.db import session_factory, shared_engine, unit_of_work, upgrade
from cloud.tenancy.service import create_tenant

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 15.0, what: str = "condition", step: float = 0.05) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail the test naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r})")


class Cloud:
    """The cloud under test: bus consumer + API (TestClient with its lifespan) on one database."""

    def __init__(self, database_url: str, mqtt_url: str, root: str, tenant: str) -> None:
        upgrade(database_url)
        with unit_of_work(session_factory(shared_engine(database_url))) as session:
            _t, _u, self.token = create_tenant(session, tenant, "Сеть для сквозных тестов")
        self.settings = CloudSettings(
            database_url=database_url,
            mqtt_url=mqtt_url,
            bus_root=root,
            instance_id=f"e2e-{uuid.uuid4().hex[:8]}",
            mqtt_session_expiry_s=300,
            command_timeout_s=10,
            redis_url=None,
        )
        self.consumer = BusConsumer(self.settings).start()
        self.client = TestClient(create_app(self.settings))
        self.client.__enter__()
        self.client.headers["Authorization"] = f"Bearer {self.token}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(f"/api/v1{path}", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def command(self, device_id: int, action: str, key: str | None = None, **body: Any) -> Any:
        payload: dict[str, Any] = {"action": action, **body}
        if key is not None:
            payload["idempotency_key"] = key
        return self.client.post(f"/api/v1/devices/{device_id}/commands", json=payload)

    def gateway(self) -> dict[str, Any] | None:
        gateways = self.get("/gateways")
        return gateways[0] if gateways else None

    def device(self, code: str) -> dict[str, Any] | None:
        for device in self.get("/devices"):
            if device["code"] == code:
                return device
        return None

    def events(self, event_type: str = "weight", limit: int = 500) -> list[dict[str, Any]]:
        page = self.get("/events", type=event_type, limit=limit)
        items: list[dict[str, Any]] = page["items"]
        return items

    def stop(self) -> None:
        self.client.__exit__(None, None, None)
        self.consumer.stop()


class GatewayProcess:
    """``python -m gateway run --config FILE`` as a real process that tests may kill -9."""

    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        self.workdir = workdir
        self.config_path = workdir / "gateway.toml"
        self.config_path.write_text(to_toml(config))
        self.log_path = workdir / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> GatewayProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(self.config_path), "--log-level", "INFO"],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def to_toml(data: dict[str, Any]) -> str:
    """The small TOML subset a gateway config needs (tables, arrays of tables, scalars)."""
    lines: list[str] = []

    def scalar(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(str(value), ensure_ascii=False)

    def table(prefix: str, body: dict[str, Any]) -> None:
        nested = {k: v for k, v in body.items() if isinstance(v, dict)}
        arrays = {k: v for k, v in body.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
        for key, value in body.items():
            if key not in nested and key not in arrays:
                lines.append(f"{key} = {scalar(value)}")
        for key, value in nested.items():
            lines.append(f"\n[{prefix}{key}]")
            table(f"{prefix}{key}.", value)
        for key, items in arrays.items():
            for item in items:
                lines.append(f"\n[[{prefix}{key}]]")
                table(f"{prefix}{key}.", item)

    table("", data)
    return "\n".join(lines) + "\n"
