"""Price lists and PLU lists published retained to the store's gateways over the real broker, on a real database.

On demand (the API) and from the periodic run with an injected clock: a price effective in the
future is not published before it takes effect, and the version only grows.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from cloud.app import create_app
from cloud.bus.mqtt import parse_mqtt_url
from cloud.catalog import publish
from cloud.catalog import service as catalog
from cloud.catalog.models import PriceCreate
from cloud.catalog.tasks import publish_due_price_lists
from cloud.config import CloudSettings
from cloud.registry.models import Gateway, GatewayStatus, Store
from protocols.bus import GatewayAddress, decode
from protocols.bus.sales import PluList, PriceList, plulist_topic, pricelist_topic
from tests.cloud.inventory.helpers import World

MILK = "4601234567893"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def retained_many(mqtt_url: str, topics: list[str], timeout: float = 5.0) -> dict[str, bytes]:
    """One subscriber to every topic, *after* the publish: only retained messages can arrive."""
    got: dict[str, bytes] = {}
    lock = threading.Lock()
    done = threading.Event()
    endpoint = parse_mqtt_url(mqtt_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pl-{uuid.uuid4().hex[:8]}")

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.retain and msg.payload:
            with lock:
                got[msg.topic] = bytes(msg.payload)
                if set(got) >= set(topics):
                    done.set()

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    try:
        assert done.wait(timeout), f"no retained list on {sorted(set(topics) - set(got))}"
    finally:
        client.disconnect()
        client.loop_stop()
    return got


def retained(mqtt_url: str, topic: str, timeout: float = 5.0) -> PriceList:
    return decode(PriceList, retained_many(mqtt_url, [topic], timeout)[topic])


def add_gateway(world: World, code: str, online: bool) -> int:
    with world.s() as s:
        gw = Gateway(tenant_id=world.tenant_id, store_id=world.store, code=code, online=online,
                     status=(GatewayStatus.ONLINE if online else GatewayStatus.OFFLINE).value)
        s.add(gw)
        s.commit()
        assert gw.id is not None
        return gw.id


def price(world: World, product: int, rub: str, valid_from: datetime) -> None:
    with world.s() as s:
        catalog.set_price(s, world.tenant_id, PriceCreate(store_id=world.store, product_id=product,
                                                          valid_from=valid_from, price=Decimal(rub)))


@pytest.fixture
def topic_of(world: World, tenant: tuple[int, str, str], bus_root: str) -> Any:
    with world.s() as s:
        store = s.get_one(Store, world.store)
        code = store.code

    def make(gateway: str) -> str:
        return pricelist_topic(GatewayAddress(tenant[1], code, gateway, bus_root))

    return make


@pytest.fixture
def plu_topic_of(world: World, tenant: tuple[int, str, str], bus_root: str) -> Any:
    with world.s() as s:
        code = s.get_one(Store, world.store).code

    def make(gateway: str) -> str:
        return plulist_topic(GatewayAddress(tenant[1], code, gateway, bus_root))

    return make


@pytest.fixture
def cleanup(settings: CloudSettings) -> Iterator[list[str]]:
    topics: list[str] = []
    yield topics
    with publish.publisher(settings) as pub:  # the run's own root anyway; keep the broker tidy
        for topic in topics:
            pub.publish(topic, b"")


def test_publish_on_demand_is_retained_for_an_offline_gateway(world: World, settings: CloudSettings,
                                                              tenant: tuple[int, str, str], mqtt_url: str,
                                                              topic_of: Any, plu_topic_of: Any,
                                                              cleanup: list[str]) -> None:
    milk = world.product("MILK", name="Молоко 3,2% 1 л", barcode=MILK, vat_kind="standard")
    cheese = world.product("CHEESE", name="Сыр Российский", base_unit="kg", weighed=True, plu=123,
                           shelf_life_days=30, vat_kind="reduced")
    no_price = world.product("NOPRICE", name="Без цены")
    semi = world.product("SEMI", name="Фарш", kind="semi_finished")
    price(world, milk, "89.90", T0)
    price(world, cheese, "799.00", T0)
    price(world, semi, "10.00", T0)
    add_gateway(world, "gw1", online=False)
    ham = world.product("HAM", name="Ветчина", base_unit="kg", weighed=True, plu=77, vat_kind="standard")
    bad_life = world.product("DRIED", name="Вяленое мясо", base_unit="kg", weighed=True, plu=78,
                             shelf_life_days=100000, vat_kind="standard")
    price(world, ham, "650.00", T0)
    price(world, bad_life, "1200.00", T0)
    add_gateway(world, "gw2", online=True)
    cleanup.extend([topic_of("gw1"), topic_of("gw2"), plu_topic_of("gw1"), plu_topic_of("gw2")])

    with TestClient(create_app(settings, with_bus=False)) as client:
        client.headers["Authorization"] = f"Bearer {tenant[2]}"
        response = client.post(f"/api/v1/catalog/stores/{world.store}/publish")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["published"] and body["version"] == 1 and body["items"] == 4 and body["plu_items"] == 2
        statuses = {g["code"]: g["status"] for g in body["gateways"]}
        assert statuses == {"gw1": "published_not_confirmed", "gw2": "published"}
        assert body["published_count"] == 2 and body["not_confirmed_count"] == 1
        assert {g["code"]: (g["plu_topic"], g["plu_items"]) for g in body["gateways"]} == {
            "gw1": (plu_topic_of("gw1"), 2), "gw2": (plu_topic_of("gw2"), 2)}
        # sold at the till, but a shelf life the contract refuses keeps it off the scales, and says so
        assert [(s["product_id"], s["reason"].startswith("не попал в список ПЛУ: ")) for s in body["skipped"]] == [
            (bad_life, True)]

        again = client.post(f"/api/v1/catalog/stores/{world.store}/publish").json()
        assert again["version"] == 2  # on demand: always a new version
        last = client.get(f"/api/v1/catalog/stores/{world.store}/publication").json()
        assert (last["version"], last["items"], last["plu_items"]) == (2, 4, 2)
        assert {g["plu_topic"] for g in last["gateways"]} == {plu_topic_of("gw1"), plu_topic_of("gw2")}

        preview = client.get(f"/api/v1/catalog/stores/{world.store}/pricelist").json()
        assert preview["plu"] == [
            {"plu": 77, "product_id": str(ham), "name": "Ветчина", "price_per_kg": 65000, "shelf_life_days": None,
             "barcode_prefix": "22", "item_digits": 5, "measure": "weight", "item_code": 77},
            {"plu": 123, "product_id": str(cheese), "name": "Сыр Российский", "price_per_kg": 79900,
             "shelf_life_days": 30, "barcode_prefix": "22", "item_digits": 5, "measure": "weight", "item_code": 123},
        ]
        missing = client.post("/api/v1/catalog/stores/999999/publish")
        assert missing.status_code == 404 and missing.json()["code"] == "store_not_found"

    for gw in ("gw1", "gw2"):  # the offline gateway finds both on the broker when it connects
        both = retained_many(mqtt_url, [topic_of(gw), plu_topic_of(gw)])
        got = decode(PriceList, both[topic_of(gw)])
        plus = decode(PluList, both[plu_topic_of(gw)])
        assert got.version == plus.version == 2  # published together, under one version
        assert [(p.plu, p.product_id, p.name, p.price_per_kg, p.shelf_life_days, p.item_code, p.barcode_prefix)
                for p in plus.items] == [(77, str(ham), "Ветчина", 65000, None, 77, "22"),
                                         (123, str(cheese), "Сыр Российский", 79900, 30, 123, "22")]
        items = {i.product_id: i for i in got.items}
        assert set(items) == {str(milk), str(cheese), str(ham), str(bad_life)}  # no price / semi-finished: not sold
        assert str(no_price) not in items
        m, c = items[str(milk)], items[str(cheese)]
        assert (m.price, m.vat, m.measure, m.barcodes, m.plu, m.marked) == (8990, "vat_general", "piece", (MILK,),
                                                                            None, False)
        assert (c.price, c.vat, c.measure, c.plu) == (79900, "vat10", "kg", 123)


def test_future_price_is_published_when_it_takes_effect_and_the_version_grows(
    world: World, settings: CloudSettings, sessions: Any, mqtt_url: str, topic_of: Any, cleanup: list[str]
) -> None:
    bread = world.product("BREAD", name="Хлеб Бородинский", barcode="4607001234562")
    price(world, bread, "55.00", T0)
    add_gateway(world, "gw1", online=False)
    cleanup.append(topic_of("gw1"))
    tid = world.tenant_id

    def run(now: datetime) -> list[publish.PublishResult]:
        return [r for r in publish.publish_due(sessions, settings, now, tenant_id=tid) if r.store_id == world.store]

    (first,) = run(T0 + timedelta(minutes=1))  # never published: published
    assert first.published and first.version == 1
    assert retained(mqtt_url, topic_of("gw1")).items[0].price == 5500
    assert run(T0 + timedelta(minutes=2)) == []  # nothing changed: the store is not even due

    change = T0 + timedelta(days=1)
    price(world, bread, "59.00", change)  # effective tomorrow
    assert run(T0 + timedelta(minutes=3)) == []  # not in force yet: not published
    assert run(change - timedelta(seconds=1)) == []
    got = retained(mqtt_url, topic_of("gw1"))
    assert (got.version, got.items[0].price) == (1, 5500)

    (taken,) = run(change + timedelta(seconds=30))  # the periodic run after it took effect
    assert taken.published and taken.version == 2
    got = retained(mqtt_url, topic_of("gw1"))
    assert (got.version, got.items[0].price) == (2, 5900)
    assert run(change + timedelta(minutes=1)) == []

    # a correction entered now, effective before the last build: found by its new row, not by its date
    price(world, bread, "57.00", change + timedelta(seconds=10))
    (fixed,) = run(change + timedelta(minutes=2))
    assert fixed.published and fixed.version == 3
    assert retained(mqtt_url, topic_of("gw1")).items[0].price == 5700
    price(world, bread, "50.00", change - timedelta(hours=1))  # backdated but superseded: the list is unchanged
    (same,) = run(change + timedelta(minutes=3))
    assert not same.published and same.version == 3

    # the Celery task (eager here) runs the same code with the real clock: the list is current, nothing to do
    done = publish_due_price_lists.apply(kwargs={"database_url": settings.database_url, "mqtt_url": mqtt_url,
                                                 "bus_root": settings.bus_root,
                                                 "now": (change + timedelta(minutes=4)).isoformat()}).get()
    assert [d for d in done if d["store_id"] == world.store] == []


def test_store_without_gateway_and_vat_mapping(world: World, sessions: Any) -> None:
    product = world.product("TEA", name="Чай")
    price(world, product, "100.00", T0)
    with world.s() as s:
        assert (world.tenant_id, world.store) not in publish.stores_due(s, T0 + timedelta(hours=1), world.tenant_id)
        store = s.get_one(Store, world.store)
        store.timezone = "Asia/Vladivostok"
        assert publish.local_date(store, datetime(2025, 12, 31, 15, 0, tzinfo=UTC)).isoformat() == "2026-01-01"
    rates = {"standard": 2200, "reduced": 1000, "zero": 0, "none": None}
    assert [publish.fiscal_vat(k, rates) for k in ("standard", "reduced", "zero", "none", "vat5", "odd")] == [
        "vat_general", "vat10", "vat0", "none", "vat5", None]
