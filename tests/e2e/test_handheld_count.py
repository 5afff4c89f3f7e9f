"""A stock count on handhelds, end to end: cloud API → real gateway process → scripted handheld → cloud.

Start a count of the store's warehouse, send it to the store's handhelds, scan (a resent line,
a weight label, marking codes), complete; the poll task turns the ``task_line`` events into
counted lines and ``task_completed`` into "counting finished"; posting the count books the
surplus and the shortages at cost.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cloud.base import utcnow
from cloud.worker import Periodic, PeriodicRunner
from simulators.handheld import HandheldClient, Scan
from tests.e2e.harness import Cloud, GatewayProcess, wait_for
from tests.gateway.handheld.support import PIN, free_port, marking, weight_label

pytestmark = pytest.mark.e2e

MILK = "4601234567893"
WATER = "4600000000008"
WATER_GTIN = "04600000000008"


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_stock_count_on_handhelds(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str,
                                  fresh_database_url: str) -> None:
    port = free_port()
    cloud = Cloud(fresh_database_url, mqtt_url, bus_root, bus_tenant)
    config = {
        "tenant": bus_tenant, "store": "store-1", "gateway": "gw-1", "bus_root": bus_root,
        "data_dir": str(tmp_path / "gw-data"),
        "broker": {"url": mqtt_url, "keepalive": 2, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "handheld": {"host": "127.0.0.1", "port": port, "store_pin": PIN},
        "devices": [{"id": "handhelds", "kind": "handheld", "driver": "pool", "url": "local"},
                    {"id": "tsd1", "kind": "handheld", "driver": "web", "url": "wifi"}],
    }
    gw = GatewayProcess(tmp_path, config).start()
    hh = HandheldClient(f"http://127.0.0.1:{port}", "tsd1")
    poll = PeriodicRunner(cloud.settings, (Periodic("cloud.inventory.sync_handheld_counts", 0.2,
                                                    lambda s: {"database_url": s.database_url}),))
    api = cloud.client
    try:
        wait_for(lambda: (d := cloud.device("handhelds")) and d["state"] == "online", what="handheld pool online")
        store_id = cloud.get("/stores")[0]["id"]
        wh = ok(api.post("/api/v1/catalog/warehouses", json={"store_id": store_id, "code": "main"}), 201)["id"]
        milk = ok(api.post("/api/v1/catalog/products", json={"sku": "MILK", "name": "Молоко 3,2% 1 л"}), 201)["id"]
        ok(api.post(f"/api/v1/catalog/products/{milk}/barcodes", json={"code": MILK}), 201)
        cheese = ok(api.post("/api/v1/catalog/products", json={
            "sku": "CHEESE", "name": "Сыр Российский", "base_unit": "kg", "weighed": True, "plu": 123}), 201)["id"]
        water = ok(api.post("/api/v1/catalog/products", json={
            "sku": "WATER", "name": "Вода 0,5 л", "marking": "water"}), 201)["id"]
        ok(api.post(f"/api/v1/catalog/products/{water}/barcodes", json={"code": WATER}), 201)

        receipt = ok(api.post("/api/v1/inventory/receipts", json={
            "store_id": store_id, "warehouse_id": wh, "supplier": "ООО Молзавод",
            "posted_at": (utcnow() - timedelta(hours=1)).isoformat(),
            "lines": [{"product_id": milk, "quantity": "5", "amount": "250.00"},
                      {"product_id": cheese, "quantity": "1.5", "amount": "600.00"},
                      {"product_id": water, "quantity": "3", "amount": "90.00",
                       "codes": [marking(WATER_GTIN, s) for s in ("AAA", "BBB", "CCC")]}],
        }), 201)
        ok(api.post(f"/api/v1/inventory/documents/{receipt['id']}/post"))

        count = ok(api.post("/api/v1/inventory/counts", json={"store_id": store_id, "warehouse_id": wh}), 201)
        cid = count["id"]
        assert {ln["product_id"]: ln["expected_quantity"] for ln in count["lines"]} == {
            milk: "5.000", cheese: "1.500", water: "3.000"}
        sent = ok(api.post(f"/api/v1/inventory/counts/{cid}/handheld-task", json={}))
        assert sent["task_id"] == f"count-{cid}" and sent["lines"] == 3 and sent["skipped"] == []
        assert sent["command"]["status"] == "done"
        again = ok(api.post(f"/api/v1/inventory/counts/{cid}/handheld-task", json={}))  # a retried POST
        assert again["command"]["command_id"] == sent["command"]["command_id"]
        tid = sent["task_id"]

        poll.start()
        hh.login("Орлова", PIN)
        assert [t["task_id"] for t in hh.tasks()] == [tid]
        hh.open(tid)
        hh.scan(tid, Scan(MILK, line_id="count-line-0001"))
        hh.scan(tid, Scan(MILK, line_id="count-line-0001"))  # resent after a lost answer: one line
        hh.scan(tid, Scan(MILK, qty="6", line_id="count-line-0002"))
        hh.scan(tid, Scan(weight_label(123, 1234), line_id="count-line-0003"))  # 1.234 kg of cheese
        hh.scan(tid, Scan(marking(WATER_GTIN, "AAA"), line_id="count-line-0004"))
        hh.scan(tid, Scan(marking(WATER_GTIN, "BBB"), line_id="count-line-0005"))
        hh.complete(tid)

        def finished() -> dict[str, Any] | None:
            body: dict[str, Any] = cloud.get(f"/inventory/counts/{cid}/handheld-tasks")
            return body if body["counting_finished"] and body["tasks"][0]["lines_applied"] == 5 else None

        tasks = wait_for(finished, what="the handheld lines in the count")
        assert tasks["tasks"][0]["completed_by"] == "Орлова" and tasks["tasks"][0]["lines_rejected"] == {}
        doc = cloud.get(f"/inventory/documents/{cid}")
        assert {ln["product_id"]: ln["quantity"] for ln in doc["lines"]} == {
            milk: "7.000", cheese: "1.234", water: "2.000"}
        assert all(ln["counted_at"] is not None and not ln["outdated"] for ln in doc["lines"])

        posted = ok(api.post(f"/api/v1/inventory/documents/{cid}/post"))
        assert posted["status"] == "posted"
        moves: dict[int, tuple[Decimal, Decimal]] = {}
        for product in (milk, cheese, water):
            (move,) = [m for m in cloud.get(f"/inventory/products/{product}/movements", warehouse_id=wh)
                       if m["doc_type"] == "stock_count" and m["document_id"] == cid]
            moves[product] = (Decimal(move["quantity"]), Decimal(move["value"]))
        assert moves == {
            milk: (Decimal("2.000"), Decimal("100.00")),  # surplus at the average cost of 50.00
            cheese: (Decimal("-0.266"), Decimal("-106.40")),  # shortage at 400.00 per kg
            water: (Decimal("-1.000"), Decimal("-30.00")),
        }
        wait_for(lambda: cloud.get(f"/inventory/counts/{cid}/handheld-tasks")["tasks"][0]["closed"],
                 what="the poll to close the task of the posted count")
    finally:
        poll.stop()
        hh.close()
        gw.stop()
        cloud.stop()
