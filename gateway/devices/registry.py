"""Device families by :class:`~protocols.bus.DeviceKind` (fiscal, payment, printers plug in here).

A family is a :class:`~gateway.devices.base.DeviceBinding` subclass whose constructor takes
``(config, emit, factory)``; ``factory`` builds its driver and is ``None`` for the default one
(tests inject fakes). ``register`` lets a family added later declare itself without editing
the supervisor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.devices.base import DeviceBinding
from gateway.devices.fiscal import FiscalBinding
from gateway.devices.handheld import HandheldBinding
from gateway.devices.label_printer import LabelPrinterBinding
from gateway.devices.label_scale import LabelScaleBinding
from gateway.devices.lane import LaneBinding
from gateway.devices.payment import PaymentBinding
from gateway.devices.receipt_printer import ReceiptPrinterBinding
from gateway.devices.scale import ScaleBinding
from gateway.devices.scanner import ScannerBinding
from protocols.bus import DeviceKind

FAMILIES: dict[DeviceKind, type[DeviceBinding]] = {
    DeviceKind.SCALE: ScaleBinding,
    DeviceKind.LABEL_PRINTER: LabelPrinterBinding,
    DeviceKind.RECEIPT_PRINTER: ReceiptPrinterBinding,
    DeviceKind.SCANNER: ScannerBinding,
    DeviceKind.LABEL_SCALE: LabelScaleBinding,
    DeviceKind.PAYMENT_TERMINAL: PaymentBinding,
    DeviceKind.FISCAL_REGISTER: FiscalBinding,
    DeviceKind.HANDHELD: HandheldBinding,
    DeviceKind.LANE: LaneBinding,
}

DriverFactory = Callable[..., Any]
"""A family-specific driver factory, e.g. ``(driver, url, options) -> Scale`` for scales."""


def register(kind: DeviceKind, binding: type[DeviceBinding]) -> None:
    """Declare the binding of a device kind (a later registration replaces an earlier one)."""
    FAMILIES[kind] = binding


def binding_for(kind: DeviceKind) -> type[DeviceBinding] | None:
    return FAMILIES.get(kind)
