"""The scanner family: ``scan`` events (symbology, raw data, parsed meaning) and ``status``."""

from gateway.devices.scanner.binding import ScannerBinding

__all__ = ["ScannerBinding"]
