"""USB path without hardware: endpoint selection on descriptor-shaped objects, and the whole
``LabelPrinter`` over ``UsbTransport`` with a fake pyusb device wired to the simulator."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pytest
import usb.core

from drivers.errors import DeviceUnavailable, DriverConfigError
from drivers.label import JobState, LabelPrinter
from drivers.label.usb import EndpointChoice, UsbTransport, select_endpoints
from simulators.label.printer import LabelPrinterConfig, LabelPrinterSimulator


@dataclass
class Ep:
    bEndpointAddress: int
    bmAttributes: int = 0x02  # bulk


@dataclass
class Intf:
    bInterfaceNumber: int
    bInterfaceClass: int
    endpoints: list[Ep]
    bAlternateSetting: int = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.endpoints)


ZEBRA_CONFIG = [
    Intf(0, 0xFF, [Ep(0x03), Ep(0x84)]),  # vendor-specific interface listed first
    Intf(1, 7, [Ep(0x81, 0x03), Ep(0x01), Ep(0x82)]),  # printer class: interrupt IN, bulk OUT, bulk IN
]


def test_printer_class_interface_wins() -> None:
    assert select_endpoints(ZEBRA_CONFIG) == EndpointChoice(1, 0, 0x01, 0x82)


def test_unidirectional_printer_has_no_in_endpoint() -> None:
    assert select_endpoints([Intf(0, 7, [Ep(0x02)])]) == EndpointChoice(0, 0, 0x02, None)


def test_falls_back_to_any_interface_with_bulk_out() -> None:
    assert select_endpoints([Intf(2, 0xFF, [Ep(0x81), Ep(0x05)])]).out_address == 0x05


def test_no_bulk_out_is_a_config_error() -> None:
    with pytest.raises(DriverConfigError):
        select_endpoints([Intf(0, 3, [Ep(0x81, 0x03)]), Intf(1, 7, [Ep(0x82)])])


@dataclass
class FakeUsbDevice:
    """Shaped like ``usb.core.Device`` for what ``UsbTransport`` calls."""

    sim: LabelPrinterSimulator | None = None
    serial_number: str = "D4J123456"
    config: list[Intf] = field(default_factory=lambda: ZEBRA_CONFIG)
    kernel_driver: bool = True
    configured: bool = False
    calls: list[str] = field(default_factory=list)
    inbox: deque[bytes] = field(default_factory=deque)
    written: list[bytes] = field(default_factory=list)
    unplugged: bool = False

    def get_active_configuration(self) -> list[Intf]:
        if not self.configured:
            raise usb.core.USBError("Configuration not set")
        return self.config

    def set_configuration(self) -> None:
        self.calls.append("set_configuration")
        self.configured = True

    def is_kernel_driver_active(self, interface: int) -> bool:
        return self.kernel_driver

    def detach_kernel_driver(self, interface: int) -> None:
        self.calls.append(f"detach:{interface}")
        self.kernel_driver = False

    def claim_interface(self, interface: int) -> None:
        self.calls.append(f"claim:{interface}")

    def release_interface(self, interface: int) -> None:
        self.calls.append(f"release:{interface}")

    def write(self, address: int, data: bytes, timeout: int) -> int:
        if self.unplugged:
            raise usb.core.USBError("No such device (it may have been disconnected)", errno=19)
        assert address == 0x01
        self.written.append(bytes(data))
        if self.sim is not None:
            answer = self.sim.feed(bytes(data), __import__("time").monotonic())
            if answer:
                self.inbox.append(answer)
        return len(data)

    def read(self, address: int, size: int, timeout: int) -> bytes:
        assert address == 0x82
        if self.unplugged:
            raise usb.core.USBError("No such device", errno=19)
        if not self.inbox:
            raise usb.core.USBTimeoutError("Operation timed out", errno=110)
        return self.inbox.popleft()


def finder(*devices: FakeUsbDevice):  # type: ignore[no-untyped-def]
    def find(**kwargs: Any) -> list[FakeUsbDevice]:
        assert kwargs["idVendor"] == 0x0A5F and kwargs["idProduct"] == 0x0185
        return list(devices)

    return find


def test_open_detaches_kernel_driver_and_claims() -> None:
    device = FakeUsbDevice()
    transport = UsbTransport(0x0A5F, 0x0185, find=finder(device))
    transport.open()
    assert device.calls == ["set_configuration", "detach:1", "claim:1"]
    assert transport.endpoints == EndpointChoice(1, 0, 0x01, 0x82)
    assert transport.read(64, 0.01) == b""  # timeout is silence, not an error
    transport.close()
    assert device.calls[-1] == "release:1" and not transport.is_open


def test_device_lookup_by_serial_number() -> None:
    a, b = FakeUsbDevice(serial_number="A1"), FakeUsbDevice(serial_number="B2")
    with pytest.raises(DriverConfigError):
        UsbTransport(0x0A5F, 0x0185, find=finder(a, b)).open()
    transport = UsbTransport(0x0A5F, 0x0185, serial_number="B2", find=finder(a, b))
    transport.open()
    assert b.calls and not a.calls
    with pytest.raises(DeviceUnavailable):
        UsbTransport(0x0A5F, 0x0185, serial_number="C3", find=finder(a, b)).open()
    with pytest.raises(DeviceUnavailable):
        UsbTransport(0x0A5F, 0x0185, find=finder()).open()


def test_unplugged_device_is_unavailable() -> None:
    device = FakeUsbDevice()
    transport = UsbTransport(0x0A5F, 0x0185, find=finder(device))
    transport.open()
    device.unplugged = True
    with pytest.raises(DeviceUnavailable):
        transport.write(b"~HS")
    assert not transport.is_open


def test_label_printer_over_usb_against_the_simulator() -> None:
    sim = LabelPrinterSimulator(LabelPrinterConfig(labels_per_second=0, render=False))
    device = FakeUsbDevice(sim=sim)
    printer = LabelPrinter(UsbTransport(0x0A5F, 0x0185, find=finder(device)), poll_interval=0.01, settle=0.05)
    with printer:
        assert printer.identify().model == "ZD421-203dpi"
        result = printer.print_label("price_tag", {"name": "Хлеб", "price": "59.90"}, copies=2)
    assert result.state is JobState.PRINTED and sim.printed[0].copies_printed == 2
    assert any(chunk.startswith(b"^XA^CI28") for chunk in device.written)
