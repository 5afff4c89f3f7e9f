"""HidScanner against a fake pyusb device: interface choice, kernel driver, reports, errors."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pytest

from drivers.errors import DeviceUnavailable, DriverConfigError
from drivers.scanner import HidMode, HidScanner, ScannerOptions, Symbology, select_hid_interface
from protocols.barcodes import MarkingCode, WeightBarcodeFormat, WeightLabel
from protocols.scanner import BytesDiscarded, LineFraming, encode_keyboard, encode_pos_reports

MILK = "0104600439931256215bTxQ!\x1d93dGVz"
FULL = "0104600439931256215k(J&Xhb.YF;f\x1d91EE07\x1d92" + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqr"


@dataclass
class Ep:
    bEndpointAddress: int
    bmAttributes: int
    wMaxPacketSize: int = 64


@dataclass
class Intf:
    bInterfaceNumber: int
    bInterfaceClass: int
    bInterfaceProtocol: int
    endpoints: list[Ep]
    bAlternateSetting: int = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.endpoints)


POS_INTF = Intf(0, 3, 0, [Ep(0x81, 0x03), Ep(0x02, 0x03)])
KBD_INTF = Intf(1, 3, 1, [Ep(0x83, 0x03, 8)])
CDC_INTF = Intf(2, 0x0A, 0, [Ep(0x84, 0x02)])


class USBTimeoutError(Exception):
    """Named like pyusb's, which is how the driver recognises a read timeout."""


class USBError(OSError):
    pass


@dataclass
class FakeUsbDevice:
    interfaces: list[Intf]
    serial_number: str = "S1"
    kernel_driver: bool = True
    configured: bool = True
    reports: deque[bytes] = field(default_factory=deque)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    unplugged: bool = False

    def get_active_configuration(self) -> list[Intf]:
        if not self.configured:
            raise USBError("Configuration not set")
        return self.interfaces

    def set_configuration(self) -> None:
        self.configured = True
        self.calls.append(("set_configuration", None))

    def is_kernel_driver_active(self, interface: int) -> bool:
        return self.kernel_driver

    def detach_kernel_driver(self, interface: int) -> None:
        self.kernel_driver = False
        self.calls.append(("detach", interface))

    def attach_kernel_driver(self, interface: int) -> None:
        self.kernel_driver = True
        self.calls.append(("attach", interface))

    def set_interface_altsetting(self, interface: int, alt: int) -> None:
        self.calls.append(("altsetting", (interface, alt)))

    def read(self, address: int, size: int, timeout: int) -> bytes:
        if self.unplugged:
            raise USBError(19, "No such device (it may have been disconnected)")
        if not self.reports:
            time.sleep(min(timeout, 20) / 1000)
            raise USBTimeoutError("timed out")
        return self.reports.popleft()


class FakeUtil:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None]] = []

    def claim_interface(self, device: FakeUsbDevice, interface: int) -> None:
        self.calls.append(("claim", interface))

    def release_interface(self, device: FakeUsbDevice, interface: int) -> None:
        self.calls.append(("release", interface))

    def dispose_resources(self, device: FakeUsbDevice) -> None:
        self.calls.append(("dispose", None))


def _scanner(*devices: FakeUsbDevice, **kwargs: Any) -> tuple[HidScanner, FakeUtil]:
    util = FakeUtil()

    def find(**query: Any) -> list[FakeUsbDevice]:
        assert query["idVendor"] == 0x0C2E and query["idProduct"] == 0x0B8F
        return list(devices)

    return HidScanner(0x0C2E, 0x0B8F, find=find, usb_util=util, **kwargs), util


def test_interface_selection_by_mode() -> None:
    both = [CDC_INTF, KBD_INTF, POS_INTF]
    assert select_hid_interface(both).interface_number == 0
    assert select_hid_interface(both, HidMode.KEYBOARD).in_address == 0x83
    assert select_hid_interface([KBD_INTF]).keyboard
    with pytest.raises(DriverConfigError, match="HID POS"):
        select_hid_interface([KBD_INTF], HidMode.POS)
    with pytest.raises(DriverConfigError, match="VID/PID"):
        select_hid_interface([CDC_INTF])


