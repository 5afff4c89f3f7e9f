"""Binds a ``drivers.fiscal`` FiscalRegister to the bus: documents exactly once per command.

Commands: ``open_shift``, ``sell``, ``refund``, ``correct``, ``x_report``, ``close_shift``,
``status``, ``check_marking_code``. A receipt is validated in full by ``protocols.fiscal`` on the
dispatcher thread (``validate``), so a bad one is answered ``failed``/``invalid_args`` with the
Russian message and never reaches the journal or the register.

Exactly once (BRIEF, reliability rules). Before the first byte of a document goes to the
register, the FN's last FD number and the document's fingerprint are committed to the family's
attempt store (``attempts.py``, SQLite ``synchronous=FULL``). After a crash, ``recover``:

1. the attempt already holds the document (died before the reply) → ``done`` with it;
2. the FN has a document after the recorded FD number with the same fingerprint (kind,
   settlement sign, total) → that is ours: ``done`` with it, and the ``fiscal_document`` event
   is stored if it was not yet — never printed again;
3. otherwise nothing was fiscalized: an open receipt is cancelled, and the document is made
   again *within recovery* for the same ``command_id`` if the attempt is younger than
   ``rerun_window_s`` (the customer paid; the journal would answer a retry of a failure with
   ``duplicate``, so the retry must find the sale) — else ``failed``/``not_fiscalized``;
4. the register does not answer → the command stays unresolved (the worker asks again when
   the register is back); nothing is sold blindly.

A link failure in the middle of a document outside a crash is resolved the same way at once;
if the register cannot be read, the reply is ``failed``/``unknown_outcome``
(«исход неизвестен: проверьте ККТ»). Failures that prove nothing was fiscalized (paper out, a
refusal, the register offline) and ``unknown_outcome`` are in the actions' ``rerun_on``: a repeat
of the same command_id runs again instead of a ``duplicate`` of the failure — after
``_already_made`` read the FN for the earlier attempt's document (found → that one, never a
second; register still silent → ``unknown_outcome`` again).

A re-run is protected by the journal like a first run (``Journal.reopen``): a crash during it
leaves a ``running`` row and ``recover`` resolves it — if the re-run died before recording its
own attempt, recovery asks the FN for the earlier attempt's document (``_already_made``). A repeat
while a recovery waits for a silent register is answered ``failed``/``unknown_outcome``
(«исход неизвестен: проверьте ККТ», ``unresolved_message``); the outcome follows when it answers.

The attempt store defaults to ``{data_dir}/fiscal-{id}.db`` (the gateway's data dir); the
``state_file`` option names another file.

Events (outbox): ``fiscal_document`` for receipts and corrections, ``shift_opened`` and
``shift_closed`` for shift reports. Status data: shift state, paper, cover, FN number, expiry
and fill warning, last FD number; polled every ``poll_interval_s``. No paper, an open cover or a
shift older than 24 h make the device status ``error`` with the Russian reason (back to
``online`` when cleared).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from drivers.errors import (
    DeviceProtocolError,
    DeviceRejected,
    DeviceTimeout,
    DeviceUnavailable,
    DriverConfigError,
    DriverError,
)
from drivers.fiscal import open_fiscal_register
from drivers.fiscal.base import FiscalRegister, RegisterStatus
from gateway.config import DeviceConfig
from gateway.crashpoints import crashpoint
from gateway.devices.base import Action, CommandContext, DeviceBinding, EmitFn, NoArgs, Outcome
from gateway.devices.fiscal import const
from gateway.devices.fiscal.actions import (
    CorrectArgs,
    MarkingCheckArgs,
    ReceiptArgs,
    RefundArgs,
    SellArgs,
    ShiftArgs,
    document_json,
    marking_json,
)
from gateway.devices.fiscal.attempts import FAILED, FISCALIZED, UNKNOWN, Attempt, AttemptStore
from gateway.devices.fiscal.crashwire import instrument
from gateway.errors import InvalidArgs, StorageError
from gateway.journal import StoredReply, args_hash
from protocols.bus import DeviceKind, DeviceState, describe
from protocols.fiscal import FiscalDocument, Receipt, ReceiptInvalid, kopecks

log = logging.getLogger(__name__)

RegisterFactory = Callable[[str, str, dict[str, Any]], FiscalRegister]
MAX_SCAN = 64
"""Documents after the recorded FD number read back at most when looking for ours."""

_KIND = {
    const.ACTION_SELL: "receipt", const.ACTION_REFUND: "receipt", const.ACTION_CORRECT: "correction",
    const.ACTION_OPEN_SHIFT: "shift_open", const.ACTION_CLOSE_SHIFT: "shift_close",
}
_EVENT = {"shift_open": const.EVENT_SHIFT_OPENED, "shift_close": const.EVENT_SHIFT_CLOSED}


def default_factory(driver: str, url: str, options: dict[str, Any]) -> FiscalRegister:
    """``drivers.fiscal.open_fiscal_register`` (built, not opened)."""
    return open_fiscal_register(driver, url, options)


class UnknownOutcome(DeviceUnavailable):
    """The link failed mid-document and the FN cannot be read: do not guess, do not repeat."""

    code = const.CODE_UNKNOWN_OUTCOME


class FiscalBinding(DeviceBinding):
    kind = DeviceKind.FISCAL_REGISTER
    events = const.EVENTS
    recover_needs_device = True

    def __init__(self, config: DeviceConfig, emit: EmitFn, factory: RegisterFactory | None = None) -> None:
        super().__init__(config, emit, factory)
        self._factory: RegisterFactory = factory or default_factory
        options = dict(config.options)
        self._poll_interval = _positive(options, "poll_interval_s", const.DEFAULT_POLL_INTERVAL_S)
        self._rerun_window = _positive(options, "rerun_window_s", const.DEFAULT_RERUN_WINDOW_S)
        self._driver_options = {k: v for k, v in options.items() if k not in const.BINDING_OPTIONS}
        self._reg: FiscalRegister | None = None
        self._store: AttemptStore | None = None
        self._status: RegisterStatus | None = None
        self._worker_thread: int | None = None
        self._returned: int | None = None  # attempt whose outcome the worker is delivering
        self._recovering = False
        n = NoArgs
        self._actions: dict[str, Action] = {
            const.ACTION_OPEN_SHIFT: _document_action(const.ACTION_OPEN_SHIFT, ShiftArgs, self._open_shift),
            const.ACTION_SELL: _document_action(const.ACTION_SELL, SellArgs, self._sell),
            const.ACTION_REFUND: _document_action(const.ACTION_REFUND, RefundArgs, self._refund),
            const.ACTION_CORRECT: _document_action(const.ACTION_CORRECT, CorrectArgs, self._correct),
            const.ACTION_X_REPORT: Action(const.ACTION_X_REPORT, n, self._x_report, side_effect=True),
            const.ACTION_CLOSE_SHIFT: _document_action(const.ACTION_CLOSE_SHIFT, ShiftArgs, self._close_shift),
            const.ACTION_STATUS: Action(const.ACTION_STATUS, n, self._status_action),
            const.ACTION_CHECK_MARKING_CODE: Action(const.ACTION_CHECK_MARKING_CODE, MarkingCheckArgs, self._marking),
        }

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    @property
    def state_file(self) -> Path:
        """The attempt store: ``state_file`` option, else ``{data_dir}/fiscal-{id}.db``."""
        return self.state_path("fiscal")

    def unresolved_message(self, entry: StoredReply) -> str:
        return (
            f"{const.MSG_UNKNOWN_OUTCOME} (ККТ {self.id!r} не отвечает после перезапуска шлюза; документ команды "
            f"{entry.action} ещё не найден; ответ придёт, когда ККТ ответит)"
        )

    # Validation (dispatcher thread) -----------------------------------------------------------
    def validate(self, action: str, args: dict[str, Any]) -> BaseModel:
        """Shape by pydantic, then the receipt by ``protocols.fiscal``: Russian messages, no device."""
        spec = self._actions.get(action)
        if spec is None:
            return super().validate(action, args)  # raises UnknownAction with the list
        try:
            parsed = spec.args.model_validate(args)
        except ValidationError as exc:
            raise InvalidArgs(f"{action}: неверные аргументы: {describe(exc)}") from exc
        try:
            if isinstance(parsed, CorrectArgs):
                correction = parsed.build_correction()
                correction.validate(dt.date.today())
                parsed._correction, parsed._receipt = correction, correction.receipt
            elif isinstance(parsed, ReceiptArgs):
                receipt = parsed.build()
                receipt.validate(dt.date.today())
                parsed._receipt = receipt
            elif isinstance(parsed, ShiftArgs):
                parsed.cashier.build()
        except ReceiptInvalid as exc:
            where = f"{exc.field}: " if exc.field else ""
            raise InvalidArgs(f"{action}: {where}{exc.message}") from exc
        if isinstance(parsed, ReceiptArgs | ShiftArgs):
            parsed._raw = dict(args)
        return parsed

    # Lifecycle (worker thread) ---------------------------------------------------------------
    @property
    def poll_interval(self) -> float | None:
        return self._poll_interval

    def open(self) -> None:
        self.close()
        try:
            self._store = AttemptStore(self.state_file)
        except StorageError as exc:
            raise DriverConfigError(f"журнал документов ККТ недоступен: {exc.message}") from exc
        options = instrument(self.config.driver, self.config.url, dict(self._driver_options))
        reg = self._factory(self.config.driver, self.config.url, options)
        try:
            reg.open()
            self._observe(reg.status())
        except BaseException:
            _close_quietly(reg)
            raise
        self._reg = reg
        self._worker_thread = threading.get_ident()

    def close(self) -> None:
        reg, self._reg = self._reg, None
        if reg is not None:
            _close_quietly(reg)
        store, self._store = self._store, None
        if store is not None:
            store.close()

    def poll(self) -> None:
        self._settle_delivered()
        self._observe(self._require().status())

    def _observe(self, st: RegisterStatus) -> None:
        """Keep the register's status; paper, cover and an expired shift make the device ``error``."""
        self._status = st
        problems = []
        if not st.paper_present:
            problems.append("нет бумаги")
        if st.cover_open:
            problems.append("открыта крышка")
        if st.shift_over_24h:
            problems.append("смена открыта более 24 часов: закройте смену")
        self.report_status(DeviceState.ERROR if problems else None, "ККТ: " + ", ".join(problems) if problems else "")

    def status_data(self) -> dict[str, Any]:
        if threading.get_ident() == self._worker_thread:
            self._settle_delivered()  # the worker calls this right after delivering an outcome
        st = self._status
        if st is None:
            return {}
        shift = "expired" if st.shift_over_24h else ("open" if st.shift_open else "closed")
        problems = []
        if not st.paper_present:
            problems.append("нет бумаги")
        if st.cover_open:
            problems.append("открыта крышка")
        if st.shift_over_24h:
            problems.append("смена открыта более 24 часов")
        if st.fn_memory_almost_full:
            problems.append("ФН почти заполнен")
        return {
            "shift": shift, "shift_number": st.shift_number, "receipt_open": st.receipt_open,
            "paper": st.paper_present, "cover_open": st.cover_open, "fn_number": st.fn_number,
            "fn_expires": st.fn_expires.isoformat() if st.fn_expires else None,
            "fn_almost_full": st.fn_memory_almost_full, "last_fd": st.last_fd_number, "problems": problems,
        }

    # Actions ------------------------------------------------------------------------------------
    def _sell(self, args: SellArgs, ctx: CommandContext) -> dict[str, Any]:
        return self._command(const.ACTION_SELL, args, ctx)

    def _refund(self, args: RefundArgs, ctx: CommandContext) -> dict[str, Any]:
        return self._command(const.ACTION_REFUND, args, ctx)

    def _correct(self, args: CorrectArgs, ctx: CommandContext) -> dict[str, Any]:
        return self._command(const.ACTION_CORRECT, args, ctx)

    def _open_shift(self, args: ShiftArgs, ctx: CommandContext) -> dict[str, Any]:
        return self._command(const.ACTION_OPEN_SHIFT, args, ctx)

    def _close_shift(self, args: ShiftArgs, ctx: CommandContext) -> dict[str, Any]:
        return self._command(const.ACTION_CLOSE_SHIFT, args, ctx)

    def _command(self, action: str, args: ReceiptArgs | ShiftArgs, ctx: CommandContext) -> dict[str, Any]:
        """A document command from the bus; a repeat of a failure (``rerun_on``) asks the FN first."""
        command_id = ctx.command_id or None
        if ctx.previous is not None and command_id is not None:
            found = self._already_made(action, args, command_id)
            if found is not None:
                return found
        data = self._document(action, args, claimed_by=command_id)
        attempt_id, store = self._returned, self._store
        if attempt_id is not None and store is not None:
            ctx.journaled.append(lambda: store.mark_delivered(attempt_id))
        return data

    def _already_made(self, action: str, args: ReceiptArgs | ShiftArgs, command_id: str) -> dict[str, Any] | None:
        """Before running a failed command again: is its document in the FN after all?"""
        store, reg = self._require_store(), self._require()
        previous = store.latest_for(command_id)
        if previous is None:
            return None
        if previous.state == FISCALIZED and previous.document is not None:
            return previous.document
        try:
            st = reg.status()
            doc = self._find(reg, st, previous)
        except (DeviceTimeout, DeviceProtocolError, DeviceUnavailable) as exc:
            raise UnknownOutcome(f"{const.MSG_UNKNOWN_OUTCOME} ({exc.message})") from exc
        if doc is None:
            return None
        receipt = args.receipt if isinstance(args, ReceiptArgs) else None
        log.warning("fiscal %s: %s repeated: its document is in the FN (FD %d)", self.id, command_id, doc.fd_number)
        return self._complete(previous.id, doc, receipt)

    def _x_report(self, args: NoArgs) -> dict[str, Any]:
        self._require().x_report()
        return {}

    def _status_action(self, args: NoArgs) -> dict[str, Any]:
        self._observe(self._require().status())
        return self.status_data()

    def _marking(self, args: MarkingCheckArgs) -> dict[str, Any]:
        check = self._require().check_marking_code(args.code, args.planned_status)
        return marking_json(check.code, check.valid, check.checked_online, check.check_result, check.code_type)

    # Documents, exactly once ------------------------------------------------------------------
    def _document(
        self, action: str, args: ReceiptArgs | ShiftArgs, *, claimed_by: str | None = None
    ) -> dict[str, Any]:
        reg, store = self._require(), self._require_store()
        if not self._recovering:
            # a new command reached the register: every earlier outcome was delivered, and every
            # recovery of this start already ran (they are queued first)
            self._settle_delivered()
            store.retire_undelivered()
        st = reg.status()
        self._observe(st)
        receipt = args.receipt if isinstance(args, ReceiptArgs) else None
        attempt_id = store.begin(
            action, args_hash(args._raw), args._raw, fd_before=st.last_fd_number, kind=_KIND[action],
            sign=int(receipt.sign) if receipt else None, total=kopecks(receipt.total) if receipt else None,
            items=len(receipt.items) if receipt else 0, claimed_by=claimed_by,
        )
        receipt_path = action in const.RECEIPT_ACTIONS
        if receipt_path:
            crashpoint(const.CRASH_BEFORE_OPEN)
        try:
            doc = _driver_call(action, args, reg)
        except (DeviceTimeout, DeviceUnavailable, DeviceProtocolError) as exc:
            return self._after_link_error(attempt_id, action, receipt, exc)
        except DeviceRejected as exc:
            store.settle(attempt_id, FAILED, {"code": exc.code, "message": exc.message})
            self._returned = attempt_id
            raise
        if receipt_path:
            crashpoint(const.CRASH_AFTER_CLOSE)
        data = self._complete(attempt_id, doc, receipt)
        if receipt_path:
            crashpoint(const.CRASH_BEFORE_REPLY)
        return data

    def _complete(self, attempt_id: int, doc: FiscalDocument, receipt: Receipt | None, *, emitted: bool = False,
                  ) -> dict[str, Any]:
        """Record the document, store its event once, remember it for the delivery mark."""
        store = self._require_store()
        data = document_json(doc, receipt)
        store.settle(attempt_id, FISCALIZED, data)
        if not emitted:
            self.emit(_EVENT.get(doc.kind, const.EVENT_FISCAL_DOCUMENT), data)
            store.mark_emitted(attempt_id)
        if self._status is not None:
            self._status = dataclasses.replace(self._status, last_fd_number=max(doc.fd_number,
                                               self._status.last_fd_number))
        self._returned = attempt_id
        return data

    def _after_link_error(
        self, attempt_id: int, action: str, receipt: Receipt | None, exc: DriverError
    ) -> dict[str, Any]:
        """The link failed mid-document (no crash): read the FN now instead of guessing."""
        store = self._require_store()
        store.settle(attempt_id, UNKNOWN)
        self._returned = attempt_id
        attempt = store.get(attempt_id)
        assert attempt is not None
        try:
            reg = self._require()
            st = reg.status()
            doc = self._find(reg, st, attempt)
            if doc is None and st.receipt_open:
                reg.cancel_receipt()
        except DriverError as again:
            log.error("fiscal %s: %s outcome unknown: %s / %s", self.id, action, exc.message, again.message)
            raise UnknownOutcome(f"{const.MSG_UNKNOWN_OUTCOME} ({exc.message})") from exc
        if doc is not None:
            return self._complete(attempt_id, doc, receipt)
        store.settle(attempt_id, FAILED, {"code": exc.code, "message": exc.message})
        raise DeviceRejected(f"Документ не оформлен: {exc.message}", code=const.CODE_NOT_FISCALIZED) from exc

    def _find(self, reg: FiscalRegister, st: RegisterStatus, attempt: Attempt) -> FiscalDocument | None:
        """Our document among those after ``fd_before`` (same kind, sign and total), or ``None``."""
        last = st.last_fd_number
        for fd in range(attempt.fd_before + 1, min(last, attempt.fd_before + MAX_SCAN) + 1):
            doc = reg.document(fd)
            if doc is None or doc.kind != attempt.kind:
                continue
            if attempt.sign is not None and (doc.sign is None or int(doc.sign) != attempt.sign):
                continue
            if attempt.total is not None and (doc.total is None or kopecks(doc.total) != attempt.total):
                continue
            if fd == last and doc.kind in ("receipt", "correction"):  # the FN's counters are about it
                doc = dataclasses.replace(doc, shift_number=st.shift_number, receipt_number=st.receipts_in_shift)
            return doc
        return None

    # Recovery (worker thread, register open) -------------------------------------------------------
    def recover(self, entry: StoredReply) -> Outcome:
        """Resolve a document command the gateway died in (see the module doc)."""
        if entry.action not in const.DOCUMENT_ACTIONS:
            return super().recover(entry)
        store, reg = self._require_store(), self._require()
        attempt = store.claim(entry.action, entry.args_hash, entry.command_id)
        if attempt is None and entry.previous is not None:
            # a re-run that died before recording its own attempt: is the first one's document there?
            found = self._already_made(entry.action, self._reparse(entry), entry.command_id)
            if found is not None:
                return Outcome.done(found)
        if attempt is None:
            return Outcome.failed(
                const.CODE_NOT_FISCALIZED,
                "Документ не оформлен: шлюз перезапустился до обращения к ККТ; повторите с новым command_id",
            )
        self._returned = attempt.id
        args = self._reparse(entry)
        receipt = args.receipt if isinstance(args, ReceiptArgs) else None
        if attempt.state == FISCALIZED and attempt.document is not None:
            if not attempt.emitted:
                self.emit(_EVENT.get(attempt.kind, const.EVENT_FISCAL_DOCUMENT), attempt.document)
                store.mark_emitted(attempt.id)
            log.warning("fiscal %s: %s recovered from the attempt store (FD %s)", self.id, entry.command_id,
                        attempt.document.get("fd_number"))
            return Outcome.done(attempt.document)
        try:
            st = reg.status()  # a register that does not answer: unresolved, asked again later
            self._observe(st)
            doc = self._find(reg, st, attempt)
            if doc is not None:
                log.warning("fiscal %s: %s was fiscalized before the crash: FD %d", self.id, entry.command_id,
                            doc.fd_number)
                return Outcome.done(self._complete(attempt.id, doc, receipt))
            if st.receipt_open:
                log.warning("fiscal %s: cancelling the receipt left open by the crash", self.id)
                reg.cancel_receipt()
        except (DeviceTimeout, DeviceProtocolError) as exc:
            raise DeviceUnavailable(f"{const.MSG_UNKNOWN_OUTCOME}: {exc.message}") from exc
        store.settle(attempt.id, FAILED, {"code": const.CODE_NOT_FISCALIZED, "message": "прерван сбоем шлюза"})
        age = time.time() - attempt.started_at
        if age > self._rerun_window:
            return Outcome.failed(
                const.CODE_NOT_FISCALIZED,
                f"Документ не оформлен (шлюз остановился {age:.0f} с назад, ККТ документ не зарегистрировала);"
                " повторите с новым command_id",
            )
        log.warning("fiscal %s: %s was not fiscalized: making it now", self.id, entry.command_id)
        try:
            self._recovering = True
            data = self._document(entry.action, args, claimed_by=entry.command_id)
        except (DeviceTimeout, DeviceProtocolError) as exc:
            raise DeviceUnavailable(exc.message) from exc
        except UnknownOutcome:
            raise
        except DeviceRejected as exc:
            return Outcome.failed(exc.code, exc.message)
        finally:
            self._recovering = False
        return Outcome.done(data)

    def _reparse(self, entry: StoredReply) -> ReceiptArgs | ShiftArgs:
        parsed = self.validate(entry.action, entry.args)
        assert isinstance(parsed, ReceiptArgs | ShiftArgs)
        return parsed

    # Internals --------------------------------------------------------------------------------
    def _settle_delivered(self) -> None:
        returned, self._returned = self._returned, None
        if returned is not None and self._store is not None:
            self._store.mark_delivered(returned)

    def _require(self) -> FiscalRegister:
        if self._reg is None:
            raise DeviceUnavailable(f"ККТ {self.id!r} не подключена")
        return self._reg

    def _require_store(self) -> AttemptStore:
        if self._store is None:
            raise DeviceUnavailable(f"ККТ {self.id!r} не подключена")
        return self._store


