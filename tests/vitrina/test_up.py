"""The README's first command, for real: ``vitrina up`` starts everything, serves, stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def test_vitrina_up_runs_the_store_and_stops_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("VITRINA_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vitrina.cli", "up", "--data-dir", str(tmp_path / "var"), "--api-port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = ""
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while "demo API token" not in output and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output += line
        assert "Vitrina is up" in output, output
        base = re.search(r"API\s+(http://[0-9.]+:\d+)/docs", output).group(1)  # type: ignore[union-attr]
        token = re.search(r"demo API token\s+(\S+)", output).group(1)  # type: ignore[union-attr]
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200

        def scale_online() -> dict | None:
            devices = httpx.get(f"{base}/api/v1/devices", headers=headers, timeout=5).json()
            return next((d for d in devices if d["code"] == "scale-1" and d["state"] == "online"), None)

        deadline = time.monotonic() + 30
        device = scale_online()
        while device is None and time.monotonic() < deadline:
            time.sleep(0.2)
            device = scale_online()
        assert device is not None, "the simulated scale never came online"
        reply = httpx.post(
            f"{base}/api/v1/devices/{device['id']}/commands", json={"action": "weigh"}, headers=headers, timeout=15
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["status"] == "done"
        assert httpx.get(f"{base}/api/v1/gateways", headers=headers, timeout=5).json()[0]["online"] is True
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
        output += rest or ""
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output


def test_cli_help_and_bad_gateway_config(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run([sys.executable, "-m", "vitrina.cli", "--help"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "gateway" in ok.stdout and "sim" in ok.stdout
    bad = tmp_path / "gw.toml"
    bad.write_text('tenant = "t"\nstore = "s"\ngateway = "g"\n[[devices]]\nid = "x"\nkind = "toaster"\ndriver = "d"\nurl = "u"\n')
    run = subprocess.run(
        [sys.executable, "-m", "vitrina.cli", "gateway", "run", "--config", str(bad)], env=env, capture_output=True, text=True
    )
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "kind" in lines[0], run.stderr
