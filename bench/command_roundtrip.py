"""Command round trip: HTTP ``POST /api/v1/devices/{id}/commands`` (weigh) → MQTT → gateway →
MT-SICS scale simulator → reply → the API answers 200 with the weight.

What runs (all real, every TCP socket with TCP_NODELAY), as in production, each in a process of
its own (one process would put the API, the consumer and the gateway under one GIL, and its
5 ms switch interval, which is what the first version of this benchmark measured): a private
Mosquitto (``set_tcp_nodelay true``); the cloud on a migrated **SQLite file** database
(PostgreSQL with ``--postgres``); the API (uvicorn, uvloop + httptools as ``uvicorn[standard]``
installs them) called over HTTP by a bare keep-alive ``http.client`` connection from the parent
process; the bus consumer; the store side — a gateway runtime — and the scale: the MT-SICS
simulator on a **pty** in a process of its own, as a real scale is a device of its own (the scale
binding's polling is set to once an hour so polls do not interleave with commands). Each command
has a new idempotency key, so each one is journaled and executed.

The floor, measured in the same run:

* ``paho``: a plain paho QoS 1 publish → echo → subscribe round trip on the same broker
  (``bench.mqtt_floor``), p50;
* ``device``: a direct driver ``weigh()`` against the same simulator on the same pty, p50;
* ``journal``: ``Journal.begin`` (fsynced) + ``Journal.finish`` (in the WAL, not fsynced), p50: what a
  command commits.

Also printed, for the reader to weigh the rest: ``db_round_trip``, ``SELECT 1`` on an open
connection (the command's insert is one statement: one such round trip).

The floor is the issue's definition and deliberately has no HTTP in it. So that the reader sees
where the rest goes, the same run also measures ``http``: an authenticated
``GET /api/v1/commands/{id}`` of the last command on the same keep-alive connection (HTTP
parsing, routing, the token check, one indexed read, JSON) — the part of every command round
trip that is neither bus, device nor journal. ``ratio`` is command p50 / floor p50;
``ratio_with_http`` is command p50 / (floor p50 + http p50).

``python -m bench.command_roundtrip [--n 300] [--postgres]``
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import create_tenant_token, fresh_database, private_broker, quiet_logs
from bench.mqtt_floor import round_trips
from bench.stats import summary_ms

TARGET_RATIO = 1.5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def device_times(url: str, n: int) -> list[float]:
    """Direct driver ``weigh()`` against the simulator: the device's own time on the wire."""
    from drivers.scale import open_scale

    scale = open_scale("mtsics", url, {"timeout": 1.0})
    try:
        samples = []
        for i in range(n + 10):
            t0 = time.perf_counter()
            scale.weigh(stable=True, timeout=2.0)
            if i >= 10:
                samples.append(time.perf_counter() - t0)
        return samples
    finally:
        scale.close()


def journal_times(directory: Path, n: int) -> list[float]:
    """``begin`` + ``finish`` of one command in the gateway's journal (what a command commits)."""
    from gateway.journal import Journal, args_hash
    from protocols.bus import Reply, ReplyStatus

    journal = Journal(directory / "bench-journal.db")
    digest = args_hash({})
    try:
        samples = []
        for i in range(n + 10):
            cid = f"bench-{i}-{uuid.uuid4().hex[:8]}"
            reply = Reply(session=1, command_id=cid, status=ReplyStatus.DONE, result={"net": "1.250"})
            t0 = time.perf_counter()
            journal.begin(cid, "scale-1", "weigh", digest, args={})
            journal.finish(cid, reply)
            if i >= 10:
                samples.append(time.perf_counter() - t0)
        return samples
    finally:
        journal.close()


def database_times(url: str, n: int) -> list[float]:
    """``SELECT 1`` on one open connection: the database's round trip (µs on SQLite)."""
    from sqlalchemy import text

    from cloud.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            samples = []
            for i in range(n + 10):
                t0 = time.perf_counter()
                connection.execute(text("SELECT 1")).scalar()
                if i >= 10:
                    samples.append(time.perf_counter() - t0)
            return samples
    finally:
        engine.dispose()


def _api_process(settings_kwargs: dict[str, Any], port: int, ready: Any, stop: Any) -> None:
    """The FastAPI app under uvicorn, as ``vitrina cloud api`` runs it (a process of its own)."""
    import uvicorn

    from cloud.app import create_app
    from cloud.config import CloudSettings

    quiet_logs()
    config = uvicorn.Config(create_app(CloudSettings(**settings_kwargs)), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)

    def watch() -> None:
        while not server.started:
            time.sleep(0.02)
        ready.set()
        stop.wait()
        server.should_exit = True

    threading.Thread(target=watch, daemon=True).start()
    server.run()