def _document_action(name: str, args: type[BaseModel], handler: Callable[..., dict[str, Any]]) -> Action:
    """A document action: gets its command id, and a repeat of a failure that proved nothing was
    fiscalized runs again (after ``_already_made`` asked the FN) instead of a ``duplicate``."""
    return Action(name, args, handler, side_effect=True, context=True, rerun_on=const.RERUN_ON)


def _driver_call(action: str, args: ReceiptArgs | ShiftArgs, reg: FiscalRegister) -> FiscalDocument:
    """The one driver call that makes the document of ``action``."""
    if isinstance(args, CorrectArgs):
        return reg.correct(args.correction)
    if isinstance(args, ReceiptArgs):
        return reg.refund(args.receipt) if action == const.ACTION_REFUND else reg.sell(args.receipt)
    if action == const.ACTION_OPEN_SHIFT:
        return reg.open_shift(args.cashier.build())
    return reg.close_shift(args.cashier.build())


def _close_quietly(reg: FiscalRegister) -> None:
    try:
        reg.close()
    except Exception as exc:
        log.debug("closing fiscal register: %s", exc)


def _positive(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise DriverConfigError(f"option {key} must be a number, got {value!r}") from exc
    if number <= 0:
        raise DriverConfigError(f"option {key} must be > 0, got {value!r}")
    return number
