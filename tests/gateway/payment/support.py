"""Payment gateway tests: the UPOS simulator executable or the nexo simulator server as the terminal,
gateways in or out of process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
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


UNPLUGGABLE = """\
import os, runpy, sys
marker = sys.argv.pop(1)
if os.path.exists(marker):  # the terminal's program fails at once: no e, no p, nothing charged
    sys.exit(3)
runpy.run_module("simulators.payment.upos", run_name="__main__", alter_sys=True)
"""


def unpluggable_device(workdir: Path, state: Path | str, marker: Path, device_id: str = "pos1",
                       **options: Any) -> DeviceConfig:
    """A UPOS terminal whose program fails on every call while ``marker`` exists (its control tape
    unreadable: ``find`` → ``OutcomeUnknown``), and is the simulator otherwise."""
    script = workdir.parent / "unpluggable_sb_pilot.py"
    script.write_text(UNPLUGGABLE)
    command = [sys.executable, str(script), str(marker), "--state", str(state)]
    return terminal_device(workdir, state, device_id, **{"command": command, **options})


def nexo_device(port: int, device_id: str = "pos1", host: str = "127.0.0.1", **options: Any) -> DeviceConfig:
    """A nexo terminal at ``host:port`` (the driver takes its address from the options)."""
    opts: dict[str, Any] = {"host": host, "port": port, "timeout": 20, "service_timeout": 5, "connect_timeout": 2,
                            **options}
    return DeviceConfig(id=device_id, kind=DeviceKind.PAYMENT_TERMINAL, driver="nexo", url=f"tcp://{host}:{port}",
                        options=opts)


class NexoProcess:
    """``python -m simulators.payment.nexo`` in a process of its own: it outlives a killed gateway."""

    def __init__(self, state: Path, port: int = 0) -> None:
        self.state = state
        self.log = state.parent / f"nexo-{time.monotonic_ns()}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "simulators.payment.nexo", "--port", str(port), "--state", str(state)],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.kill()
            raise RuntimeError(f"nexo simulator did not start: {line!r} {self.log.read_text(errors='replace')}")
        self.host, _, port_text = line.removeprefix("listening on ").strip().rpartition(":")
        self.port = int(port_text)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


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


class StoreRig:
    """One store whose gateway runs as processes (killed, restarted) on one data directory, with one
    payment terminal ``device``, and the cloud's view of its bus."""

    def __init__(self, tmp_path: Path, mqtt_url: str, root: str, tenant: str, device: DeviceConfig) -> None:
        self.config = tmp_path / "gateway.toml"
        self.kw = {"mqtt_url": mqtt_url, "root": root, "tenant": tenant}
        self.device = device
        self.address = self.configure(device)
        self.watcher = BusWatcher(mqtt_url, [f"{self.address.prefix}/#"])
        self.bus = Bus(self.watcher, self.address, device.id)
        self.processes: list[GatewayProcess] = []

    def configure(self, device: DeviceConfig) -> GatewayAddress:
        self.device = device
        return write_config(self.config, device=device, **self.kw)

    def start(self, crash_point: str | None = None, *, device_online: bool = True) -> GatewayProcess:
        """A gateway process; waits for its ``online`` state and (``device_online``) its terminal's."""
        mark = len(self.watcher.messages)
        proc = GatewayProcess(self.config, crash_point=crash_point)
        self.processes.append(proc)
        self.bus.online(mark)
        if device_online:
            topic = self.address.device_status(self.device.id)
            wait_until(lambda: [m for m in self.watcher.messages[mark:] if m.topic == topic
                                and m.json()["state"] == "online"], 20)
        return proc

    def row(self, command_id: str) -> tuple[dict[str, Any] | None, int] | None:
        """(stored reply or ``None`` while running, attempts) of ``command_id`` in the journal."""
        path = self.config.parent / "data" / "journal.db"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT reply, attempts FROM commands WHERE command_id = ?", (command_id,)).fetchone()
        if row is None:
            return None
        return (json.loads(row[0]) if row[0] else None), int(row[1])

    def journaled(self, command_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """The final reply the journal holds for ``command_id`` (waits for it)."""
        def read() -> dict[str, Any] | None:
            found = self.row(command_id)
            return found[0] if found is not None else None

        return dict(wait_until(read, timeout=timeout, interval=0.05))

    def dies_mid_purchase(self, point: str, command_id: str, amount: int = 5_000) -> None:
        """Start a gateway armed at ``point``, pay: it dies there, having answered nothing final."""
        proc = self.start(crash_point=point)
        mark = self.bus.send("pay", command_id, {"amount": amount})
        assert proc.wait(30) == 137, proc.output()[-2000:]
        assert f"crashpoint {point}" in proc.output()
        replies = self.bus.replies(command_id, mark)
        assert [r["status"] for r in replies if r["status"] not in ("accepted", "progress")] == [], replies

    def stop_all(self) -> None:
        for proc in self.processes:
            proc.stop()

    def close(self) -> None:
        for proc in self.processes:
            proc.kill()
        self.watcher.close()
