"""Checkout test rig: a real Shtrih-M simulator (pty, FN in a file), the UPOS simulator executable
(its SQLite ledger is the bank's word on money moved), an MT-SICS scale simulator, a serial scanner
(pty) and an ESC/POS receipt printer (TCP; its paper is the word on what printed), the real broker,
and the gateway either in-process or as a ``python -m gateway run`` subprocess killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.checkout.saga import (
    CRASH_AFTER_CHARGE,
    CRASH_AFTER_CHARGE_SAVED,
    CRASH_AFTER_LINES,
    CRASH_AFTER_RECEIPT,
    CRASH_BEFORE_REPLY,
)
from gateway.devices.fiscal import const as fiscal
from gateway.devices.payment import const as payment
from protocols.barcodes import WeightBarcode, WeightBarcodeFormat, ean13, encode_weight_barcode
from protocols.bus import GatewayAddress, encode
from protocols.bus.sales import PriceItem, PriceList, pricelist_topic
from protocols.scanner import LineFraming
from simulators.checkout import CashierClient
from simulators.payment.model import PURCHASE, VOID, TerminalModel
from simulators.printer.device import ReceiptPrinterConfig, ReceiptPrinterSimulator
from simulators.scale.mtsics import MtSicsConfig, MtSicsSimulator
from simulators.scanner import ScannerConfig, ScannerSimulator
from tests.gateway.fiscal.rig import Register
from tests.gateway.payment.support import sim_command
from tests.gateway.support import BusWatcher, Message, wait_until

# Every crash point of a sale: the saga's, then the payment and fiscal families'. Kill campaigns pick from these.
CAMPAIGN_POINTS = [
    CRASH_AFTER_LINES, CRASH_AFTER_CHARGE, CRASH_AFTER_CHARGE_SAVED, CRASH_AFTER_RECEIPT, CRASH_BEFORE_REPLY,
    payment.CRASH_BEFORE_TERMINAL, payment.CRASH_AFTER_TERMINAL, payment.CRASH_BEFORE_REPLY,
    fiscal.CRASH_BEFORE_OPEN, fiscal.CRASH_AFTER_ITEMS, fiscal.CRASH_AFTER_CLOSE, fiscal.CRASH_BEFORE_REPLY,
]

ROOT = Path(__file__).resolve().parents[3]
LANE = "lane1"
SCANNER = "scan1"
PRINTER = "rp1"
LOGIN, PIN = "ivanova", "1234"
CASHIER_NAME, CASHIER_INN = "Иванова Анна", "500100732259"

MILK = "4601234567893"  # 89.90, vat10
BREAD = "4607001234562"  # 45.00, vat10
WATER_GTIN = "04600000000015"
CHEESE_PLU = 123  # 459.90 / kg
BAG = ean13("460000000099")  # 7.00, vat_general
PRICES = {"milk": 8990, "bread": 4500, "bag": 700, "cheese": 45990, "water": 5900}


def price_list(version: int = 1, **changes: int) -> PriceList:
    p = {**PRICES, **changes}
    return PriceList(version=version, items=(
        PriceItem(product_id="milk", name="Молоко 3,2% 1 л", price=p["milk"], vat="vat10", barcodes=(MILK,)),
        PriceItem(product_id="bread", name="Хлеб Бородинский", price=p["bread"], vat="vat10", barcodes=(BREAD,)),
        PriceItem(product_id="bag", name="Пакет-майка", price=p["bag"], vat="vat_general", barcodes=(BAG,)),
        PriceItem(product_id="cheese", name="Сыр Российский весовой", price=p["cheese"], vat="vat10",
                  measure="kg", plu=CHEESE_PLU),
        PriceItem(product_id="water", name="Вода питьевая 0,5 л", price=p["water"], vat="vat_general",
                  barcodes=(WATER_GTIN,), marked=True),
    ))


def weight_label(plu: int, grams: int) -> str:
    return encode_weight_barcode(WeightBarcode("22", plu, grams), WeightBarcodeFormat())


def marking(serial: str) -> str:
    return f"01{WATER_GTIN}21{serial}\x1d93AbCd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


class Store:
    """Simulated devices of one checkout lane and the gateway config that binds them."""

    def __init__(self, tmp: Path, mqtt_url: str, root: str, tenant: str, *, scale: bool = False,
                 peripherals: bool = False) -> None:
        self.tmp = tmp
        self.register = Register(tmp)
        self.terminal_state = tmp / "terminal.db"
        self.terminal = TerminalModel(self.terminal_state)
        self.terminal_dir = tmp / "upos"
        self.terminal_dir.mkdir()
        self.scale: MtSicsSimulator | None = None
        self.scanner: ScannerSimulator | None = None
        self.printer: ReceiptPrinterSimulator | None = None
        self.port = free_port()
        self.address = GatewayAddress(tenant, "s1", "gwc", root)
        self.mqtt_url = mqtt_url
        self.root = root
        self.data = tmp / "gw"
        devices: list[dict[str, Any]] = [
            {"id": "kkt1", "kind": "fiscal_register", "driver": "shtrih", "url": self.register.url,
             "options": {"enq_timeout": 0.3, "attempts": 3, "poll_interval_s": 0.5,
                         "state_file": str(self.data / "fiscal-kkt1.db")}},
            {"id": "pos1", "kind": "payment_terminal", "driver": "upos", "url": str(self.terminal_dir),
             "options": {"command": sim_command(self.terminal_state), "timeout": 20, "service_timeout": 20,
                         "recovery_wait_s": 20}},
        ]
        lane_options = {"fiscal": "kkt1", "payment": "pos1"}
        if scale:
            self.scale = MtSicsSimulator(MtSicsConfig(initial_weight=Decimal("0.000"), unstable_after_change=0.05))
            devices.append({"id": "scale1", "kind": "scale", "driver": "mtsics", "url": self.scale.serve_pty(),
                            "options": {"poll_interval_s": 0.2, "timeout": 1.0}})
            lane_options["scale"] = "scale1"
        if peripherals:  # a serial scanner as programmed in stores (STX … CRLF, AIM, GS as <GS>) and a printer
            framing = {"prefix": "STX", "suffix": "CRLF", "aim": True, "gs_substitute": "<GS>"}
            self.scanner = ScannerSimulator(ScannerConfig(framing=LineFraming.from_names(**framing)))
            devices.append({"id": SCANNER, "kind": "scanner", "driver": "serial", "url": self.scanner.serve_pty(),
                            "options": {**framing, "read_timeout_s": 0.1}})
            self.printer = ReceiptPrinterSimulator(ReceiptPrinterConfig(width=48, out_dir=tmp / "paper"))
            host, port = self.printer.serve_tcp(0)
            devices.append({"id": PRINTER, "kind": "receipt_printer", "driver": "escpos",
                            "url": f"tcp://{host}:{port}",
                            "options": {"poll_interval_s": 0.2, "settle": 0.1, "timeout": 1.0, "width": 48}})
            lane_options.update(scanner=SCANNER, printer=PRINTER)
        devices.append({"id": LANE, "kind": "lane", "driver": "checkout", "url": "local", "options": lane_options})
        self.config = tmp / "gateway.toml"
        lines = [
            f'tenant = "{tenant}"', 'store = "s1"', 'gateway = "gwc"', f'bus_root = "{root}"',
            f"data_dir = {json.dumps(str(self.data))}", "heartbeat_s = 0",
            "[broker]", f'url = "{mqtt_url}"', "keepalive = 5", "reconnect_min_s = 0.1", "reconnect_max_s = 0.5",
            "[outbox]", "require_cloud_online = false",
            "[checkout]", 'host = "127.0.0.1"', f"port = {self.port}",
            f"cashiers = [{_toml({'login': LOGIN, 'name': CASHIER_NAME, 'inn': CASHIER_INN, 'pin': PIN})}]",
        ]
        for d in devices:
            lines += ["[[devices]]", *(f"{k} = {_toml(v)}" for k, v in d.items())]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.watcher = BusWatcher(mqtt_url, [f"{self.address.prefix}/#"])
        self.watcher.publish(pricelist_topic(self.address), encode(price_list()), retain=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cashier(self, proc: GatewayProcess | None = None) -> CashierClient:
        """A logged-in cashier once the gateway serves the page and its lane has recovered."""
        client = CashierClient(self.url, LANE)
        client.wait_up(alive=(lambda: proc.proc.poll() is None) if proc is not None else None)
        client.login(LOGIN, PIN)
        client.wait_ready()
        wait_until(lambda: client.view()["prices_version"] >= 1, timeout=10)
        return client

    # Ground truth -----------------------------------------------------------------------------
    def charges(self, order: str) -> list[Any]:
        return self.terminal.charges(order)

    def voids(self, order: str) -> list[Any]:
        return [e for e in self.terminal.ledger() if e.kind == VOID and e.order == order]

    def purchases(self) -> list[Any]:
        return [e for e in self.terminal.ledger() if e.kind == PURCHASE]

    def receipts(self) -> list[Any]:
        return self.register.receipts()

    def paper(self) -> list[str]:
        """The text of every document the receipt printer cut, in order."""
        assert self.printer is not None
        return [d.text for d in self.printer.documents]

    def events(self, event_type: str) -> list[dict[str, Any]]:
        topic = self.address.event(LANE, event_type)
        return [m.json() for m in self.watcher.matching(lambda m: m.topic == topic)]

    def wait_event(self, event_type: str, key: str, value: str, timeout: float = 15.0) -> dict[str, Any]:
        topic = self.address.event(LANE, event_type)

        def match(m: Message) -> bool:
            return m.topic == topic and m.json()["data"].get(key) == value

        return self.watcher.wait_for(match, timeout=timeout).json()

    def stop(self) -> None:
        self.watcher.publish(pricelist_topic(self.address), b"", retain=True)
        self.watcher.close()
        self.register.stop()
        if self.scale is not None:
            self.scale.stop()
        if self.scanner is not None:
            self.scanner.stop()
        if self.printer is not None:
            self.printer.stop()


class GatewayProcess:
    """``python -m gateway run`` as a child that tests kill with SIGKILL (or a crash point)."""

    def __init__(self, store: Store, crash_point: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "VITRINA_CRASHPOINT"}
        if crash_point:
            env["VITRINA_CRASHPOINT"] = crash_point
        self.log = store.tmp / "gateway.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(store.config), "--log-level", "WARNING"],
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


def running(store: Store, crash_point: str | None = None) -> Iterator[GatewayProcess]:
    proc = GatewayProcess(store, crash_point)
    try:
        yield proc
    finally:
        proc.stop()


def wait_dead(proc: GatewayProcess, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while proc.proc.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError("the gateway did not die at its crash point")
        time.sleep(0.02)
    return int(proc.proc.returncode)
