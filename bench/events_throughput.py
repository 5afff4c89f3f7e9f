"""Events per second from the gateway's outbox to rows in the cloud database.

What runs (all real): a private Mosquitto (``set_tcp_nodelay true``); a fresh cloud database
(PostgreSQL when the machine has one, an SQLite file otherwise — printed); the cloud bus consumer;
and, in a *separate process* (as in production: the gateway and the cloud never share a GIL),
a gateway runtime whose producer appends ``n`` weight events one ``Outbox.append`` at a time
(each committed before it returns) as fast as it can, while the real ``OutboxSender`` publishes
them QoS 1 and deletes rows on PUBACK. ``--producers K`` runs K producer threads (several
devices of a store emitting at once: their appends share group commits), ``n`` events in all.
The sender's window is sized by the broker's MQTT 5 Receive Maximum (the link reports it; the
bench wires ``link.on_limits`` to ``sender.broker_limits`` itself, as the runtime should);
``--window`` is the configured (upper) window.

The figure: ``n`` / (time of the first append → the moment ``n`` rows are in the ``events``
table), polled every 20 ms. Baselines measured in the same run on the same servers:

* ``paho``: plain paho QoS 1 publish → subscribe of ``n`` messages of the same size, the same
  in-flight window, auto-acknowledged (what the wire alone allows);
* ``insert``: the same rows inserted straight into the ``events`` table, 500 per transaction
  (what the database alone allows).

``python -m bench.events_throughput [--n 50000] [--sqlite]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt

from bench.common import create_tenant_token, fresh_database, private_broker, quiet_logs

EVENT_DATA = {"net": "1.250", "stable": True, "unit": "kg", "tare": "0.000"}
TIMEOUT_S = 90.0
WINDOW = 256


# ------------------------------------------------------------------ gateway side (child process)


def _gateway_child(conn: Any, mqtt_url: str, root: str, tenant: str, data_dir: str, n: int, window: int,
                   producers: int = 1) -> None:
    quiet_logs()
    from gateway.config import BrokerConfig, GatewayConfig, OutboxConfig
    from gateway.runtime import Gateway

    config = GatewayConfig(
        tenant=tenant, store="s1", gateway="gw1", bus_root=root, data_dir=Path(data_dir), heartbeat_s=0,
        broker=BrokerConfig(url=mqtt_url, keepalive=30, reconnect_min_s=0.1, reconnect_max_s=1.0,
                            client_id=f"bench-gw-{uuid.uuid4().hex[:8]}"),
        outbox=OutboxConfig(max_events=max(100_000, 2 * n), window=window),
    )
    gw = Gateway(config).start()
    if getattr(gw.link, "on_limits", "missing") is None:  # the runtime does not wire it (yet)
        gw.link.on_limits = gw.sender.broker_limits
        gw.sender.broker_limits(gw.link.receive_maximum)
    deadline = time.monotonic() + 15
    while not (gw.link.is_connected and gw.ping()["cloud_online"]):
        if time.monotonic() > deadline:
            conn.send(("error", "gateway did not connect or never saw the cloud online"))
            gw.stop()
            return
        time.sleep(0.02)
    conn.send(("ready",))
    conn.recv()  # go
    topics = [gw.address.event(f"scale-{k + 1}", "weight") for k in range(producers)]

    def produce(topic: str, count: int) -> None:
        for _ in range(count):
            gw.outbox.append(topic, dict(EVENT_DATA), session=gw.link.session)
            gw.sender.wake()

    shares = [n // producers + (1 if k < n % producers else 0) for k in range(producers)]
    threads = [threading.Thread(target=produce, args=(topics[k], shares[k])) for k in range(producers)]
    t0 = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    t_appended = time.monotonic()
    conn.send(("appended", t0, t_appended))
    conn.recv()  # stop
    stats = {"sent": gw.sender.sent, "acked": gw.sender.acked_total, "replays": gw.sender.replays,
             "depth": gw.outbox.depth, "window": gw.sender.window,
             "receive_maximum": getattr(gw.link, "receive_maximum", None)}
    gw.stop()
    conn.send(("stopped", stats))


# ------------------------------------------------------------------ baselines


def paho_rate(url: str, n: int, payload_size: int, window: int = WINDOW) -> float:
    """Plain paho: ``n`` QoS 1 messages publisher → broker → subscriber; messages per second."""
    u = urlparse(url)
    topic = f"bench-raw/{uuid.uuid4().hex[:8]}"
    got = 0
    done = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal got
        got += 1
        if got >= n:
            done.set()

    clients = []
    for name in ("sub", "pub"):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{name}-{uuid.uuid4().hex[:6]}",
                        protocol=mqtt.MQTTv5)
        c.max_inflight_messages_set(window)
        c.max_queued_messages_set(0)
        ready = threading.Event()
        c.on_connect = lambda cl, *_a, ev=ready: (ev.set(), None)[1]
        c.connect(u.hostname or "127.0.0.1", u.port or 1883, 30)
        c.loop_start()
        if not ready.wait(5):
            raise RuntimeError("paho baseline: cannot connect")
        sock = c.socket()
        if sock is not None:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        clients.append(c)
    sub, pub = clients
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.on_message = on_message
    sub.subscribe(topic, qos=1)
    subscribed.wait(5)
    payload = b"x" * payload_size
    try:
        t0 = time.monotonic()
        for _ in range(n):
            pub.publish(topic, payload, qos=1)
        if not done.wait(TIMEOUT_S):
            raise RuntimeError(f"paho baseline: only {got} of {n} messages arrived")
        return n / (time.monotonic() - t0)
    finally:
        for c in clients:
            c.disconnect()
            c.loop_stop()


def insert_rate(database_url: str, tenant_slug: str, n: int, chunk: int = 500) -> float:
    """The same event rows inserted straight into the database, ``chunk`` per transaction."""
    from sqlalchemy import insert
    from sqlmodel import select

    from cloud.db import session_factory, shared_engine, unit_of_work
    from cloud.registry.models import Device, Event, Gateway, Store
    from cloud.tenancy.models import Tenant
    from protocols.bus import uuid7

    sessions = session_factory(shared_engine(database_url))
    with unit_of_work(sessions) as session:
        tenant = session.exec(select(Tenant).where(Tenant.slug == tenant_slug)).one()
        assert tenant.id is not None
        store = Store(tenant_id=tenant.id, code="raw-insert")
        session.add(store)
        session.flush()
        assert store.id is not None
        gateway = Gateway(tenant_id=tenant.id, store_id=store.id, code="raw")
        session.add(gateway)
        session.flush()
        assert gateway.id is not None
        device = Device(tenant_id=tenant.id, gateway_id=gateway.id, code="scale-1")
        session.add(device)
        session.commit()
        ids = (tenant.id, gateway.id, device.id)
    table = Event.__table__  # type: ignore[attr-defined]
    t0 = time.monotonic()
    for start in range(0, n, chunk):
        now = datetime.now(UTC)
        rows = [
            {"tenant_id": ids[0], "gateway_id": ids[1], "device_id": ids[2], "event_id": str(uuid7()),
             "type": "weight", "seq": i, "session": 1, "ts": now, "received_at": now, "historical": False,
             "data": dict(EVENT_DATA)}
            for i in range(start, min(n, start + chunk))
        ]
        with unit_of_work(sessions) as session:
            session.execute(insert(table), rows)
            session.commit()
    return n / (time.monotonic() - t0)


# ------------------------------------------------------------------ the pipeline


def main(n: int = 50_000, *, prefer_db: str = "postgresql", window: int = WINDOW, producers: int = 1,
         quiet: bool = False) -> dict[str, Any]:
    quiet_logs()
    from sqlalchemy import text

    from cloud.bus.consumer import BusConsumer
    from cloud.config import CloudSettings
    from cloud.db import shared_engine

    out: dict[str, Any] = {"n": n, "producers": producers}
    with private_broker() as broker, fresh_database(prefer_db, "events") as db, \
            tempfile.TemporaryDirectory(prefix="vitrina-bench-gw-") as tmp:
        out["database"] = db.kind
        tenant = f"bench{uuid.uuid4().hex[:6]}"
        root = f"vb{uuid.uuid4().hex[:6]}"
        create_tenant_token(db.url, tenant)
        settings = CloudSettings(database_url=db.url, mqtt_url=broker.url, bus_root=root,
                                 instance_id=f"bench-{uuid.uuid4().hex[:6]}", mqtt_session_expiry_s=300,
                                 redis_url=None)
        consumer = BusConsumer(settings).start()
        engine = shared_engine(db.url)
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_gateway_child, args=(child, broker.url, root, tenant, tmp, n, window, producers),
                           daemon=True)
        try:
            if not consumer.wait_until(lambda s: s["subscribed"] >= 1, 10):
                raise RuntimeError("consumer did not subscribe")
            proc.start()
            if not parent.poll(30):
                raise RuntimeError("gateway process did not start")
            msg = parent.recv()
            if msg[0] != "ready":
                raise RuntimeError(str(msg))
            parent.send("go")
            _, t0, t_appended = parent.recv() if parent.poll(TIMEOUT_S) else ("", 0.0, 0.0)
            if not t0:
                raise RuntimeError("the producer did not finish in time")
            count = 0
            deadline = time.monotonic() + TIMEOUT_S
            with engine.connect() as conn:
                while True:
                    count = int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())
                    conn.rollback()
                    if count >= n or time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
            t1 = time.monotonic()
            if count < n:
                raise RuntimeError(f"only {count} of {n} events reached the database within {TIMEOUT_S:.0f} s")
            parent.send("stop")
            _, gw_stats = parent.recv() if parent.poll(20) else ("", {})
            out.update(
                events_per_s=n / (t1 - t0),
                seconds=t1 - t0,
                append_per_s=n / (t_appended - t0),
                rows=count,
                gateway=gw_stats,
                consumer={k: v for k, v in consumer.stats.items() if k in ("stored", "duplicate", "db_errors",
                                                                            "dropped", "errors", "batches")},
            )
        finally:
            if proc.is_alive():
                proc.join(20)
                if proc.is_alive():
                    proc.terminate()
            consumer.stop()
        payload_size = 250  # an encoded weight event is ~230-260 bytes
        out["paho_per_s"] = paho_rate(broker.url, n, payload_size, window)
        out["insert_per_s"] = insert_rate(db.url, tenant, n)
    out["baseline_per_s"] = min(out["paho_per_s"], out["insert_per_s"])
    out["ratio"] = out["events_per_s"] / out["baseline_per_s"]
    if not quiet:
        report(out)
    return out


def report(r: dict[str, Any]) -> None:
    print(f"events throughput ({r['n']} events, outbox → Mosquitto → consumer → {r['database']}):")
    print(f"  end to end        {r['events_per_s']:8.0f} events/s  ({r['seconds']:.2f} s; target ≥ 5000/s)")
    print(f"  appends alone     {r['append_per_s']:8.0f} events/s  ({r['producers']} producer thread(s),"
          " concurrent with sending)")
    print(f"  baseline paho     {r['paho_per_s']:8.0f} msg/s     (plain QoS 1 publish → subscribe)")
    print(f"  baseline insert   {r['insert_per_s']:8.0f} rows/s    (500 rows per transaction)")
    print(f"  ratio             {r['ratio']:8.2f} × the slower baseline")
    print(f"  gateway {r['gateway']}  consumer {r['consumer']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=WINDOW)
    parser.add_argument("--producers", type=int, default=1, help="producer threads appending at once")
    parser.add_argument("--sqlite", action="store_true", help="use an SQLite file instead of PostgreSQL")
    args = parser.parse_args()
    main(args.n, prefer_db="sqlite" if args.sqlite else "postgresql", window=args.window, producers=args.producers)
