"""Receipts per second of a 5-item sale: cloud command → gateway → Shtrih-M simulator at 115200 baud.

Printed next to the line-rate limit measured in the same run: the bytes that crossed the wire
per receipt (both directions, counted at the simulator) ÷ 11 520 bytes/s (115200 baud, 10 bits a
byte) is the most receipts per second the serial line itself allows; the ratio says how much of
the line the whole path uses. The direct driver (no gateway, no MQTT) on the same line is
printed too, to split the overhead between the register dialogue and the gateway.

The simulator's endpoint paces its answers at the baud rate, and the device model waits the wire
time of every byte the host sends before acting on it, so both directions cost line time.

Run: ``python -m bench.fiscal_receipts [--receipts N] [--mqtt URL]`` (default: the machine's broker
on 127.0.0.1:1883, else an embedded one).
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
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from bench.stats import summary_ms
from drivers.fiscal.shtrih import ShtrihFiscalRegister
from gateway.config import BrokerConfig, DeviceConfig, GatewayConfig, OutboxConfig
from gateway.runtime import Gateway
from protocols.bus import DeviceKind
from protocols.fiscal import Cashier, Item, ItemType, Measure, Payments, Receipt, SettlementSign, VatKind
from simulators.fiscal import ShtrihDevice, SimConfig
from simulators.link import PtyEndpoint

BAUD = 115200
BYTES_PER_S = BAUD / 10
CASHIER = {"name": "Иванова Анна", "inn": "500100732259"}
ITEMS = [
    {"name": "Молоко 3,2% 1л", "quantity": "2", "price": 8990, "vat": "vat10"},
    {"name": "Сыр Российский весовой", "quantity": "0.734", "price": 45990, "vat": "vat10", "measure": 11},
    {"name": "Пакет-майка", "quantity": 1, "price": 700, "vat": "vat_general"},
    {"name": "Хлеб Бородинский", "quantity": 1, "price": 4500, "vat": "vat10"},
    {"name": "Доставка", "quantity": 1, "price": 15000, "vat": "none", "item_type": 4},
]
SALE = {"items": ITEMS, "payments": {"cash": 100_000}, "cashier": CASHIER}


class WireDevice:
    """The simulated register behind a wire: counts bytes both ways, waits for the host's bytes."""

    def __init__(self, device: ShtrihDevice) -> None:
        self.device = device
        self.host_bytes = 0
        self.device_bytes = 0

    def feed(self, data: bytes, now: float) -> bytes:
        time.sleep(len(data) / BYTES_PER_S)  # the bytes are still arriving on the line
        out = self.device.feed(data, now)
        self.host_bytes += len(data)
        self.device_bytes += len(out)
        return out

    @property
    def total(self) -> int:
        return self.host_bytes + self.device_bytes


def _register(tmp: Path, name: str) -> tuple[WireDevice, PtyEndpoint, str]:
    wire = WireDevice(ShtrihDevice(SimConfig(state_file=tmp / f"{name}.json")))
    endpoint = PtyEndpoint(wire, baudrate=BAUD)
    return wire, endpoint, endpoint.start()


def _broker(url: str | None) -> tuple[str, Any]:
    if url:
        return url, None
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=0.5).close()
        return "mqtt://127.0.0.1:1883", None
    except OSError:
        from vitrina.broker import EmbeddedBroker

        broker = EmbeddedBroker(port=0).start()
        return broker.url, broker


