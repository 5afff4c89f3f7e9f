"""Sales API: receipts with lines/payments/fiscal data, the report on a hand-computed example (JSON and
xlsx), tenant isolation, and ``fiscalize`` sent to the store's lane over a real broker."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from cloud.app import create_app
from cloud.catalog import service as catalog
from cloud.catalog.models import ProductCreate
from cloud.db import unit_of_work
from cloud.tenancy.service import create_tenant
from tests.cloud.conftest import wait_for
from tests.cloud.inventory.helpers import World, at
from tests.cloud.sales.helpers import Lane, line, refund, sale


@pytest.fixture
def api(settings, tenant) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {tenant[2]}"
        yield client


@pytest.fixture
def example(world: World, lane: Lane) -> dict[str, Any]:
    """Mar 1: S-1 by Иванова, milk 2 × 80.00 (cost 2 × 50.00) + cheese 0.5 kg × 900.00 (cost 0.5 × 500.00);
    a cancelled S-X. Mar 2: S-2 by Петров, milk 1 × 80.00 (cost 50.00); Петрова returns 1 milk of S-1."""
    lane.send("sale_completed", sale("S-1", [line(1, lane.milk, "2", 8000, 16000),
                                             line(2, lane.cheese, "0.500", 90000, 45000, measure="kg")], at(1),
                                     card=True))
    lane.send("sale_cancelled", {"sale_id": "S-X", "lane": "lane1", "shift_id": "sh-1", "cashier": None,
                                 "state": "cancelled", "reason": "отмена", "total": 8000,
                                 "lines": [line(1, lane.milk, "1", 8000, 8000)], "cancelled_at": at(2).isoformat()})
    lane.send("sale_completed", sale("S-2", [line(1, lane.milk, "1", 8000, 8000)], at(25), fd=2, cashier="Петров"))
    lane.send("return_completed", refund("R-1", "S-1", [line(1, lane.milk, "1", 8000, 8000)], at(26)))
    lane.ingest(settle_s=0)
    return {"milk": lane.milk, "cheese": lane.cheese}


def _rows(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["label"], r["receipts"], r["revenue"], r["cost"], r["margin"], r["margin_pct"])
            for r in [*body["rows"], body["total"]]]


def test_report_on_a_worked_example(api: TestClient, example: dict[str, Any]) -> None:
    q = {"from": "2026-03-01", "to": "2026-03-02"}
    r = api.get("/api/v1/sales/report", params={**q, "group_by": "product"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["uncosted_lines"] == 0
    assert [(x["key"], x["quantity"]) for x in body["rows"]] == sorted(
        [(str(example["milk"]), "2.000"), (str(example["cheese"]), "0.500")])
    by_label = {row[0]: row for row in _rows(body)}
    assert by_label["Молоко"] == ("Молоко", 2, "160.00", "100.00", "60.00", "37.50")
    assert by_label["Сыр"] == ("Сыр", 1, "450.00", "250.00", "200.00", "44.44")
    assert by_label["Итого"] == ("Итого", 2, "610.00", "350.00", "260.00", "42.62")

    days = api.get("/api/v1/sales/report", params={**q, "group_by": "day"}).json()
    assert _rows(days) == [("2026-03-01", 1, "610.00", "350.00", "260.00", "42.62"),
                           ("2026-03-02", 1, "0.00", "0.00", "0.00", None),
                           ("Итого", 2, "610.00", "350.00", "260.00", "42.62")]
    cashiers = api.get("/api/v1/sales/report", params={**q, "group_by": "cashier"}).json()
    assert _rows(cashiers)[:3] == [("Иванова", 1, "610.00", "350.00", "260.00", "42.62"),
                                   ("Петров", 1, "80.00", "50.00", "30.00", "37.50"),
                                   ("Петрова", 0, "-80.00", "-50.00", "-30.00", "37.50")]
    one_day = api.get("/api/v1/sales/report", params={"from": "2026-03-02", "to": "2026-03-02",
                                                      "group_by": "store"}).json()
    assert _rows(one_day) == [("Магазин 1", 1, "0.00", "0.00", "0.00", None), ("Итого", 1, "0.00", "0.00", "0.00", None)]

    x = api.get("/api/v1/sales/report", params={**q, "group_by": "product", "format": "xlsx"})
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(x.content)).active
    values = [[c.value for c in row] for row in ws.iter_rows(min_row=3)]
    assert values[-1][0] == "Итого" and [float(v) for v in values[-1][3:7]] == [610.0, 350.0, 260.0, 42.62]
    assert api.get("/api/v1/sales/report", params={**q, "group_by": "lane"}).status_code == 422


def test_sales_list_detail_returns_and_shifts(api: TestClient, example: dict[str, Any]) -> None:
    page = api.get("/api/v1/sales", params={"from": "2026-03-01", "to": "2026-03-01", "status": "returned_partially"})
    assert page.status_code == 200, page.text
    [s1] = page.json()["items"]
    assert (s1["sale_id"], s1["total"], s1["returned"], s1["lane"]) == ("S-1", "610.00", "80.00", "lane1")
    assert [x["sale_id"] for x in api.get("/api/v1/sales", params={"cashier": "Петров"}).json()["items"]] == ["S-2"]
    assert len(api.get("/api/v1/sales", params={"limit": 1, "offset": 1}).json()["items"]) == 1
    detail = api.get(f"/api/v1/sales/{s1['id']}").json()
    assert detail["fiscal"]["fd_number"] == 1 and detail["fiscal"]["fiscal_sign"] == 3000000001
    assert [(ln["quantity"], ln["amount"], ln["returned"]) for ln in detail["lines"]] == [
        ("2.000", "160.00", "1.000"), ("0.500", "450.00", "0.000")]
    assert [(p["type"], p["amount"], p["rrn"]) for p in detail["payments"]] == [("card", "610.00", "123456789012")]
    assert detail["returns"] == ["R-1"]
    returns = api.get("/api/v1/sales/returns", params={"sale_id": s1["id"]}).json()
    assert [(r["return_id"], r["total"], r["lines"][0]["status"]) for r in returns] == [("R-1", "80.00", "posted")]
    assert api.get("/api/v1/sales/shifts").json() == []
    assert api.get("/api/v1/sales/problems").json() == []


def test_tenant_isolation(api: TestClient, example: dict[str, Any], world: World, lane: Lane, sessions) -> None:
    with unit_of_work(sessions) as s:
        other, _user, token = create_tenant(s, f"other{uuid.uuid4().hex[:8]}", "Чужая сеть")
        assert other.id is not None
        foreign = catalog.create_product(s, other.id, ProductCreate(sku="MILK", name="Чужое молоко"))
    mine = api.get("/api/v1/sales").json()["items"]
    assert mine
    theirs = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/sales", headers=theirs).json()["items"] == []
    assert api.get(f"/api/v1/sales/{mine[0]['id']}", headers=theirs).status_code == 404
    assert api.get("/api/v1/sales/returns", headers=theirs).json() == []
    rep = api.get("/api/v1/sales/report", headers=theirs,
                  params={"from": "2026-03-01", "to": "2026-03-02", "group_by": "store"}).json()
    assert rep["rows"] == [] and rep["total"]["revenue"] == "0.00"
    # a lane of this tenant naming another tenant's product: unknown here, never posted there
    lane.send("sale_completed", sale("S-9", [line(1, foreign.id, "1", 100, 100)], at(30), fd=9))
    lane.ingest(settle_s=0)
    problems = api.get("/api/v1/sales/problems").json()
    assert [(p["code"], p["ref"]) for p in problems] == [("unknown_product", "S-9#1")]
    assert api.get("/api/v1/sales/problems", headers=theirs).json() == []


def test_fiscalize_sends_the_lane_command_once(api: TestClient, lane: Lane, gateway_factory, world: World) -> None:
    gw = gateway_factory(store="s1", gateway="gw1")
    body = {"order_id": "ORD-1", "items": [{"name": "Торт", "quantity": "1", "price": 150000, "vat": "vat10"}],
            "payments": {"electronic": 100000, "prepayment": 50000}, "timeout_s": 0}
    r = api.post(f"/api/v1/stores/{world.store}/fiscalize", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["command_id"] == "fiscalize-ORD-1" and r.json()["device_id"] == lane.device
    topic, payload = wait_for(lambda: next(iter(gw.commands), None))
    assert topic.endswith("/dev/lane1/cmd/fiscalize")
    args = json.loads(payload)["args"]
    assert args["order_id"] == "ORD-1" and args["payments"] == {"cash": 0, "electronic": 100000, "prepayment": 50000}
    again = api.post(f"/api/v1/stores/{world.store}/fiscalize", json=body)
    assert again.json()["command_id"] == "fiscalize-ORD-1"

    unbalanced = {**body, "payments": {"electronic": 100000}}
    assert api.post(f"/api/v1/stores/{world.store}/fiscalize", json=unbalanced).status_code == 422
    no_lane = api.post(f"/api/v1/stores/{world.store2}/fiscalize", json=body)
    assert no_lane.status_code == 404 and no_lane.json()["code"] == "lane_not_found"


def test_a_rejected_event_is_retried_through_the_api(api: TestClient, world: World, lane: Lane,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from cloud.sales import bulk
    from cloud.sales import ingest as ingestion

    def broken(*_args: Any) -> Any:
        raise RuntimeError("ошибка в коде")

    lane.ingest(settle_s=0)
    monkeypatch.setattr(bulk, "_day", broken)
    monkeypatch.setattr(ingestion._Ctx, "day", broken)
    lane.send("sale_completed", sale("S-1", [line(1, lane.milk, "2", 8000, 16000)], at(1)))
    lane.send("sale_completed", sale("S-2", [line(1, "999999", "1", 100, 100)], at(1), fd=2))
    assert lane.ingest(settle_s=0) == {"rejected": 2}
    monkeypatch.undo()
    lane.send("sale_completed", sale("S-3", [line(1, "999999", "1", 100, 100)], at(2), fd=3))
    lane.ingest(settle_s=0)
    problems = {p["ref"]: p for p in api.get("/api/v1/sales/problems").json()}
    assert {k: (p["code"], p["resolved_at"]) for k, p in problems.items()} == {
        "S-1": ("error", None), "S-2": ("error", None), "S-3#1": ("unknown_product", None)}

    r = api.post(f"/api/v1/sales/problems/{problems['S-1']['id']}/retry")
    assert r.status_code == 200, r.text
    assert (r.json()["outcome"], r.json()["applied"], r.json()["problem"]["resolution"]) == ("stored", True, "stored")
    again = api.post(f"/api/v1/sales/problems/{problems['S-1']['id']}/retry").json()
    assert (again["outcome"], again["applied"]) == ("stored", False)
    assert api.post("/api/v1/sales/problems/retry").json()["counts"] == {"stored": 1}  # S-2
    assert api.post("/api/v1/sales/problems/retry").json()["counts"] == {}
    assert [x["sale_id"] for x in api.get("/api/v1/sales").json()["items"]] == ["S-3", "S-2", "S-1"]
    assert world.balance(lane.milk, warehouse=world.floor) == (Decimal("8"), Decimal("400"))

    not_a_rejection = api.post(f"/api/v1/sales/problems/{problems['S-3#1']['id']}/retry")
    assert not_a_rejection.status_code == 409 and not_a_rejection.json()["code"] == "problem_not_retryable"
    assert api.post("/api/v1/sales/problems/999999999/retry").status_code == 404
