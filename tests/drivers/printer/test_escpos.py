"""``ReceiptPrinter`` through python-escpos (Network, Serial, Usb) against the ESC/POS simulator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from drivers.errors import DeviceProtocolError, DeviceTimeout, DeviceUnavailable
from drivers.printer import (
    CoverOpen,
    CutterError,
    DocumentInvalid,
    DocumentState,
    PaperOut,
    ReceiptPrinter,
    compose,
)
from drivers.printer.escpos import usb_endpoints
from protocols.escpos import Align, Barcode, Column, Document, Paragraph, QrCode, Symbology, Table, Totals
from simulators.link import TcpEndpoint
from simulators.printer.device import ReceiptPrinterConfig, ReceiptPrinterSimulator

ORDER = Document(
    "Заказ № 4512",
    (
        Paragraph("Покупатель: Иванова А. П., тел. +7 900 000-00-00"),
        Table(
            (Column("Товар"), Column("Кол.", 8, Align.RIGHT), Column("Сумма", 10, Align.RIGHT)),
            (("Сыр «Российский» 45%", "0,350 кг", "241,50"), ("Батон нарезной", "1 шт", "45,90")),
        ),
        Totals((("Итого к оплате", "287,40 ₽"),)),
        Barcode("4600000000008", Symbology.EAN13),
        QrCode("https://vitrina.example/o/4512"),
    ),
)
FAST = {"settle": 0.05, "timeout": 1.0}


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[ReceiptPrinterSimulator]:
    simulator = ReceiptPrinterSimulator(ReceiptPrinterConfig(width=42, out_dir=tmp_path))
    yield simulator
    simulator.stop()


def connect(sim: ReceiptPrinterSimulator, **kwargs: Any) -> ReceiptPrinter:
    host, port = sim.serve_tcp(0)
    printer = ReceiptPrinter.network(host, port, width=sim.config.width, **{**FAST, **kwargs})
    printer.open()
    return printer


def test_status_over_tcp(sim: ReceiptPrinterSimulator) -> None:
    with connect(sim) as printer:
        status = printer.status()
    assert status.online and status.faults == () and not status.paper_near_end


def test_document_prints_in_russian(sim: ReceiptPrinterSimulator, tmp_path: Path) -> None:
    with connect(sim) as printer:
        result = printer.print_document(ORDER)
    assert result.state is DocumentState.PRINTED and result.ok and result.warnings == ()
    assert result.bytes_sent == len(compose(ORDER, width=42))
    [doc] = sim.documents
    text = (tmp_path / "doc-0001.txt").read_text(encoding="utf-8")
    assert "Заказ № 4512" in text and 'Сыр "Российский" 45%' in text
    assert "287,40 р." in text
    assert ("EAN13", "4600000000008") in doc.barcodes and (
        "QR",
        "https://vitrina.example/o/4512",
    ) in doc.barcodes


@pytest.mark.parametrize(
    ("fault", "error", "word"),
    [
        (lambda s: s.set_paper(0), PaperOut, "закончилась бумага"),
        (lambda s: s.set_cover_open(True), CoverOpen, "крышка"),
        (lambda s: s.set_cutter_error(True), CutterError, "отрезчик"),
    ],
)
def test_faults_raise_before_printing(sim: ReceiptPrinterSimulator, fault, error, word) -> None:  # type: ignore[no-untyped-def]
    fault(sim)
    with connect(sim) as printer, pytest.raises(error) as info:
        printer.print_document(ORDER)
    assert word in str(info.value).lower()
    assert sim.documents == [] and not sim.pending


def test_paper_running_out_while_printing_is_incomplete() -> None:
    simulator = ReceiptPrinterSimulator(ReceiptPrinterConfig(width=42, paper_lines=10, near_end_lines=25))
    try:
        with connect(simulator) as printer:
            result = printer.print_document(ORDER)
        assert result.state is DocumentState.INCOMPLETE and result.reason == "paper_out"
        assert "paper_near_end" in result.warnings
        assert "не полностью" in result.message
    finally:
        simulator.stop()


def test_near_end_is_a_warning() -> None:
    simulator = ReceiptPrinterSimulator(ReceiptPrinterConfig(width=42, paper_lines=500, near_end_lines=1000))
    try:
        with connect(simulator) as printer:
            result = printer.print_document(ORDER)
        assert result.ok and result.warnings == ("paper_near_end",)
    finally:
        simulator.stop()


def test_bad_document_is_rejected_before_anything_is_sent(sim: ReceiptPrinterSimulator) -> None:
    bad = Document("x", (Table((Column("a"), Column("n", 3)), (("x", "12345"),)),))
    with connect(sim) as printer, pytest.raises(DocumentInvalid) as info:
        printer.print_document(bad)
    assert info.value.field == "rows"
    with pytest.raises(DocumentInvalid):
        ReceiptPrinter(object(), width=40)


def test_silent_and_babbling_devices() -> None:
    class Silent:
        def feed(self, data: bytes, now: float) -> bytes:
            return b""

    class Babbling:
        def feed(self, data: bytes, now: float) -> bytes:
            return b"\xff" if b"\x10\x04" in data else b""

    for device, error in ((Silent(), DeviceTimeout), (Babbling(), DeviceProtocolError)):
        endpoint = TcpEndpoint(device)
        host, port = endpoint.start()
        try:
            with ReceiptPrinter.network(host, port, timeout=0.3) as printer, pytest.raises(error):
                printer.status()
        finally:
            endpoint.stop()


def test_unreachable_and_lost_printer(sim: ReceiptPrinterSimulator) -> None:
    printer = connect(sim)
    sim.unplug()
    with pytest.raises(DeviceUnavailable):
        printer.status()
    printer.close()
    with pytest.raises(DeviceUnavailable):
        ReceiptPrinter.network("127.0.0.1", 1, timeout=0.3).open()


def test_over_a_pty_with_escpos_serial(tmp_path: Path) -> None:
    simulator = ReceiptPrinterSimulator(ReceiptPrinterConfig(width=32))
    try:
        path = simulator.serve_pty()
        with ReceiptPrinter.serial(path, baudrate=115200, width=32, **FAST) as printer:
            assert printer.status().online
            result = printer.print_document(ORDER)
        assert result.ok and simulator.documents[0].lines[0].strip() == "Заказ № 4512"
    finally:
        simulator.stop()


# --- USB: endpoint discovery without hardware --------------------------------------------------


@dataclass
class Ep:
    bEndpointAddress: int
    bmAttributes: int = 2


@dataclass
class Intf:
    bInterfaceNumber: int
    bInterfaceClass: int
    eps: list[Ep] = field(default_factory=list)
    bAlternateSetting: int = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.eps)


class FakeDevice:
    def get_active_configuration(self) -> list[Intf]:
        return [Intf(0, 7, [Ep(0x03), Ep(0x81)])]


def test_usb_endpoints_come_from_the_printer_interface() -> None:
    assert usb_endpoints(0x0416, 0x5011, find=lambda **kw: [FakeDevice()]) == (0x03, 0x81)
    with pytest.raises(DeviceUnavailable):
        usb_endpoints(0x0416, 0x5011, find=lambda **kw: [])


def test_usb_printer_is_built_with_discovered_endpoints() -> None:
    printer = ReceiptPrinter.usb(0x0416, 0x5011, find=lambda **kw: [FakeDevice()])
    usb = printer.printer
    assert (usb.out_ep, usb.in_ep) == (0x03, 0x81)
    assert usb.usb_args == {"idVendor": 0x0416, "idProduct": 0x5011}
    explicit = ReceiptPrinter.usb(0x0416, 0x5011, in_ep=0x82, out_ep=0x01)
    assert (explicit.printer.out_ep, explicit.printer.in_ep) == (0x01, 0x82)
