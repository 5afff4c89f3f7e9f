"""Barcode scanner drivers: serial / USB-CDC line scanners (``SerialScanner``) and USB HID
scanners in HID POS or keyboard-wedge mode (``HidScanner``), both giving ``Scan`` values."""

from drivers.scanner.base import Scanner, ScannerOptions
from drivers.scanner.serial import SerialScanner
from drivers.scanner.usb import HidInterface, HidMode, HidScanner, select_hid_interface
from protocols.scanner import Scan, Symbology

__all__ = [
    "HidInterface",
    "HidMode",
    "HidScanner",
    "Scan",
    "Scanner",
    "ScannerOptions",
    "SerialScanner",
    "Symbology",
    "select_hid_interface",
]
