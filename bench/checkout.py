"""Checkout: sales per second at a lane, sales ingested per second in the cloud, and a shift close.

Three figures, each printed next to a baseline measured in the same run (a ratio):

1. **Lane sales/s.** ``n`` card sales of 3 lines through a real gateway process (``python -m gateway
   run``, as in production): the scripted cashier (``simulators.checkout``, the cashier page's HTTP
   API) scans 3 EANs and pays by card; the lane saga charges through the UPOS simulator executable
   (``sb_pilot``, latency 0), prints the receipt on the Shtrih-M simulator (a pty, the FN in memory:
   no file to fsync, an instant register) and stores ``sale_completed`` in the outbox. Timed from the
   first scan to the last sale's event *on the broker*. Baseline: the same number of 3-line receipts
   made directly with ``drivers.fiscal.shtrih`` against the same simulator (gateway stopped). The
   saga's own step timestamps (``checkout.db`` ``steps``) split a sale into lines / card / receipt /
   outbox, so the ratio is explained in the same run.
2. **Cloud ingestion sales/s** (PostgreSQL, a fresh database of its own, dropped at the end): ``n``
   5-line ``SaleCompleted`` payloads (built with the contract's own model, for catalog products with
   stock on the sales floor) stored as rows of ``events`` the way the bus consumer stores them, then
   :func:`cloud.sales.ingest.ingest` (sales, lines, payments, every line posted off the sales-floor
   ledger at cost). Target ≥ 1000 sales/s. Baseline: a raw INSERT of the same ``sales`` +
   ``sale_lines`` + ``sale_payments`` rows (prepared beforehand, 500 sales per transaction, no ledger
   posting), into the same tables, truncated before the ingestion runs. The SQL statements the
   ingestion sends are counted too: a page of sales takes the same few whatever its size (the page
   fast path, :mod:`cloud.sales.bulk`), where applying events one by one took ~27 a sale.
3. **Shift close with 1,000 receipts.** The lane's ``close_shift`` (over the cashier API: Z report on
   the register, reconciliation on the terminal, the totals comparison over every sale of the shift)
   with 1,000 completed sales in its ``checkout.db``. Target < 1 s (the anchor: Odoo's POS took 766 s
   to close a session of 381 orders before their fix). The sales are **seeded**, not sold (1,000
   sales through the saga would take minutes): 2 real cash sales through the saga, then the gateway
   is stopped, 998 receipts of the same content are made with the driver on the same register (so
   the FN holds exactly 1,000 receipts of the shift and the comparison must find no difference), and
   998 copies of the first real sale's ``ops`` row and ``steps`` (the exact shape the saga writes,
   each with its own id and its own FN document) are inserted into ``checkout.db``; the gateway is
   started again. Baseline: the Z report alone through the driver, on a copy of the same FN state.

``python -m bench.checkout [--quick] [--sales N] [--ingest N]`` (bounded to about 2 minutes).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import gc
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import fresh_database, private_broker, quiet_logs
from bench.stats import summary_ms

TARGET_INGEST_PER_S = 1000.0
TARGET_CLOSE_S = 1.0
ODOO_ANCHOR = "Odoo POS: 766 s to close a session of 381 orders before their fix"
SHIFT_RECEIPTS = 1000
REAL_IN_SHIFT = 2


# ------------------------------------------------------------------ the lane (gateway side)


class _LaneRig:
    """One checkout lane: the Shtrih-M simulator (pty, FN in memory), the UPOS simulator executable
    (latency 0), a gateway config (``python -m gateway run``) and a bus watcher that publishes the
    price list and sees the lane's events. Mirrors ``tests.gateway.checkout.rig.Store``."""

    def __init__(self, tmp: Path, mqtt_url: str, root: str, tenant: str) -> None:
        from protocols.bus import GatewayAddress, encode
        from protocols.bus.sales import pricelist_topic
        from simulators.fiscal import ShtrihDevice, SimConfig
        from simulators.link import PtyEndpoint
        from simulators.payment.model import TerminalModel
        from tests.gateway.checkout.rig import (
            CASHIER_INN,
            CASHIER_NAME,
            LANE,
            LOGIN,
            PIN,
            _toml,
            free_port,
            price_list,
        )
        from tests.gateway.payment.support import sim_command
        from tests.gateway.support import BusWatcher

        self.tmp = tmp
        self.lane = LANE
        self.device = ShtrihDevice(SimConfig())  # the FN in memory: no state file written per document
        self.endpoint = PtyEndpoint(self.device)
        self.fiscal_url = self.endpoint.start()
        self.terminal = TerminalModel(tmp / "terminal.db")  # default rules: approve, latency 0
        (tmp / "upos").mkdir()
        self.port = free_port()
        self.address = GatewayAddress(tenant, "s1", "gwc", root)
        self.data = tmp / "gw"
        devices: list[dict[str, Any]] = [
            {"id": "kkt1", "kind": "fiscal_register", "driver": "shtrih", "url": self.fiscal_url,
             "options": {"enq_timeout": 0.3, "attempts": 3, "poll_interval_s": 5.0,
                         "state_file": str(self.data / "fiscal-kkt1.db")}},
            {"id": "pos1", "kind": "payment_terminal", "driver": "upos", "url": str(tmp / "upos"),
             "options": {"command": sim_command(tmp / "terminal.db"), "timeout": 20, "service_timeout": 20,
                         "recovery_wait_s": 20}},
            {"id": LANE, "kind": "lane", "driver": "checkout", "url": "local",
             "options": {"fiscal": "kkt1", "payment": "pos1"}},
        ]
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
        self.login, self.pin = LOGIN, PIN
        self.cashier_doc = {"name": CASHIER_NAME, "inn": CASHIER_INN}
        self._pricelist = pricelist_topic(self.address)
        self.watcher = BusWatcher(mqtt_url, [f"{self.address.prefix}/#"])
        self.watcher.publish(self._pricelist, encode(price_list()), retain=True)

    def cashier(self, proc: Any) -> Any:
        from simulators.checkout import CashierClient

        client = CashierClient(f"http://127.0.0.1:{self.port}", self.lane)
        client.wait_up(alive=lambda: proc.proc.poll() is None)
        client.login(self.login, self.pin)
        client.wait_ready()
        deadline = time.monotonic() + 15
        while client.view()["prices_version"] < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("the lane never got the price list")
            time.sleep(0.05)
        return client

    def wait_event(self, event_type: str, key: str, value: str, timeout: float = 20.0) -> None:
        topic = self.address.event(self.lane, event_type)
        self.watcher.wait_for(lambda m: m.topic == topic and m.json()["data"].get(key) == value, timeout=timeout)

    def driver(self) -> Any:
        from drivers.fiscal.shtrih import ShtrihFiscalRegister

        reg = ShtrihFiscalRegister(self.fiscal_url, enq_timeout=0.3, attempts=3)
        reg.open()
        return reg

    def stop(self) -> None:
        self.watcher.publish(self._pricelist, b"", retain=True)
        self.watcher.close()
        self.endpoint.stop()