def _consumer_process(settings_kwargs: dict[str, Any], ready: Any, stop: Any) -> None:
    """The bus consumer, as ``vitrina cloud bus`` runs it."""
    from cloud.bus.consumer import BusConsumer
    from cloud.config import CloudSettings

    quiet_logs()
    consumer = BusConsumer(CloudSettings(**settings_kwargs)).start()
    ready.set()
    stop.wait()
    consumer.stop()


def _scale_process(address: Any, stop: Any) -> None:
    """The scale: the MT-SICS simulator on a pty, in a process of its own as a real scale is a
    device of its own (in the gateway's process its thread took the gateway's GIL turns)."""
    from simulators.scale.mtsics import MtSicsConfig, MtSicsSimulator

    quiet_logs()
    sim = MtSicsSimulator(MtSicsConfig(initial_weight=Decimal("1.250"), unstable_after_change=0.0))
    address.put(sim.serve_pty())
    stop.wait()
    sim.stop()


def _gateway_process(broker_url: str, tenant: str, root: str, data_dir: str, pty: str, n: int, results: Any,
                     ready: Any, stop: Any) -> None:
    """The store side: the gateway, with the scale on ``pty``, as at a store.

    The device's and the journal's floors are measured here, before the gateway starts, on the
    same pty and disk."""
    from gateway.config import BrokerConfig, DeviceConfig, GatewayConfig
    from gateway.runtime import Gateway
    from protocols.bus import DeviceKind

    quiet_logs()
    tmp = Path(data_dir)
    results.put({"device": summary_ms(device_times(pty, n)), "journal": summary_ms(journal_times(tmp, n))})
    gw = Gateway(GatewayConfig(
        tenant=tenant, store="s1", gateway="gw1", bus_root=root, data_dir=tmp / "gw", heartbeat_s=0,
        broker=BrokerConfig(url=broker_url, keepalive=30, reconnect_min_s=0.1, reconnect_max_s=1.0,
                            client_id=f"bench-gw-{uuid.uuid4().hex[:8]}"),
        devices=[DeviceConfig(id="scale-1", kind=DeviceKind.SCALE, driver="mtsics", url=pty,
                              options={"poll_interval_s": 3600, "timeout": 1.0})],
    )).start()
    ready.set()
    stop.wait()
    gw.stop()


def main(n: int = 300, *, prefer_db: str = "sqlite", quiet: bool = False) -> dict[str, Any]:
    quiet_logs()
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    out: dict[str, Any] = {"n": n}
    with private_broker() as broker, fresh_database(prefer_db, "cmd") as db, \
            tempfile.TemporaryDirectory(prefix="vitrina-bench-cmd-") as tmp_name:
        out["database"] = db.kind
        tenant = f"bench{uuid.uuid4().hex[:6]}"
        root = f"vb{uuid.uuid4().hex[:6]}"
        token = create_tenant_token(db.url, tenant)
        settings = {"database_url": db.url, "mqtt_url": broker.url, "bus_root": root,
                    "instance_id": f"bench-{uuid.uuid4().hex[:6]}", "mqtt_session_expiry_s": 300,
                    "command_timeout_s": 10, "redis_url": None}
        stop = ctx.Event()
        results = ctx.Queue()
        port = _free_port()
        readies = [ctx.Event() for _ in range(3)]
        scale_address = ctx.Queue()
        scale = ctx.Process(target=_scale_process, name="scale", daemon=True, args=(scale_address, stop))
        scale.start()
        pty = scale_address.get(timeout=60)
        procs = [
            ctx.Process(target=_gateway_process, name="gateway", daemon=True,
                        args=(broker.url, tenant, root, tmp_name, pty, n, results, readies[0], stop)),
            ctx.Process(target=_consumer_process, name="bus-consumer", daemon=True,
                        args=(settings, readies[1], stop)),
            ctx.Process(target=_api_process, name="api", daemon=True, args=(settings, port, readies[2], stop)),
        ]
        try:
            procs[0].start()
            out.update(results.get(timeout=120))  # device and journal floors, before anything else runs
            out["paho"] = summary_ms(round_trips(broker.url, n, prefix=f"{root}-floor"))
            out["db_round_trip"] = summary_ms(database_times(db.url, n))
            for proc in procs[1:]:
                proc.start()
            for proc, ready in zip(procs, readies, strict=True):
                if not ready.wait(60):
                    raise RuntimeError(f"{proc.name} did not start")
            out.update(_drive(port, token, n))
        finally:
            stop.set()
            for proc in [*procs, scale]:
                proc.join(15)
                if proc.is_alive():
                    proc.kill()
    floor = out["paho"]["p50"] + out["device"]["p50"] + out["journal"]["p50"]
    out["floor_ms"] = floor
    out["ratio"] = out["command"]["p50"] / floor
    out["ratio_with_http"] = out["command"]["p50"] / (floor + out["http"]["p50"])
    if not quiet:
        report(out)
    return out


