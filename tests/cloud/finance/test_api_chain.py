"""The worked example end to end through the API, on the real database (PostgreSQL or SQLite).

Setup → rules → import of a 1C statement → allocation by rules, by hand and on demand →
ДДС, P&L with indicators, plan vs actual, each checked against figures computed by hand from
``chain.LINES`` (written out in each test's docstring).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook

from cloud.app import create_app
from cloud.db import unit_of_work
from cloud.tenancy.service import create_tenant
from tests.cloud.finance import chain

D = Decimal
JAN, FEB = "2026-01-01", "2026-02-01"


@pytest.fixture
def api(settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, with_bus=False)) as client:
        yield client


@pytest.fixture
def h(tenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant[2]}"}


RULES = [
    {"name": "Инкассация магазина 1", "priority": 10, "condition": {"direction": "inflow", "purpose_regex": r"инкассац\w* выручки магазин 1\b"},
     "shares": [{"article": "D.1.1.1", "cfo": "S1"}]},
    {"name": "Инкассация магазина 2", "priority": 10, "condition": {"direction": "inflow", "purpose_regex": r"инкассац\w* выручки магазин 2\b"},
     "shares": [{"article": "D.1.1.1", "cfo": "S2"}]},
    {"name": "Эквайринг", "condition": {"direction": "inflow", "counterparty_inns": [chain.BANK_INN], "purpose_contains": ["эквайринг"]},
     "shares": [{"article": "D.1.1.2", "percent": "50", "cfo": "S1"}, {"article": "D.1.1.2", "percent": "50", "cfo": "S2"}]},
    {"name": "Аренда на следующий месяц", "condition": {"direction": "outflow", "counterparty_inns": [chain.LANDLORD_INN]},
     "shares": [{"article": "D.1.2.3", "cfo": "S1", "month_shift": 1}]},
    {"name": "Молоко", "condition": {"direction": "outflow", "counterparty_inns": [chain.MILK_INN]},
     "shares": [{"article": "D.1.2.1", "percent": "60", "cfo": "S1"}, {"article": "D.1.2.1", "percent": "40", "cfo": "S2"}]},
    {"name": "Возврат от поставщика", "condition": {"direction": "inflow", "purpose_contains": ["возврат излишне"]},
     "shares": [{"article": "D.1.1.5", "cfo": "S1"}]},
    {"name": "Зарплата", "condition": {"direction": "outflow", "purpose_contains": ["заработн"]},
     "shares": [{"article": "D.1.2.5", "cfo": "HQ"}]},
    {"name": "Перевод между счетами", "priority": 20, "condition": {"counterparty_inns": [chain.OWN_INN], "purpose_contains": ["перевод собственных"]},
     "shares": [{"article": "D.4.1"}]},
    {"name": "Ремонт (проверить)", "suggest_only": True, "condition": {"direction": "outflow", "counterparty_inns": [chain.REPAIR_INN]},
     "shares": [{"article": "D.1.2.11", "cfo": "S2"}]},
]
FEES_RULE = {"name": "Комиссии банка", "condition": {"direction": "outflow", "purpose_contains": ["комиссия"]},
             "shares": [{"article": "D.1.2.7", "cfo": "HQ"}]}


def setup_chain(api: TestClient, h: dict[str, str]) -> None:
    r = api.post("/api/v1/finance/setup/template", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["articles"] == 70 and r.json()["indicators"] == 14
    assert api.post("/api/v1/finance/setup/template", headers=h).json() == {"articles": 0, "indicators": 0, "data_sources": 0}
    for code, name in (("S1", "Магазин 1"), ("S2", "Магазин 2"), ("HQ", "Офис")):
        assert api.post("/api/v1/finance/cfos", headers=h, json={"code": code, "name": name}).status_code == 201
    r = api.post("/api/v1/finance/legal-entities", headers=h, json={
        "name": "ООО Пример", "inn": chain.OWN_INN, "kpp": "770101001",
        "accounts": [{"number": chain.ACC_A, "name": "Сбер", "balance_date": JAN, "opening_balance": "100000.00"},
                     {"number": chain.ACC_B, "name": "ВТБ", "balance_date": JAN, "opening_balance": "80000.00"}]})
    assert r.status_code == 201, r.text
    for rule in RULES:
        r = api.post("/api/v1/finance/rules", headers=h, json=rule)
        assert r.status_code == 201, r.text


def import_statement(api: TestClient, h: dict[str, str], content: bytes) -> dict:
    r = api.post("/api/v1/finance/imports/bank-statement?file_name=st.txt", headers={**h, "Content-Type": "application/octet-stream"},
                 content=content)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["state"] == "done", body  # eager in the one-machine mode
    again = api.get(f"/api/v1/finance/imports/{body['id']}", headers=h).json()
    assert again["state"] == "done" and again["processed"] == again["total"]
    return body


def rows(report: dict) -> dict[str, list]:
    return {r["code"]: [D(c["value"]) if c["value"] is not None else None for c in r["cells"]] for r in report["rows"]}


@pytest.fixture
def loaded(api, h) -> dict:
    setup_chain(api, h)
    return import_statement(api, h, chain.statement())


def test_import_dedupes_reimports_and_reports_balance_differences(api, h, loaded) -> None:
    """25 documents → 26 operations (the transfer A→B is two: out of A, into B). Rules allocate
    all but 6: four bank fees (no fee rule yet), Иванов, and the repair (suggest-only)."""
    assert loaded["total"] == 26 and loaded["created"] == 26 and loaded["duplicates"] == 0
    assert loaded["allocated"] == 20
    assert loaded["balance_differences"] == []
    # the same file again, and an overlapping February-only statement of account A: nothing new
    assert import_statement(api, h, chain.statement())["created"] == 0
    feb = import_statement(api, h, chain.statement(dt.date(2026, 2, 1), dt.date(2026, 2, 28), (chain.ACC_A,)))
    assert feb["created"] == 0 and feb["duplicates"] == feb["total"] == 9
    # a statement whose closing balance is off by 1.00: imported (nothing new), difference reported
    bad = import_statement(api, h, chain.statement(dt.date(2026, 2, 1), dt.date(2026, 2, 28), (chain.ACC_A,), D("1.00")))
    codes = {(d["account"], d["code"], d["delta"]) for d in bad["balance_differences"]}
    assert (chain.ACC_A, "closing_mismatch", "1.00") in codes and (chain.ACC_A, "documents_closing_mismatch", "1.00") in codes
    ops = api.get("/api/v1/finance/operations", headers=h, params={"date_from": JAN, "date_to": "2026-02-28", "limit": 1000}).json()
    assert len(ops) == 26


def test_malformed_statement_is_refused_naming_line_and_field_and_imports_nothing(api, h) -> None:
    setup_chain(api, h)
    good = chain.statement().decode("cp1251").split("\r\n")
    line = next(i for i, t in enumerate(good) if t.startswith("Сумма=") and i > 20)
    good[line] = "Сумма=12,34,56"
    r = api.post("/api/v1/finance/imports/bank-statement", headers={**h, "Content-Type": "application/octet-stream"},
                 content="\r\n".join(good).encode("cp1251"))
    assert r.status_code == 422
    body = r.json()
    assert body["line"] == line + 1 and body["field"] == "Сумма"
    assert f"строка {line + 1}" in body["detail"] and "Сумма" in body["detail"]
    assert api.get("/api/v1/finance/operations", headers=h, params={"date_from": JAN, "date_to": "2026-12-31"}).json() == []
    # an account nobody registered: refused, naming it
    r = api.post("/api/v1/finance/imports/bank-statement", headers={**h, "Content-Type": "application/octet-stream"},
                 content=chain.statement().replace(chain.ACC_B.encode(), b"40702810999999999999"))
    assert r.status_code == 422 and r.json()["code"] == "unknown_account" and "40702810999999999999" in r.json()["detail"]


def test_statement_as_a_multipart_upload(api, h) -> None:
    """A browser's form: the file in the field ``file``, its name taken from the upload; a bad
    file is refused the same way as a raw body, and a form without the file names the field."""
    setup_chain(api, h)
    r = api.post("/api/v1/finance/imports/bank-statement", headers=h,
                 files={"file": ("kl_to_1c.txt", chain.statement(), "text/plain")})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["state"] == "done" and body["created"] == 26 and body["file_name"] == "kl_to_1c.txt"
    good = chain.statement().decode("cp1251").split("\r\n")
    line = next(i for i, t in enumerate(good) if t.startswith("Дата=") and i > 20)
    good[line] = "Дата=31.02.2026"
    r = api.post("/api/v1/finance/imports/bank-statement?file_name=bad.txt", headers=h,
                 files={"file": ("x.txt", "\r\n".join(good).encode("cp1251"), "application/octet-stream")})
    assert r.status_code == 422 and r.json()["line"] == line + 1 and r.json()["field"] == "Дата", r.text
    r = api.post("/api/v1/finance/imports/bank-statement", headers=h, data={"other": "x"},
                 files={"attachment": ("a.txt", b"1CClientBankExchange", "text/plain")})
    assert r.status_code == 422 and r.json()["code"] == "no_file", r.text
    ops = api.get("/api/v1/finance/operations", headers=h, params={"date_from": JAN, "date_to": "2026-12-31", "limit": 1000}).json()
    assert len(ops) == 26


def _allocate_rest(api, h) -> None:
    assert api.post("/api/v1/finance/rules", headers=h, json=FEES_RULE).status_code == 201
    r = api.post("/api/v1/finance/allocate", headers=h, json={"date_from": JAN, "date_to": "2026-02-28"})
    assert r.json() == {"considered": 6, "allocated": 4, "suggested": 1, "unallocated": 1}, r.text
    ivanov = api.get("/api/v1/finance/operations", headers=h,
                     params={"date_from": "2026-01-12", "date_to": "2026-01-12"}).json()[0]
    bad = api.put(f"/api/v1/finance/operations/{ivanov['id']}/allocation", headers=h, json={"parts": [
        {"article": "D.1.2.11", "amount": "2000.00", "cfo": "S1"}, {"article": "D.1.2.9", "amount": "999.99"}]})
    assert bad.status_code == 422 and bad.json()["code"] == "parts_sum_mismatch"
    bad = api.put(f"/api/v1/finance/operations/{ivanov['id']}/allocation", headers=h, json={"parts": [
        {"article": "D.1.2", "amount": "3000.00"}]})
    assert bad.status_code == 422 and "D.1.2" in bad.json()["detail"]
    r = api.put(f"/api/v1/finance/operations/{ivanov['id']}/allocation", headers=h, json={"parts": [
        {"article": "D.1.2.11", "amount": "2000.00", "cfo": "S1"},
        {"article": "D.1.2.9", "amount": "1000.00", "cfo": "S2", "accrual_month": FEB}]})
    assert r.status_code == 200, r.text
    assert {p["origin"] for p in r.json()["parts"]} == {"person"} and r.json()["status"] == "allocated"


def test_coverage_before_and_after_allocation(api, h, loaded) -> None:
    """January: 14 operations for 416 000.00 (the transfer counts on both accounts). Unallocated:
    Иванов 3 000 and two fees 1 500 + 1 500 → auto 11/14 = 78.57 %, by sum 410 000/416 000 = 98.56 %.
    After the fee rule and Иванов by hand: 13 by rules (92.86 %), 1 by a person."""
    c = api.get("/api/v1/finance/coverage", headers=h, params={"date_from": JAN, "date_to": "2026-01-31"}).json()
    assert (c["count_total"], c["count_auto"], D(c["sum_total"]), D(c["sum_auto"])) == (14, 11, D("416000.00"), D("410000.00"))
    assert D(c["share_auto_by_count_pct"]) == D("78.57") and D(c["share_auto_by_sum_pct"]) == D("98.56")
    assert D(c["largest_unallocated"][0]["amount"]) == D("3000.00")
    _allocate_rest(api, h)
    c = api.get("/api/v1/finance/coverage", headers=h, params={"date_from": JAN, "date_to": "2026-01-31"}).json()
    assert c["count_auto"] == 13 and c["by_origin"]["person"]["count"] == 1 and D(c["share_auto_by_count_pct"]) == D("92.86")


def test_cash_flow_report_by_months_with_balances(api, h, loaded) -> None:
    """ДДС, January: inflows D.1.1.1 = 40 000 + 40 000 + 30 000 = 110 000; D.1.1.2 = 20 000.
    Outflows: D.1.2.1 = 30 000 + 20 000 = 50 000; rent 50 000; salary 35 000 + 25 000 = 60 000;
    fees 3 000; Иванов: D.1.2.11 2 000 + D.1.2.9 1 000. D.1.2 = 166 000, D.1 = 130 000 − 166 000 =
    −36 000; the transfer nets to 0. February: D.1.1.1 = 45 000 + 45 000 + 35 000 = 125 000;
    acquiring 25 000.01; refund 2 000 → D.1.1 = 152 000.01; D.1.2 = 50 000 + 50 000 + 60 000 +
    1 500 + 500 = 162 000; the repair (8 000, only suggested) stays unallocated.
    Balances: A 100 000 → 64 000 → 114 500.01; B 80 000 → 80 000 → 80 000 − 60 000 − 500 − 8 000 = 11 500."""
    _allocate_rest(api, h)
    r = api.get("/api/v1/finance/reports/cash-flow", headers=h, params={"date_from": JAN, "date_to": "2026-02-28"})
    assert r.status_code == 200, r.text
    rep = r.json()
    v = rows(rep)
    assert v["D.1.1.1"] == [D("110000.00"), D("125000.00")]
    assert v["D.1.1.2"] == [D("20000.00"), D("25000.01")]
    assert v["D.1.1"] == [D("130000.00"), D("152000.01")]
    assert v["D.1.2.1"] == [D("50000.00"), D("50000.00")]
    assert v["D.1.2.3"] == [D("50000.00"), D("50000.00")]
    assert v["D.1.2.11"] == [D("2000.00"), D("0.00")]
    assert v["D.1.2"] == [D("166000.00"), D("162000.00")]
    assert v["D.1"] == [D("-36000.00"), D("-9999.99")]
    assert v["D.4.1"] == [D("0.00"), D("0.00")]
    assert v["unallocated"] == [D("0.00"), D("-8000.00")]
    assert v["operating_cash_flow"] == [D("-36000.00"), D("-9999.99")]
    assert [D(x["value"]) for x in rep["net_flow"]] == [D("-36000.00"), D("-17999.99")]
    bal = {b["account"]: [(D(c["opening"]), D(c["closing"])) for c in b["cells"]] for b in rep["balances"]}
    assert bal[chain.ACC_A] == [(D("100000.00"), D("64000.00")), (D("64000.00"), D("114500.01"))]
    assert bal[chain.ACC_B] == [(D("80000.00"), D("80000.00")), (D("80000.00"), D("11500.00"))]
    # drill-down: the January cell of D.1.1.1 → the three collections, summing to the cell
    cell = next(r for r in rep["rows"] if r["code"] == "D.1.1.1")["cells"][0]
    drill = api.get(cell["drill"], headers=h).json()
    assert len(drill["parts"]) == 3 and D(drill["sum"]) == D("110000.00")
    assert {p["rule"] for p in drill["parts"]} == {"Инкассация магазина 1", "Инкассация магазина 2"}
    # weeks: the week of 26.01–01.02 holds the rent (28.01), the salary part of 26.01, fees 30–31.01
    weeks = rows(api.get("/api/v1/finance/reports/cash-flow", headers=h,
                         params={"date_from": JAN, "date_to": "2026-02-28", "granularity": "week"}).json())
    assert sum(weeks["D.1.2"], D(0)) == D("328000.00")
    assert weeks["D.1.2.3"][4] == D("50000.00")
    # filters: store 1 only (no balances: money is not split by ЦФО)
    s1 = api.get("/api/v1/finance/reports/cash-flow", headers=h, params={"date_from": JAN, "date_to": "2026-01-31", "cfo": "S1"}).json()
    assert rows(s1)["D.1.1"] == [D("90000.00")] and s1["balances"] is None
    # XLSX with a hyperlink per cell
    x = api.get("/api/v1/finance/reports/cash-flow", headers=h, params={"date_from": JAN, "date_to": "2026-02-28", "format": "xlsx"})
    ws = load_workbook(io.BytesIO(x.content)).active
    found = next(row for row in ws.iter_rows() if row[0].value and str(row[0].value).strip() == "D.1.1.1")
    assert found[2].value == 110000 and "/reports/cash_flow/cell?" in found[2].hyperlink.target


def test_pnl_with_indicators_and_user_indicator(api, h, loaded) -> None:
    """P&L by accrual month. January: revenue P.1.1 = 110 000 + 20 000 = 130 000; cost P.2.1 =
    50 000; salary 60 000, fees 3 000, repairs (Иванов) 2 000; rent 0 (January's payment is for
    February) → P.4 = 65 000; gross margin 80 000; EBITDA 15 000; gross margin 61.54 %.
    February: revenue 150 000.01; cost 50 000 − refund 2 000 = 48 000; P.4 = 60 000 + 50 000 +
    2 000 + marketing 1 000 = 113 000; gross margin 102 000.01; EBITDA −10 999.99; 68.00 %.
    User indicator area 200 m² → revenue per m² 650.00 and 750.00."""
    _allocate_rest(api, h)
    r = api.post("/api/v1/finance/indicators", headers=h, json={"statement": "pnl", "name": "area_m2", "title": "Площадь, м²"})
    assert r.status_code == 201 and r.json()["kind"] == "user"
    api.put(f"/api/v1/finance/indicators/{r.json()['id']}/values", headers=h,
            json=[{"month": JAN, "value": "200"}, {"month": FEB, "value": "200"}])
    assert api.post("/api/v1/finance/indicators", headers=h, json={
        "statement": "pnl", "name": "revenue_per_m2", "formula": "[P.1] / area_m2"}).status_code == 201
    rep = api.get("/api/v1/finance/reports/pnl", headers=h, params={"date_from": JAN, "date_to": "2026-02-28"}).json()
    v = rows(rep)
    assert v["P.1"] == [D("130000.00"), D("150000.01")]
    assert v["P.2.1"] == [D("50000.00"), D("48000.00")]
    assert v["P.4.3"] == [D("0.00"), D("50000.00")]
    assert v["P.4"] == [D("65000.00"), D("113000.00")]
    assert v["gross_margin"] == [D("80000.00"), D("102000.01")]
    assert v["ebitda"] == [D("15000.00"), D("-10999.99")]
    assert v["net_profit"] == [D("15000.00"), D("-10999.99")]
    assert v["gross_margin_pct"] == [D("61.54"), D("68.00")]
    assert v["revenue_per_m2"] == [D("650.00"), D("750.00")]
    # no inventory ledger for this tenant: the cost row comes from operations, not from Vitrina
    assert "source" not in next(r for r in rep["rows"] if r["code"] == "P.2.1")
    # drill-down of February rent → the January payment (accrual month February)
    drill = api.get(next(r for r in rep["rows"] if r["code"] == "P.4.3")["cells"][1]["drill"], headers=h).json()
    assert [(p["booked_on"], D(p["amount"])) for p in drill["parts"]] == [("2026-01-28", D("50000.00"))]
    s1 = rows(api.get("/api/v1/finance/reports/pnl", headers=h, params={"date_from": JAN, "date_to": "2026-01-31", "cfo": "S1"}).json())
    assert s1["P.1"] == [D("90000.00")] and s1["P.2"] == [D("30000.00")] and s1["P.4.8"] == [D("2000.00")]


def test_plan_vs_actual_from_xlsx_budget(api, h, loaded) -> None:
    """Plan: revenue 120 000 / 160 000, rent 50 000 / 50 000. Actual revenue 130 000 (+10 000,
    +8.33 %) and 150 000.01 (−9 999.99, −6.25 %); rent 0 (−50 000, −100 %) and 50 000 (0, 0 %)."""
    _allocate_rest(api, h)
    b = api.post("/api/v1/finance/budgets", headers=h, json={"name": "План 2026", "kind": "plan", "statement": "pnl",
                                                            "date_from": JAN, "date_to": "2026-02-28"}).json()
    wb = Workbook()
    ws = wb.active
    ws.append(["Статья", "ЦФО", "2026-01", "2026-02"])
    ws.append(["P.1.1", "", 120000, 160000])
    ws.append(["P.4.3", "S1", 50000, 50000])
    buf = io.BytesIO()
    wb.save(buf)
    r = api.post(f"/api/v1/finance/budgets/{b['id']}/import", headers=h, json={"content_b64": base64.b64encode(buf.getvalue()).decode()})
    assert r.json() == {"saved": 4}, r.text
    rep = api.get(f"/api/v1/finance/budgets/{b['id']}/plan-vs-actual", headers=h).json()
    by = {r["code"]: r for r in rep["rows"]}
    jan, feb = by["P.1.1"]["cells"]
    assert (D(jan["plan"]), D(jan["actual"]), D(jan["variance"]), D(jan["variance_pct"])) == (D("120000.00"), D("130000.00"), D("10000.00"), D("8.33"))
    assert (D(feb["variance"]), D(feb["variance_pct"])) == (D("-9999.99"), D("-6.25"))
    rent = by["P.4.3"]["cells"]
    assert (D(rent[0]["variance"]), D(rent[0]["variance_pct"]), D(rent[1]["variance_pct"])) == (D("-50000.00"), D("-100.00"), D("0.00"))
    assert D(by["P.1"]["total"]["variance"]) == D("0.01")
    assert by["P.5"]["cells"][0]["variance_pct"] is None  # no plan: no percentage
    x = api.get(f"/api/v1/finance/budgets/{b['id']}/plan-vs-actual", headers=h, params={"format": "xlsx"})
    assert x.status_code == 200 and x.content[:2] == b"PK"
    bad = Workbook()
    bad.active.append(["Статья", "ЦФО", "2026-01"])
    bad.active.append(["P.1.1", "", "много"])
    buf = io.BytesIO()
    bad.save(buf)
    r = api.post(f"/api/v1/finance/budgets/{b['id']}/import", headers=h, json={"content_b64": base64.b64encode(buf.getvalue()).decode()})
    assert r.status_code == 422 and "строка 2" in r.json()["detail"]


def test_indicators_with_unknown_names_or_cycles_are_refused_naming_them(api, h) -> None:
    setup_chain(api, h)
    r = api.post("/api/v1/finance/indicators", headers=h, json={"statement": "pnl", "name": "x", "formula": "[P.1] - rent_total"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_names" and "rent_total" in r.json()["detail"]
    a = api.post("/api/v1/finance/indicators", headers=h, json={"statement": "pnl", "name": "a1", "formula": "[P.1]"}).json()
    assert api.post("/api/v1/finance/indicators", headers=h, json={"statement": "pnl", "name": "b1", "formula": "a1 * 2"}).status_code == 201
    r = api.put(f"/api/v1/finance/indicators/{a['id']}", headers=h, json={"statement": "pnl", "name": "a1", "formula": "b1 + 1"})
    assert r.status_code == 422 and r.json()["code"] == "formula_cycle" and r.json()["cycle"] in (["a1", "b1", "a1"], ["b1", "a1", "b1"])
    r = api.post("/api/v1/finance/indicators", headers=h, json={"statement": "pnl", "name": "c1", "formula": "[P.1] * (2"})
    assert r.status_code == 422 and r.json()["code"] == "formula_syntax"


def test_articles_are_editable_and_renames_follow_into_rules(api, h) -> None:
    setup_chain(api, h)
    arts = {a["code"]: a for a in api.get("/api/v1/finance/articles", headers=h).json()}
    r = api.patch(f"/api/v1/finance/articles/{arts['D.1.2.3']['id']}", headers=h, json={"code": "D.1.2.3a", "name": "Аренда магазинов"})
    assert r.status_code == 200 and r.json()["pnl_article"] == "P.4.3"
    rule = next(x for x in api.get("/api/v1/finance/rules", headers=h).json() if x["name"] == "Аренда на следующий месяц")
    assert rule["shares"][0]["article"] == "D.1.2.3a"
    r = api.patch(f"/api/v1/finance/articles/{arts['P.1']['id']}", headers=h, json={"code": "P.1x"})
    assert r.status_code == 409 and "gross_margin" in r.json()["detail"]
    r = api.post("/api/v1/finance/articles", headers=h, json={"statement": "cash_flow", "code": "D.1.2.20", "name": "Новое",
                                                               "parent": "D.1.1", "activity": "operating", "flow": "outflow"})
    assert r.status_code == 422 and "D.1.2.20" in r.json()["detail"]


def test_other_tenant_sees_nothing(api, h, loaded, sessions, tenant) -> None:
    with unit_of_work(sessions) as session:
        _t, _u, token = create_tenant(session, tenant[1] + "x", "Чужая сеть")
    other = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/finance/operations", headers=other, params={"date_from": JAN, "date_to": "2026-12-31"}).json() == []
    op_id = api.get("/api/v1/finance/operations", headers=h, params={"date_from": JAN, "date_to": "2026-12-31"}).json()[0]["id"]
    assert api.get(f"/api/v1/finance/operations/{op_id}", headers=other).status_code == 404
    assert api.get(f"/api/v1/finance/imports/{loaded['id']}", headers=other).status_code == 404