def _gateway(rig: _LaneRig) -> Any:
    from tests.gateway.checkout.rig import GatewayProcess

    return GatewayProcess(rig)  # type: ignore[arg-type]  # it needs .tmp and .config only


def _basket() -> list[str]:
    from tests.gateway.checkout.rig import BAG, BREAD, MILK

    return [MILK, BREAD, BAG]


def _sell(client: Any, *, card: bool) -> dict[str, Any]:
    sale: dict[str, Any] = {}
    for code in _basket():
        sale = client.scan(code)
    done: dict[str, Any] = client.pay(card=sale["total"]) if card else client.pay(cash=sale["total"])
    if done["state"] != "completed":
        raise RuntimeError(f"sale ended {done['state']}: {done.get('problem')}")
    return done


def _steps(db: Path, op_ids: list[str]) -> dict[str, list[tuple[str, float]]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out: dict[str, list[tuple[str, float]]] = {i: [] for i in op_ids}
        for op_id, step, at in conn.execute("SELECT op_id, step, at FROM steps ORDER BY n"):
            if op_id in out:
                out[op_id].append((step, float(at)))
        return out
    finally:
        conn.close()


def _phases(steps: dict[str, list[tuple[str, float]]]) -> dict[str, float]:
    """Median ms per phase of a sale, from the saga's own step timestamps."""
    parts: dict[str, list[float]] = {"lines": [], "card": [], "receipt": [], "outbox": [], "saga_total": []}
    for history in steps.values():
        at = {name: t for name, t in history}  # the last of each name
        first = history[0][1]
        parts["lines"].append(at["add_line"] - first)
        parts["card"].append(at["charged"] - at["pay"])
        parts["receipt"].append(at["fiscalized"] - at["fiscalize"])
        parts["outbox"].append(at["event_stored"] - at["fiscalized"])
        parts["saga_total"].append(at["event_stored"] - first)
    return {k: 1000 * statistics.median(v) for k, v in parts.items() if v}


def lane_sales(broker_url: str, n: int) -> dict[str, Any]:
    """Figure 1: card sales/s through the gateway vs the same receipts with the driver alone."""
    from protocols.fiscal import Cashier
    from simulators.payment.model import PURCHASE

    out: dict[str, Any] = {"n": n}
    with tempfile.TemporaryDirectory(prefix="vitrina-bench-lane-") as tmp_name:
        rig = _LaneRig(Path(tmp_name), broker_url, f"vb{uuid.uuid4().hex[:6]}", f"bench{uuid.uuid4().hex[:6]}")
        proc = _gateway(rig)
        try:
            client = rig.cashier(proc)
            client.open_shift()
            for _ in range(2):  # warm-up (imports, connections, the terminal's first run)
                _sell(client, card=True)
            samples: list[float] = []
            ids: list[str] = []
            t0 = time.perf_counter()
            for _ in range(n):
                s0 = time.perf_counter()
                done = _sell(client, card=True)
                samples.append(time.perf_counter() - s0)
                ids.append(done["sale_id"])
            rig.wait_event("sale_completed", "sale_id", ids[-1])
            elapsed = time.perf_counter() - t0
            client.close()
        finally:
            proc.stop()
        charged = sum(1 for e in rig.terminal.ledger() if e.kind == PURCHASE)
        if charged != n + 2:
            raise RuntimeError(f"the terminal charged {charged} times for {n + 2} card sales")
        out.update(sales_per_s=n / elapsed, seconds=elapsed, sale=summary_ms(samples),
                   phases=_phases(_steps(rig.data / "checkout.db", ids)))
        # Baseline: the same receipts, the driver alone on the same register (gateway stopped).
        receipt = _lane_receipt(rig.data / "checkout.db", ids[0])
        reg = rig.driver()
        try:
            for _ in range(2):
                reg.sell(receipt)
            drv: list[float] = []
            t0 = time.perf_counter()
            for _ in range(n):
                s0 = time.perf_counter()
                reg.sell(receipt)
                drv.append(time.perf_counter() - s0)
            out["driver_per_s"] = n / (time.perf_counter() - t0)
            out["driver"] = summary_ms(drv)
            reg.close_shift(Cashier(rig.cashier_doc["name"], rig.cashier_doc["inn"]))
        finally:
            reg.close()
            rig.stop()
    out["ratio"] = out["sales_per_s"] / out["driver_per_s"]
    return out


def _lane_receipt(db: Path, sale_id: str) -> Any:
    """The exact receipt the saga sent to the register for ``sale_id`` (its ``doc.receipt``)."""
    from gateway.devices.fiscal.actions import SellArgs

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (doc,) = conn.execute("SELECT doc FROM ops WHERE id = ?", (sale_id,)).fetchone()
    finally:
        conn.close()
    return SellArgs.model_validate(json.loads(doc)["receipt"]).build()


# ------------------------------------------------------------------ figure 3: shift close


def _seed(db: Path, template_id: str, docs: list[tuple[Any, Any]]) -> int:
    """Copies of the completed sale ``template_id`` (its ops row and its steps), one per FN document."""
    from gateway.devices.fiscal.actions import document_json
    from protocols.bus import uuid7

    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT lane, kind, state, doc, shift_id, created_at, updated_at FROM ops WHERE id = ?",
                           (template_id,)).fetchone()
        lane, kind, state, doc_text, shift_id, created, updated = row
        steps = conn.execute("SELECT step, state, data, at FROM steps WHERE op_id = ? ORDER BY n",
                             (template_id,)).fetchall()
        template = json.loads(doc_text)
        start = max(float(conn.execute("SELECT max(updated_at) FROM ops").fetchone()[0]), float(updated))
        ops_rows, step_rows = [], []
        for i, (fdoc, receipt) in enumerate(docs, start=1):
            op_id = uuid7().hex
            shift = start + i * 0.01 - float(created)  # each copy later than everything real
            fiscal = document_json(fdoc, receipt)
            d = copy.deepcopy(template)
            d["fiscal"] = fiscal
            ops_rows.append((op_id, lane, kind, state, json.dumps(d, ensure_ascii=False), shift_id, 0,
                             float(created) + shift, float(updated) + shift))
            for step, st, data, at in steps:
                payload = json.loads(data)
                if step == "fiscalized":
                    payload = {"fd_number": fiscal["fd_number"]}
                step_rows.append((op_id, step, st, json.dumps(payload, ensure_ascii=False), float(at) + shift))
        with conn:
            conn.executemany("INSERT INTO ops (id, lane, kind, state, doc, shift_id, event_pending, created_at,"
                             " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", ops_rows)
            conn.executemany("INSERT INTO steps (op_id, step, state, data, at) VALUES (?, ?, ?, ?, ?)", step_rows)
        return len(ops_rows)
    finally:
        conn.close()


