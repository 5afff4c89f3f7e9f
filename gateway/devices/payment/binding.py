"""Binds a ``drivers.payment`` PaymentTerminal to the bus: card operations, events, exactly-once.

Actions (``const``): ``pay {amount}``, ``refund {amount, rrn | original_operation_id}``,
``cancel {operation_id}``, ``reconcile``, ``status``, ``resolve {operation_id, outcome, note}`` (a
person settles an ``unknown_outcome``: ``resolution``). The command_id is the operation id the
terminal records (UPOS ``ORDER=``, on the slip and the control tape), so the terminal itself can
say later whether a command's money moved.

Replies: ``accepted`` → ``progress`` (``waiting_card``, ``pin_entry``, ``authorising``) → ``done``
with the payment data (approved) or ``failed`` with ``declined`` (refused: nothing charged),
``not_performed`` (the terminal proved nothing happened — the same command_id may be sent again
and will run), ``unknown_outcome`` (nobody can tell now: a person must check; every repeat gets
this answer), ``busy`` (another operation runs: refused at once, never queued).

Exactly-once, step by step (crash points in ``const``):

1. The dispatcher journals the command ``running`` before this code runs.
2. ``payment.before_terminal`` — nothing asked of the terminal yet.
3. The terminal runs the operation (the driver resolves its own lost answers with ``find``).
4. ``payment.after_terminal_before_journal`` — money may have moved, nobody knows but the terminal.
5. The ``payment`` event goes to the outbox, the result returns, the dispatcher journals it.
6. ``payment.before_reply`` — the outcome is durable but unannounced.

A crash in 2–5 leaves the journal row ``running``: on restart ``recover`` waits out any terminal
program still running (``recovery``; a terminal without one, nexo, is asked again while it cannot
tell — its POI may still be running the operation), asks ``find(command_id)`` and answers with what
the terminal says — the approved payment (``done``), ``not_performed`` (re-runnable), or ``unknown_outcome``.
A crash in 6 leaves the outcome in the journal: a repeat gets it as ``duplicate``. A re-run after
``not_performed`` asks ``find`` again before charging, so even a crash during the re-run cannot
charge twice; the journal reopens the row before a re-run, so such a crash is recovered like a
first run.

While a card operation (or its recovery) runs, the device status is ``busy`` with the operation
in Russian (``идёт операция: оплата (sale-1)``), published at once; ``online`` again when it ends.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from drivers.errors import DeviceUnavailable, DriverConfigError, DriverError
from drivers.payment import open_payment_terminal
from drivers.payment.base import (
    OP_CANCEL,
    OP_PURCHASE,
    OP_REFUND,
    OutcomeUnknown,
    PaymentResult,
    PaymentTerminal,
    TerminalBusy,
    from_kopecks,
)
from gateway.config import DeviceConfig
from gateway.crashpoints import crashpoint
from gateway.devices.base import Action, CommandContext, DeviceBinding, EmitFn, NoArgs, Outcome
from gateway.devices.payment import const, resolution
from gateway.devices.payment.actions import (
    CancelArgs,
    PayArgs,
    RefundArgs,
    ResolveArgs,
    payment_json,
    reconciliation_json,
    summary,
)
from gateway.devices.payment.recovery import ask_until_known, wait_for_programs
from gateway.errors import StorageError
from gateway.journal import Journal, StoredReply
from protocols.bus import DeviceKind, DeviceState, ReplyCode

log = logging.getLogger(__name__)

TerminalFactory = Callable[[str, str, dict[str, Any]], PaymentTerminal]
"""``(driver, url, options) -> PaymentTerminal`` (configured, not opened)."""

WORKDIR_DRIVERS = frozenset({"upos", "sberbank_upos"})


def default_factory(driver: str, url: str, options: dict[str, Any]) -> PaymentTerminal:
    """``drivers.payment.open_payment_terminal``; for UPOS the device ``url`` is its working directory."""
    if driver in WORKDIR_DRIVERS:
        options = {"workdir": url, **options}
    return open_payment_terminal(driver, options)


class PaymentFailed(DriverError):
    """A card operation that ended without moving money (or without knowing): ``last`` is its data."""

    def __init__(self, message: str, *, code: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code)
        self.last = _Data(data) if data is not None else None


class _Data:
    """What the worker puts under ``result.last`` of a ``failed`` reply (it calls ``as_dict``)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def as_dict(self) -> dict[str, Any]:
        return self._data


