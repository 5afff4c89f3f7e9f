"""The scanner family described as data: actions, events, options, defaults."""

from __future__ import annotations

from typing import Final

ACTION_STATUS: Final = "status"

EVENT_SCAN: Final = "scan"
EVENTS: Final = (EVENT_SCAN,)

DEFAULT_POLL_INTERVAL_S: Final = 0.02
"""Pause between reads; each read itself waits up to ``read_timeout_s`` for a scan."""
DEFAULT_READ_TIMEOUT_S: Final = 0.25
"""How long one read blocks: a ``status`` command waits at most this long for the device thread."""
MAX_SCANS_PER_POLL: Final = 50

BINDING_OPTIONS: Final = frozenset({"poll_interval_s", "read_timeout_s", "weight_prefixes", "weight_item_digits"})
FRAMING_OPTIONS: Final = frozenset({"prefix", "suffix", "aim", "gs_substitute", "intercharacter_timeout"})
DRIVER_OPTIONS: Final = frozenset({"baudrate"})
