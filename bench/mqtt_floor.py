"""The floor of a bus round trip: plain paho publish → echo → subscribe on the same broker.

Both clients set TCP_NODELAY on their sockets (paho does not), as the gateway and the cloud do.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlparse

import paho.mqtt.client as mqtt


def _nodelay(client: mqtt.Client) -> None:
    sock = client.socket()
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _client(url: str, name: str) -> mqtt.Client:
    u = urlparse(url)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{name}-{time.monotonic_ns()}")
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect(u.hostname or "127.0.0.1", u.port or 1883, keepalive=30)
    c.loop_start()
    if not connected.wait(5):
        raise RuntimeError(f"cannot connect to {url}")
    _nodelay(c)
    return c


def round_trips(url: str, n: int = 500, prefix: str = "bench-floor") -> list[float]:
    """``n`` QoS-1 request/echo round trips; returns seconds per round trip."""
    echo = _client(url, "echo")
    req = _client(url, "req")
    got = threading.Event()

    def on_echo(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        client.publish(f"{prefix}/pong", msg.payload, qos=1)

    echo.on_message = on_echo
    req.on_message = lambda c, u, m: got.set()
    echo.subscribe(f"{prefix}/ping", qos=1)
    req.subscribe(f"{prefix}/pong", qos=1)
    time.sleep(0.3)
    samples: list[float] = []
    try:
        for i in range(n + 20):
            got.clear()
            t0 = time.perf_counter()
            req.publish(f"{prefix}/ping", str(i).encode(), qos=1)
            if not got.wait(5):
                raise RuntimeError("echo lost")
            if i >= 20:  # warm-up
                samples.append(time.perf_counter() - t0)
    finally:
        for c in (echo, req):
            c.loop_stop()
            c.disconnect()
    return samples
