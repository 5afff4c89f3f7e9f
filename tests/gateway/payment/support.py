"""Payment gateway tests: the UPOS simulator executable as the terminal, gateways in or out of process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gateway.config import DeviceConfig
from protocols.bus import DeviceKind, GatewayAddress
from simulators.payment.model import TerminalModel
from tests.gateway.support import BusWatcher, command, wait_until

ROOT = Path(__file__).resolve().parents[3]
FINAL = ("done", "failed", "duplicate", "expired")


def sim_command(state: Path | str) -> list[str]:
    """The ``sb_pilot`` command line of the simulator, over the state file ``state``."""
    return [sys.executable, "-m", "simulators.payment.upos", "--state", str(state)]


def terminal_device(workdir: Path, state: Path | str, device_id: str = "pos1", **options: Any) -> DeviceConfig:
    opts: dict[str, Any] = {"command": sim_command(state), "timeout": 20, "service_timeout": 20, **options}
    return DeviceConfig(id=device_id, kind=DeviceKind.PAYMENT_TERMINAL, driver="upos", url=str(workdir),
                        options=opts)


class Bus:
    """The cloud's side of one gateway: send commands, read replies and events after a mark."""

    def __init__(self, watcher: BusWatcher, address: GatewayAddress, device: str = "pos1") -> None:
        self.watcher = watcher
        self.address = address
        self.device = device

    def send(self, action: str, command_id: str, args: dict[str, Any] | None = None, **fields: Any) -> int:
        """Publish a command; returns the mark to read its replies from."""
        mark = len(self.watcher.messages)
        body = command(command_id, args=args if args is not None else {}, **fields)
        self.watcher.publish(self.address.command(self.device, action), body)
        return mark

    def replies(self, command_id: str, since: int = 0) -> list[dict[str, Any]]:
        topic = self.address.reply(command_id)
        return [m.json() for m in self.watcher.messages[since:] if m.topic == topic]

    def final(self, command_id: str, since: int = 0, timeout: float = 30.0) -> dict[str, Any]:
        found = wait_until(lambda: [r for r in self.replies(command_id, since) if r["status"] in FINAL], timeout)
        return dict(found[0])

    def events(self, event_type: str, since: int = 0) -> list[dict[str, Any]]:
        topic = self.address.event(self.device, event_type)
        return [m.json() for m in self.watcher.messages[since:] if m.topic == topic]

    def ping(self, command_id: str) -> dict[str, Any]:
        mark = len(self.watcher.messages)
        self.watcher.publish(self.address.gateway_command("ping"), command(command_id))
        return self.final(command_id, mark, timeout=10)

    def online(self, since: int = 0) -> dict[str, Any]:
        """The gateway's next ``online`` state after ``since`` (it subscribed before publishing it)."""
        topic = self.address.state()
        found = wait_until(
            lambda: [m for m in self.watcher.messages[since:] if m.topic == topic and m.json()["online"]], 30
        )
        return dict(found[0].json())


def write_config(path: Path, *, mqtt_url: str, root: str, tenant: str, device: DeviceConfig) -> GatewayAddress:
    """A gateway TOML for ``python -m gateway run`` with one payment terminal."""
    options = ", ".join(f"{key} = {json.dumps(value)}" for key, value in device.options.items())
    path.write_text(
        f'tenant = "{tenant}"\nstore = "s1"\ngateway = "gwp"\nbus_root = "{root}"\n'
        f"data_dir = {json.dumps(str(path.parent / 'data'))}\nheartbeat_s = 0\n"
        f'[broker]\nurl = "{mqtt_url}"\nkeepalive = 5\nreconnect_min_s = 0.1\nreconnect_max_s = 0.5\n'
        f"[outbox]\nrequire_cloud_online = false\n"
        f'[[devices]]\nid = "{device.id}"\nkind = "{device.kind.value}"\ndriver = "{device.driver}"\n'
        f"url = {json.dumps(device.url)}\noptions = {{ {options} }}\n"
    )
    return GatewayAddress(tenant, "s1", "gwp", root)


class GatewayProcess:
    """``python -m gateway run`` as a child process that tests kill with SIGKILL."""

    def __init__(self, config: Path, *, crash_point: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "VITRINA_CRASHPOINT"}
        if crash_point is not None:
            env["VITRINA_CRASHPOINT"] = crash_point
        self.log = config.parent / f"gateway-{time.monotonic_ns()}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(config), "--log-level", "INFO"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
            )

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def charges(model: TerminalModel, order: str) -> list[str]:
    """RRNs of the purchases the bank recorded under ``order``: the ledger's word on money moved."""
    return [e.rrn for e in model.charges(order)]
