"""Scanner protocol errors: our fault (a framing configuration that cannot work) and the
peer's fault (a HID report that does not have the layout it must have).

The line decoder never raises on input: bytes it cannot use become ``BytesDiscarded`` events,
because a scanner line carries no checksum and the next scan must still get through.
"""

from __future__ import annotations


class ScannerError(ValueError):
    """Base of every scanner protocol error."""


class FramingConfigError(ScannerError):
    """Our fault: a prefix/suffix/GS substitute/timeout setting that cannot frame scans."""


class ScannerProtocolError(ScannerError):
    """The peer's fault: bytes or reports that do not follow the protocol."""


class MalformedReport(ScannerProtocolError):
    """A USB HID report of the wrong size or with impossible field values."""
