"""A selling store for end-to-end tests: the cloud of :mod:`tests.e2e.harness` with a catalog, prices and
stock entered through its API, and a real gateway process whose checkout lane drives the Shtrih-M
simulator (pty, FN in a file) and the UPOS simulator executable (its SQLite ledger is the bank's word),
priced by the list the cloud publishes. Sales are made by the scripted cashier over the page's HTTP API.

Unlike the checkout rig (``tests/gateway/checkout/rig.py``) the outbox here is gated on the cloud's
retained state (``require_cloud_online`` left at its default): a stopped cloud makes the gateway keep
its events in SQLite, exactly as in a store whose back office is down.

Kill tests restart the gateway with :meth:`SellingStore.restart_gateway` (SIGKILL, then a new process,
optionally armed with a crash point of :mod:`gateway.crashpoints`); :meth:`SellingStore.start` and the
rest behave as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from cloud.app import create_app
from cloud.base import utcnow
from cloud.bus.consumer import BusConsumer
from cloud.worker import Periodic, PeriodicRunner
from gateway.crashpoints import ENV as CRASHPOINT_ENV
from simulators.checkout import CashierClient
from simulators.payment.model import PURCHASE, VOID, TerminalModel
from tests.e2e.harness import ROOT, Cloud, GatewayProcess, wait_for
from tests.gateway.checkout.rig import free_port, weight_label
from tests.gateway.fiscal.rig import Register
from tests.gateway.payment.support import sim_command

STORE, GATEWAY, LANE = "store-1", "gw-1", "lane1"
LOGIN, PIN = "ivanova", "1234"
CASHIER_NAME, CASHIER_INN = "Иванова Анна", "500100732259"

MILK = "4601234567893"
BREAD = "4607001234562"
CHEESE_PLU = 123


@dataclass(frozen=True)
class Goods:
    """A product entered in the catalog: its id, till price and the unit cost of the stock received."""

    key: str
    id: int
    price_kop: int
    cost_kop: int  # per piece or per kg


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


class LaneGateway(GatewayProcess):
    """The harness's gateway process with a config written verbatim (lists in device options)."""

    def __init__(self, workdir: Path, text: str) -> None:
        self.workdir = workdir
        self.config_path = workdir / "gateway.toml"
        self.config_path.write_text(text, encoding="utf-8")
        self.log_path = workdir / "gateway.log"
        self.proc = None

    def start_armed(self, crash_point: str | None) -> LaneGateway:
        """Start like :meth:`start`, with ``VITRINA_CRASHPOINT`` set to ``crash_point`` (or unset when None):
        the process ends with status 137 the first time it reaches that point (:mod:`gateway.crashpoints`)."""
        env = {k: v for k, v in os.environ.items() if k != CRASHPOINT_ENV}
        env["PYTHONPATH"] = str(ROOT)
        if crash_point:
            env[CRASHPOINT_ENV] = crash_point
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(self.config_path), "--log-level", "INFO"],
                cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        return self

    def wait_dead(self, timeout: float = 30.0) -> int | None:
        """The exit status once the process has ended (None when none was started); fails after ``timeout``."""
        if self.proc is None:
            return None
        deadline = time.monotonic() + timeout
        while (status := self.proc.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"the gateway (pid {self.proc.pid}) is still running after {timeout:.0f} s")
            time.sleep(0.02)
        return status


