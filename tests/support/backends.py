"""Which real servers the tests run on: the machine's own when present, embedded ones otherwise.

CI machines run Mosquitto, PostgreSQL and Redis; a fresh laptop may have none. Tests never
assume either: they ask here, and the session header and summary say what was used.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

RUN_ID = uuid.uuid4().hex[:8]


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def mqtt_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when an MQTT broker accepts a connection at host:port."""
    if not tcp_open(host, port):
        return False
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{RUN_ID}")
    try:
        client.connect(host, port, keepalive=5)
        client.loop_start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if client.is_connected():
                return True
            time.sleep(0.02)
        return False
    except OSError:
        return False
    finally:
        client.loop_stop()
        client.disconnect()


def postgres_answers(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=2):
            return True
    except Exception:
        return False


def redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    if not tcp_open(host, port):
        return False
    try:
        import redis

        return bool(redis.Redis(host=host, port=port, socket_timeout=1).ping())
    except Exception:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Backends:
    mqtt: str = ""
    database: str = ""
    redis: str = ""
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"backends: mqtt={self.mqtt} database={self.database} redis={self.redis}"


class PrivateMosquitto:
    """A Mosquitto of the test's own on a free port, which the test may stop and start.

    Tests that kill or stop a broker never touch the machine's service. Without a mosquitto
    binary it falls back to the embedded amqtt broker on the same fixed port.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        self._dir = Path(tempfile.mkdtemp(prefix="vitrina-mosq-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._embedded = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> PrivateMosquitto:
        if self.binary:
            conf = self._dir / "mosquitto.conf"
            conf.write_text(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "set_tcp_nodelay true\nmax_queued_messages 100000\nmax_inflight_messages 1000\n"
            )
            self._proc = subprocess.Popen(
                [self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        else:
            from vitrina.broker import EmbeddedBroker

            self._embedded = EmbeddedBroker(port=self.port).start()
        deadline = time.monotonic() + 10
        while not tcp_open("127.0.0.1", self.port, 0.2):
            if time.monotonic() > deadline:
                raise RuntimeError("private broker did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            self._proc = None
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(5)
            self._proc = None
        else:
            self.stop()


def detect() -> Backends:
    """Pick the backends for this run; environment variables override detection."""
    b = Backends()
    b.mqtt = os.environ.get("VITRINA_TEST_MQTT_URL", "")
    if not b.mqtt and mqtt_answers("127.0.0.1", 1883):
        b.mqtt = "mqtt://127.0.0.1:1883"
    b.database = os.environ.get("VITRINA_TEST_DATABASE_URL", "")
    if not b.database and postgres_answers("postgresql://postgres@127.0.0.1:5432/postgres"):
        b.database = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    b.redis = os.environ.get("VITRINA_TEST_REDIS_URL", "")
    if not b.redis and redis_answers():
        b.redis = "redis://127.0.0.1:6379/0"
    return b
