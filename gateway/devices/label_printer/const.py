"""The label printer family described as data: actions, codes, options, defaults."""

from __future__ import annotations

from typing import Final

ACTION_PRINT_LABEL: Final = "print_label"
ACTION_STATUS: Final = "status"

EVENTS: Final[tuple[str, ...]] = ()

# Failure codes a repeat of the same command_id may continue after (the fault stopped the
# printer before or while it printed and the driver knows exactly how many labels came out;
# the family's progress table has the count). ``interrupted`` is what ``recover`` answers when
# the table proves nothing was on the wire when the gateway died.
RESUMABLE_CODES: Final = frozenset(
    {"paper_out", "head_open", "ribbon_out", "paused", "over_temperature", "busy", "printer_fault",
     "device_offline", "device_timeout", "device_protocol", "interrupted"}
)
CODE_UNKNOWN_OUTCOME: Final = "unknown_outcome"
"""Labels went to the printer and how many came out is not known: a person counts them."""

DEFAULT_POLL_INTERVAL_S: Final = 5.0
MAX_COPIES: Final = 1000

BINDING_OPTIONS: Final = frozenset({"poll_interval_s", "state_file", "width_mm", "height_mm", "dpi", "font"})
"""Options the binding consumes; the rest go to ``LabelPrinter`` (checked by name)."""

DRIVER_OPTIONS: Final = frozenset({"timeout", "confirm_timeout", "busy_timeout", "poll_interval", "settle"})