def shift_close(broker_url: str, receipts: int = SHIFT_RECEIPTS) -> dict[str, Any]:
    """Figure 3: ``close_shift`` with ``receipts`` completed sales vs the Z report alone."""
    from protocols.fiscal import Cashier
    from simulators.fiscal import ShtrihDevice, SimConfig
    from simulators.link import PtyEndpoint

    out: dict[str, Any] = {"receipts": receipts}
    with tempfile.TemporaryDirectory(prefix="vitrina-bench-close-") as tmp_name:
        rig = _LaneRig(Path(tmp_name), broker_url, f"vb{uuid.uuid4().hex[:6]}", f"bench{uuid.uuid4().hex[:6]}")
        db = rig.data / "checkout.db"
        try:
            proc = _gateway(rig)
            try:
                client = rig.cashier(proc)
                client.open_shift()
                real = [_sell(client, card=False)["sale_id"] for _ in range(REAL_IN_SHIFT)]
                client.close()
            finally:
                proc.stop()
            receipt = _lane_receipt(db, real[0])
            t0 = time.perf_counter()
            reg = rig.driver()
            try:
                docs = [(reg.sell(receipt), receipt) for _ in range(receipts - REAL_IN_SHIFT)]
            finally:
                reg.close()
            out["seeded"] = _seed(db, real[0], docs)
            out["seed_s"] = time.perf_counter() - t0
            fn_copy = copy.deepcopy(rig.device.fn)  # the FN as the close will find it, for the baseline

            proc = _gateway(rig)
            try:
                client = rig.cashier(proc)
                t0 = time.perf_counter()
                closed = client.close_shift()
                out["close_s"] = time.perf_counter() - t0
                client.close()
            finally:
                proc.stop()
            out["fiscal_receipts"] = closed.get("fiscal_receipts")
            out["fn_receipts"] = closed.get("fn_receipts")
            out["differences"] = [d.get("message") for d in closed.get("differences", [])]
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                op_id = conn.execute("SELECT id FROM ops WHERE kind = 'shift_close'").fetchone()[0]
            finally:
                conn.close()
            at = dict(_steps(db, [op_id])[op_id])
            out["phases"] = {"z_report": at["z_report"] - at["close_shift"],
                             "reconcile": at["reconciled"] - at["z_report"],
                             "totals": at["closed"] - at["reconciled"],
                             "event": at["event_stored"] - at["closed"]}
        finally:
            rig.stop()
        # Baseline: the Z report alone through the driver on copies of the same FN (median of 3).
        zs: list[float] = []
        cashier = Cashier(rig.cashier_doc["name"], rig.cashier_doc["inn"])
        for _ in range(3):
            device = ShtrihDevice(SimConfig())
            device.fn = copy.deepcopy(fn_copy)
            endpoint = PtyEndpoint(device)
            url = endpoint.start()
            from drivers.fiscal.shtrih import ShtrihFiscalRegister

            reg = ShtrihFiscalRegister(url, enq_timeout=0.3, attempts=3)
            reg.open()
            try:
                reg.status()  # the link is up before the clock starts
                t0 = time.perf_counter()
                reg.close_shift(cashier)
                zs.append(time.perf_counter() - t0)
            finally:
                reg.close()
                endpoint.stop()
        out["z_alone_s"] = statistics.median(zs)
    out["ratio"] = out["close_s"] / out["z_alone_s"]
    return out