class _Http:
    """A keep-alive HTTP/1.1 client on one connection (``http.client``, TCP_NODELAY).

    The lightest client there is, for the same reason the floor uses bare paho: what is measured
    is the system, not the client (httpx's async client alone costs ~1.2 ms a request here)."""

    def __init__(self, port: int, token: str) -> None:
        import http.client

        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15.0)
        self.conn.connect()
        assert self.conn.sock is not None
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=self.headers)
        response = self.conn.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def close(self) -> None:
        self.conn.close()


def _drive(port: int, token: str, n: int) -> dict[str, Any]:
    client = _Http(port, token)
    try:
        device_id = None
        deadline = time.monotonic() + 20
        while device_id is None:
            status, devices = client.call("GET", "/api/v1/devices")
            for d in devices if status == 200 else []:
                if d["code"] == "scale-1" and d["present"] and d["state"] == "online":
                    device_id = d["id"]
            gws = client.call("GET", "/api/v1/gateways")[1]
            if device_id is not None and not (gws and gws[0]["status"] == "online"):
                device_id = None
            if device_id is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("the cloud never saw the gateway online with its scale")
                time.sleep(0.05)
        samples: list[float] = []
        failures = 0
        command_id = ""
        for i in range(n + 10):
            body = {"action": "weigh", "args": {}, "idempotency_key": f"w-{uuid.uuid4().hex}"}
            t0 = time.perf_counter()
            status, answer = client.call("POST", f"/api/v1/devices/{device_id}/commands", body)
            dt = time.perf_counter() - t0
            if status != 200 or answer.get("status") != "done":
                failures += 1
                continue
            command_id = answer["command_id"]
            if i >= 10:
                samples.append(dt)
        if not samples:
            raise RuntimeError("every command failed")
        http: list[float] = []
        for i in range(n + 10):
            t0 = time.perf_counter()
            status, _answer = client.call("GET", f"/api/v1/commands/{command_id}")
            dt = time.perf_counter() - t0
            if status != 200:
                raise RuntimeError(f"GET /commands/{command_id}: {status}")
            if i >= 10:
                http.append(dt)
        return {"command": summary_ms(samples), "failures": failures, "http": summary_ms(http)}
    finally:
        client.close()


def report(r: dict[str, Any]) -> None:
    c, p, d, j, h = r["command"], r["paho"], r["device"], r["journal"], r["http"]
    print(f"command round trip ({r['n']} weigh commands over HTTP; cloud DB {r['database']}; scale on a pty):")
    print(f"  command           p50 {c['p50']:7.2f} ms   p99 {c['p99']:7.2f} ms   failures {r['failures']}")
    print(f"  floor             p50 {r['floor_ms']:7.2f} ms   = paho echo {p['p50']:.2f} + device {d['p50']:.2f}"
          f" + journal begin+finish {j['p50']:.2f}")
    print(f"    (p99s: paho {p['p99']:.2f}, device {d['p99']:.2f}, journal {j['p99']:.2f} ms)")
    print(f"  ratio             {r['ratio']:7.2f} × floor at p50  (target ≤ {TARGET_RATIO})")
    print(f"  http overhead     p50 {h['p50']:7.2f} ms   p99 {h['p99']:7.2f} ms   (authenticated GET /commands/{{id}}:"
          " HTTP + token + one read; not in the floor)")
    print(f"  ratio incl. http  {r['ratio_with_http']:7.2f} × (floor + http overhead) at p50")
    print(f"  database          p50 {r['db_round_trip']['p50']:7.2f} ms   (SELECT 1 on an open connection: the"
          " command's insert is one such round trip, which the floor has not)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL for the cloud instead of SQLite")
    args = parser.parse_args()
    main(args.n, prefer_db="postgresql" if args.postgres else "sqlite")
