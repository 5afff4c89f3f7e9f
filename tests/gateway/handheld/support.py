"""Helpers for handheld tests: a gateway with the handheld server on a free port, tasks, commands."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

from gateway.config import DeviceConfig, HandheldConfig, HandheldUser
from gateway.runtime import Gateway
from protocols.barcodes import WeightBarcode, WeightBarcodeFormat, ean13, encode_weight_barcode
from protocols.bus import DeviceKind
from tests.gateway.support import BusWatcher, make_config, wait_until

MILK = "4601234567893"
BREAD = "4607001234562"
CHEESE_PLU = 123
GTIN_WATER = "04600000000015"
PIN = "2580"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def handheld_devices(terminals: list[str]) -> list[DeviceConfig]:
    pool = DeviceConfig(id="handhelds", kind=DeviceKind.HANDHELD, driver="pool", url="local")
    return [pool, *(DeviceConfig(id=t, kind=DeviceKind.HANDHELD, driver="web", url="wifi") for t in terminals)]


def handheld_config(tmp_path: Path, mqtt_url: str, bus_root: str, tenant: str, *, port: int | None = None,
                    terminals: list[str] | None = None, **handheld: Any) -> Any:
    base = make_config(tmp_path, mqtt_url, bus_root, tenant, devices=handheld_devices(terminals or ["tsd1", "tsd2"]))
    options = {"host": "127.0.0.1", "port": port if port is not None else free_port(), "store_pin": PIN,
               "users": [HandheldUser(login="ivanova", name="Иванова А.", pin="1234")], **handheld}
    return base.model_copy(update={"handheld": HandheldConfig(**options)})


def start_gateway(config: Any, watcher: BusWatcher) -> Gateway:
    gw = Gateway(config).start()
    assert gw.link.wait_connected(5)
    watcher.wait_for(lambda m: m.topic == gw.address.state() and m.json()["online"])
    wait_until(lambda: gw.devices.snapshots()["handhelds"].state == "online")
    return gw


def base_url(gw: Gateway) -> str:
    assert gw.handheld is not None
    return f"http://127.0.0.1:{gw.handheld.server.port}"


def weight_label(plu: int, grams: int) -> str:
    return encode_weight_barcode(WeightBarcode("22", plu, grams), WeightBarcodeFormat())


def marking(gtin: str, serial: str) -> str:
    return f"01{gtin}21{serial}\x1d93AbCd"


def count_task(task_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "task_id": task_id or f"inv-{uuid.uuid4().hex[:8]}",
        "kind": "count",
        "title": "Молочный отдел",
        "lines": [
            {"line_no": 1, "product_id": "milk", "name": "Молоко 3,2% 1 л", "barcodes": [MILK], "expected_qty": "5",
             "unit": "pcs"},
            {"line_no": 2, "product_id": "bread", "name": "Хлеб Бородинский", "barcodes": [BREAD],
             "expected_qty": "2", "unit": "pcs"},
            {"line_no": 3, "product_id": "cheese", "name": "Сыр Российский", "plu": CHEESE_PLU,
             "expected_qty": "1.5", "unit": "kg"},
            {"line_no": 4, "product_id": "water", "name": "Вода 0,5 л", "gtin": GTIN_WATER, "marked": True,
             "expected_qty": "3", "unit": "pcs"},
        ],
        **extra,
    }


def assign(watcher: BusWatcher, gw: Gateway, task: dict[str, Any], command_id: str | None = None) -> dict[str, Any]:
    """Send ``assign_task`` over the real broker and return the final reply."""
    cid = command_id or f"c-{uuid.uuid4().hex[:12]}"
    body = {"v": 1, "ts": "2026-01-01T00:00:00Z", "command_id": cid, "args": task}
    seen = {id(m) for m in watcher.matching(lambda m: True)}
    watcher.publish(gw.address.command("handhelds", "assign_task"), json.dumps(body))
    reply = watcher.wait_for(
        lambda m: id(m) not in seen and m.topic == gw.address.reply(cid)
        and m.json()["status"] not in ("accepted", "progress"),
        timeout=10,
    )
    result: dict[str, Any] = reply.json()
    return result


def events(watcher: BusWatcher, gw: Gateway, event_type: str) -> list[dict[str, Any]]:
    suffix = f"/evt/{event_type}"
    return [m.json() for m in watcher.matching(lambda m: m.topic.startswith(gw.address.prefix) and m.topic.endswith(suffix))]


assert ean13("460123456789") == MILK and ean13("460700123456") == BREAD
