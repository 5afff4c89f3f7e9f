"""``LabelPrinter`` against the ZPL printer simulator over TCP 9100-style sockets and a pty."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.errors import DeviceProtocolError, DeviceTimeout, DeviceUnavailable
from drivers.label import (
    HeadOpen,
    JobState,
    LabelDataInvalid,
    LabelPrinter,
    PaperOut,
    Paused,
    PrinterBusy,
    RibbonOut,
)
from drivers.transport import SerialTransport
from protocols.zpl import build_label, render_label
from simulators.label.printer import LabelPrinterConfig, LabelPrinterSimulator
from simulators.link import TcpEndpoint

WEIGHED = {
    "name": "Свинина шейка охлаждённая",
    "weight_kg": "1.234",
    "price_per_kg": "459.90",
    "packed": "2026-11-26",
    "best_before": "2026-11-29",
    "item_code": 123,
}
FAST = {"timeout": 1.0, "poll_interval": 0.02, "settle": 0.2, "confirm_timeout": 3.0, "busy_timeout": 0.5}


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[LabelPrinterSimulator]:
    simulator = LabelPrinterSimulator(LabelPrinterConfig(labels_per_second=50, out_dir=tmp_path))
    yield simulator
    simulator.stop()


def connect(sim: LabelPrinterSimulator, **kwargs: object) -> LabelPrinter:
    host, port = sim.serve_tcp(0)
    printer = LabelPrinter.tcp(host, port, **{**FAST, **kwargs})
    printer.open()
    return printer


def test_status_and_identification_over_tcp(sim: LabelPrinterSimulator) -> None:
    with connect(sim) as printer:
        assert printer.status().idle
        info = printer.identify()
        assert info.model == "ZD421-203dpi" and info.dpi == 203


def test_weighed_label_prints_and_is_confirmed(sim: LabelPrinterSimulator) -> None:
    with connect(sim) as printer:
        result = printer.print_label("weighed", WEIGHED, copies=3)
    assert result.state is JobState.PRINTED and result.ok
    assert (result.copies_requested, result.copies_confirmed, result.retry_copies) == (3, 3, 0)
    [job] = sim.printed
    assert job.copies_printed == 3 and job.png is not None and job.png.exists()
    assert ("EAN-13", "2200123012340") in job.barcodes


@pytest.mark.parametrize(
    ("fault", "error", "word"),
    [
        (lambda s: s.set_paper(0), PaperOut, "закончились этикетки"),
        (lambda s: s.set_head_open(True), HeadOpen, "головка"),
        (lambda s: s.set_paused(True), Paused, "пауз"),
        (lambda s: s.set_ribbon_out(True), RibbonOut, "риббон"),
    ],
)
def test_faults_are_raised_before_anything_is_sent(sim: LabelPrinterSimulator, fault, error, word) -> None:  # type: ignore[no-untyped-def]
    fault(sim)
    with connect(sim) as printer, pytest.raises(error) as info:
        printer.print_label("weighed", WEIGHED)
    assert word in str(info.value)
    assert info.value.code in ("paper_out", "head_open", "paused", "ribbon_out")
    assert sim.printed == [] and not sim.queue and sim.current is None


def test_paper_out_mid_batch_reports_confirmed_copies_and_cancels_the_rest(tmp_path: Path) -> None:
    simulator = LabelPrinterSimulator(LabelPrinterConfig(labels_per_second=40, paper_labels=2, render=False))
    try:
        with connect(simulator) as printer:
            result = printer.print_label("weighed", WEIGHED, copies=5)
            assert result.state is JobState.PARTIAL and not result.ok
            assert result.reason == "paper_out"
            assert (result.copies_confirmed, result.retry_copies) == (2, 3)
            assert "Напечатано 2 из 5" in result.message
            # Loading paper must not print the cancelled rest: the retry prints it once.
            simulator.set_paper(None)
            time.sleep(0.1)
            assert printer.status().idle
            retry = printer.print_label("weighed", WEIGHED, copies=result.retry_copies)
        assert retry.state is JobState.PRINTED
        assert [(j.copies_printed, j.cancelled) for j in simulator.printed] == [(2, True), (3, False)]
    finally:
        simulator.stop()


def test_bad_data_is_rejected_without_sending(sim: LabelPrinterSimulator) -> None:
    with connect(sim) as printer, pytest.raises(LabelDataInvalid) as info:
        printer.print_label("weighed", {**WEIGHED, "weight_kg": "-1"})
    assert info.value.field == "weight_kg" and info.value.code == "invalid_label_data"
    assert sim.printed == []


def test_waits_for_a_busy_printer_then_prints(tmp_path: Path) -> None:
    simulator = LabelPrinterSimulator(LabelPrinterConfig(labels_per_second=30, render=False))
    try:
        with connect(simulator, busy_timeout=2.0) as printer:
            zpl = render_label(build_label("weighed", WEIGHED), copies=6)
            assert printer.print_raw(zpl, copies=6).state is JobState.SENT
            result = printer.print_label("weighed", WEIGHED, copies=1)
        assert result.state is JobState.PRINTED
        assert [j.copies_printed for j in simulator.printed] == [6, 1]
    finally:
        simulator.stop()


def test_busy_printer_raises_when_it_stays_busy(tmp_path: Path) -> None:
    simulator = LabelPrinterSimulator(LabelPrinterConfig(labels_per_second=2, render=False))
    try:
        with connect(simulator, busy_timeout=0.2) as printer:
            printer.print_raw(render_label(build_label("weighed", WEIGHED), copies=20))
            with pytest.raises(PrinterBusy):
                printer.print_label("weighed", WEIGHED)
            printer.cancel_all()
    finally:
        simulator.stop()


def test_garbage_on_the_line_before_the_answer(sim: LabelPrinterSimulator) -> None:
    with connect(sim) as printer:
        sim.inject(b"\x00\xff\x03noise\r\n")
        assert printer.status().idle


def test_link_lost_while_confirming_is_unknown(sim: LabelPrinterSimulator) -> None:
    class DropsAfterJob(SerialTransport):
        jobs = 0

        def write(self, data: bytes) -> None:
            super().write(data)
            if data.startswith(b"^XA"):
                self.jobs += 1
            elif self.jobs:
                raise DeviceUnavailable("Связь потеряна")

    host, port = sim.serve_tcp(0)
    printer = LabelPrinter(DropsAfterJob(f"tcp://{host}:{port}"), **FAST)  # type: ignore[arg-type]
    with printer:
        result = printer.print_label("weighed", WEIGHED, copies=2)
    assert result.state is JobState.UNKNOWN and result.reason == "device_offline"
    assert result.copies_confirmed == 0


def test_silent_device_times_out_and_garbage_only_is_a_protocol_error() -> None:
    class Silent:
        def feed(self, data: bytes, now: float) -> bytes:
            return b""

    class Babbling:
        def feed(self, data: bytes, now: float) -> bytes:
            return b"\x02not,a,status\x03\r\n"

    for device, error in ((Silent(), DeviceTimeout), (Babbling(), DeviceProtocolError)):
        endpoint = TcpEndpoint(device)
        host, port = endpoint.start()
        try:
            with LabelPrinter.tcp(host, port, timeout=0.3) as printer, pytest.raises(error):
                printer.status()
        finally:
            endpoint.stop()


def test_over_a_pty(tmp_path: Path) -> None:
    simulator = LabelPrinterSimulator(LabelPrinterConfig(labels_per_second=0, out_dir=tmp_path))
    try:
        path = simulator.serve_pty()
        with LabelPrinter(SerialTransport(path, baudrate=115200), **FAST) as printer:  # type: ignore[arg-type]
            assert printer.identify().dots_per_mm == 8
            result = printer.print_label(
                "marking", {"name": "Молоко", "code": "0104600000000008215abc_de\x1d93dGVz"}
            )
        assert result.state is JobState.PRINTED
        assert simulator.printed[0].barcodes == [("GS1 DataMatrix", "0104600000000008215abc_de\x1d93dGVz")]
    finally:
        simulator.stop()
