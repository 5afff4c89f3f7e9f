"""The retained lists the cloud sends a store: the price list and the weighed-goods PLU list."""

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.bus import GatewayAddress, PayloadError, decode, encode
from protocols.bus.sales import PluItem, PluList, PriceItem, PriceList, plulist_topic, pricelist_topic

ident = st.from_regex(r"\A[A-Za-z0-9_.\-]{1,64}\Z")
aware = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=(d.microsecond // 1000) * 1000))
name = st.text(min_size=1, max_size=128)
kopecks = st.integers(0, 10**11)


def _unique_by(key: str):  # type: ignore[no-untyped-def]
    return lambda items: tuple({getattr(i, key): i for i in items}.values())


plu_items = st.builds(
    PluItem,
    plu=st.integers(1, 99999),
    product_id=ident,
    name=name,
    price_per_kg=kopecks,
    shelf_life_days=st.none() | st.integers(0, 9999),
    item_code=st.integers(0, 99999),
    barcode_prefix=st.from_regex(r"\A2[0-9]\Z"),
)
plu_lists = st.builds(
    PluList,
    ts=aware,
    version=st.integers(1, 2**62),
    items=st.lists(plu_items, max_size=8).map(_unique_by("plu")),
)
price_lists = st.builds(
    PriceList,
    ts=aware,
    version=st.integers(1, 2**62),
    items=st.lists(
        st.builds(PriceItem, product_id=ident, name=name, price=kopecks, vat=st.sampled_from(["vat_general", "vat10"]),
                  measure=st.sampled_from(["piece", "kg"]), plu=st.none()),
        max_size=6,
    ).map(_unique_by("product_id")),
)


@given(plu_lists)
def test_plu_list_round_trips(message: PluList) -> None:
    assert decode(PluList, encode(message)) == message


@given(price_lists)
def test_price_list_round_trips(message: PriceList) -> None:
    assert decode(PriceList, encode(message)) == message


def test_topics_sit_next_to_each_other() -> None:
    address = GatewayAddress("acme", "s1", "gw1")
    assert pricelist_topic(address) == "vitrina/v1/acme/s1/gw1/gw/pricelist"
    assert plulist_topic(address) == "vitrina/v1/acme/s1/gw1/gw/plulist"


def _body(**item: object) -> bytes:
    base: dict[str, object] = {"plu": 123, "product_id": "42", "name": "Сыр Российский", "price_per_kg": 79900,
                               "shelf_life_days": 30, "item_code": 123, "barcode_prefix": "22"}
    base.update(item)
    return json.dumps({"v": 1, "ts": "2026-03-01T09:00:00Z", "version": 1, "items": [base]}).encode()


def test_a_valid_plu_list_decodes_with_defaults() -> None:
    got = decode(PluList, _body(shelf_life_days=None))
    assert got.items[0].shelf_life_days is None and got.items[0].barcode_prefix == "22"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"plu": 0}, "plu"),
        ({"plu": 100000}, "plu"),
        ({"price_per_kg": 799.5}, "price_per_kg"),
        ({"price_per_kg": -1}, "price_per_kg"),
        ({"name": ""}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"barcode_prefix": "46"}, "barcode_prefix"),
        ({"barcode_prefix": "2"}, "barcode_prefix"),
        ({"item_code": "123"}, "item_code"),
        ({"product_id": "bad id/x"}, "product_id"),
    ],
)
def test_bad_items_are_named(change: dict[str, object], field: str) -> None:
    with pytest.raises(PayloadError, match=rf"items\.0\.{field}"):
        decode(PluList, _body(**change))


def test_version_and_unique_plu() -> None:
    item = PluItem(plu=1, product_id="1", name="Сыр", price_per_kg=100, item_code=1)
    with pytest.raises(ValueError, match="PLU 1 is listed twice"):
        PluList(version=1, items=(item, item.model_copy(update={"product_id": "2"})))
    with pytest.raises(ValueError, match="version"):
        PluList(version=0, items=())
