"""End to end through HTTP: catalog CRUD, documents, reports, exports, errors, tenant isolation."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from cloud.app import create_app
from cloud.db import unit_of_work
from cloud.registry.models import Store
from cloud.tenancy.service import create_tenant
from protocols.barcodes import ean13

V = "/api/v1"
EAN = ean13("460123456789")
BAD = EAN[:-1] + str((int(EAN[-1]) + 1) % 10)


@pytest.fixture
def api(settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, with_bus=False)) as client:
        yield client


def setup_tenant(api: TestClient, sessions, slug: str, token: str | None = None) -> dict:
    if token is None:
        with unit_of_work(sessions) as s:
            _t, _u, token = create_tenant(s, slug, "Сеть")
    h = {"Authorization": f"Bearer {token}"}
    with unit_of_work(sessions) as s:
        tid = api.get(f"{V}/stores", headers=h).status_code  # authenticates
        assert tid == 200
        from cloud.tenancy.service import authenticate

        _user, tenant = authenticate(s, token)
        store = Store(tenant_id=tenant.id, code="s1", name="Магазин")
        s.add(store)
        s.commit()
        store_id = store.id
    wh = api.post(f"{V}/catalog/warehouses", headers=h, json={"store_id": store_id, "code": "main"}).json()
    prod = api.post(f"{V}/catalog/products", headers=h, json={
        "sku": "100", "name": "Сыр", "base_unit": "kg", "weighed": True, "plu": 7,
        "units": [{"unit": "g", "factor": "0.001"}]}).json()
    return {"h": h, "store": store_id, "wh": wh["id"], "p": prod["id"]}


@pytest.fixture
def env(api, sessions, tenant) -> dict:
    return setup_tenant(api, sessions, tenant[1], tenant[2])


def test_catalog_crud_barcodes_prices_and_vat(api: TestClient, env: dict) -> None:
    h, p = env["h"], env["p"]
    r = api.post(f"{V}/catalog/products/{p}/barcodes", headers=h, json={"code": BAD})
    assert r.status_code == 422 and r.json()["code"] == "bad_barcode" and "контрольная цифра" in r.json()["detail"]
    r = api.post(f"{V}/catalog/products/{p}/barcodes", headers=h, json={"code": EAN})
    assert r.status_code == 201 and r.json()["gtin"] == "0" + EAN and r.json()["kind"] == "ean13"
    assert api.post(f"{V}/catalog/products/{p}/barcodes", headers=h,
                    json={"code": EAN}).json()["code"] == "barcode_exists"
    assert api.get(f"{V}/catalog/barcodes/{EAN}", headers=h).json()["product_id"] == p
    r = api.post(f"{V}/catalog/products", headers=h, json={"sku": "100", "name": "Дубль"})
    assert r.status_code == 409
    r = api.patch(f"{V}/catalog/products/{p}", headers=h, json={"shelf_life_days": 30})
    assert r.json()["shelf_life_days"] == 30 and r.json()["units"] == [{"unit": "g", "factor": "0.001"}]
    for when, price in (("2026-01-01T00:00:00Z", "100.00"), ("2026-02-01T00:00:00Z", "120.50")):
        assert api.post(f"{V}/catalog/prices", headers=h, json={"store_id": env["store"], "product_id": p,
                                                                "valid_from": when, "price": price}).status_code == 201
    got = api.get(f"{V}/catalog/prices", headers=h, params={"store_id": env["store"], "product_id": p,
                                                             "on": "2026-01-15T00:00:00Z"}).json()
    assert got["price"] == "100.00"
    rates = {r["kind"]: r["rate_percent"] for r in api.get(f"{V}/catalog/vat-rates?on=2026-03-01", headers=h).json()}
    assert rates["standard"] == "22" and rates["reduced"] == "10" and rates["none"] is None
    assert {r["kind"]: r["rate_percent"] for r in
            api.get(f"{V}/catalog/vat-rates?on=2025-12-31", headers=h).json()}["standard"] == "20"


def test_receipt_post_report_export_and_cancel_through_the_api(api: TestClient, env: dict) -> None:
    h = env["h"]
    body = {"store_id": env["store"], "warehouse_id": env["wh"], "posted_at": "2026-03-01T09:00:00+03:00",
            "supplier": "ООО Молоко", "invoice_number": "A-17", "invoice_date": "2026-03-01",
            "comment": "первая поставка",
            "lines": [{"product_id": env["p"], "quantity": "2500", "unit": "g", "amount": "1250.00"}]}
    doc = api.post(f"{V}/inventory/receipts", headers=h, json=body).json()
    assert doc["status"] == "draft" and doc["number"] == 1 and doc["lines"][0]["quantity"] == "2.500"
    assert api.post(f"{V}/inventory/documents/{doc['id']}/post", headers=h).json()["status"] == "posted"
    r = api.post(f"{V}/inventory/documents/{doc['id']}/post", headers=h)
    assert r.status_code == 409 and r.json()["code"] == "bad_document_status"
    stock = api.get(f"{V}/inventory/stock", headers=h, params={"store_id": env["store"]}).json()
    assert stock == [{"product_id": env["p"], "sku": "100", "name": "Сыр", "warehouse_id": env["wh"],
                      "store_id": env["store"], "quantity": "2.500", "value": "1250.00", "unit_cost": "500.00"}]
    assert api.get(f"{V}/inventory/stock", headers=h, params={"at": "2026-03-01T05:59:00Z"}).json() == []
    csv_text = api.get(f"{V}/inventory/stock.csv", headers=h).text
    assert "Сыр;main;2,500;1250,00;500,00" in csv_text
    xlsx = api.get(f"{V}/inventory/stock.xlsx", headers=h)
    ws = load_workbook(io.BytesIO(xlsx.content)).active
    assert [c.value for c in ws[3]][:4] == ["100", "Сыр", "main", 2.5]
    assert api.get(f"{V}/inventory/valuation", headers=h).json()["total"] == "1250.00"
    moves = api.get(f"{V}/inventory/products/{env['p']}/movements", headers=h).json()
    assert len(moves) == 1 and moves[0]["value_after"] == "1250.00"
    wo = {"store_id": env["store"], "warehouse_id": env["wh"], "posted_at": "2026-03-02T09:00:00Z",
          "lines": [{"product_id": env["p"], "quantity": "3", "reason": "spoilage"}]}
    wo_doc = api.post(f"{V}/inventory/write-offs", headers=h, json=wo).json()
    r = api.post(f"{V}/inventory/documents/{wo_doc['id']}/post", headers=h)
    assert r.status_code == 409 and r.json()["code"] == "negative_stock"
    assert "доступно 2.500, требуется 3.000" in r.json()["detail"] and "Списание №1" in r.json()["detail"]
    assert api.post(f"{V}/inventory/documents/{doc['id']}/cancel", headers=h).json()["status"] == "cancelled"
    assert api.get(f"{V}/inventory/stock", headers=h).json() == []
    assert len(api.get(f"{V}/inventory/products/{env['p']}/movements", headers=h).json()) == 2


def test_validation_errors_are_4xx_with_where(api: TestClient, env: dict) -> None:
    h = env["h"]
    base = {"store_id": env["store"], "warehouse_id": env["wh"], "supplier": "X"}
    r = api.post(f"{V}/inventory/receipts", headers=h, json={**base, "lines": [
        {"product_id": env["p"], "quantity": "1", "amount": "1"}, {"product_id": 987654, "quantity": "1", "amount": "1"}]})
    assert r.status_code == 404 and "строка 2: товар 987654" in r.json()["detail"]
    r = api.post(f"{V}/inventory/receipts", headers=h, json={**base, "posted_at": "2026-03-01T09:00:00",
                                                            "lines": []})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = api.post(f"{V}/inventory/pallets", headers=h, json=base)
    assert r.status_code == 404
    assert api.get(f"{V}/inventory/stock?at=2026-03-01T00:00:00", headers=h).json()["code"] == "naive_datetime"


def test_another_tenant_sees_nothing_and_cannot_touch_anything(api: TestClient, env: dict, sessions, tenant) -> None:
    other = setup_tenant(api, sessions, tenant[1] + "x")
    a, b = env["h"], other["h"]
    body = {"store_id": env["store"], "warehouse_id": env["wh"], "supplier": "X",
            "lines": [{"product_id": env["p"], "quantity": "1", "amount": "10"}]}
    doc = api.post(f"{V}/inventory/receipts", headers=a, json=body).json()
    api.post(f"{V}/inventory/documents/{doc['id']}/post", headers=a)
    assert api.get(f"{V}/inventory/documents/{doc['id']}", headers=b).status_code == 404
    assert api.post(f"{V}/inventory/documents/{doc['id']}/cancel", headers=b).status_code == 404
    assert api.get(f"{V}/catalog/products/{env['p']}", headers=b).status_code == 404
    assert api.get(f"{V}/inventory/stock", headers=b).json() == []
    assert api.get(f"{V}/inventory/documents", headers=b).json() == []
    assert api.get(f"{V}/inventory/products/{env['p']}/movements", headers=b).status_code == 404
    # B cannot post into A's store, warehouse or with A's product
    r = api.post(f"{V}/inventory/receipts", headers=b, json=body)
    assert r.status_code == 404
    r = api.post(f"{V}/inventory/receipts", headers=b, json={**body, "store_id": other["store"],
                                                            "warehouse_id": other["wh"]})
    assert r.status_code == 404 and "товар" in r.json()["detail"]
    assert [p["sku"] for p in api.get(f"{V}/catalog/products", headers=b).json()] == ["100"]
    assert api.get(f"{V}/catalog/products", headers=b).json()[0]["id"] == other["p"]
