"""The payment terminal family described as data: actions, events, stages, codes, options, crash points.

Device config::

    [[devices]]
    id = "pos1"
    kind = "payment_terminal"
    driver = "upos"                  # drivers.payment.REGISTRY
    url = "/opt/upos"                # UPOS: the sb_pilot working directory (options.workdir wins)
    options = { command = "sb_pilot", timeout = 180, recovery_wait_s = 200 }

    [[devices]]
    id = "pos2"
    kind = "payment_terminal"
    driver = "nexo"
    url = "tcp://10.0.0.5:4000"      # informational: the driver takes host and port from options
    options = { host = "10.0.0.5", port = 4000, poi_id = "POI1", timeout = 180, service_timeout = 30 }

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
ACTION_RESOLVE = "resolve"
CARD_ACTIONS = (ACTION_PAY, ACTION_REFUND, ACTION_CANCEL)
RESOLVABLE_ACTIONS = (ACTION_PAY, ACTION_REFUND)
"""Actions whose ``unknown_outcome`` a person may settle with ``resolve`` (the terminal records them
under their command_id, so ``find`` can be asked first)."""
OPERATION_NAMES = {ACTION_PAY: "оплата", ACTION_REFUND: "возврат", ACTION_CANCEL: "отмена",
                   ACTION_RECONCILE: "сверка итогов", ACTION_RESOLVE: "разрешение исхода"}
"""How the busy status names the running operation."""

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
CODE_OPERATION_NOT_FOUND = "operation_not_found"
"""``resolve``: the journal has no command with that id."""
CODE_NOTHING_TO_RESOLVE = "nothing_to_resolve"
"""``resolve``: the command is not an unknown outcome of this terminal (known, running, another device)."""
CODE_ALREADY_RESOLVED = "already_resolved"
"""``resolve``: another ``resolve`` settled it first; its outcome stands."""
CODE_JOURNAL_UNAVAILABLE = "journal_unavailable"

REASON_RECONCILE_REQUIRED = "reconcile_required"
"""A driver's decline reason (``PaymentResult.code``) that sets ``reconciliation_needed``."""

RERUN_ON = frozenset({CODE_NOT_PERFORMED, CODE_BUSY, ReplyCode.DEVICE_OFFLINE.value})
"""Stored failures after which nothing happened on the terminal: the same command_id may run again
(the handler asks the terminal with ``find`` before it does anything)."""
RERUN_RECONCILE = RERUN_ON | {ReplyCode.INTERRUPTED.value}
RERUN_RESOLVE = RERUN_RECONCILE | {CODE_NOTHING_TO_RESOLVE, CODE_OPERATION_NOT_FOUND, CODE_JOURNAL_UNAVAILABLE}
"""A failed ``resolve`` changed nothing (the journal's compare-and-set is its only write), and one
interrupted after that write finds its own resolution and answers it again: it may always re-run."""

RESULT_APPROVED = "approved"
RESULT_DECLINED = "declined"
RESULT_UNKNOWN = "unknown"
RESULT_NOT_PERFORMED = "not_performed"

SOURCE_TERMINAL = "terminal"
SOURCE_CONTROL_TAPE = "control_tape"
"""Learned with ``find`` (UPOS control tape, nexo TransactionStatus) after a lost answer or a crash."""
SOURCE_PERSON = "person"
"""Settled by ``resolve`` on a person's word: the terminal could not tell."""

RESOLVE_APPROVED = "approved"
RESOLVE_NOT_PERFORMED = "not_performed"
RESOLVE_OUTCOMES = (RESOLVE_APPROVED, RESOLVE_NOT_PERFORMED)
DECIDED_BY_TERMINAL = "terminal"
DECIDED_BY_PERSON = "person"
OUTCOME_NAMES = {RESULT_APPROVED: "одобрена", RESULT_DECLINED: "отклонена", RESULT_NOT_PERFORMED: "не проведена"}

JOURNAL_FILE = "journal.db"
"""The gateway's command journal in its data directory (``gateway.runtime``): ``resolve`` settles
an unknown outcome there (:meth:`gateway.journal.Journal.resolve`)."""

MAX_AMOUNT_KOP = 10**11
"""A billion roubles: far above any sale, below anything that overflows a terminal's field."""

OPTION_RECOVERY_WAIT = "recovery_wait_s"
DEFAULT_RECOVERY_WAIT_S = 200.0
"""How long recovery waits for a terminal program left running by a killed gateway (UPOS), or keeps
asking a terminal without one (nexo) that cannot tell yet — its POI may still be running the
operation the killed gateway started."""
RECOVERY_POLL_S = 0.5
BINDING_OPTIONS = frozenset({OPTION_RECOVERY_WAIT})

# Crash points: with VITRINA_CRASHPOINT set to one of these, the gateway dies there (os._exit(137)).
CRASH_BEFORE_TERMINAL = "payment.before_terminal"
CRASH_AFTER_TERMINAL = "payment.after_terminal_before_journal"
CRASH_BEFORE_REPLY = "payment.before_reply"
CRASH_POINTS = (CRASH_BEFORE_TERMINAL, CRASH_AFTER_TERMINAL, CRASH_BEFORE_REPLY)
