"""A killed gateway is declared offline by its Will; a broker outage loses no event."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.runtime import Gateway
from protocols.bus import DeviceKind
from tests.gateway.support import (
    BusWatcher,
    FakeScaleFactory,
    cloud_online,
    make_config,
    scale_device,
    wait_until,
)
from tests.support.backends import PrivateMosquitto

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _write_config(path: Path, url: str, root: str, tenant: str, keepalive: int) -> None:
    path.write_text(
        f'tenant = "{tenant}"\nstore = "s1"\ngateway = "gwk"\nbus_root = "{root}"\n'
        f'data_dir = "{path.parent / "data"}"\n'
        f'[broker]\nurl = "{url}"\nkeepalive = {keepalive}\nreconnect_min_s = 0.2\nreconnect_max_s = 1\n'
    )


def _spawn(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config), "--log-level", "WARNING"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def test_kill_9_publishes_will_then_restart_is_next_session(
    tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str
) -> None:
    keepalive = 2
    config = tmp_path / "gateway.toml"
    _write_config(config, mqtt_url, bus_root, bus_tenant, keepalive)
    state_topic = f"{bus_root}/v1/{bus_tenant}/s1/gwk/state"
    watcher = BusWatcher(mqtt_url, [state_topic])
    proc = _spawn(config)
    try:
        online = watcher.wait_for(lambda m: m.json()["online"], timeout=15).json()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        killed_at = time.monotonic()
        will = watcher.wait_for(lambda m: not m.json()["online"], timeout=keepalive * 1.5 + 2).json()
        assert time.monotonic() - killed_at <= keepalive * 1.5 + 1.0
        assert will["session"] == online["session"] and will["reason"] == "connection lost"
        proc = _spawn(config)
        again = watcher.wait_for(lambda m: m.json()["online"] and m.json()["session"] == online["session"] + 1,
                                 timeout=15).json()
        assert again["online"]
        # SIGTERM is a clean stop: offline published by the gateway itself, exit code 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        bye = watcher.wait_for(lambda m: not m.json()["online"] and m.json()["session"] == again["session"]).json()
        assert bye["reason"] == "shutdown"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        watcher.close()


def test_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('tenant = "t"\nstore = "s"\ngateway = "g"\n[broker]\nurl = "http://x"\n')
    result = subprocess.run([sys.executable, "-m", "gateway", "run", "--config", str(config)],
                            cwd=ROOT, capture_output=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "broker.url" in lines[0] and "mqtt://" in lines[0]


def test_broker_outage_loses_no_event(
    tmp_path: Path, private_broker: PrivateMosquitto, bus_root: str, bus_tenant: str
) -> None:
    factory = FakeScaleFactory()
    factory.scale.step = Decimal("0.010")  # every poll reads a new stable weight → one event each
    config = make_config(tmp_path, private_broker.url, bus_root, bus_tenant, keepalive=2, require_cloud_online=True,
                         devices=[scale_device(poll_interval_s=0.01, deadband_kg="0.001")], window=64)
    cloud = BusWatcher(private_broker.url, [f"{config.address.prefix}/dev/+/evt/+"],
                       on_connect_publish=[cloud_online(bus_root)])
    gw = Gateway(config, factories={DeviceKind.SCALE: factory}).start()
    try:
        wait_until(lambda: len(cloud.messages) >= 20, timeout=10)
        private_broker.stop()
        wait_until(lambda: not gw.link.is_connected, timeout=5)
        during = gw.outbox.stats().last_seq
        time.sleep(1.5)  # the outage itself: events keep being produced meanwhile
        assert gw.outbox.stats().last_seq > during + 20, "events must be produced during the outage"
        private_broker.start()
        assert gw.link.wait_connected(10)
        wait_until(lambda: gw.outbox.stats().last_seq > during + 60, timeout=10)
        factory.scale.step = Decimal("0")  # stop producing, then drain
        wait_until(lambda: gw.outbox.depth == 0, timeout=15)
        last = gw.outbox.stats().last_seq
        wait_until(lambda: {m.json()["seq"] for m in cloud.messages} >= set(range(1, last + 1)), timeout=10)
        by_seq: dict[int, set[str]] = {}
        for m in cloud.messages:
            event = m.json()
            by_seq.setdefault(event["seq"], set()).add(event["event_id"])
        assert set(by_seq) == set(range(1, last + 1)), "no gap: every event arrived"
        assert all(len(ids) == 1 for ids in by_seq.values()), "a replayed event keeps its event_id"
        assert gw.ping()["outbox"]["dropped"] == 0
        assert any(m.json()["historical"] for m in cloud.messages), "events held over a reconnect are historical"
    finally:
        gw.stop()
        cloud.close()
