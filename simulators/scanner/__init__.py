"""Barcode scanner simulators: a serial / USB-CDC scanner that scans scripted codes."""

from simulators.scanner.device import ScannerConfig, ScannerSimulator
from simulators.scanner.script import ScriptError, parse_script

__all__ = ["ScannerConfig", "ScannerSimulator", "ScriptError", "parse_script"]
