"""The ESC/POS printer model, fed bytes composed by python-escpos (no I/O)."""

from __future__ import annotations

from pathlib import Path

from drivers.printer import compose
from protocols.escpos import Align, Barcode, Column, Document, Paragraph, QrCode, Symbology, Table, Totals
from protocols.escpos.status import parse_status_byte
from simulators.printer.device import ReceiptPrinterConfig, ReceiptPrinterSimulator

DOC = Document(
    "Сводка по смене № 7",
    (
        Paragraph("Магазин на Ленина, 1"),
        Table(
            (Column("Оплата"), Column("Сумма", 10, Align.RIGHT)),
            (("Наличные", "12 345,00"), ("Карта", "45 678,90")),
        ),
        Totals((("Итого", "58 023,90"),)),
        Barcode("ORD-77"),
        QrCode("https://vitrina.example/s/7"),
    ),
)


def status_bytes(sim: ReceiptPrinterSimulator) -> bytes:
    return sim.feed(b"\x10\x04\x01\x10\x04\x02\x10\x04\x03\x10\x04\x04", 0)


def test_document_is_decoded_from_cp866_and_split_at_the_cut(tmp_path: Path) -> None:
    sim = ReceiptPrinterSimulator(ReceiptPrinterConfig(width=32, out_dir=tmp_path))
    sim.feed(compose(DOC, width=32) + compose(Document("Второй"), width=32), 0)
    first, second = sim.documents
    assert first.lines[0].strip() == "Сводка по смене № 7"
    assert "Наличные".ljust(21) + " " + "12 345,00".rjust(10) in first.lines
    assert ("CODE128", "ORD-77") in first.barcodes and ("QR", "https://vitrina.example/s/7") in first.barcodes
    assert first.path is not None and first.path.read_text(encoding="utf-8") == first.text
    assert second.lines == ["Второй".center(32).rstrip()] and second.cut
    assert sim.unknown_commands == []


def test_real_time_status_reflects_state() -> None:
    sim = ReceiptPrinterSimulator()
    assert status_bytes(sim) == b"\x12\x12\x12\x12"
    sim.set_cover_open(True)
    answer = status_bytes(sim)
    assert parse_status_byte(1, answer[0]).offline  # type: ignore[union-attr]
    assert parse_status_byte(2, answer[1]).cover_open  # type: ignore[union-attr]
    sim.set_cover_open(False)
    sim.set_paper(0)
    assert status_bytes(sim)[3] == 0x7E  # paper out (and so below the near-end mark too)


def test_paper_out_mid_document_holds_the_rest_and_resumes() -> None:
    sim = ReceiptPrinterSimulator(ReceiptPrinterConfig(paper_lines=4, near_end_lines=2))
    sim.feed(compose(DOC, width=48), 0)
    assert sim.paper_out and sim.documents == [] and sim.pending
    assert status_bytes(sim)[3] == 0x7E
    sim.set_paper(None)
    [doc] = sim.documents
    assert doc.lines[0].strip() == "Сводка по смене № 7" and "Итого" in doc.text


def test_near_end_and_cutter_error() -> None:
    sim = ReceiptPrinterSimulator(ReceiptPrinterConfig(paper_lines=10, near_end_lines=20))
    assert status_bytes(sim)[3] == 0x1E
    sim.set_cutter_error(True)
    answer = status_bytes(sim)
    assert answer[2] == 0x1A and answer[0] & 0x08


def test_unknown_commands_are_recorded_and_symbology_names() -> None:
    sim = ReceiptPrinterSimulator()
    sim.feed(b"\x1b\xee" + b"\x1dkC\x0d4600000000008" + b"\x1dV\x00", 0)
    assert sim.unknown_commands == ["ESC 0xEE"]
    assert sim.documents[0].barcodes == [("EAN13", "4600000000008")]


def test_ean13_from_a_document() -> None:
    sim = ReceiptPrinterSimulator()
    sim.feed(compose(Document("Ценник", (Barcode("4600000000008", Symbology.EAN13),))), 0)
    assert sim.documents[0].barcodes == [("EAN13", "4600000000008")]
