"""The label-scale family end to end: the real CAS driver over TCP to the CAS simulator, the
real broker, the gateway's journal. What the scale holds is checked on the simulator itself."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.config import DeviceConfig, GatewayConfig
from gateway.runtime import Gateway
from protocols.bus import DeviceKind
from simulators.label_scale.cas import CasLabelScaleConfig, CasLabelScaleSimulator
from tests.gateway.support import BusWatcher, Message, command, make_config, wait_until

pytestmark = pytest.mark.integration

DEVICE = "label1"
MAX_PRICE = 1_000_000  # 10 000 ₽/kg: the simulated scale refuses dearer PLUs with E84


def table(count: int = 20, first: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "plu": n,
            "name": f"Сыр Российский {n}",
            "price_per_kg": 54_990 + n,
            "shelf_life_days": 5 + n % 3,
            "item_code": 1000 + n,
            "barcode_format": 1,
        }
        for n in range(first, first + count)
    ]


@pytest.fixture
def scale() -> Iterator[CasLabelScaleSimulator]:
    sim = CasLabelScaleSimulator(CasLabelScaleConfig(max_price=MAX_PRICE))
    yield sim
    sim.stop()


@pytest.fixture
def rig(
    tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str, scale: CasLabelScaleSimulator
) -> Iterator[tuple[Gateway, BusWatcher]]:
    host, port = scale.serve_tcp(0)
    device = DeviceConfig(
        id=DEVICE,
        kind=DeviceKind.LABEL_SCALE,
        driver="cas",
        url=f"tcp://{host}:{port}",
        options={"poll_interval_s": 0.1, "timeout": 1.0},
    )
    config: GatewayConfig = make_config(tmp_path, mqtt_url, bus_root, bus_tenant, devices=[device])
    watcher = BusWatcher(mqtt_url, [f"{config.address.prefix}/#"])
    gw = Gateway(config, device_backoff=(0.1, 0.3)).start()
    try:
        watcher.wait_for(
            lambda m: m.topic == gw.address.device_status(DEVICE) and m.json()["state"] == "online"
        )
        yield gw, watcher
    finally:
        gw.stop()
        watcher.close()


def send(
    gw: Gateway,
    watcher: BusWatcher,
    action: str,
    command_id: str,
    args: dict[str, Any],
    *,
    status: str | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Publish a command; return its final reply (or the first with ``status``)."""
    seen = len(watcher.matching(lambda m: m.topic == gw.address.reply(command_id)))
    watcher.publish(gw.address.command(DEVICE, action), command(command_id, args=args))
    final = {status} if status else {"done", "failed", "duplicate"}

    def fresh(m: Message) -> bool:
        if m.topic != gw.address.reply(command_id) or m.json()["status"] not in final:
            return False
        return watcher.matching(lambda x: x.topic == m.topic).index(m) >= seen

    return watcher.wait_for(fresh, timeout=timeout).json()


def retained_status(gw: Gateway, mqtt_url: str) -> dict[str, Any]:
    """The device status as a newcomer gets it from the broker (so: retained)."""
    late = BusWatcher(mqtt_url, [gw.address.device_status(DEVICE)])
    try:
        message = late.wait_for(lambda m: m.retain)
        return message.json()
    finally:
        late.close()


def test_upload_is_idempotent_per_command_and_on_the_scale(
    rig: tuple[Gateway, BusWatcher], scale: CasLabelScaleSimulator, mqtt_url: str
) -> None:
    gw, watcher = rig
    first = send(gw, watcher, "upload_plu", "up-1", {"items": table()})
    assert first["status"] == "done", first
    result = first["result"]
    assert (result["total"], result["written"], result["unchanged"], result["failed"]) == (20, 20, 0, 0)
    assert result["complete"] is True and [p["plu"] for p in result["plus"]] == list(range(1, 21))
    assert len(scale.plus) == 20 and scale.writes == 20
    stored = scale.plus[(1, 7)]
    assert (stored.name, stored.price, stored.shelf_life_days, stored.item_code) == (
        "Сыр Российский 7",
        54_997,
        6,
        1007,
    )
    label = scale.print_label(7, Decimal("0.500"))  # what the shop floor gets from that upload
    assert label.total == 27_499 and label.barcode[:12] == "220100700500"  # prefix, item code, grams

    again = send(gw, watcher, "upload_plu", "up-2", {"items": table()})
    assert again["status"] == "done"
    assert (again["result"]["written"], again["result"]["unchanged"], again["result"]["failed"]) == (0, 20, 0)
    assert scale.writes == 20, "the same table written twice"

    # A repeat of up-1 must be answered from the journal without touching the scale: a PLU
    # removed behind the gateway's back stays removed.
    del scale.plus[(1, 3)]
    repeat = send(gw, watcher, "upload_plu", "up-1", {"items": table()})
    assert repeat["status"] == "duplicate" and repeat["result"]["written"] == 20
    assert (1, 3) not in scale.plus and scale.writes == 20

    wait_until(lambda: (gw.devices.snapshots()[DEVICE].data["last_upload"] or {}).get("unchanged") == 20)
    status = wait_until(
        lambda: (s := retained_status(gw, mqtt_url))["data"]["last_upload"]["unchanged"] == 20 and s
    )
    assert status["state"] == "online" and status["data"]["plus_confirmed"] == 20
    assert status["data"]["plu_count"] is None  # the CAS protocol cannot report it


