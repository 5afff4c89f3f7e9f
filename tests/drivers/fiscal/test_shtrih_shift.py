"""ShtrihFiscalRegister ↔ simulated Shtrih-M register over a real pty and TCP: a whole shift."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from drivers.errors import DeviceUnavailable, DriverConfigError
from drivers.fiscal import open_fiscal_register
from drivers.fiscal.base import PaperOut, ReceiptRejected, ShiftClosed
from drivers.fiscal.shtrih import ShtrihFiscalRegister
from protocols.fiscal import (
    Cashier,
    Correction,
    CorrectionBasis,
    CorrectionType,
    FiscalDocument,
    Item,
    ItemType,
    MarkingCode,
    Measure,
    PaymentMethod,
    Payments,
    Receipt,
    SettlementSign,
    VatKind,
)
from simulators.fiscal import ShtrihDevice, SimConfig
from simulators.fiscal.state import FnState
from simulators.link import PtyEndpoint, TcpEndpoint

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 3, 2, 10, 15)
CASHIER = Cashier("Иванова Анна", "500100732259")
KM = "0104600439931256215ABCDEfghijk\x1d93dGVz"


def make(tmp_path: Path) -> ShtrihDevice:
    return ShtrihDevice(
        SimConfig(state_file=tmp_path / "fn.json", tape_file=tmp_path / "tape.txt", clock=lambda: NOW)
    )


@pytest.fixture(params=["pty", "tcp"])
def rig(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ShtrihDevice, ShtrihFiscalRegister]]:
    dev = make(tmp_path)
    endpoint: PtyEndpoint | TcpEndpoint
    if request.param == "pty":
        endpoint = PtyEndpoint(dev)
        url = endpoint.start()
    else:
        endpoint = TcpEndpoint(dev)
        host, port = endpoint.start()
        url = f"tcp://{host}:{port}"
    reg = ShtrihFiscalRegister(url, today=NOW.date, enq_timeout=0.3, attempts=3)
    reg.open()
    try:
        yield dev, reg
    finally:
        reg.close()
        endpoint.stop()


def key(doc: FiscalDocument | None) -> tuple[object, ...]:
    assert doc is not None
    return (doc.fd_number, doc.fiscal_sign, doc.issued_at, doc.kind, doc.sign, doc.total, doc.fn_number)


def five_items() -> Receipt:
    items = (
        Item("Молоко 3,2% 1л", D(2), D("89.90"), VatKind.REDUCED),
        Item("Сыр Российский весовой", D("0.734"), D("459.90"), VatKind.REDUCED, measure=Measure.KILOGRAM),
        Item(
            "Вода питьевая 0,5л",
            D(1),
            D("45.00"),
            VatKind.GENERAL,
            item_type=ItemType.MARKED,
            marking=MarkingCode(KM),
        ),
        Item("Пакет-майка", D(1), D("7.00"), VatKind.GENERAL),
        Item("Доставка", D(1), D("150.00"), VatKind.NONE, item_type=ItemType.SERVICE),
    )
    return Receipt(SettlementSign.INCOME, items, Payments(cash=D("500.00"), electronic=D("300.00")), cashier=CASHIER,
                   customer_contact="buyer@example.ru")  # fmt: skip


def test_whole_shift(rig: tuple[ShtrihDevice, ShtrihFiscalRegister], tmp_path: Path) -> None:
    dev, reg = rig
    st = reg.status()
    assert (st.mode, st.shift_open, st.paper_present, st.last_fd_number) == ("shift_closed", False, True, 0)
    with pytest.raises(ShiftClosed) as info:
        reg.x_report()
    assert info.value.device_code == 0x3D and "Смена не открыта" in info.value.message

    opened = reg.open_shift(CASHIER)
    assert (opened.kind, opened.fd_number, opened.shift_number) == ("shift_open", 1, 1)

    sale = reg.sell(five_items())
    assert sale.fd_number == 2 and sale.kind == "receipt"
    assert sale.total == D("179.80") + D("337.57") + D("45.00") + D("7.00") + D("150.00")
    assert (sale.shift_number, sale.receipt_number, sale.fn_number) == (1, 1, dev.fn.fn_number)
    assert sale.fiscal_sign == dev.fn.sign(2, 3, NOW, 1, 71937)
    assert key(reg.last_document()) == key(sale)

    ret = reg.refund(Receipt(SettlementSign.INCOME_RETURN, (Item("Пакет-майка", D(1), D("7.00"), VatKind.GENERAL),),
                             Payments(cash=D("7.00"))))  # fmt: skip
    assert (ret.sign, ret.total, ret.fd_number) == (SettlementSign.INCOME_RETURN, D("7.00"), 3)

    cake_prepaid = Item(
        "Торт «Наполеон»", D(1), D("1500.00"), VatKind.GENERAL, payment_method=PaymentMethod.FULL_PREPAYMENT
    )
    pre = reg.sell(Receipt(SettlementSign.INCOME, (cake_prepaid,), Payments(electronic=D("1500.00"))))
    cake = Item("Торт «Наполеон»", D(1), D("1500.00"), VatKind.GENERAL)
    settle = reg.sell(Receipt(SettlementSign.INCOME, (cake,), Payments(prepayment=D("1500.00"))))
    assert (pre.fd_number, settle.fd_number, settle.total) == (4, 5, D("1500.00"))

    corr = reg.correct(Correction(
        Receipt(SettlementSign.INCOME, (Item("Неучтённая выручка", D(1), D("250.00"), VatKind.GENERAL),), Payments(cash=D("250.00"))),
        CorrectionType.SELF, CorrectionBasis(dt.date(2026, 2, 27)),
    ))  # fmt: skip
    assert (corr.kind, corr.fd_number, corr.total) == ("correction", 6, D("250.00"))

    reg.x_report()
    closed = reg.close_shift(CASHIER)
    assert (closed.kind, closed.fd_number, closed.shift_number) == ("shift_close", 7, 1)
    assert reg.status().mode == "shift_closed"

    tape = (tmp_path / "tape.txt").read_text(encoding="utf-8")
    for text in ("ОТЧЁТ ОБ ОТКРЫТИИ СМЕНЫ", "КАССОВЫЙ ЧЕК / ПРИХОД", "0.734 x 459.90 = 337.57", "[М] товар маркирован",
                 "СДАЧА 80.63", "КАССОВЫЙ ЧЕК / ВОЗВРАТ ПРИХОДА", "ЗАЧЁТ ПРЕДОПЛАТЫ 1500.00", "КАССОВЫЙ ЧЕК КОРРЕКЦИИ",
                 "X-ОТЧЁТ", "ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ", "КАССИР: Иванова Анна", "ПОКУПАТЕЛЬ: buyer@example.ru"):  # fmt: skip
        assert text in tape, text
    assert [c for c in dev.commands if c in (0xFF61, 0xFF69, 0xFF67, 0xFF46)][2:6] == [
        0xFF61,
        0xFF69,
        0xFF67,
        0xFF46,
    ]


def test_paper_out_mid_receipt_then_cancel_and_sell(rig: tuple[ShtrihDevice, ShtrihFiscalRegister]) -> None:
    dev, reg = rig
    reg.open_shift(CASHIER)
    calls = {"n": 0}
    original = dev.execute

    def run_out_after_two_items(body: bytes) -> bytes:
        if body[:2] == b"\xff\x46":
            calls["n"] += 1
            if calls["n"] == 3:
                dev.paper_out()
        return original(body)

    dev.execute = run_out_after_two_items  # type: ignore[method-assign]
    with pytest.raises(PaperOut) as info:
        reg.sell(five_items())
    assert info.value.device_code == 0x6B and info.value.message == "Нет чековой ленты"
    assert dev.fn.last_fd == 1  # nothing fiscalized
    assert reg.status().receipt_open  # the cancellation could not print either
    dev.execute = original  # type: ignore[method-assign]
    dev.paper_in()
    doc = reg.sell(five_items())  # cancels the leftover receipt first
    assert doc.fd_number == 2 and "*** ЧЕК АННУЛИРОВАН ***" in dev.tape


def test_invalid_receipt_sends_nothing(rig: tuple[ShtrihDevice, ShtrihFiscalRegister]) -> None:
    dev, reg = rig
    before = len(dev.commands)
    bad = Receipt(
        SettlementSign.INCOME, (Item("Хлеб", D(1), D("50.00"), VatKind.ZERO),), Payments(cash=D("10.00"))
    )
    with pytest.raises(ReceiptRejected, match="меньше итога"):
        reg.sell(bad)
    assert len(dev.commands) == before


def test_marking_check_answers(rig: tuple[ShtrihDevice, ShtrihFiscalRegister]) -> None:
    dev, reg = rig
    dev.marking[b"BAD"] = "invalid"
    dev.marking[b"OFF"] = "no_connection"
    ok = reg.check_marking_code(KM)
    assert ok.valid and ok.checked_online and ok.check_result == 0x0F
    assert not reg.check_marking_code("BAD").valid
    off = reg.check_marking_code("OFF")
    assert off.valid and not off.checked_online


def test_restart_keeps_fn_and_loses_open_receipt(tmp_path: Path) -> None:
    dev = make(tmp_path)
    endpoint = TcpEndpoint(dev)
    host, port = endpoint.start()
    reg = ShtrihFiscalRegister(f"socket://{host}:{port}", today=NOW.date, enq_timeout=0.3, attempts=3)
    try:
        reg.open_shift(CASHIER)
        sale = reg.sell(five_items())
        dev.execute(bytes.fromhex("FF461E000000") + bytes([1]) + (10**6).to_bytes(6, "little") + (100).to_bytes(5, "little")
                    + b"\xff" * 10 + bytes([8, 1, 4, 1]) + "Батон".encode("cp1251"))  # fmt: skip
        assert dev.receipt is not None
        endpoint.stop()
        reg.close()
        with pytest.raises(DeviceUnavailable):
            reg.status()
        restarted = make(tmp_path)  # a new process on the same state file
        assert restarted.fn.last_fd == 2 and restarted.receipt is None
        endpoint = TcpEndpoint(restarted, host, port)
        endpoint.start()
        reg.open()
        assert key(reg.last_document()) == key(sale)
        assert reg.status().shift_open
    finally:
        reg.close()
        endpoint.stop()
    assert FnState.from_json(json.loads((tmp_path / "fn.json").read_text())).last_fd == 2


def test_factory() -> None:
    reg = open_fiscal_register("shtrih", "socket://127.0.0.1:7778", {"password": 1})
    assert isinstance(reg, ShtrihFiscalRegister) and reg.password == 1
    with pytest.raises(DriverConfigError):
        open_fiscal_register("atol-wire", "/dev/ttyS0")
    with pytest.raises(DriverConfigError):
        open_fiscal_register("shtrih", "/dev/ttyS0", {"nope": 1})