# ------------------------------------------------------------------ figure 2: cloud ingestion

LINES_PER_SALE = 5


def _cloud_world(url: str, n: int) -> dict[str, Any]:
    """A tenant, a store with a sales floor, 5 products with stock for ``n`` sales, a lane device."""
    from sqlmodel import select

    from bench.common import create_tenant_token
    from cloud.db import session_factory, shared_engine, unit_of_work
    from cloud.registry.models import Device, Gateway
    from cloud.tenancy.models import Tenant
    from tests.cloud.inventory.helpers import at, make_world

    slug = f"bench{uuid.uuid4().hex[:6]}"
    create_tenant_token(url, slug)
    sessions = session_factory(shared_engine(url))
    with unit_of_work(sessions) as s:
        tenant_id = s.exec(select(Tenant.id).where(Tenant.slug == slug)).one()
    world = make_world(sessions, tenant_id)
    products = []
    for k in range(LINES_PER_SALE):
        pid = world.product(f"P{k}", name=f"Товар {k}")
        world.receipt(pid, str(2 * n + 10), f"{(2 * n + 10) * 40}.00", at(0), warehouse=world.floor)
        products.append(pid)
    with unit_of_work(sessions) as s:
        gw = Gateway(tenant_id=tenant_id, store_id=world.store, code="gw1", online=True, status="online")
        s.add(gw)
        s.flush()
        dev = Device(tenant_id=tenant_id, gateway_id=gw.id or 0, code="lane1", kind="lane", driver="checkout",
                     present=True)
        s.add(dev)
        s.commit()
        return {"sessions": sessions, "tenant": tenant_id, "store": world.store, "gateway": gw.id, "device": dev.id,
                "products": products, "t0": at(1)}


