"""The fiscal family on the real broker, in-process gateway, Shtrih-M simulator on a real pty."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import BrokerConfig, DeviceConfig, GatewayConfig, OutboxConfig
from gateway.runtime import Gateway
from protocols.bus import DeviceKind
from protocols.shtrih import messages as M
from simulators.fiscal import ShtrihDevice, SimConfig
from tests.gateway.fiscal.rig import (
    CASHIER,
    DEVICE,
    FIVE_ITEMS_TOTAL,
    Bus,
    Register,
    device_options,
    five_items,
)
from tests.gateway.support import BusWatcher, wait_until

pytestmark = pytest.mark.integration


class PaperRunsOut(ShtrihDevice):
    """Runs out of paper while printing the ``after``-th line of the next receipt."""

    def __init__(self, config: SimConfig) -> None:
        super().__init__(config)
        self.out_after: int | None = None

    def _do_ff46(self, req: M.OperationV2) -> M.Answer:
        if self.out_after is not None and self.receipt is not None and len(self.receipt.lines) >= self.out_after:
            self.paper_out()
            self.out_after = None
        return super()._do_ff46(req)


@pytest.fixture
def register(tmp_path: Path) -> Iterator[Register]:
    dev = PaperRunsOut(SimConfig(state_file=tmp_path / "fn.json", tape_file=tmp_path / "tape.txt"))
    reg = Register(tmp_path, dev)
    yield reg
    reg.stop()


@pytest.fixture
def rig(tmp_path: Path, register: Register, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Bus]:
    config = GatewayConfig(
        tenant=bus_tenant, store="s1", gateway="gwf", bus_root=bus_root, data_dir=tmp_path / "gw", heartbeat_s=0,
        broker=BrokerConfig(url=mqtt_url, keepalive=5, reconnect_min_s=0.1, reconnect_max_s=0.5,
                            client_id=f"gw-{uuid.uuid4().hex[:10]}"),
        outbox=OutboxConfig(require_cloud_online=False),
        devices=[DeviceConfig(id=DEVICE, kind=DeviceKind.FISCAL_REGISTER, driver="shtrih", url=register.url,
                              options=device_options(tmp_path))],
    )
    watcher = BusWatcher(mqtt_url, [f"{config.address.prefix}/#"])
    gw = Gateway(config).start()
    try:
        bus = Bus(watcher, config.address.prefix)
        bus.wait_online()
        yield bus
    finally:
        gw.stop()
        watcher.close()


def _status(bus: Bus, predicate: Any) -> dict[str, Any]:
    topic = f"{bus.prefix}/dev/{DEVICE}/status"
    return bus.watcher.wait_for(lambda m: m.topic == topic and predicate(m.json()["data"]), timeout=10).json()


_QUERIES = frozenset({0x10, 0xFF01, 0xFF03, 0xFF40})  # the status poll


def _non_queries(register: Register) -> list[int]:
    return [c for c in register.dev.commands if c not in _QUERIES]


def test_a_shift_on_the_bus(rig: Bus, register: Register) -> None:
    inventory = rig.watcher.wait_for(lambda m: m.topic == f"{rig.prefix}/inventory", timeout=10).json()
    kkt = inventory["devices"][0]
    assert (kkt["kind"], kkt["driver"]) == ("fiscal_register", "shtrih")
    assert set(kkt["capabilities"]) == {"open_shift", "sell", "refund", "correct", "x_report", "close_shift",
                                        "status", "check_marking_code"}
    assert set(kkt["events"]) == {"fiscal_document", "shift_opened", "shift_closed"}
    _status(rig, lambda d: d.get("shift") == "closed" and d["paper"] is True and d["last_fd"] == 0)

    opened = rig.call("open_shift", "o-1", {"cashier": CASHIER})
    assert opened["status"] == "done" and opened["result"]["kind"] == "shift_open"
    sale = rig.call("sell", "s-1", five_items())
    assert sale["status"] == "done", sale
    doc = sale["result"]
    fn = register.receipts()[0]
    assert doc == {**doc, "kind": "receipt", "fd_number": 2, "fiscal_sign": fn["fiscal_sign"], "shift_number": 1,
                   "receipt_number": 1, "fn_number": register.dev.fn.fn_number, "sign": 1, "total": FIVE_ITEMS_TOTAL,
                   "change": 100_000 - FIVE_ITEMS_TOTAL}
    assert doc["items"][1] == {"name": "Сыр Российский весовой", "quantity": "0.734", "price": 45990,
                               "amount": 33757, "vat": "vat10", "measure": 11, "item_type": 1, "payment_method": 4,
                               "marked": False}
    assert doc["payments"]["cash"] == 100_000 and doc["issued_at"].startswith(fn["issued_at"][:16])
    event = rig.watcher.wait_for(lambda m: m.topic.endswith("/evt/fiscal_document"), timeout=10).json()
    assert event["data"] == doc

    refund = rig.call("refund", "r-1", {"items": [five_items()["items"][2]], "payments": {"cash": 700}})
    assert (refund["status"], refund["result"]["sign"], refund["result"]["total"]) == ("done", 2, 700)
    check = rig.call("check_marking_code", "k-1", {"code": "0104600439931256215ABCDEfghijk\x1d93dGVz"})
    assert check["status"] == "done" and check["result"]["valid"] is True
    assert rig.call("x_report", "x-1", {})["status"] == "done"
    status = rig.call("status", "st-1", {})["result"]
    assert (status["shift"], status["last_fd"], status["fn_number"]) == ("open", 3, register.dev.fn.fn_number)
    closed = rig.call("close_shift", "c-1", {"cashier": CASHIER})
    assert closed["result"]["kind"] == "shift_close" and closed["result"]["fd_number"] == 4
    wait_until(lambda: rig.events("shift_closed"), timeout=10)
    assert rig.events("shift_opened")[0]["data"]["fd_number"] == 1
    _status(rig, lambda d: d.get("shift") == "closed" and d["last_fd"] == 4)
    assert "X-ОТЧЁТ" in register.tape() and "ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ" in register.tape()


def test_paper_out_mid_receipt_fails_in_russian_and_fiscalizes_nothing(rig: Bus, register: Register) -> None:
    assert rig.call("open_shift", "o-1", {"cashier": CASHIER})["status"] == "done"
    assert isinstance(register.dev, PaperRunsOut)
    register.dev.out_after = 2  # the third line meets an empty roll
    failed = rig.call("sell", "p-1", five_items())
    assert (failed["status"], failed["code"]) == ("failed", "fiscal_paper_out")
    assert "Нет чековой ленты" in failed["message"]
    assert register.receipts() == [] and register.dev.fn.last_fd == 1
    _status(rig, lambda d: d.get("paper") is False and "нет бумаги" in d["problems"])

    register.dev.paper_in()
    # the register proved nothing was fiscalized: the same command_id runs again (after the
    # binding asked the FN for the failed attempt's document), not a duplicate of the failure
    again = rig.call("sell", "p-1", five_items())
    assert again["status"] == "done", again
    assert rig.watcher.matching(lambda m: m.topic.endswith("/reply/p-1")
                                and m.json().get("message") == "running again: fiscal_paper_out")
    assert again["result"]["fd_number"] == 2 and len(register.receipts()) == 1
    assert "ЧЕК АННУЛИРОВАН" in register.tape()  # the half-printed receipt, cancelled before the next one
    # and once done, a repeat is the stored sale
    dup = rig.call("sell", "p-1", five_items())
    assert (dup["status"], dup["original"], dup["result"]) == ("duplicate", "done", again["result"])
    assert len(register.receipts()) == 1


def test_malformed_receipts_are_refused_before_the_register(rig: Bus, register: Register) -> None:
    assert rig.call("open_shift", "o-1", {"cashier": CASHIER})["status"] == "done"
    commands_before = _non_queries(register)
    short = rig.call("sell", "m-1", five_items(cash=100))
    assert (short["status"], short["code"]) == ("failed", "invalid_args")
    assert "Сумма всех видов оплаты 1.00 меньше итога чека 719.37" in short["message"]
    as_float = five_items()
    as_float["items"][0]["price"] = 89.9
    floats = rig.call("sell", "m-2", as_float)
    assert floats["code"] == "invalid_args" and "items.0.price" in floats["message"]
    piece = five_items()
    piece["items"][0]["quantity"] = "1.5"
    fractional = rig.call("sell", "m-3", piece)
    assert fractional["code"] == "invalid_args" and "дробным количеством" in fractional["message"]
    wrong_sign = rig.call("sell", "m-4", {**five_items(), "sign": 2})
    assert wrong_sign["code"] == "invalid_args"
    empty = rig.call("sell", "m-5", {"items": [], "payments": {"cash": 0}})
    assert empty["code"] == "invalid_args" and "нет ни одной позиции" in empty["message"]
    assert _non_queries(register) == commands_before, "nothing but status polls reached the register"
    # nothing was journaled either: the corrected receipt under the same id sells
    fixed = rig.call("sell", "m-1", five_items())
    assert fixed["status"] == "done" and len(register.receipts()) == 1


def test_command_id_reused_with_other_args_is_refused(rig: Bus, register: Register) -> None:
    assert rig.call("open_shift", "o-1", {"cashier": CASHIER})["status"] == "done"
    assert rig.call("sell", "u-1", five_items())["status"] == "done"
    other = five_items()
    other["items"] = other["items"][:1]
    reused = rig.call("sell", "u-1", other)
    assert (reused["status"], reused["code"]) == ("failed", "command_id_reused")
    assert len(register.receipts()) == 1


def test_paper_out_makes_the_device_status_error_until_paper_is_loaded(rig: Bus, register: Register) -> None:
    topic = f"{rig.prefix}/dev/{DEVICE}/status"
    register.dev.paper_out()
    error = rig.watcher.wait_for(lambda m: m.topic == topic and m.json()["state"] == "error", timeout=10).json()
    assert error["detail"] == "ККТ: нет бумаги" and error["data"]["paper"] is False
    register.dev.paper_in()
    mark = len(rig.watcher.messages)
    rig.watcher.wait_for(lambda m: m.topic == topic and m.json()["state"] == "online"
                         and rig.watcher.messages.index(m) >= mark, timeout=10)
