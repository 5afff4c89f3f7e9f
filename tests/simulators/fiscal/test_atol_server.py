"""The simulated ATOL web server at its HTTP boundary: raw JSON over a real socket, no driver."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.fiscal.atol import AtolDevice, AtolSimConfig, AtolWebServer

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 3, 2, 10, 15)
OPEN = {"type": "openShift", "operator": {"name": "Иванова Анна", "vatin": "500100732259"}}
SELL = {"type": "sell", "taxationType": "osn", "operator": {"name": "Иванова Анна"},
        "items": [{"type": "position", "name": "Хлеб", "price": 45.50, "quantity": 2, "amount": 91.00,
                   "measurementUnit": "piece", "paymentMethod": "fullPayment", "paymentObject": "commodity",
                   "tax": {"type": "vat10"}}],
        "payments": [{"type": "cash", "sum": 100}]}  # fmt: skip


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[AtolDevice, AtolWebServer, httpx.Client]]:
    dev = AtolDevice(AtolSimConfig(state_file=tmp_path / "fn.json", clock=lambda: NOW))
    server = AtolWebServer(dev)
    with httpx.Client(base_url=server.start(), timeout=3) as client:
        yield dev, server, client
    server.stop()


def results(client: httpx.Client, uuid: str) -> list[dict[str, Any]]:
    for _ in range(200):
        body = client.get(f"/api/v2/requests/{uuid}").json()
        if all(r["status"] not in ("wait", "inProgress") for r in body["results"]):
            return list(body["results"])
        time.sleep(0.01)
    raise AssertionError("results never ready")


def test_post_poll_and_repeat_uuid(web: tuple[AtolDevice, AtolWebServer, httpx.Client]) -> None:
    dev, server, client = web
    resp = client.post("/api/v2/requests", json={"uuid": "u-1", "request": [OPEN]})
    assert resp.status_code == 201 and resp.json() == {
        "number": 0,
        "uuid": "u-1",
        "isBlocked": False,
        "blockedUUID": "",
    }
    (res,) = results(client, "u-1")
    assert (res["status"], res["errorCode"], res["errorDescription"]) == ("ready", 0, "Ошибок нет")
    fp = res["result"]["fiscalParams"]
    assert fp["fiscalDocumentNumber"] == 1 and fp["shiftNumber"] == 1
    assert fp["fiscalDocumentDateTime"] == "2026-03-02T10:15:00+03:00"
    assert fp["fiscalDocumentSign"] == f"{dev.fn.sign(1, 2, NOW, 0, 0):010d}"
    again = client.post("/api/v2/requests", json={"uuid": "u-1", "request": [OPEN]})
    assert again.status_code == 409
    assert results(client, "u-1") == [res] and server.executions == {"u-1": 1} and dev.fn.last_fd == 1
    assert client.get("/api/v2/requests/nope").status_code == 404


def test_sale_result_is_exact_money(web: tuple[AtolDevice, AtolWebServer, httpx.Client]) -> None:
    _, _, client = web
    client.post("/api/v2/requests", json={"uuid": "o", "request": OPEN})  # a single task, not a list
    results(client, "o")
    client.post("/api/v2/requests", content='{"uuid":"s","request":[' + json.dumps(SELL) + "]}")
    (res,) = results(client, "s")
    raw = client.get("/api/v2/requests/s").text
    assert '"total":91.00' in raw and res["result"]["fiscalParams"]["fiscalReceiptNumber"] == 1


def test_bad_posts_are_400(web: tuple[AtolDevice, AtolWebServer, httpx.Client]) -> None:
    _, server, client = web
    assert client.post("/api/v2/requests", content=b"{not json").status_code == 400
    assert client.post("/api/v2/requests", json={"request": [OPEN]}).status_code == 400
    two = client.post("/api/v2/requests", json={"uuid": "x", "request": [OPEN, SELL]})
    assert two.status_code == 400 and "Too many fiscal" in two.text
    assert server.executions == {}


def test_invalid_tasks_give_atol_error_results(web: tuple[AtolDevice, AtolWebServer, httpx.Client]) -> None:
    dev, _, client = web
    bad_sum = {**SELL, "items": [{**SELL["items"][0], "amount": 91.01}]}  # type: ignore[dict-item]
    client.post("/api/v2/requests", json={"uuid": "bad", "request": [
        {"type": "getShiftStatus"}, {"type": "printBanana"}, {"type": "getDeviceStatus"}]})  # fmt: skip
    ok, unknown, skipped = results(client, "bad")
    assert ok["status"] == "ready" and ok["result"]["shiftStatus"] == {"number": 0, "state": "closed"}
    assert (unknown["status"], unknown["errorCode"]) == ("error", 11)
    assert (
        unknown["errorDescription"].startswith("Не поддерживается в данной версии")
        and "printBanana" in unknown["errorDescription"]
    )
    assert skipped["status"] == "interrupted"
    client.post("/api/v2/requests", json={"uuid": "closed", "request": [SELL]})
    assert results(client, "closed")[0]["errorCode"] == 73
    client.post("/api/v2/requests", json={"uuid": "o", "request": [OPEN]})
    results(client, "o")
    client.post("/api/v2/requests", json={"uuid": "sum", "request": [bad_sum]})
    (res,) = results(client, "sum")
    assert res["errorCode"] == 16 and "91.01" in res["errorDescription"]
    client.post("/api/v2/requests", json={"uuid": "miss", "request": [{"type": "openShift"}]})
    assert results(client, "miss")[0]["errorCode"] == 8
    assert dev.fn.last_fd == 1


def test_slow_queue_reports_wait(web: tuple[AtolDevice, AtolWebServer, httpx.Client]) -> None:
    _, server, client = web
    server.delay = 0.3
    client.post("/api/v2/requests", json={"uuid": "slow", "request": [{"type": "getShiftStatus"}]})
    assert client.get("/api/v2/requests/slow").json()["results"][0]["status"] == "wait"
    assert results(client, "slow")[0]["status"] == "ready"


def test_marked_position_needs_an_accepted_code(web: tuple[AtolDevice, AtolWebServer, httpx.Client]) -> None:
    _, _, client = web
    imc = "MDEwNDYwMDQzOTkzMTI1NjIxNUFCQ0RFZmdoaWprHTkzZEdWeg=="
    marked = {**SELL, "items": [{**SELL["items"][0], "paymentObject": "commodityWithMarking",  # type: ignore[dict-item]
              "imcParams": {"imcType": "auto", "imc": imc, "itemEstimatedStatus": "itemPieceSold", "imcModeProcessing": 0}}]}  # fmt: skip
    client.post("/api/v2/requests", json={"uuid": "o", "request": [OPEN]})
    results(client, "o")
    client.post("/api/v2/requests", json={"uuid": "m1", "request": [marked]})
    assert results(client, "m1")[0]["errorCode"] == 13
    client.post("/api/v2/requests", json={"uuid": "m2", "request": [
        {"type": "beginMarkingCodeValidation", "params": {"imcType": "auto", "imc": imc,
                                                          "itemEstimatedStatus": "itemPieceSold", "imcModeProcessing": 0}},
        {"type": "getMarkingCodeValidationStatus"}, {"type": "acceptMarkingCode"}, marked]})  # fmt: skip
    begin, status, accept, sale = results(client, "m2")
    assert begin["result"] == {"offlineValidation": {"fmCheck": True, "fmCheckResult": True}}
    assert (
        status["result"]["ready"]
        and status["result"]["onlineValidation"]["itemInfoCheckResult"]["imcCheckResult"]
    )
    assert accept["status"] == "ready" and sale["status"] == "ready"
