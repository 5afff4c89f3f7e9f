"""ATOL JSON tasks and results: vendor-shaped examples parse, receipts build exact JSON."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal as D

import pytest

from protocols.atol import build, codec
from protocols.atol import results as R
from protocols.atol import tasks as T
from protocols.atol.errors import LocalProtocolError, RemoteProtocolError
from protocols.fiscal import (
    Cashier,
    Correction,
    CorrectionBasis,
    CorrectionType,
    Item,
    ItemType,
    MarkingCode,
    Measure,
    PaymentMethod,
    Payments,
    Receipt,
    SettlementSign,
    VatKind,
    resolve,
)

KM = "0104600439931256215ABCDEfghijk\x1d93dGVz"
CASHIER = Cashier("Иванова Анна", "500100732259")

# The project notes' sell example (field names from KKTServiceLib, camelCase).
NOTES_SELL = """{"type":"sell","taxationType":"osn","electronically":false,
 "operator":{"name":"Иванов","vatin":"123456789047"},
 "items":[{"type":"position","name":"Молоко","price":89.9,"quantity":1,"amount":89.9,
   "measurementUnit":"piece","paymentMethod":"fullPayment","paymentObject":"commodity",
   "tax":{"type":"vat20"},
   "imcParams":{"imcType":"auto","imc":"MDEwNDYwMDQzOTkzMTI1NjIxNUFCQ0RFZmdoaWprHTkzZEdWeg==",
                "itemEstimatedStatus":"itemPieceSold","imcModeProcessing":0}}],
 "payments":[{"type":"electronically","sum":89.9}]}"""

# Results as published in ATOL documentation examples (quoted by public projects).
SELL_RESULT = """{"fiscalParams":{"fiscalDocumentDateTime":"2018-03-06T13:52:00+03:00","fiscalDocumentNumber":71,
 "fiscalDocumentSign":"1494325660","fiscalReceiptNumber":1,"fnNumber":"9999078900000961",
 "registrationNumber":"0000000001002292","shiftNumber":12,"total":390.75,"fnsUrl":"www.nalog.gov.ru"},"warnings":null}"""
CLOSE_RESULT = """{"fiscalParams":{"fiscalDocumentDateTime":"2017-07-25T13:12:00+03:00","fiscalDocumentNumber":69,
 "fiscalDocumentSign":"1138986989","fnNumber":"9999078900000961","registrationNumber":"0000000001002292",
 "shiftNumber":11,"receiptsCount":3,"fnsUrl":"www.nalog.gov.ru"},"warnings":{"notPrinted":false}}"""


def test_notes_example_parses_and_round_trips() -> None:
    task = T.parse_task(codec.loads(NOTES_SELL))
    assert isinstance(task, T.ReceiptTask)
    pos = task.items[0]
    assert (pos.price, pos.amount, pos.tax.type, task.payments[0].type) == (
        D("89.9"), D("89.9"), T.TaxType.VAT20, T.PaymentType.ELECTRONICALLY)  # fmt: skip
    assert pos.imc_params is not None
    assert base64.b64decode(pos.imc_params.imc).decode() == KM
    again = json.loads(task.to_json())
    assert again == json.loads(NOTES_SELL)


def _sale() -> Receipt:
    items = (
        Item("Сыр Российский весовой", D("0.734"), D("459.90"), VatKind.REDUCED, measure=Measure.KILOGRAM),
        Item(
            "Вода 0,5л", D(1), D("45.00"), VatKind.GENERAL, item_type=ItemType.MARKED, marking=MarkingCode(KM)
        ),
        Item("Сок", D(2), D("99.99"), VatKind.GENERAL_CALCULATED),
    )
    return Receipt(SettlementSign.INCOME, items, Payments(cash=D("300.00"), electronic=D("282.55")),
                   cashier=CASHIER, customer_contact="+79001234567")  # fmt: skip


def test_receipt_builds_exact_json_with_dated_tax() -> None:
    text = build.receipt_task(_sale(), dt.date(2026, 3, 2)).to_json()
    assert text.startswith('{"type":"sell","taxationType":"osn"')
    assert '"price":459.90,"quantity":0.734,"amount":337.57,"measurementUnit":"kilogram"' in text
    assert '"payments":[{"type":"cash","sum":300.00},{"type":"electronically","sum":282.55}]' in text
    assert '"total":582.55' in text and '"clientInfo":{"emailOrPhone":"+79001234567"}' in text
    data = json.loads(text, parse_float=D)
    assert [i["tax"]["type"] for i in data["items"]] == ["vat10", "vat22", "vat122"]
    assert data["items"][1]["paymentObject"] == "commodityWithMarking"
    assert base64.b64decode(data["items"][1]["imcParams"]["imc"]).decode() == KM
    assert data["operator"] == {"name": "Иванова Анна", "vatin": "500100732259"}
    old = json.loads(build.receipt_task(_sale(), dt.date(2025, 12, 31)).to_json())
    assert [i["tax"]["type"] for i in old["items"]] == ["vat10", "vat20", "vat120"]


@pytest.mark.parametrize(
    ("kind", "name"),
    [(VatKind.NONE, "none"), (VatKind.ZERO, "vat0"), (VatKind.REDUCED_CALCULATED, "vat110"), (VatKind.USN5, "vat5"),
     (VatKind.USN7_CALCULATED, "vat107")],
)  # fmt: skip
def test_tax_names_from_the_rate_table(kind: VatKind, name: str) -> None:
    assert build.tax_type(resolve(kind, dt.date(2026, 1, 1))) == name


def test_prepayment_and_return_and_correction() -> None:
    cake = Item("Торт", D(1), D("1500.00"), VatKind.GENERAL, payment_method=PaymentMethod.FULL_PREPAYMENT)
    pre = build.receipt_task(Receipt(SettlementSign.INCOME, (cake,), Payments(electronic=D("1500.00"))),
                             dt.date(2026, 3, 2), CASHIER)  # fmt: skip
    assert pre.items[0].payment_method is T.PaymentMethod.FULL_PREPAYMENT
    settle = Receipt(SettlementSign.INCOME_RETURN, (Item("Торт", D(1), D("1500.00"), VatKind.GENERAL),),
                     Payments(prepayment=D("1500.00")))  # fmt: skip
    ret = build.receipt_task(settle, dt.date(2026, 3, 2), CASHIER)
    assert ret.type == "sellReturn" and ret.payments[0].type is T.PaymentType.PREPAID
    with pytest.raises(LocalProtocolError, match="кассир"):
        build.receipt_task(settle, dt.date(2026, 3, 2))
    corr = Correction(Receipt(SettlementSign.INCOME, (Item("Выручка", D(1), D("250.00"), VatKind.GENERAL),),
                              Payments(cash=D("250.00")), cashier=CASHIER),
                      CorrectionType.BY_ORDER, CorrectionBasis(dt.date(2026, 2, 27), "ПР-15"))  # fmt: skip
    data = json.loads(build.correction_task(corr, dt.date(2026, 3, 2)).to_json())
    assert (data["type"], data["correctionType"], data["correctionBaseDate"], data["correctionBaseNumber"]) == (
        "sellCorrection", "instruction", "2026.02.27", "ПР-15")  # fmt: skip


def test_task_parse_errors_are_typed() -> None:
    with pytest.raises(T.TaskInvalid) as info:
        T.parse_task({"type": "printBanana"})
    assert info.value.reason == "unknown_type" and "printBanana" in info.value.message
    with pytest.raises(T.TaskInvalid) as info:
        T.parse_task({"type": "openShift"})
    assert info.value.reason == "missing"
    with pytest.raises(T.TaskInvalid) as info:
        T.parse_task({"type": "openShift", "operator": {"name": "А"}, "operatr": 1})
    assert info.value.reason == "invalid"


def test_vendor_results_parse_exactly() -> None:
    sell = R.parse(R.FiscalResult, codec.loads(SELL_RESULT)).fiscal_params
    assert (sell.fiscal_document_number, sell.fiscal_document_sign, sell.fiscal_receipt_number) == (
        71,
        "1494325660",
        1,
    )
    assert sell.total == D("390.75") and isinstance(sell.total, D)
    assert sell.fiscal_document_date_time.utcoffset() == dt.timedelta(hours=3)
    close = R.parse(R.FiscalResult, codec.loads(CLOSE_RESULT)).fiscal_params
    assert (close.shift_number, close.receipts_count) == (11, 3)
    results = R.parse(R.RequestResults, {"results": [
        {"status": "ready", "errorCode": 0, "errorDescription": "Ошибок нет", "result": None},
        {"status": "wait", "errorCode": 0, "errorDescription": "", "result": None}]})  # fmt: skip
    assert not results.done


@pytest.mark.parametrize(
    "body",
    [
        {"results": [{"status": "sleeping"}]},
        {"result": []},
        {"results": [{"status": "ready", "errorCode": "x"}]},
    ],
)
def test_results_off_schema_are_peer_errors(body: object) -> None:
    with pytest.raises(RemoteProtocolError, match="схеме ATOL"):
        R.parse(R.RequestResults, body)


def test_codec_is_exact_and_refuses_floats() -> None:
    assert codec.dumps({"a": [D("0.10"), 1, True, None, "я"]}) == '{"a":[0.10,1,true,null,"я"]}'
    with pytest.raises(TypeError):
        codec.dumps({"sum": 0.1})
    with pytest.raises(RemoteProtocolError):
        codec.loads(b"<html>\xff")
    assert codec.loads("[0.1]") == [D("0.1")]


def test_item_info_bits_round_trip() -> None:
    for bits in range(32):
        assert R.ItemInfoCheckResult.from_bits(bits).bits == bits
