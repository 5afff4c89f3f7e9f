"""SerialScanner against the scanner simulator over a real pty (and TCP): real bytes, real timing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from drivers.errors import DeviceUnavailable, DriverConfigError
from drivers.scanner import ScannerOptions, SerialScanner, Symbology
from protocols.barcodes import MarkingCode, ProductBarcode, ProductKind, WeightBarcodeFormat, WeightLabel
from protocols.scanner import BytesDiscarded, LineFraming
from simulators.scanner import ScannerConfig, ScannerSimulator

EAN13 = "4600439931256"
WEIGHT = "2200123012340"
MILK = "0104600439931256215bTxQ!\x1d93dGVz"
TOBACCO = "04600439931256-BQ4Wc:AAAAbcde"
STORE = (WeightBarcodeFormat(("22", "23")),)


def _rig(
    framing: LineFraming, **options: object
) -> tuple[ScannerSimulator, SerialScanner, list[BytesDiscarded]]:
    sim = ScannerSimulator(ScannerConfig(framing=framing, split_delay=0.1))
    path = sim.serve_pty()
    discarded: list[BytesDiscarded] = []
    scanner = SerialScanner(
        path,
        ScannerOptions(framing=framing, weight_formats=STORE, on_discard=discarded.append, **options),  # type: ignore[arg-type]
    )
    scanner.open()
    return sim, scanner, discarded


@pytest.fixture
def rig() -> Iterator[tuple[ScannerSimulator, SerialScanner, list[BytesDiscarded]]]:
    framing = LineFraming(prefix=b"\x02", suffix=b"\r\n", aim=True, gs_substitute=b"<GS>", stale_timeout=0.3)
    sim, scanner, discarded = _rig(framing)
    try:
        yield sim, scanner, discarded
    finally:
        scanner.close()
        sim.stop()


def test_ean13_weight_milk_and_tobacco_codes(
    rig: tuple[ScannerSimulator, SerialScanner, list[BytesDiscarded]],
) -> None:
    sim, scanner, discarded = rig
    assert scanner.read_scan(0.05) is None
    for code in (EAN13, WEIGHT, MILK, TOBACCO):
        assert sim.scan(code)
    assert sim.sent[2] == b"\x02]d20104600439931256215bTxQ!<GS>93dGVz\r\n"  # what went over the pty

    ean = scanner.read_scan(2.0)
    assert (
        ean is not None and ean.data == EAN13 and ean.symbology is Symbology.EAN13 and str(ean.aim) == "]E0"
    )
    assert isinstance(ean.parsed, ProductBarcode)

    weight = scanner.read_scan(2.0)
    assert weight is not None and isinstance(weight.parsed, WeightLabel)
    assert weight.parsed.barcode.item_code == 123 and weight.parsed.barcode.weight_kg == Decimal("1.234")

    milk = scanner.read_scan(2.0)
    assert milk is not None and milk.data == MILK and milk.symbology is Symbology.GS1_DATAMATRIX
    assert isinstance(milk.parsed, MarkingCode) and milk.parsed.kind is ProductKind.MILK
    assert milk.parsed.fiscal == MILK

    tobacco = scanner.read_scan(2.0)
    assert tobacco is not None and tobacco.symbology is Symbology.DATAMATRIX and str(tobacco.aim) == "]d1"
    assert isinstance(tobacco.parsed, MarkingCode) and tobacco.parsed.tobacco_pack
    assert tobacco.parsed.kind is ProductKind.TOBACCO
    assert discarded == []


def test_split_scan_is_reassembled(rig: tuple[ScannerSimulator, SerialScanner, list[BytesDiscarded]]) -> None:
    sim, scanner, discarded = rig
    assert sim.scan_split(MILK, delay=0.15)  # two writes, 150 ms apart
    scan = scanner.read_scan(2.0)
    assert scan is not None and scan.data == MILK and discarded == []
    assert len(sim.sent) == 2


def test_garbage_is_discarded_and_the_next_scan_gets_through(
    rig: tuple[ScannerSimulator, SerialScanner, list[BytesDiscarded]],
) -> None:
    sim, scanner, discarded = rig
    assert sim.inject_garbage()
    assert scanner.read_scan(0.1) is None
    time.sleep(0.35)  # longer than the stale timeout: the noise cannot stick to the scan
    sim.scan(EAN13)
    scan = scanner.read_scan(2.0)
    assert scan is not None and scan.data == EAN13
    assert len(discarded) == 1 and discarded[0].head.startswith(b"\x00\xff") and scanner.discarded == 1


def test_unplug_raises_device_unavailable_and_open_reconnects(
    rig: tuple[ScannerSimulator, SerialScanner, list[BytesDiscarded]],
) -> None:
    sim, scanner, _ = rig
    sim.unplug()
    with pytest.raises(DeviceUnavailable):
        for _ in range(20):
            scanner.read_scan(0.1)
    assert not scanner.is_open
    with pytest.raises(DeviceUnavailable):
        scanner.open()  # the path is gone while unplugged
    sim.plug()
    scanner.open()
    sim.scan(WEIGHT)
    scan = scanner.read_scan(2.0)
    assert scan is not None and scan.data == WEIGHT


def test_iterator_and_no_suffix_mode_with_intercharacter_timeout() -> None:
    framing = LineFraming(suffix=b"", intercharacter_timeout=0.08)
    sim, scanner, discarded = _rig(framing)

    def play() -> None:  # timing only exists while the host reads: scan from another thread
        time.sleep(0.05)
        sim.scan(EAN13)
        time.sleep(0.3)
        sim.scan_split(WEIGHT, delay=0.02)  # a short pause inside a scan keeps it whole

    player = threading.Thread(target=play)
    try:
        player.start()
        it = iter(scanner)
        first, second = next(it), next(it)
        assert (first.data, second.data) == (EAN13, WEIGHT)
        assert first.aim is None and first.symbology is Symbology.EAN13
        assert discarded == []
        scanner.close()
        assert list(it) == []
    finally:
        player.join()
        scanner.close()
        sim.stop()


def test_over_tcp_like_a_serial_to_ethernet_converter() -> None:
    framing = LineFraming(suffix=b"\t", gs_substitute=b"~")
    sim = ScannerSimulator(ScannerConfig(framing=framing))
    host, port = sim.serve_tcp()
    scanner = SerialScanner(f"tcp://{host}:{port}", ScannerOptions(framing=framing))
    try:
        scanner.open()
        assert sim.wait_connected(2.0)
        assert sim.sent == [] and sim.scan(MILK)
        scan = scanner.read_scan(2.0)
        assert scan is not None and scan.data == MILK and isinstance(scan.parsed, MarkingCode)
    finally:
        scanner.close()
        sim.stop()


def test_options_from_config_spellings() -> None:
    options = ScannerOptions.build(
        prefix="STX", suffix="CRLF", aim=True, gs_substitute="<GS>", weight_prefixes=("22",)
    )
    assert options.framing == LineFraming(prefix=b"\x02", suffix=b"\r\n", aim=True, gs_substitute=b"<GS>")
    assert options.weight_formats[0].prefixes == ("22",)
    with pytest.raises(DriverConfigError, match="сканера"):
        ScannerOptions.build(weight_prefixes=("12",))
    with pytest.raises(DriverConfigError):
        ScannerOptions.build(suffix="CR", gs_substitute="CR")
    with pytest.raises(DriverConfigError):
        SerialScanner("/dev/null", baudrate=0)