def _payloads(w: dict[str, Any], n: int) -> list[dict[str, Any]]:
    from protocols.bus import sales as bus

    out = []
    cashier = bus.Cashier(name="Иванова Анна", inn="500100732259")
    for i in range(n):
        when = w["t0"] + dt.timedelta(seconds=i)
        lines = tuple(
            bus.SaleLine(line_no=k + 1, product_id=str(p), name=f"Товар {k}", quantity=str(1 + k % 2), measure="piece",
                         price=4990 + 100 * k, amount=(4990 + 100 * k) * (1 + k % 2), vat="vat10", vat_rate="НДС 10%")
            for k, p in enumerate(w["products"]))
        total = sum(ln.amount for ln in lines)
        sale = bus.SaleCompleted(
            sale_id=uuid.uuid4().hex, lane="lane1", shift_id="sh-bench", cashier=cashier, lines=lines,
            payments=(bus.SalePayment(type="card", amount=total, operation_id=f"op{i}", rrn=f"{i:012d}",
                                      auth_code="A1B2C3", card_mask="2200********1234"),),
            total=total, change=0,
            fiscal=bus.FiscalData(fd_number=i + 2, fiscal_sign=3_000_000_000 + i, fn_number="7281440500000001",
                                  shift_number=1, receipt_number=i + 1, issued_at=when),
            opened_at=when - dt.timedelta(seconds=40), completed_at=when)
        out.append(sale.model_dump(mode="json"))
    return out


