"""The cloud's retained PLU list reaches the store's label scales: the real broker, the real CAS
driver over TCP to the CAS simulator, the gateway's SQLite copy. What the scale holds is checked
on the simulator itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import DeviceConfig, GatewayConfig
from gateway.runtime import Gateway
from protocols.bus import DeviceKind, encode
from protocols.bus.sales import PluItem, PluList
from simulators.label_scale.cas import CasLabelScaleSimulator
from tests.gateway.support import BusWatcher, Message, command, make_config, wait_until

pytestmark = pytest.mark.integration

DEVICE = "label1"


def plu_list(version: int, **prices: int) -> PluList:
    items = [
        PluItem(plu=101, product_id="p101", name="Сыр Российский", price_per_kg=79_900, shelf_life_days=30,
                item_code=101),
        PluItem(plu=102, product_id="p102", name="Ветчина", price_per_kg=65_000, shelf_life_days=None, item_code=102),
        PluItem(plu=103, product_id="p103", name="Колбаса докторская", price_per_kg=72_000, shelf_life_days=7,
                item_code=103),
    ]
    return PluList(version=version, items=tuple(
        i.model_copy(update={"price_per_kg": prices.get(f"p{i.plu}", i.price_per_kg)}) for i in items
    ))


def table(scale: CasLabelScaleSimulator) -> dict[int, tuple[str, int, int, int]]:
    return {n: (p.name, p.price, p.shelf_life_days, p.item_code) for (_, n), p in scale.plus.items()}


def expected(plus: PluList) -> dict[int, tuple[str, int, int, int]]:
    return {i.plu: (i.name, i.price_per_kg, i.shelf_life_days or 0, i.item_code) for i in plus.items}


def device(scale: CasLabelScaleSimulator) -> DeviceConfig:
    host, port = scale.serve_tcp(0)
    return DeviceConfig(id=DEVICE, kind=DeviceKind.LABEL_SCALE, driver="cas", url=f"tcp://{host}:{port}",
                        options={"poll_interval_s": 0.1, "timeout": 1.0})


@pytest.fixture
def scales() -> Iterator[list[CasLabelScaleSimulator]]:
    made: list[CasLabelScaleSimulator] = []
    yield made
    for sim in made:
        sim.stop()


@pytest.fixture
def bus(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[tuple[GatewayConfig, BusWatcher]]:
    config = make_config(tmp_path, mqtt_url, bus_root, bus_tenant, devices=[])
    watcher = BusWatcher(mqtt_url, [f"{config.address.prefix}/#"])
    yield config, watcher
    watcher.publish(f"{config.address.prefix}/gw/plulist", b"", retain=True)  # keep the broker tidy
    watcher.close()


def synced(watcher: BusWatcher, gw_prefix: str) -> list[dict[str, Any]]:
    topic = f"{gw_prefix}/dev/{DEVICE}/evt/plu_synced"
    return [m.json()["data"] for m in watcher.matching(lambda m: m.topic == topic)]


def wait_synced(watcher: BusWatcher, gw_prefix: str, count: int, timeout: float = 10.0) -> dict[str, Any]:
    wait_until(lambda: len(synced(watcher, gw_prefix)) >= count, timeout=timeout)
    return synced(watcher, gw_prefix)[count - 1]


def online(watcher: BusWatcher, gw: Gateway, after: int = 0) -> Message:
    return watcher.wait_for(lambda m: m.topic == gw.address.device_status(DEVICE) and m.json()["state"] == "online"
                            and watcher.messages.index(m) >= after, timeout=10)


def test_a_newer_list_is_uploaded_an_older_one_ignored(
    tmp_path: Path, bus: tuple[GatewayConfig, BusWatcher], scales: list[CasLabelScaleSimulator]
) -> None:
    config, watcher = bus
    scale = CasLabelScaleSimulator()
    scales.append(scale)
    config = config.model_copy(update={"devices": [device(scale)]})
    prefix = config.address.prefix
    topic = f"{prefix}/gw/plulist"
    gw = Gateway(config, device_backoff=(0.1, 0.3)).start()
    try:
        online(watcher, gw)
        assert scale.plus == {} and synced(watcher, prefix) == []  # nothing stored yet: nothing to upload

        v1 = plu_list(1)
        watcher.publish(topic, encode(v1), retain=True)
        first = wait_synced(watcher, prefix, 1)
        assert (first["version"], first["reason"]) == (1, "version")
        assert (first["total"], first["written"], first["unchanged"], first["failed"], first["complete"]) == (
            3, 3, 0, 0, True)
        assert table(scale) == expected(v1) and scale.writes == 3

        v2 = plu_list(2, p102=66_500)  # one price changed: exactly one PLU written
        watcher.publish(topic, encode(v2), retain=True)
        second = wait_synced(watcher, prefix, 2)
        assert (second["version"], second["written"], second["unchanged"], second["failed"]) == (2, 1, 2, 0)
        assert table(scale) == expected(v2) and scale.writes == 4

        watcher.publish(topic, encode(plu_list(1)), retain=True)  # a late publish of an old list
        v3 = plu_list(3, p102=66_500, p103=73_000)
        watcher.publish(topic, encode(v3), retain=True)  # stored in arrival order: v1 was seen before v3
        third = wait_synced(watcher, prefix, 3)
        assert (third["version"], third["written"], third["unchanged"]) == (3, 1, 2)
        assert [e["version"] for e in synced(watcher, prefix)] == [1, 2, 3]  # v1 changed nothing
        assert table(scale) == expected(v3) and scale.writes == 5
        assert gw.label_scales.store.version == 3
        wait_until(lambda: gw.devices.snapshots()[DEVICE].data["plu_list_version"] == 3)

        # rescan: the online scale is checked against the stored list, nothing to write
        watcher.publish(gw.address.gateway_command("rescan"), command("rs-plu"))
        again = wait_synced(watcher, prefix, 4)
        assert (again["version"], again["reason"], again["written"], again["unchanged"]) == (3, "rescan", 0, 3)
        assert scale.writes == 5
    finally:
        gw.stop()


def test_a_scale_plugged_in_later_gets_the_stored_list_even_with_the_cloud_gone(
    tmp_path: Path, bus: tuple[GatewayConfig, BusWatcher], scales: list[CasLabelScaleSimulator]
) -> None:
    config, watcher = bus
    prefix = config.address.prefix
    topic = f"{prefix}/gw/plulist"
    scale = CasLabelScaleSimulator()
    scales.append(scale)
    config = config.model_copy(update={"devices": [device(scale)]})
    scale.unplug()  # not there when the list arrives
    listed = plu_list(7)
    watcher.publish(topic, encode(listed), retain=True)  # published while the gateway was off: retained
    gw = Gateway(config, device_backoff=(0.1, 0.3)).start()
    try:
        wait_until(lambda: gw.label_scales.store.version == 7, timeout=10)
        assert scale.plus == {} and synced(watcher, prefix) == []
        mark = len(watcher.messages)
        scale.plug()
        online(watcher, gw, after=mark)
        event = wait_synced(watcher, prefix, 1)
        assert (event["version"], event["reason"], event["written"], event["complete"]) == (7, "online", 3, True)
        assert table(scale) == expected(listed)
    finally:
        gw.stop()

    # The cloud is gone and the broker lost the retained list; a new (empty) scale is plugged in and
    # the gateway restarts: the scale gets the list the gateway stored.
    watcher.publish(topic, b"", retain=True)
    fresh = CasLabelScaleSimulator()
    scales.append(fresh)
    config = config.model_copy(update={"devices": [device(fresh)]})
    gw = Gateway(config, device_backoff=(0.1, 0.3)).start()
    try:
        event = wait_synced(watcher, prefix, 2)
        assert (event["version"], event["reason"], event["written"]) == (7, "online", 3)
        assert table(fresh) == expected(listed)
        assert table(scale) == expected(listed)  # the first scale kept its table
    finally:
        gw.stop()


def test_a_plu_the_scale_refuses_fails_alone(
    tmp_path: Path, bus: tuple[GatewayConfig, BusWatcher], scales: list[CasLabelScaleSimulator]
) -> None:
    config, watcher = bus
    scale = CasLabelScaleSimulator()
    scales.append(scale)
    config = config.model_copy(update={"devices": [device(scale)]})
    prefix = config.address.prefix
    long_name = "Колбаса сырокопчёная Брауншвейгская высший сорт"  # 47 bytes of cp1251: the scale holds 40
    listed = PluList(version=1, items=(
        *plu_list(1).items,
        PluItem(plu=104, product_id="p104", name=long_name, price_per_kg=150_000, item_code=104),
        PluItem(plu=105, product_id="p105", name="Хамон", price_per_kg=2**32, item_code=105),  # above 32 bits
    ))
    gw = Gateway(config, device_backoff=(0.1, 0.3)).start()
    try:
        online(watcher, gw)
        watcher.publish(f"{prefix}/gw/plulist", encode(listed), retain=True)
        event = wait_synced(watcher, prefix, 1)
        assert (event["total"], event["written"], event["failed"], event["complete"]) == (5, 3, 2, False)
        failed = {p["plu"]: p for p in event["failed_plus"]}
        assert set(failed) == {104, 105} and failed[104]["code"] == failed[105]["code"] == "plu_invalid"
        assert set(table(scale)) == {101, 102, 103}
        assert gw.devices.snapshots()[DEVICE].data["plu_list_version"] is None  # not whole on the scale
    finally:
        gw.stop()
