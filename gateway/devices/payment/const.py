"""The payment terminal family described as data: actions, events, stages, codes, options, crash points.

Device config::

    [[devices]]
    id = "pos1"
    kind = "payment_terminal"
    driver = "upos"                  # drivers.payment.REGISTRY
    url = "/opt/upos"                # UPOS: the sb_pilot working directory (options.workdir wins)
    options = { command = "sb_pilot", timeout = 180, recovery_wait_s = 200 }

Every option except the binding's own (``BINDING_OPTIONS``) goes to ``open_payment_terminal``.
"""

from __future__ import annotations

from drivers.payment.base import STAGE_AUTHORISING, STAGE_PIN_ENTRY, STAGE_WAITING_CARD
from protocols.bus import ReplyCode

ACTION_PAY = "pay"
ACTION_REFUND = "refund"
ACTION_CANCEL = "cancel"
ACTION_RECONCILE = "reconcile"
ACTION_STATUS = "status"
CARD_ACTIONS = (ACTION_PAY, ACTION_REFUND, ACTION_CANCEL)

EVENT_PAYMENT = "payment"
EVENT_RECONCILIATION = "reconciliation"
EVENTS = (EVENT_PAYMENT, EVENT_RECONCILIATION)

STAGE_MESSAGES = {
    STAGE_WAITING_CARD: "Ожидание карты: вставьте или приложите карту",
    STAGE_PIN_ENTRY: "Ввод ПИН-кода",
    STAGE_AUTHORISING: "Авторизация: связь с банком",
}

# Reply codes of this family (beyond protocols.bus.ReplyCode).
CODE_DECLINED = "declined"
"""The operation ran and was refused (bank, card, customer); nothing was charged."""
CODE_NOT_PERFORMED = "not_performed"
"""The terminal proved the operation never happened (a lost answer, a crash before it ran)."""
CODE_UNKNOWN_OUTCOME = ReplyCode.UNKNOWN_OUTCOME.value
CODE_BUSY = ReplyCode.BUSY.value

REASON_RECONCILE_REQUIRED = "reconcile_required"
"""A driver's decline reason (``PaymentResult.code``) that sets ``reconciliation_needed``."""

RERUN_ON = frozenset({CODE_NOT_PERFORMED, CODE_BUSY, ReplyCode.DEVICE_OFFLINE.value})
"""Stored failures after which nothing happened on the terminal: the same command_id may run again
(the handler asks the terminal with ``find`` before it does anything)."""
RERUN_RECONCILE = RERUN_ON | {ReplyCode.INTERRUPTED.value}

RESULT_APPROVED = "approved"
RESULT_DECLINED = "declined"
RESULT_UNKNOWN = "unknown"

MAX_AMOUNT_KOP = 10**11
"""A billion roubles: far above any sale, below anything that overflows a terminal's field."""

OPTION_RECOVERY_WAIT = "recovery_wait_s"
DEFAULT_RECOVERY_WAIT_S = 200.0
"""How long recovery waits for a terminal program left running by a killed gateway."""
BINDING_OPTIONS = frozenset({OPTION_RECOVERY_WAIT})

# Crash points: with VITRINA_CRASHPOINT set to one of these, the gateway dies there (os._exit(137)).
CRASH_BEFORE_TERMINAL = "payment.before_terminal"
CRASH_AFTER_TERMINAL = "payment.after_terminal_before_journal"
CRASH_BEFORE_REPLY = "payment.before_reply"
CRASH_POINTS = (CRASH_BEFORE_TERMINAL, CRASH_AFTER_TERMINAL, CRASH_BEFORE_REPLY)
