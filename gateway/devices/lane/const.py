"""The lane family described as data: actions and events (schemas in ``protocols.bus.sales``)."""

from __future__ import annotations

from protocols.bus.sales import LANE_EVENTS

ACTION_OPEN_SHIFT = "open_shift"
ACTION_CLOSE_SHIFT = "close_shift"
ACTION_X_REPORT = "x_report"
ACTION_CASH_IN = "cash_in"
ACTION_CASH_OUT = "cash_out"
ACTION_STATUS = "status"
ACTION_FISCALIZE = "fiscalize"

EVENTS = LANE_EVENTS
DRIVER = "checkout"
POLL_S = 1.0