def _store_events(w: dict[str, Any], payloads: list[dict[str, Any]]) -> None:
    from sqlalchemy import insert

    from cloud.db import unit_of_work
    from cloud.registry.models import Event
    from protocols.bus import uuid7

    table = Event.__table__  # type: ignore[attr-defined]
    received = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=120)
    for start in range(0, len(payloads), 1000):
        rows = [{"tenant_id": w["tenant"], "gateway_id": w["gateway"], "device_id": w["device"],
                 "event_id": str(uuid7()), "type": "sale_completed", "seq": start + i + 1, "session": 1,
                 "ts": received, "received_at": received, "historical": False, "data": p}
                for i, p in enumerate(payloads[start:start + 1000])]
        with unit_of_work(w["sessions"]) as session:
            session.execute(insert(table), rows)
            session.commit()


def _raw_rows(w: dict[str, Any], payloads: list[dict[str, Any]], event_pks: list[int]) -> list[Any]:
    from cloud.catalog.units import to_milli
    from protocols.bus import sales as bus

    rows = []
    for p, event_pk in zip(payloads, event_pks, strict=True):
        d = bus.SaleCompleted.model_validate(p)
        f = d.fiscal
        sale = {"tenant_id": w["tenant"], "store_id": w["store"], "device_id": w["device"], "lane": d.lane,
                "sale_id": d.sale_id, "event_id": event_pk, "shift_id": d.shift_id, "cashier": d.cashier.name,
                "cashier_inn": d.cashier.inn, "status": "completed", "origin": d.origin, "order_id": d.order_id,
                "total_kop": d.total, "change_kop": d.change, "returned_kop": 0, "fd_number": f.fd_number,
                "fiscal_sign": f.fiscal_sign, "fn_number": f.fn_number, "shift_number": f.shift_number,
                "receipt_number": f.receipt_number, "fiscal_at": f.issued_at, "opened_at": d.opened_at,
                "completed_at": d.completed_at, "business_date": d.completed_at.date(), "cancel_reason": "",
                "flagged": False, "created_at": dt.datetime.now(dt.UTC)}
        lines = [{"line_no": ln.line_no, "product_id": int(ln.product_id), "product_ref": ln.product_id,
                  "name": ln.name, "qty_m": to_milli(ln.quantity), "measure": ln.measure, "price_kop": ln.price,
                  "amount_kop": ln.amount, "vat": ln.vat, "vat_rate": ln.vat_rate, "marking_codes": [],
                  "source": ln.source, "move_id": None, "returned_m": 0, "status": "posted", "detail": ""}
                 for ln in d.lines]
        pays = [{"type": x.type, "amount_kop": x.amount, "operation_id": x.operation_id, "rrn": x.rrn,
                 "auth_code": x.auth_code, "card_mask": x.card_mask, "voided": False, "return_pk": None}
                for x in d.payments]
        rows.append((sale, lines, pays))
    return rows


def _raw_insert(w: dict[str, Any], rows: list[Any], chunk: int = 500) -> float:
    """The same sales, lines and payments rows, ``chunk`` sales per transaction; seconds."""
    from sqlalchemy import insert

    from cloud.db import unit_of_work
    from cloud.sales.models import Sale, SaleLine, SalePayment

    sales_t, lines_t, pays_t = (m.__table__ for m in (Sale, SaleLine, SalePayment))  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        with unit_of_work(w["sessions"]) as session:
            result = session.execute(insert(sales_t).returning(sales_t.c.id, sort_by_parameter_order=True),
                                     [r[0] for r in part])
            pks = [r[0] for r in result]
            session.execute(insert(lines_t), [{**ln, "sale_pk": pk} for pk, r in zip(pks, part, strict=True)
                                              for ln in r[1]])
            session.execute(insert(pays_t), [{**x, "sale_pk": pk} for pk, r in zip(pks, part, strict=True)
                                             for x in r[2]])
            session.commit()
    return time.perf_counter() - t0