class PaymentBinding(DeviceBinding):
    kind = DeviceKind.PAYMENT_TERMINAL
    capabilities = (const.ACTION_PAY, const.ACTION_REFUND, const.ACTION_CANCEL, const.ACTION_RECONCILE,
                    const.ACTION_STATUS, const.ACTION_RESOLVE)
    events = const.EVENTS
    recover_needs_device = True

    def __init__(self, config: DeviceConfig, emit: EmitFn, factory: TerminalFactory | None = None) -> None:
        super().__init__(config, emit, factory)
        self._factory: TerminalFactory = factory or default_factory
        options = dict(config.options)
        self._recovery_wait = _positive_float(options, const.OPTION_RECOVERY_WAIT, const.DEFAULT_RECOVERY_WAIT_S)
        self._driver_options = {k: v for k, v in options.items() if k not in const.BINDING_OPTIONS}
        workdir = self._driver_options.get("workdir", config.url)
        self._workdir = Path(str(workdir)) if config.driver in WORKDIR_DRIVERS else None
        self._terminal: PaymentTerminal | None = None
        self._last: dict[str, Any] | None = None
        self._reconcile_needed = False
        self._actions: dict[str, Action] = {
            const.ACTION_PAY: _operation(const.ACTION_PAY, PayArgs, self._busy(const.ACTION_PAY, self._pay),
                                         const.RERUN_ON),
            const.ACTION_REFUND: _operation(const.ACTION_REFUND, RefundArgs,
                                            self._busy(const.ACTION_REFUND, self._refund), const.RERUN_ON),
            const.ACTION_CANCEL: _operation(const.ACTION_CANCEL, CancelArgs,
                                            self._busy(const.ACTION_CANCEL, self._cancel), const.RERUN_ON),
            const.ACTION_RECONCILE: _operation(const.ACTION_RECONCILE, NoArgs,
                                               self._busy(const.ACTION_RECONCILE, self._reconcile),
                                               const.RERUN_RECONCILE),
            const.ACTION_STATUS: Action(const.ACTION_STATUS, NoArgs, self._status, when_busy="refuse"),
            const.ACTION_RESOLVE: _operation(const.ACTION_RESOLVE, ResolveArgs,
                                             self._busy(const.ACTION_RESOLVE, self._resolve), const.RERUN_RESOLVE),
        }

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    def busy_message(self, action: str, running_action: str, running_id: str) -> str:
        return f"терминал занят: идёт операция {running_action} ({running_id}); повторите после её завершения"

    def unresolved_message(self, entry: StoredReply) -> str:
        return (
            f"Результат операции {entry.action} {entry.command_id} пока неизвестен: терминал {self.id!r} не отвечает "
            "после перезапуска шлюза. Не проводите оплату заново: окончательный ответ придёт, когда терминал ответит"
        )

    # Lifecycle ----------------------------------------------------------------------------
    def open(self) -> None:
        self.close()
        terminal = self._factory(self.config.driver, self.config.url, dict(self._driver_options))
        terminal.open()
        self._terminal = terminal

    def close(self) -> None:
        terminal, self._terminal = self._terminal, None
        if terminal is not None:
            try:
                terminal.close()
            except Exception as exc:
                log.debug("closing terminal %s: %s", self.id, exc)

    def status_data(self) -> dict[str, Any]:
        return {
            "last_operation": summary(self._last) if self._last else None,
            "reconciliation_needed": self._reconcile_needed,
        }

    # Actions ----------------------------------------------------------------------------
    def _busy(self, action: str, handler: Callable[[Any, CommandContext], dict[str, Any]]
              ) -> Callable[[Any, CommandContext], dict[str, Any]]:
        """``handler`` with the device status ``busy`` (the operation, in Russian) while it runs."""
        def run(args: Any, context: CommandContext) -> dict[str, Any]:
            self.report_status(DeviceState.BUSY, _running(action, context.command_id))
            try:
                return handler(args, context)
            finally:
                self.report_status(None)

        return run

    def _pay(self, args: PayArgs, context: CommandContext) -> dict[str, Any]:
        terminal = self._require()
        op_id = context.command_id
        if context.previous is not None:  # the first attempt did nothing: make sure, then run
            found = self._find(op_id, const.ACTION_PAY, args.amount)
            if found is not None:
                return self._conclude(found, context, source="control_tape", amount=args.amount)
        crashpoint(const.CRASH_BEFORE_TERMINAL)
        try:
            result = terminal.purchase(from_kopecks(args.amount), op_id, self._progress(context))
        except OutcomeUnknown as exc:
            raise self._unknown(op_id, OP_PURCHASE, args.amount, exc.message) from exc
        except TerminalBusy as exc:
            raise _busy(exc) from exc
        crashpoint(const.CRASH_AFTER_TERMINAL)
        context.journaled.append(lambda: crashpoint(const.CRASH_BEFORE_REPLY))
        return self._conclude(result, context, source="terminal", amount=args.amount)

    def _refund(self, args: RefundArgs, context: CommandContext) -> dict[str, Any]:
        terminal = self._require()
        op_id = context.command_id
        if context.previous is not None:
            found = self._find(op_id, const.ACTION_REFUND, args.amount)
            if found is not None:
                return self._conclude(found, context, source="control_tape", amount=args.amount)
        original: PaymentResult | str
        if args.rrn is not None:
            original = args.rrn
        else:
            assert args.original_operation_id is not None
            try:
                purchase = terminal.find(args.original_operation_id)
            except (OutcomeUnknown, TerminalBusy) as exc:
                raise DriverError(f"Не удалось найти исходную покупку {args.original_operation_id}: {exc.message}",
                                  code=exc.code) from exc
            if purchase is None:
                raise DriverError(
                    f"Покупка {args.original_operation_id} не найдена в терминале: укажите rrn исходной операции",
                    code="operation_not_found",
                )
            original = purchase
        try:
            result = terminal.refund(from_kopecks(args.amount), op_id, original, self._progress(context))
        except OutcomeUnknown as exc:
            raise self._unknown(op_id, OP_REFUND, args.amount, exc.message) from exc
        except TerminalBusy as exc:
            raise _busy(exc) from exc
        return self._conclude(result, context, source="terminal", amount=args.amount)

    def _cancel(self, args: CancelArgs, context: CommandContext) -> dict[str, Any]:
        terminal = self._require()
        try:
            result = terminal.cancel(args.operation_id, self._progress(context))
        except OutcomeUnknown as exc:
            raise self._unknown(args.operation_id, OP_CANCEL, None, exc.message) from exc
        except TerminalBusy as exc:
            raise _busy(exc) from exc
        return self._conclude(result, context, source="terminal")

    def _reconcile(self, args: NoArgs, context: CommandContext) -> dict[str, Any]:
        try:
            result = self._require().reconcile()
        except TerminalBusy as exc:
            raise _busy(exc) from exc
        if result.code not in ("approved", "totals_mismatch"):
            raise DriverError(f"Сверка итогов не выполнена: {result.message}", code=result.code)
        data = reconciliation_json(result)
        self.emit(const.EVENT_RECONCILIATION, data)
        self._reconcile_needed = False
        return data

    def _status(self, args: NoArgs) -> dict[str, Any]:
        status = self._require().status()
        state = {"idle": "online"}.get(status.state, status.state)
        return {"state": state, "detail": status.detail, **self.status_data()}

    def _resolve(self, args: ResolveArgs, context: CommandContext) -> dict[str, Any]:
        """Settle the ``unknown_outcome`` of ``args.operation_id``: the terminal's word, else the person's
        (``resolution``). Runs as a card operation (busy while it asks the terminal)."""
        terminal = self._require()
        with self._journal() as journal:
            entry = journal.lookup(args.operation_id)
            try:
                earlier = resolution.check(entry, self.id, args.operation_id, context.command_id)
            except resolution.Refused as exc:
                raise PaymentFailed(exc.message, code=exc.code, data=exc.data) from exc
            if earlier is not None:  # this resolve settled it before a crash: answer it (and its event) again
                self.emit(const.EVENT_PAYMENT, earlier.event)
                return earlier.answer
            assert entry is not None
            try:
                found, knows, why = terminal.find(args.operation_id), True, ""
            except TerminalBusy as exc:
                raise _busy(exc) from exc
            except DriverError as exc:  # the terminal still cannot tell: the person's word decides
                found, knows, why = None, False, exc.message
            settled = resolution.settle(entry, args, context.command_id, found, terminal_knows=knows, why=why)
            if not journal.resolve(args.operation_id, settled.reply):
                try:  # settled or re-run meanwhile by someone else: say what stands now
                    resolution.check(journal.lookup(args.operation_id), self.id, args.operation_id, context.command_id)
                except resolution.Refused as exc:
                    raise PaymentFailed(exc.message, code=exc.code, data=exc.data) from exc
                raise PaymentFailed(f"Операция {args.operation_id} изменилась во время разрешения: повторите",
                                    code=const.CODE_NOTHING_TO_RESOLVE)
        log.warning("%s %s resolved by %s: %s (%s said %s: %s)", entry.action, args.operation_id,
                    settled.answer["decided_by"], settled.answer["outcome"], context.command_id, args.outcome,
                    args.note)
        self.emit(const.EVENT_PAYMENT, settled.event)
        self._record(settled.event)
        return settled.answer

    @contextlib.contextmanager
    def _journal(self) -> Iterator[Journal]:
        """The gateway's command journal (its own connection: SQLite's lock serialises the writers)."""
        path = self.data_dir / const.JOURNAL_FILE
        if not path.is_file():
            raise PaymentFailed(f"журнал команд шлюза {path} не найден: разрешить операцию нельзя",
                                code=const.CODE_JOURNAL_UNAVAILABLE)
        try:
            journal = Journal(path)
        except StorageError as exc:
            raise PaymentFailed(f"журнал команд шлюза недоступен: {exc.message}",
                                code=const.CODE_JOURNAL_UNAVAILABLE) from exc
        try:
            yield journal
        finally:
            journal.close()

    # Recovery ---------------------------------------------------------------------------
    def recover(self, entry: StoredReply) -> Outcome:
        """A command the gateway died in: ask the terminal what happened (see the module doc)."""
        if entry.action not in const.CARD_ACTIONS:
            return Outcome.failed(
                ReplyCode.INTERRUPTED,
                f"Шлюз перезапустился во время операции {entry.action}; её можно повторить с тем же command_id",
            )
        self.report_status(DeviceState.BUSY, "восстановление после перезапуска шлюза: "
                           + _running(entry.action, entry.command_id))
        try:
            return self._recover_card_operation(entry)
        finally:
            self.report_status(None)

    def _recover_card_operation(self, entry: StoredReply) -> Outcome:
        wait = 0.0
        if self._workdir is not None:
            wait_for_programs(self._workdir, self._recovery_wait)
        else:
            wait = self._recovery_wait
        amount = entry.args.get("amount")
        op_id = str(entry.args.get("operation_id", "")) if entry.action == const.ACTION_CANCEL else entry.command_id
        try:
            found = self._find(op_id, entry.action, amount if isinstance(amount, int) else None, wait=wait)
        except PaymentFailed as exc:
            return Outcome.failed(exc.code, exc.message, {"last": exc.last.as_dict()} if exc.last else None)
        if entry.action == const.ACTION_CANCEL:
            if found is not None and found.voided:
                data = {**payment_json(found, source="control_tape"), "operation": OP_CANCEL}
                self._record(data)
                return Outcome.done(data)
            found = None
        if found is None:
            log.warning("recovered %s %s: the terminal has no record of it", entry.action, entry.command_id)
            return Outcome.failed(
                const.CODE_NOT_PERFORMED,
                f"Операция {entry.action} {entry.command_id} не проведена: шлюз перезапустился до её завершения, "
                "терминал её не выполнял (проверено по контрольной ленте). Можно повторить с тем же command_id",
            )
        data = payment_json(found, source="control_tape")
        log.warning("recovered %s %s from the control tape: approved, rrn %s", entry.action, entry.command_id,
                    found.rrn)
        self.emit(const.EVENT_PAYMENT, data)
        self._record(data)
        return Outcome.done(data)

    # Internals ----------------------------------------------------------------------------
    def _require(self) -> PaymentTerminal:
        if self._terminal is None:
            raise DeviceUnavailable(f"платёжный терминал {self.id!r} не подключён")
        return self._terminal

    @staticmethod
    def _progress(context: CommandContext) -> Callable[[str], None]:
        def progress(stage: str) -> None:
            context.progress(stage, const.STAGE_MESSAGES.get(stage, stage))

        return progress

    def _find(self, op_id: str, action: str, amount: int | None, *, wait: float = 0.0) -> PaymentResult | None:
        """``find`` that never guesses: unknown → ``unknown_outcome``; busy/unreachable → retry later.

        ``wait`` > 0 (recovery, a terminal without a working directory): asked again while it cannot
        tell, up to ``wait`` s; a terminal that stopped answering altogether → ``DeviceUnavailable``
        (the worker retries the recovery once it is back, repeats are answered ``unknown_outcome``).
        """
        terminal = self._require()
        try:
            if wait <= 0:
                return terminal.find(op_id)
            return ask_until_known(terminal.find, op_id, wait, const.RECOVERY_POLL_S)
        except OutcomeUnknown as exc:
            raise self._unknown(op_id, action, amount, exc.message) from exc
        except TerminalBusy as exc:
            raise DeviceUnavailable(f"терминал занят другой программой, спросим позже: {exc.message}") from exc

    def _unknown(self, op_id: str, operation: str, amount: int | None, why: str) -> PaymentFailed:
        data = {
            "result": const.RESULT_UNKNOWN, "approved": None, "operation": operation, "operation_id": op_id,
            "amount": amount, "code": const.CODE_UNKNOWN_OUTCOME, "message": why,
        }
        self.emit(const.EVENT_PAYMENT, data)
        self._record(data)
        return PaymentFailed(
            f"Результат операции {op_id} неизвестен: терминал не может сказать, было ли списание ({why}). "
            "Не повторяйте оплату: проверьте терминал или выписку банка и разрешите вручную",
            code=const.CODE_UNKNOWN_OUTCOME, data=data,
        )

    def _conclude(
        self, result: PaymentResult, context: CommandContext, *, source: str, amount: int | None = None
    ) -> dict[str, Any]:
        """Event, status, then the reply: ``done`` for approved, else ``failed`` with the data."""
        data = payment_json(result, source=source, amount=amount)
        self.emit(const.EVENT_PAYMENT, data)
        self._record(data)
        if result.code == const.REASON_RECONCILE_REQUIRED:
            self._reconcile_needed = True
        if result.approved:
            return data
        code = const.CODE_NOT_PERFORMED if result.code == const.CODE_NOT_PERFORMED else const.CODE_DECLINED
        raise PaymentFailed(result.message, code=code, data=data)

    def _record(self, data: dict[str, Any]) -> None:
        self._last = data


def _operation(
    name: str, args: type[BaseModel], handler: Callable[..., dict[str, Any]], rerun_on: frozenset[str]
) -> Action:
    """A terminal operation: has effects, sees its context, refused while another runs."""
    return Action(name, args, handler, side_effect=True, context=True, when_busy="refuse", rerun_on=rerun_on)


def _running(action: str, command_id: str) -> str:
    return f"идёт операция: {const.OPERATION_NAMES.get(action, action)} ({command_id})"


def _busy(exc: TerminalBusy) -> PaymentFailed:
    return PaymentFailed(f"терминал занят: {exc.message}", code=const.CODE_BUSY)


def _positive_float(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise DriverConfigError(f"option {key} must be a number, got {value!r}") from exc
    if number <= 0:
        raise DriverConfigError(f"option {key} must be > 0, got {value!r}")
    return number
