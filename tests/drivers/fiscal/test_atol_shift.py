"""AtolFiscalRegister ↔ simulated ATOL web server over real HTTP: a whole shift and the faults."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from drivers.errors import DeviceProtocolError, DeviceTimeout, DeviceUnavailable
from drivers.fiscal import open_fiscal_register
from drivers.fiscal.atol import AtolFiscalRegister
from drivers.fiscal.base import (
    FiscalRejected,
    PaperOut,
    ReceiptRejected,
    ShiftAlreadyOpen,
    ShiftClosed,
    ShiftExpired,
)
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
)
from simulators.fiscal.atol import AtolDevice, AtolSimConfig, AtolWebServer

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 3, 2, 10, 15)
CASHIER = Cashier("Иванова Анна", "500100732259")
KM = "0104600439931256215ABCDEfghijk\x1d93dGVz"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


Rig = tuple[AtolDevice, AtolWebServer, AtolFiscalRegister, Clock]


def make_device(tmp_path: Path, clock: Clock) -> AtolDevice:
    return AtolDevice(
        AtolSimConfig(state_file=tmp_path / "fn.json", tape_file=tmp_path / "tape.txt", clock=clock)
    )


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    clock = Clock()
    dev = make_device(tmp_path, clock)
    server = AtolWebServer(dev, journal=tmp_path / "requests.json")
    url = server.start()
    reg = AtolFiscalRegister(url, today=NOW.date, poll_interval=0.02, query_timeout=3, timeout=3)
    try:
        yield dev, server, reg, clock
    finally:
        reg.close()
        server.stop()


def sale() -> Receipt:
    items = (
        Item("Молоко 3,2% 1л", D(2), D("89.90"), VatKind.REDUCED),
        Item("Сыр Российский весовой", D("0.734"), D("459.90"), VatKind.REDUCED, measure=Measure.KILOGRAM),
        Item("Вода питьевая 0,5л", D(1), D("45.00"), VatKind.GENERAL, item_type=ItemType.MARKED,
             marking=MarkingCode(KM)),
        Item("Доставка", D(1), D("150.00"), VatKind.NONE, item_type=ItemType.SERVICE),
    )  # fmt: skip
    return Receipt(SettlementSign.INCOME, items, Payments(cash=D("600.00"), electronic=D("200.00")), cashier=CASHIER,
                   customer_contact="buyer@example.ru")  # fmt: skip


def test_whole_shift(rig: Rig, tmp_path: Path) -> None:
    dev, server, reg, _ = rig
    st = reg.status()
    assert (st.mode, st.shift_open, st.paper_present, st.last_fd_number, st.fn_number) == (
        "shift_closed", False, True, 0, "")  # fmt: skip
    with pytest.raises(ShiftClosed) as info:
        reg.x_report()
    assert info.value.device_code == 73 and info.value.message == "Смена закрыта - операция невозможна"

    opened = reg.open_shift(CASHIER)
    assert (opened.kind, opened.fd_number, opened.shift_number, opened.issued_at) == ("shift_open", 1, 1, NOW)
    with pytest.raises(ShiftAlreadyOpen):
        reg.open_shift(CASHIER)

    doc = reg.sell(sale())
    total = D("179.80") + D("337.57") + D("45.00") + D("150.00")
    assert (doc.kind, doc.fd_number, doc.total, doc.sign) == ("receipt", 2, total, SettlementSign.INCOME)
    assert (doc.shift_number, doc.receipt_number, doc.fn_number) == (1, 1, dev.fn.fn_number)
    assert doc.fiscal_sign == dev.fn.sign(2, 3, NOW, 1, 71237)
    assert dev.executed[-4:] == ["beginMarkingCodeValidation", "getMarkingCodeValidationStatus",
                                 "acceptMarkingCode", "sell"]  # fmt: skip
    last = reg.last_document()
    assert last is not None and (last.fd_number, last.fiscal_sign, last.total, last.kind, last.receipt_number) == (
        2, doc.fiscal_sign, total, "receipt", 1)  # fmt: skip

    ret = reg.refund(Receipt(SettlementSign.INCOME_RETURN, (Item("Молоко 3,2% 1л", D(1), D("89.90"), VatKind.REDUCED),),
                             Payments(cash=D("89.90"))))  # fmt: skip
    assert (ret.sign, ret.total, ret.fd_number) == (SettlementSign.INCOME_RETURN, D("89.90"), 3)

    cake = Item(
        "Торт «Наполеон»", D(1), D("1500.00"), VatKind.GENERAL, payment_method=PaymentMethod.FULL_PREPAYMENT
    )
    pre = reg.sell(Receipt(SettlementSign.INCOME, (cake,), Payments(electronic=D("1500.00"))))
    settled = Item("Торт «Наполеон»", D(1), D("1500.00"), VatKind.GENERAL)
    settle = reg.sell(Receipt(SettlementSign.INCOME, (settled,), Payments(prepayment=D("1500.00"))))
    assert (pre.fd_number, settle.fd_number, settle.total) == (4, 5, D("1500.00"))

    corr = reg.correct(Correction(
        Receipt(SettlementSign.INCOME, (Item("Неучтённая выручка", D(1), D("250.00"), VatKind.GENERAL),),
                Payments(cash=D("250.00"))),
        CorrectionType.SELF, CorrectionBasis(dt.date(2026, 2, 27)),
    ))  # fmt: skip
    assert (corr.kind, corr.fd_number, corr.total) == ("correction", 6, D("250.00"))
    corr_doc = reg.document(6)
    assert corr_doc is not None and (corr_doc.kind, corr_doc.total) == ("correction", D("250.00"))

    reg.x_report()
    st = reg.status()
    assert (st.mode, st.shift_number, st.receipts_in_shift, st.last_fd_number) == ("shift_open", 1, 5, 6)
    assert st.shift_opened_at == NOW
    closed = reg.close_shift(CASHIER)
    assert (closed.kind, closed.fd_number, closed.shift_number) == ("shift_close", 7, 1)
    assert reg.status().mode == "shift_closed"
    assert reg.document(99) is None

    tape = (tmp_path / "tape.txt").read_text(encoding="utf-8")
    for line in ("ОТЧЁТ ОБ ОТКРЫТИИ СМЕНЫ", "0.734 x 459.90 = 337.57  VAT10", "[М] товар маркирован",
                 "БЕЗНАЛИЧНЫМИ 200.00", "ИТОГ 712.37", "СДАЧА 87.63", "КАССОВЫЙ ЧЕК / ВОЗВРАТ ПРИХОДА",
                 "ЗАЧЁТ ПРЕДОПЛАТЫ 1500.00", "КАССОВЫЙ ЧЕК КОРРЕКЦИИ", "X-ОТЧЁТ", "ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ",
                 "КАССИР: Иванова Анна", "ПОКУПАТЕЛЬ: buyer@example.ru", "Вода питьевая 0,5л"):  # fmt: skip
        assert line in tape, line
    assert "VAT22" in tape  # the 2026 rate came from the dated table
    assert set(server.executions.values()) == {1}


def test_same_operation_id_prints_once(rig: Rig) -> None:
    dev, server, reg, _ = rig
    reg.open_shift(CASHIER, operation_id="shift-1")
    first = reg.sell(sale(), operation_id="cmd-42")
    checks = dev.executed.count("beginMarkingCodeValidation")
    again = reg.sell(sale(), operation_id="cmd-42")  # a retry after a crash
    assert again == first
    assert dev.fn.last_fd == 2 and dev.executed.count("sell") == 1
    assert dev.executed.count("beginMarkingCodeValidation") == checks  # no second marking check either
    assert server.executions[reg.request_uuid("sell", "cmd-42")] == 1
    assert reg.open_shift(CASHIER, operation_id="shift-1").fd_number == 1  # not a ShiftAlreadyOpen
    other = reg.sell(sale(), operation_id="cmd-43")
    assert other.fd_number == 3


def test_crash_after_post_then_retry_reads_first_result(rig: Rig) -> None:
    dev, server, reg, _ = rig
    reg.open_shift(CASHIER)
    server.delay = 0.6
    quick = AtolFiscalRegister(server.url, today=NOW.date, poll_interval=0.02, timeout=0.2)
    plain = Receipt(SettlementSign.INCOME, (Item("Хлеб", D(1), D("50.00"), VatKind.REDUCED),), Payments(cash=D("50.00")),
                    cashier=CASHIER)  # fmt: skip
    with pytest.raises(DeviceTimeout, match="тем же номером"):
        quick.sell(plain, operation_id="cmd-7")
    quick.close()
    doc = reg.sell(plain, operation_id="cmd-7")  # polls the same uuid until the slow device is done
    assert doc.fd_number == 2 and dev.executed.count("sell") == 1


def test_paper_out_is_typed_and_nothing_is_fiscalized(rig: Rig) -> None:
    dev, _, reg, _ = rig
    reg.open_shift(CASHIER)
    dev.paper_out()
    with pytest.raises(PaperOut) as info:
        reg.sell(sale())
    assert (info.value.device_code, info.value.message, info.value.code) == (
        44,
        "Нет бумаги",
        "fiscal_paper_out",
    )
    assert dev.fn.last_fd == 1 and not reg.status().paper_present
    dev.paper_in()
    assert reg.sell(sale()).fd_number == 2  # the accepted code stayed in the buffer, the sale goes through


def test_shift_over_24h(rig: Rig) -> None:
    _, _, reg, clock = rig
    reg.open_shift(CASHIER)
    clock.now = NOW + dt.timedelta(hours=24, minutes=1)
    assert reg.status().shift_over_24h
    with pytest.raises(ShiftExpired) as info:
        reg.sell(sale())
    assert info.value.device_code == 68 and "24 часа" in info.value.message
    assert reg.close_shift(CASHIER).kind == "shift_close"


def test_invalid_marking_code_is_declined(rig: Rig) -> None:
    dev, _, reg, _ = rig
    reg.open_shift(CASHIER)
    dev.marking[KM] = "invalid"
    with pytest.raises(FiscalRejected, match="не прошёл проверку"):
        reg.sell(sale())
    assert dev.executed[-1] == "declineMarkingCode" and dev.fn.last_fd == 1
    assert not reg.check_marking_code(KM).valid
    dev.marking["OFF"] = "no_connection"
    off = reg.check_marking_code("OFF")
    assert off.valid and not off.checked_online and off.check_result == 0x13
    ok = reg.check_marking_code("0104600439931256215XYZ")
    assert ok.valid and ok.checked_online and ok.check_result == 0x0F


def test_invalid_receipt_posts_nothing(rig: Rig) -> None:
    dev, server, reg, _ = rig
    bad = Receipt(
        SettlementSign.INCOME, (Item("Хлеб", D(1), D("50.00"), VatKind.ZERO),), Payments(cash=D("10.00"))
    )
    with pytest.raises(ReceiptRejected, match="меньше итога"):
        reg.sell(bad)
    no_cashier = Receipt(
        SettlementSign.INCOME, (Item("Хлеб", D(1), D("50.00"), VatKind.ZERO),), Payments(cash=D("50.00"))
    )
    with pytest.raises(ReceiptRejected, match="кассир"):
        reg.sell(no_cashier)
    assert dev.executed == [] and server.executions == {}


def test_slow_device_polls_then_times_out(rig: Rig) -> None:
    dev, server, reg, _ = rig
    server.delay = 0.4
    started = time.monotonic()
    assert reg.open_shift(CASHIER).fd_number == 1
    assert time.monotonic() - started >= 0.4
    server.delay = 5
    reg.timeout = 0.3
    with pytest.raises(DeviceTimeout):
        reg.close_shift(CASHIER)
    assert dev.fn.shift_open


@pytest.mark.parametrize("fault", ["garbage", "schema", "short", "http500"])
def test_malformed_answers_are_protocol_errors(rig: Rig, fault: str) -> None:
    _, server, reg, _ = rig
    server.fault = fault
    with pytest.raises(DeviceProtocolError):
        reg.status()


def test_unreachable_server_and_factory() -> None:
    reg = open_fiscal_register(
        "atol", "http://127.0.0.1:9/api/v2/requests", {"timeout": 1.0, "http_timeout": 0.5}
    )
    assert isinstance(reg, AtolFiscalRegister) and reg.url == "http://127.0.0.1:9"
    with pytest.raises(DeviceUnavailable):
        reg.status()
    reg.close()


def test_restarted_simulator_remembers_documents_and_uuids(tmp_path: Path) -> None:
    clock = Clock()
    server = AtolWebServer(make_device(tmp_path, clock), journal=tmp_path / "requests.json")
    reg = AtolFiscalRegister(server.start(), today=NOW.date, poll_interval=0.02)
    try:
        reg.open_shift(CASHIER)
        first = reg.sell(sale(), operation_id="cmd-1")
    finally:
        server.stop()
        reg.close()
    dev = make_device(tmp_path, clock)
    server = AtolWebServer(dev, journal=tmp_path / "requests.json")
    reg = AtolFiscalRegister(server.start(), today=NOW.date, poll_interval=0.02)
    try:
        assert reg.sell(sale(), operation_id="cmd-1") == first
        assert dev.executed == [] and reg.status().last_fd_number == 2
    finally:
        server.stop()
        reg.close()


def test_concurrent_clients_are_serialized(rig: Rig) -> None:
    dev, _, reg, _ = rig
    reg.open_shift(CASHIER)
    docs: list[int] = []
    plain = Receipt(SettlementSign.INCOME, (Item("Хлеб", D(1), D("50.00"), VatKind.REDUCED),), Payments(cash=D("50.00")),
                    cashier=CASHIER)  # fmt: skip

    def one() -> None:
        with AtolFiscalRegister(reg.url, today=NOW.date, poll_interval=0.02) as r:
            docs.append(r.sell(plain).fd_number)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(docs) == [2, 3, 4, 5] and dev.fn.receipt_number == 4