class SellingStore:
    """Cloud (consumer + API + the ``cloud.sales.ingest`` poll) and one store with one checkout lane."""

    def __init__(self, tmp: Path, database_url: str, mqtt_url: str, root: str, tenant: str,
                 ingest_every_s: float = 1.0) -> None:
        self.tmp = tmp
        self.ingest_every_s = ingest_every_s
        self.cloud = Cloud(database_url, mqtt_url, root, tenant)
        self.poll: PeriodicRunner | None = None
        self.register = Register(tmp)
        self.terminal_state = tmp / "terminal.db"
        self.terminal = TerminalModel(self.terminal_state)
        (tmp / "upos").mkdir()
        self.port = free_port()
        data = tmp / "gw"
        devices: list[dict[str, Any]] = [
            {"id": "kkt1", "kind": "fiscal_register", "driver": "shtrih", "url": self.register.url,
             "options": {"enq_timeout": 0.3, "attempts": 3, "poll_interval_s": 0.5,
                         "state_file": str(data / "fiscal-kkt1.db")}},
            {"id": "pos1", "kind": "payment_terminal", "driver": "upos", "url": str(tmp / "upos"),
             "options": {"command": sim_command(self.terminal_state), "timeout": 20, "service_timeout": 20,
                         "recovery_wait_s": 20}},
            {"id": LANE, "kind": "lane", "driver": "checkout", "url": "local",
             "options": {"fiscal": "kkt1", "payment": "pos1"}},
        ]
        lines = [
            f"tenant = {_toml(tenant)}", f"store = {_toml(STORE)}", f"gateway = {_toml(GATEWAY)}",
            f"bus_root = {_toml(root)}", f"data_dir = {_toml(str(data))}",
            "[broker]", f"url = {_toml(mqtt_url)}", "keepalive = 2", "reconnect_min_s = 0.2", "reconnect_max_s = 1.0",
            "[checkout]", 'host = "127.0.0.1"', f"port = {self.port}",
            f"cashiers = [{_toml({'login': LOGIN, 'name': CASHIER_NAME, 'inn': CASHIER_INN, 'pin': PIN})}]",
        ]
        for d in devices:
            lines += ["[[devices]]", *(f"{k} = {_toml(v)}" for k, v in d.items())]
        self.gateway = LaneGateway(tmp, "\n".join(lines) + "\n")
        self.goods: dict[str, Goods] = {}
        self.store_id = 0
        self.floor = 0

    # ------------------------------------------------------------ lifecycle

    def start(self) -> SellingStore:
        self.gateway.start()
        wait_for(lambda: (d := self.cloud.device(LANE)) and d["state"] == "online", 30,
                 f"the lane online in the cloud (gateway log: {self.gateway.log()[-2000:]})")
        self.store_id = self.cloud.get("/stores")[0]["id"]
        self._start_poll()
        return self

    def _start_poll(self) -> None:
        self.poll = PeriodicRunner(self.cloud.settings, (
            Periodic("cloud.sales.ingest", self.ingest_every_s, lambda s: {"database_url": s.database_url}),))
        self.poll.start()

    def stop_cloud(self) -> None:
        """The back office goes down: the poll, the API (and its MQTT client), the bus consumer."""
        if self.poll is not None:
            self.poll.stop()
            self.poll = None
        self.cloud.stop()

    def start_cloud(self) -> None:
        """The same cloud instance comes back (same client id: its broker session resumes)."""
        cloud = self.cloud
        cloud.consumer = BusConsumer(cloud.settings).start()
        cloud.client = TestClient(create_app(cloud.settings))
        cloud.client.__enter__()
        cloud.client.headers["Authorization"] = f"Bearer {cloud.token}"
        self._start_poll()

    def kill_gateway(self) -> bool:
        """SIGKILL the gateway process if it runs; True when it was alive (a kill, not a corpse)."""
        alive = self.gateway.alive()
        if self.gateway.proc is not None:
            self.gateway.kill()
        return alive

    def restart_gateway(self, crash_point: str | None = None) -> bool:
        """Kill the gateway (if alive) and start the next life, armed with ``crash_point`` when given; True
        when a live process was killed. Returns at once: :meth:`cashier` waits for the page and the recovery."""
        killed = self.kill_gateway()
        self.gateway.start_armed(crash_point)
        return killed

    def close(self) -> None:
        try:
            self.gateway.stop()
        finally:
            try:
                self.stop_cloud()
            finally:
                self.register.stop()

    # ------------------------------------------------------------ back office

    def stock_the_shelves(self) -> dict[str, Goods]:
        """Milk and bread by barcode, cheese by weight label; 1000 of each on the sales floor at a known cost,
        priced for the store; the price list published to the gateway."""
        api = self.cloud.client
        self.floor = ok(api.post("/api/v1/catalog/warehouses", json={
            "store_id": self.store_id, "code": "floor", "name": "Торговый зал", "kind": "sales_floor"}), 201)["id"]
        specs = [
            ("milk", {"sku": "MILK", "name": "Молоко 3,2% 1 л", "vat_kind": "reduced"}, MILK, 8990, "52.40"),
            ("bread", {"sku": "BREAD", "name": "Хлеб Бородинский", "vat_kind": "reduced"}, BREAD, 4500, "21.30"),
            ("cheese", {"sku": "CHEESE", "name": "Сыр Российский весовой", "vat_kind": "reduced", "base_unit": "kg",
                        "weighed": True, "plu": CHEESE_PLU}, None, 45990, "312.00"),
        ]
        lines = []
        for key, body, barcode, price_kop, cost in specs:
            pid = ok(api.post("/api/v1/catalog/products", json=body), 201)["id"]
            if barcode:
                ok(api.post(f"/api/v1/catalog/products/{pid}/barcodes", json={"code": barcode}), 201)
            ok(api.post("/api/v1/catalog/prices", json={
                "store_id": self.store_id, "product_id": pid, "price": f"{price_kop / 100:.2f}",
                "valid_from": (utcnow() - timedelta(days=1)).isoformat()}), 201)
            self.goods[key] = Goods(key, pid, price_kop, int(cost.replace(".", "")))
            lines.append({"product_id": pid, "quantity": "1000", "amount": f"{int(cost.replace('.', '')) * 10:.2f}"})
        receipt = ok(api.post("/api/v1/inventory/receipts", json={
            "store_id": self.store_id, "warehouse_id": self.floor, "supplier": "ООО Поставщик",
            "posted_at": (utcnow() - timedelta(hours=1)).isoformat(), "lines": lines}), 201)
        ok(api.post(f"/api/v1/inventory/documents/{receipt['id']}/post"))
        published = ok(api.post(f"/api/v1/catalog/stores/{self.store_id}/publish"))
        assert published["items"] == 3 and published["skipped"] == [], published
        assert [g["status"] for g in published["gateways"]] == ["published"], published
        return self.goods

    def cashier(self) -> CashierClient:
        """A logged-in cashier at the lane once it has the cloud's price list, with the shift open."""
        client = CashierClient(f"http://127.0.0.1:{self.port}", LANE)
        client.wait_up(alive=self.gateway.alive)
        client.login(LOGIN, PIN)
        client.wait_ready()
        wait_for(lambda: client.view()["prices_version"] >= 1, 15, "the published price list at the lane")
        if client.view()["shift"]["state"] != "open":
            client.open_shift()
        return client

    def barcodes(self) -> list[str]:
        """What the cashier scans: milk, bread, and cheese weight labels of a few weights."""
        return [MILK, BREAD, weight_label(CHEESE_PLU, 734), weight_label(CHEESE_PLU, 250)]

    # ------------------------------------------------------------ reading back

    def _every(self, path: str, limit: int, items_key: str | None = "items", **params: Any) -> list[dict[str, Any]]:
        """Every row of a paged list endpoint (``limit``/``offset``), read to the end."""
        rows: list[dict[str, Any]] = []
        while True:
            body = self.cloud.get(path, limit=limit, offset=len(rows), **params)
            page = body[items_key] if items_key else body
            rows += page
            if len(page) < limit:
                return rows

    def sales(self) -> list[dict[str, Any]]:
        return self._every("/sales", 1000)

    def lane_events(self, event_type: str) -> list[dict[str, Any]]:
        return self._every("/events", 500, type=event_type)

    def sale_movements(self, goods: Goods) -> list[dict[str, Any]]:
        return [m for m in self.all_movements(goods) if m["doc_type"] == "sale" and not m["cancelled"]]

    def purchases(self) -> list[Any]:
        return [e for e in self.terminal.ledger() if e.kind == PURCHASE]

    def voids(self) -> list[Any]:
        return [e for e in self.terminal.ledger() if e.kind == VOID]

    def all_movements(self, goods: Goods) -> list[dict[str, Any]]:
        """Every ledger row of ``goods`` on the sales floor (all document types, cancelled ones included)."""
        return self._every(f"/inventory/products/{goods.id}/movements", 1000, items_key=None, warehouse_id=self.floor)