class Cloud:
    """A minimal cloud: publishes a command, waits for its final reply (TCP_NODELAY set)."""

    def __init__(self, url: str, prefix: str) -> None:
        parts = urlsplit(url)
        self.prefix = prefix
        self._finals: dict[str, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}")
        connected = threading.Event()
        self.client.on_connect = lambda *a: connected.set()
        self.client.on_message = self._message
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=30)
        self.client.loop_start()
        if not connected.wait(5):
            raise RuntimeError(f"cannot connect to {url}")
        sock = self.client.socket()
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.subscribe(f"{prefix}/reply/+", qos=1)
        time.sleep(0.3)

    def _message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        reply = json.loads(msg.payload)
        if reply["status"] not in ("accepted", "progress"):
            with self._cond:
                self._finals[reply["command_id"]] = reply
                self._cond.notify_all()

    def call(self, device: str, action: str, args: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        cid = uuid.uuid4().hex
        body = {"v": 1, "ts": "2026-01-01T00:00:00Z", "command_id": cid, "args": args}
        self.client.publish(f"{self.prefix}/dev/{device}/cmd/{action}", json.dumps(body), qos=1)
        deadline = time.monotonic() + timeout
        with self._cond:
            while cid not in self._finals:
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                    raise RuntimeError(f"no reply to {action} within {timeout} s")
            return self._finals.pop(cid)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def through_gateway(tmp: Path, url: str, n: int) -> tuple[list[float], float]:
    wire, endpoint, path = _register(tmp, "gw")
    config = GatewayConfig(
        tenant="bench", store="s1", gateway=f"gw{uuid.uuid4().hex[:6]}", bus_root=f"bench{uuid.uuid4().hex[:6]}",
        data_dir=tmp / "gw", heartbeat_s=0, broker=BrokerConfig(url=url),
        outbox=OutboxConfig(require_cloud_online=False),
        devices=[DeviceConfig(id="kkt1", kind=DeviceKind.FISCAL_REGISTER, driver="shtrih", url=path,
                              options={"baudrate": BAUD, "poll_interval_s": 60, "state_file": str(tmp / "att.db")})],
    )
    gw = Gateway(config).start()
    cloud = Cloud(url, config.address.prefix)
    try:
        if not gw.link.wait_connected(10):
            raise RuntimeError("gateway did not connect")
        deadline = time.monotonic() + 10
        while gw.devices.snapshots()["kkt1"].state != "online":
            if time.monotonic() > deadline:
                raise RuntimeError("register did not come online")
            time.sleep(0.05)
        if cloud.call("kkt1", "open_shift", {"cashier": CASHIER})["status"] != "done":
            raise RuntimeError("open_shift failed")
        for _ in range(3):  # warm-up
            cloud.call("kkt1", "sell", SALE)
        before = wire.total
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            reply = cloud.call("kkt1", "sell", SALE)
            samples.append(time.perf_counter() - t0)
            if reply["status"] != "done":
                raise RuntimeError(f"sale failed: {reply}")
        return samples, (wire.total - before) / n
    finally:
        cloud.close()
        gw.stop()
        endpoint.stop()


def direct_driver(tmp: Path, n: int) -> tuple[list[float], float]:
    wire, endpoint, path = _register(tmp, "direct")
    reg = ShtrihFiscalRegister(path, baudrate=BAUD)
    reg.open()
    cashier = Cashier(CASHIER["name"], CASHIER["inn"])
    d = Decimal
    receipt = Receipt(SettlementSign.INCOME, (
        Item("Молоко 3,2% 1л", d(2), d("89.90"), VatKind.REDUCED),
        Item("Сыр Российский весовой", d("0.734"), d("459.90"), VatKind.REDUCED, measure=Measure.KILOGRAM),
        Item("Пакет-майка", d(1), d("7.00"), VatKind.GENERAL),
        Item("Хлеб Бородинский", d(1), d("45.00"), VatKind.REDUCED),
        Item("Доставка", d(1), d("150.00"), VatKind.NONE, item_type=ItemType.SERVICE),
    ), Payments(cash=d("1000.00")), cashier=cashier)  # fmt: skip
    try:
        reg.open_shift(cashier)
        for _ in range(3):
            reg.sell(receipt)
        before = wire.total
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            reg.sell(receipt)
            samples.append(time.perf_counter() - t0)
        return samples, (wire.total - before) / n
    finally:
        reg.close()
        endpoint.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=30)
    parser.add_argument("--mqtt", default=None)
    opts = parser.parse_args()
    url, broker = _broker(opts.mqtt)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fiscal-") as tmp:
            gw_samples, gw_bytes = through_gateway(Path(tmp), url, opts.receipts)
            drv_samples, drv_bytes = direct_driver(Path(tmp), opts.receipts)
    finally:
        if broker is not None:
            broker.stop()
    gw_rate = len(gw_samples) / sum(gw_samples)
    drv_rate = len(drv_samples) / sum(drv_samples)
    gw_limit = BYTES_PER_S / gw_bytes
    drv_limit = BYTES_PER_S / drv_bytes
    g, dr = summary_ms(gw_samples), summary_ms(drv_samples)
    print(f"fiscal receipts, 5-item sale, Shtrih-M simulator on a pty at {BAUD} baud, broker {url}")
    print(f"  through the gateway: {gw_rate:6.2f} receipts/s  (p50 {g['p50']:.1f} ms, p99 {g['p99']:.1f} ms,"
          f" n={len(gw_samples)}); {gw_bytes:.0f} B on the wire per receipt → line limit {gw_limit:.2f}/s;"
          f" ratio {gw_rate / gw_limit:.2f}")
    print(f"  driver alone:        {drv_rate:6.2f} receipts/s  (p50 {dr['p50']:.1f} ms, p99 {dr['p99']:.1f} ms);"
          f" {drv_bytes:.0f} B per receipt → line limit {drv_limit:.2f}/s; ratio {drv_rate / drv_limit:.2f}")
    print(f"  gateway / driver alone: {gw_rate / drv_rate:.2f}"
          f" (extra {gw_bytes - drv_bytes:.0f} B: the FN read before each document, for exactly-once)")


if __name__ == "__main__":
    main()
