"""The fiscal-register family described as data: actions, events, options, crash points, codes."""

from __future__ import annotations

ACTION_OPEN_SHIFT = "open_shift"
ACTION_SELL = "sell"
ACTION_REFUND = "refund"
ACTION_CORRECT = "correct"
ACTION_X_REPORT = "x_report"
ACTION_CLOSE_SHIFT = "close_shift"
ACTION_STATUS = "status"
ACTION_CHECK_MARKING_CODE = "check_marking_code"

DOCUMENT_ACTIONS = frozenset({ACTION_OPEN_SHIFT, ACTION_SELL, ACTION_REFUND, ACTION_CORRECT, ACTION_CLOSE_SHIFT})
"""Actions that make a fiscal document in the FN: journaled in the family's attempt store and
recovered by reading the FN after a crash."""

RECEIPT_ACTIONS = frozenset({ACTION_SELL, ACTION_REFUND, ACTION_CORRECT})

EVENT_FISCAL_DOCUMENT = "fiscal_document"
EVENT_SHIFT_OPENED = "shift_opened"
EVENT_SHIFT_CLOSED = "shift_closed"
EVENTS = (EVENT_FISCAL_DOCUMENT, EVENT_SHIFT_OPENED, EVENT_SHIFT_CLOSED)

DEFAULT_POLL_INTERVAL_S = 5.0
DEFAULT_RERUN_WINDOW_S = 300.0
BINDING_OPTIONS = frozenset({"poll_interval_s", "state_file", "rerun_window_s"})
"""Options the binding consumes; every other option goes to ``drivers.fiscal.open_fiscal_register``."""

# Crash points on the receipt path (``gateway.crashpoints``), in the order a receipt meets them.
CRASH_BEFORE_OPEN = "fiscal.before_open"  # attempt recorded, no byte sent to the register yet
CRASH_AFTER_ITEMS = "fiscal.after_items"  # items registered, the close (FF45) not sent yet
CRASH_AFTER_CLOSE = "fiscal.after_close"  # the register closed the receipt; nothing recorded
CRASH_BEFORE_REPLY = "fiscal.before_reply"  # document recorded and event stored; reply not sent
CRASH_POINTS = (CRASH_BEFORE_OPEN, CRASH_AFTER_ITEMS, CRASH_AFTER_CLOSE, CRASH_BEFORE_REPLY)

CODE_UNKNOWN_OUTCOME = "unknown_outcome"
CODE_NOT_FISCALIZED = "not_fiscalized"
MSG_UNKNOWN_OUTCOME = "исход неизвестен: проверьте ККТ"

RERUN_ON = frozenset({
    "fiscal_paper_out", "fiscal_rejected", "fiscal_shift_closed", "fiscal_shift_expired", "fiscal_payment",
    "fiscal_storage", "device_offline", "device_timeout", CODE_NOT_FISCALIZED, CODE_UNKNOWN_OUTCOME,
})
"""Failure codes after which a repeat of the same command_id runs again: the register refused or
was never reached, or the outcome was unknown — and the binding reads the FN for the earlier
attempt's document before making one (``FiscalBinding._already_made``)."""
