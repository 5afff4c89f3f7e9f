"""The saga's state table, the price list store and the event schemas, without devices."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.checkout.machine import FINAL, TRANSITIONS, IllegalTransition, SaleState, step
from gateway.checkout.prices import PriceStore
from protocols.bus import encode
from protocols.bus.sales import PriceItem, PriceList, SaleLine
from tests.gateway.checkout.rig import MILK, price_list


def test_the_happy_path_is_in_the_table_and_final_states_are_sticky() -> None:
    s = SaleState.OPEN
    for event in ("add_line", "pay", "charged", "fiscalize", "fiscalized"):
        s = step(s, event)
    assert s is SaleState.COMPLETED
    events = {e for (_, e) in TRANSITIONS}
    for final in FINAL:
        for event in events:
            with pytest.raises(IllegalTransition) as exc:
                step(final, event)
            assert f"state={final.value}" in exc.value.message and f"event={event}" in exc.value.message


def test_a_receipt_is_never_reached_without_a_settled_payment() -> None:
    """From every state, the only way into fiscal_pending is through paid (charged) or itself."""
    into_fiscal = {(src, e) for (src, e), dst in TRANSITIONS.items() if dst is SaleState.FISCAL_PENDING}
    assert {src for src, _ in into_fiscal} == {SaleState.PAID, SaleState.FISCAL_PENDING}
    assert {src for (src, e), dst in TRANSITIONS.items() if dst is SaleState.PAID} == {SaleState.PAYMENT_PENDING}
    assert step(SaleState.FISCAL_PENDING, "give_up") is SaleState.REFUND_PENDING
    assert step(SaleState.REFUND_PENDING, "voided") is SaleState.CANCELLED_REFUNDED
    with pytest.raises(IllegalTransition):
        step(SaleState.LINES, "fiscalize")


def test_price_list_newer_version_wins_and_survives_reopen(tmp_path: Path) -> None:
    prices = PriceStore(tmp_path / "prices.db")
    assert prices.apply_payload(encode(price_list(2))) == "applied"
    assert prices.apply_payload(encode(price_list(1, milk=1))) == "ignored"
    assert prices.apply_payload(encode(price_list(2, milk=1))) == "ignored"
    assert prices.apply_payload(b'{"v": 1, "version": 3, "items": [{"product_id": "x"}]}') == "invalid"
    assert prices.apply_payload(b"") == "ignored"
    item = prices.by_barcode(MILK)
    assert item is not None and item.price == 8990
    assert prices.by_barcode("0" + MILK) == item, "EAN-13 and its GTIN-14 are the same product"
    assert prices.apply_payload(encode(price_list(3, milk=9990))) == "applied"
    prices.close()
    again = PriceStore(tmp_path / "prices.db")
    found = again.by_barcode(MILK)
    assert again.version == 3 and found is not None and found.price == 9990
    assert again.by_plu(123) is not None and again.by_plu(999) is None


def test_price_list_and_line_schemas_refuse_bad_data() -> None:
    item = PriceItem(product_id="a", name="А", price=100, vat="vat10", barcodes=("1",))
    with pytest.raises(ValidationError, match="barcode"):
        PriceList(version=1, items=(item, item.model_copy(update={"product_id": "b"})))
    with pytest.raises(ValidationError):
        PriceItem(product_id="a", name="А", price=1.5, vat="vat10")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        PriceItem(product_id="a", name="А", price=100, vat="vat18")
    with pytest.raises(ValidationError):
        SaleLine(line_no=1, product_id="a", name="А", quantity="0.7345", measure="kg", price=1, amount=1,
                 vat="vat10", vat_rate="НДС 10%")
