"""The receipt printer family described as data: actions, codes, options, defaults."""

from __future__ import annotations

from typing import Final

ACTION_PRINT_DOCUMENT: Final = "print_document"
ACTION_STATUS: Final = "status"

EVENTS: Final[tuple[str, ...]] = ()

CODE_INCOMPLETE: Final = "print_incomplete"
"""A fault appeared after the document was sent: it may be half printed. Never resent."""
CODE_UNKNOWN_OUTCOME: Final = "unknown_outcome"

DEFAULT_POLL_INTERVAL_S: Final = 5.0

BINDING_OPTIONS: Final = frozenset({"poll_interval_s"})
DRIVER_OPTIONS: Final = frozenset({"width", "profile", "codepage", "timeout", "settle", "baudrate"})
"""Options passed to ``ReceiptPrinter.network/.serial/.usb`` (checked by name)."""

PAPER_OK: Final = "ok"
PAPER_NEAR_END: Final = "near_end"
PAPER_OUT: Final = "out"