def test_a_bad_plu_fails_alone_and_a_bad_table_is_refused_whole(
    rig: tuple[Gateway, BusWatcher], scale: CasLabelScaleSimulator
) -> None:
    gw, watcher = rig
    items = table(4, first=30)
    items[1]["name"] = "Колбаса сырокопчёная Брауншвейгская высший сорт"  # 47 bytes of cp1251
    items[2]["price_per_kg"] = MAX_PRICE + 1  # above what the scale can show
    reply = send(gw, watcher, "upload_plu", "bad-1", {"items": items})
    assert reply["status"] == "done", reply
    result = reply["result"]
    assert (result["written"], result["unchanged"], result["failed"], result["complete"]) == (2, 0, 2, False)
    assert "с ошибкой 2 из 4" in result["summary"]
    by_plu = {p["plu"]: p for p in result["plus"]}
    assert by_plu[30]["status"] == by_plu[33]["status"] == "written"
    assert by_plu[31]["code"] == "plu_invalid" and "ПЛУ 31: название" in by_plu[31]["reason"]
    assert "40" in by_plu[31]["reason"] and "47" in by_plu[31]["reason"]
    assert by_plu[32]["code"] == "label_scale_rejected" and "Весы отказали" in by_plu[32]["reason"]
    assert set(scale.plus) == {(1, 30), (1, 33)}

    writes = scale.writes
    broken = table(3, first=40)
    broken[1]["price_per_kg"] = 123.45  # roubles instead of kopecks
    del broken[2]["name"]
    refused = send(gw, watcher, "upload_plu", "bad-2", {"items": broken})
    assert (refused["status"], refused["code"]) == ("failed", "invalid_args")
    assert "позиция 2 (ПЛУ 41" in refused["message"] and "нужно целое число" in refused["message"]
    assert "позиция 3 (ПЛУ 42), название: не задано" in refused["message"]
    twice = send(gw, watcher, "upload_plu", "bad-3", {"items": [*table(2), table(1)[0]]})
    assert (
        twice["code"] == "invalid_args"
        and "ПЛУ 1 (отдел 1) встречается дважды: позиции 1 и 3" in twice["message"]
    )
    assert scale.writes == writes and (1, 40) not in scale.plus, "a refused table was half-written"

    deleted = send(gw, watcher, "delete_plu", "del-1", {"plus": [30, 99]})
    assert deleted["status"] == "done"
    assert [(p["plu"], p["status"]) for p in deleted["result"]["plus"]] == [(30, "deleted"), (99, "absent")]
    assert set(scale.plus) == {(1, 33)}


def test_unplugged_scale_goes_offline_and_comes_back(
    rig: tuple[Gateway, BusWatcher], scale: CasLabelScaleSimulator, mqtt_url: str
) -> None:
    gw, watcher = rig
    assert send(gw, watcher, "status", "st-1", {})["result"]["reachable"] is True

    scale.unplug()
    offline = watcher.wait_for(
        lambda m: m.topic == gw.address.device_status(DEVICE) and m.json()["state"] == "offline", timeout=10
    )
    assert "недоступны" in offline.json()["detail"]
    assert retained_status(gw, mqtt_url)["state"] == "offline"
    reply = send(gw, watcher, "upload_plu", "off-1", {"items": table(5)})
    assert (reply["status"], reply["code"]) == ("failed", "device_offline")
    assert f"Весы с печатью этикеток '{DEVICE}' недоступны" in reply["message"]
    assert scale.plus == {}

    scale.plug()
    watcher.wait_for(
        lambda m: (
            m.topic == gw.address.device_status(DEVICE)
            and m.json()["state"] == "online"
            and watcher.messages.index(m) > watcher.messages.index(offline)
        ),
        timeout=10,
    )
    # The sender's retry of the failed command runs now (nothing happened the first time).
    retry = send(gw, watcher, "upload_plu", "off-1", {"items": table(5)})
    assert retry["status"] == "done" and retry["result"]["written"] == 5
    assert len(scale.plus) == 5
    wait_until(lambda: gw.devices.snapshots()[DEVICE].state == "online")
    assert send(gw, watcher, "status", "st-2", {})["result"]["plus_confirmed"] == 5