def test_open_detaches_claims_and_close_gives_the_interface_back() -> None:
    device = FakeUsbDevice([CDC_INTF, POS_INTF], configured=False)
    scanner, util = _scanner(device)
    scanner.open()
    assert scanner.interface is not None and scanner.interface.in_address == 0x81
    assert ("set_configuration", None) in device.calls and ("detach", 0) in device.calls
    assert util.calls == [("claim", 0)]
    scanner.close()
    assert util.calls == [("claim", 0), ("release", 0), ("dispose", None)]
    assert device.calls[-1] == ("attach", 0) and device.kernel_driver
    assert not scanner.is_open


def test_hid_pos_reports_become_scans() -> None:
    device = FakeUsbDevice([POS_INTF], kernel_driver=False)
    options = ScannerOptions(weight_formats=(WeightBarcodeFormat(("22",)),))
    scanner, _ = _scanner(device, options=options, mode="pos")
    with scanner:
        assert ("detach", 0) not in device.calls
        assert scanner.read_scan(0.05) is None  # timeouts are silence, not errors
        device.reports.extend(encode_pos_reports(FULL.encode(), "]d2"))
        device.reports.extend(encode_pos_reports(b"2200123012340", "]E0"))
        full = scanner.read_scan(1.0)
        assert full is not None and full.data == FULL and full.symbology is Symbology.GS1_DATAMATRIX
        assert isinstance(full.parsed, MarkingCode) and full.parsed.verification_key == "EE07"
        weight = scanner.read_scan(1.0)
        assert weight is not None and isinstance(weight.parsed, WeightLabel)
        assert weight.parsed.barcode.item_code == 123


def test_broken_report_is_discarded_and_reading_goes_on() -> None:
    device = FakeUsbDevice([POS_INTF])
    seen: list[BytesDiscarded] = []
    scanner, _ = _scanner(device, options=ScannerOptions(on_discard=seen.append))
    scanner.open()
    device.reports.extend([b"\x02\x30garbage", *encode_pos_reports(b"4600439931256", "]E0")])
    scan = scanner.read_scan(1.0)
    assert scan is not None and scan.data == "4600439931256"
    assert len(seen) == 1 and scanner.discarded == 1


def test_keyboard_wedge_with_ctrl_bracket_and_substitute() -> None:
    device = FakeUsbDevice([KBD_INTF])
    framing = LineFraming(gs_substitute=b"~")
    scanner, _ = _scanner(device, options=ScannerOptions(framing=framing), mode=HidMode.KEYBOARD)
    scanner.open()
    assert scanner.interface is not None and scanner.interface.keyboard
    device.reports.extend(encode_keyboard(MILK.encode() + b"\r"))  # GS as Ctrl+]
    device.reports.extend(encode_keyboard(MILK.replace("\x1d", "~").encode() + b"\r"))  # GS as "~"
    first, second = scanner.read_scan(1.0), scanner.read_scan(1.0)
    assert first is not None and second is not None
    assert first.data == second.data == MILK
    assert isinstance(first.parsed, MarkingCode) and first.symbology is Symbology.GS1_DATAMATRIX


def test_lost_device_is_unavailable_and_reopen_works() -> None:
    device = FakeUsbDevice([POS_INTF])
    scanner, util = _scanner(device)
    scanner.open()
    device.unplugged = True
    with pytest.raises(DeviceUnavailable, match="потеряна"):
        scanner.read_scan(0.5)
    assert not scanner.is_open and ("release", 0) in util.calls
    with pytest.raises(DeviceUnavailable):
        scanner.read_scan(0.1)
    device.unplugged = False
    scanner.open()
    device.reports.extend(encode_pos_reports(b"46004390", "]E4"))
    scan = scanner.read_scan(1.0)
    assert scan is not None and scan.symbology is Symbology.EAN8


def test_lookup_errors() -> None:
    scanner, _ = _scanner()
    with pytest.raises(DeviceUnavailable, match="не найден"):
        scanner.open()
    a, b = FakeUsbDevice([POS_INTF], serial_number="A"), FakeUsbDevice([POS_INTF], serial_number="B")
    scanner, _ = _scanner(a, b)
    with pytest.raises(DriverConfigError, match="серийный номер"):
        scanner.open()
    scanner, util = _scanner(a, b, serial_number="B")
    scanner.open()
    assert util.calls == [("claim", 0)]
    with pytest.raises(DriverConfigError):
        HidScanner(0x10000, 1)
    with pytest.raises(DriverConfigError, match="режим"):
        HidScanner(1, 1, mode="serial")
