"""Barcode scanners, sans-I/O: line framing (serial, USB-CDC, keyboard wedge), AIM symbology
identifiers, USB HID POS and boot-keyboard reports, and the ``Scan`` value with the parsed
meaning from ``protocols.barcodes``.

Decoders take bytes (or reports) and the time, and hand out ``CodeScanned`` /
``BytesDiscarded`` events; encoders give the bytes a scanner sends, for simulators and tests.
"""

from protocols.scanner.errors import FramingConfigError, MalformedReport, ScannerError, ScannerProtocolError
from protocols.scanner.framing import (
    CR,
    CRLF,
    GS,
    LF,
    NEED_DATA,
    TAB,
    BytesDiscarded,
    CodeScanned,
    LineDecoder,
    LineFraming,
    ScannerEvent,
    encode_scan,
    parse_control,
)
from protocols.scanner.hid import HidPosDecoder, KeyboardDecoder, encode_keyboard, encode_pos_reports
from protocols.scanner.scan import Scan, decode_text, infer_symbology, make_scan
from protocols.scanner.symbology import AimId, Symbology, aim_for, parse_aim

__all__ = [
    "CR",
    "CRLF",
    "GS",
    "LF",
    "NEED_DATA",
    "TAB",
    "AimId",
    "BytesDiscarded",
    "CodeScanned",
    "FramingConfigError",
    "HidPosDecoder",
    "KeyboardDecoder",
    "LineDecoder",
    "LineFraming",
    "MalformedReport",
    "Scan",
    "ScannerError",
    "ScannerEvent",
    "ScannerProtocolError",
    "Symbology",
    "aim_for",
    "decode_text",
    "encode_keyboard",
    "encode_pos_reports",
    "encode_scan",
    "infer_symbology",
    "make_scan",
    "parse_aim",
    "parse_control",
]
