"""The scale family described as data: actions, events, options, defaults."""

from __future__ import annotations

from decimal import Decimal

ACTION_WEIGH = "weigh"
ACTION_ZERO = "zero"
ACTION_TARE = "tare"
ACTION_CLEAR_TARE = "clear_tare"
ACTION_STATUS = "status"

EVENT_WEIGHT = "weight"
EVENTS = (EVENT_WEIGHT,)

DEFAULT_POLL_INTERVAL_S = 0.5
DEFAULT_DEADBAND_KG = Decimal("0.002")
DEFAULT_WEIGH_TIMEOUT_S = 3.0
MAX_WEIGH_TIMEOUT_S = 30.0

BINDING_OPTIONS = frozenset({"poll_interval_s", "deadband_kg"})
"""Options the binding consumes; every other option is passed to the driver factory."""

KG = Decimal("0.001")