def ingestion(n: int) -> dict[str, Any]:
    """Figure 2: ``ingest`` of ``n`` 5-line sales vs a raw INSERT of the same rows."""
    from sqlalchemy import event, func, select, text

    from cloud.db import shared_engine
    from cloud.inventory import ledger
    from cloud.registry.models import Event
    from cloud.sales import ingest as ingestion_module
    from cloud.sales.models import Sale, SaleLine, SalesProblem

    out: dict[str, Any] = {"n": n}
    with fresh_database("postgresql", "sales") as db:
        out["database"] = db.kind
        w = _cloud_world(db.url, n)
        payloads = _payloads(w, n)
        _store_events(w, payloads)
        engine = shared_engine(db.url)
        with engine.connect() as conn:
            pks = [r[0] for r in conn.execute(select(Event.id).where(Event.type == "sale_completed")
                                              .order_by(Event.id))]
            conn.execute(text("ANALYZE"))
            conn.commit()
        raw = _raw_rows(w, payloads, pks)
        gc.collect()  # each timed part starts from a clean heap, not with the setup's garbage to collect
        out["raw_s"] = _raw_insert(w, raw)
        with engine.begin() as conn:  # back to empty sales tables for the real thing
            conn.execute(text("TRUNCATE sale_payments, sale_lines, sales RESTART IDENTITY CASCADE"))
            conn.execute(text("ANALYZE"))
        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", count)  # a page's statements must not grow with it
        gc.collect()
        t0 = time.perf_counter()
        try:
            counts = ingestion_module.ingest(w["sessions"], settle_s=0)
        finally:
            out["ingest_s"] = time.perf_counter() - t0
            event.remove(engine, "before_cursor_execute", count)
        out["statements"] = len(statements)
        out["page"] = ingestion_module.PAGE
        out["pages"] = -(-n // ingestion_module.PAGE)
        with engine.connect() as conn:
            out["sales"] = conn.execute(select(func.count()).select_from(Sale)).scalar_one()
            out["flagged"] = conn.execute(select(func.count()).select_from(Sale).where(Sale.flagged)).scalar_one()
            out["posted_lines"] = conn.execute(select(func.count()).select_from(SaleLine)
                                               .where(SaleLine.move_id.is_not(None))).scalar_one()  # type: ignore[union-attr]
            out["problems"] = conn.execute(select(func.count()).select_from(SalesProblem)).scalar_one()
            out["ledger_rows"] = conn.execute(select(func.count()).select_from(ledger.T)).scalar_one()
        out["counts"] = dict(counts)
    if out["sales"] != n or out["posted_lines"] != n * LINES_PER_SALE:
        raise RuntimeError(f"ingestion stored {out['sales']} sales, posted {out['posted_lines']} lines of {n}")
    out["ingest_per_s"] = n / out["ingest_s"]
    out["raw_per_s"] = n / out["raw_s"]
    out["ratio"] = out["ingest_per_s"] / out["raw_per_s"]
    return out


# ------------------------------------------------------------------ main


def main(sales: int = 60, ingest_n: int = 600, close_receipts: int = SHIFT_RECEIPTS, *, quiet: bool = False
         ) -> dict[str, Any]:
    quiet_logs()
    out: dict[str, Any] = {}
    with private_broker() as broker:
        out["lane"] = lane_sales(broker.url, sales)
        out["close"] = shift_close(broker.url, close_receipts)
    out["ingest"] = ingestion(ingest_n)
    if not quiet:
        report(out)
    return out


def report(r: dict[str, Any]) -> None:
    la, ig, cl = r["lane"], r["ingest"], r["close"]
    ph = la["phases"]
    print(f"checkout, one lane ({la['n']} card sales of 3 lines; gateway process, UPOS executable and Shtrih-M"
          " simulators at latency 0):")
    print(f"  sales             {la['sales_per_s']:8.2f} sales/s  (p50 {la['sale']['p50']:.1f} ms, p99"
          f" {la['sale']['p99']:.1f} ms per sale; first scan → last event on the broker)")
    print(f"  baseline driver   {la['driver_per_s']:8.2f} receipts/s  (the same 3-line receipt, driver alone,"
          f" p50 {la['driver']['p50']:.1f} ms)")
    print(f"  ratio             {la['ratio']:8.3f} × the driver alone")
    print(f"  where a sale goes (saga steps, p50): lines {ph['lines']:.1f} ms, card {ph['card']:.1f} ms,"
          f" receipt {ph['receipt']:.1f} ms, outbox {ph['outbox']:.1f} ms; saga {ph['saga_total']:.1f} ms")
    print(f"cloud ingestion ({ig['n']} sales of {LINES_PER_SALE} lines; {ig['database']}):")
    print(f"  ingest            {ig['ingest_per_s']:8.0f} sales/s  ({ig['ingest_s']:.2f} s; target ≥"
          f" {TARGET_INGEST_PER_S:.0f}/s) {'OK' if ig['ingest_per_s'] >= TARGET_INGEST_PER_S else 'MISSED'}")
    print(f"  baseline insert   {ig['raw_per_s']:8.0f} sales/s  (raw INSERT of sales+lines+payments, 500 a"
          " transaction, no ledger)")
    print(f"  ratio             {ig['ratio']:8.3f} × raw insert")
    print(f"  statements        {ig['statements']:8d}  ({ig['statements'] / ig['pages']:.0f} a page of up to"
          f" {ig['page']} sales, one transaction each; {ig['statements'] / ig['n']:.3f} a sale)")
    print(f"  checks: {ig['sales']} sales, {ig['posted_lines']} lines posted, {ig['ledger_rows']} ledger rows,"
          f" {ig['flagged']} flagged, {ig['problems']} problems, counts {ig['counts']}")
    ph = cl["phases"]
    print(f"shift close ({cl['receipts']} receipts: {REAL_IN_SHIFT} sold through the saga, {cl['seeded']} seeded in"
          f" checkout.db + made on the FN by the driver, {cl['seed_s']:.1f} s):")
    print(f"  close_shift       {cl['close_s'] * 1000:8.1f} ms  (target < {TARGET_CLOSE_S * 1000:.0f} ms)"
          f" {'OK' if cl['close_s'] < TARGET_CLOSE_S else 'MISSED'}   anchor: {ODOO_ANCHOR}")
    print(f"  baseline Z alone  {cl['z_alone_s'] * 1000:8.1f} ms  (driver close_shift on a copy of the same FN)")
    print(f"  ratio             {cl['ratio']:8.1f} × the Z report alone")
    print(f"  where it goes: Z report {ph['z_report'] * 1000:.1f} ms, terminal reconciliation"
          f" {ph['reconcile'] * 1000:.1f} ms, totals + comparison {ph['totals'] * 1000:.1f} ms,"
          f" outbox {ph['event'] * 1000:.1f} ms (the rest is HTTP and the lane's own writes)")
    print(f"  receipts lane {cl['fiscal_receipts']}, FN {cl['fn_receipts']}; differences: {cl['differences'] or 'none'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the benchmark runs")
    parser.add_argument("--sales", type=int, default=None, help="card sales at the lane (default 60, quick 8)")
    parser.add_argument("--ingest", type=int, default=None, help="sales to ingest (default 600, quick 200)")
    args = parser.parse_args()
    main(args.sales or (8 if args.quick else 60), args.ingest or (200 if args.quick else 600),
         200 if args.quick else SHIFT_RECEIPTS)
