"""Binds a ``drivers.label.LabelPrinter`` (ZPL) to the bus: ``print_label``, ``status``, polling.

Status: ``~HS`` every ``poll_interval_s`` (5 s by default); the status data carries paper out,
head open, pause, ribbon out, over-temperature, the labels left in the current batch and the
Russian message of the first fault. The worker publishes it (retained) when it changes.

Printing and resuming (the reliability rule: nothing printed twice per ``command_id``):

1. The family's progress table (``progress.py``; option ``state_file``) gets a row per command
   id. Before a batch is sent the row is ``sending`` with the batch size (on disk); after it,
   the driver's confirmed count is added and the row is ``done``, ``stopped`` (a fault stopped
   the printer; the driver cancelled the rest with ``~JA`` and knows exactly how many labels
   came out) or ``unknown`` (the link was lost while printing).
2. A stopped job answers ``failed`` with the fault's code (``paper_out``, ``head_open``…), the
   Russian reason and ``result.last`` = ``copies_confirmed`` / ``copies_remaining``.
3. The action declares those codes in ``rerun_on``: a repeat with the same ``command_id`` (and
   the same args) after the fault is cleared is handed back to the binding by the dispatcher
   instead of a ``duplicate``; the binding reads the row and sends only ``copies_remaining``.
   The final reply replaces the stored failure in the journal.
4. A row found ``sending`` (the gateway died mid-batch; the journal may even say ``failed``
   from an earlier attempt) or ``unknown`` is never resumed: ``failed``/``unknown_outcome``
   with the lower bound, and a person counts the labels and sends a new command for the rest.

Before a batch the binding asks ``~HS`` itself: a fault or a lost link there proves nothing was
sent, so the job stays resumable; an I/O error after the row went ``sending`` does not.

``recover`` (journal row still ``running`` at startup, also after a crash during a re-run: the
journal reopens the row before it) answers from the table: ``done`` if the batch was confirmed,
``interrupted`` (resumable) if nothing was on the wire, else ``unknown_outcome``.

The table defaults to ``{data_dir}/label_printer-{id}.db`` (the gateway's data dir); the
``state_file`` option names another file. A fault (paper out, head open, pause…) makes the device
status ``error`` with the Russian reason, back to ``online`` when the poll sees it cleared.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from drivers.errors import DeviceUnavailable, DriverConfigError, DriverError
from drivers.label import JobState, LabelJobResult, LabelPrinter, LabelPrinterFault, PrinterBusy
from drivers.label.errors import fault_message
from drivers.transport import SerialTransport
from gateway.config import DeviceConfig
from gateway.devices.base import Action, CommandContext, DeviceBinding, EmitFn, NoArgs, Outcome
from gateway.devices.label_printer import const
from gateway.devices.label_printer.actions import PrintLabelArgs
from gateway.devices.label_printer.progress import DONE, SENDING, STOPPED, UNKNOWN, Job, ProgressStore
from gateway.errors import InvalidArgs, StorageError
from gateway.journal import StoredReply, args_hash
from protocols.bus import DeviceKind, DeviceState, ReplyCode, describe
from protocols.zpl import HostStatus, LabelSize, LocalProtocolError, TemplateDataError, build_label

log = logging.getLogger(__name__)

PrinterFactory = Callable[[str, str, dict[str, Any]], LabelPrinter]


def default_factory(driver: str, url: str, options: dict[str, Any]) -> LabelPrinter:
    """A ``LabelPrinter`` for ``url``: ``tcp://host:9100``, a serial/pty path or ``usb://VID:PID``."""
    if driver not in ("zpl", "zebra"):
        raise DriverConfigError(f"Неизвестный драйвер принтера этикеток {driver!r}; доступен: zpl")
    if url.lower().startswith("usb://"):
        vid, _, pid = url[len("usb://"):].partition(":")
        try:
            return LabelPrinter.usb(int(vid, 16), int(pid, 16), **options)
        except ValueError as exc:
            raise DriverConfigError(f"Адрес USB-принтера должен быть usb://VID:PID (hex): {url!r}") from exc
    return LabelPrinter(SerialTransport(url), **options)


class PrintFailed(DriverError):
    """A print job that stopped; ``last`` (the job's progress) goes to ``result.last``."""

    def __init__(self, message: str, *, code: str, job: Job) -> None:
        super().__init__(message, code=code)
        self.last = job


class LinkLostWhilePrinting(DeviceUnavailable):
    """The link failed after labels were sent: the device goes offline, the count is unknown."""

    code = const.CODE_UNKNOWN_OUTCOME


class LabelPrinterBinding(DeviceBinding):
    kind = DeviceKind.LABEL_PRINTER
    capabilities = (const.ACTION_PRINT_LABEL, const.ACTION_STATUS)
    events = const.EVENTS

    def __init__(self, config: DeviceConfig, emit: EmitFn, factory: PrinterFactory | None = None) -> None:
        super().__init__(config, emit, factory)
        self._factory: PrinterFactory = factory or default_factory
        _check_url(config.url)
        options = dict(config.options)
        self._poll_interval = _positive(options, "poll_interval_s", const.DEFAULT_POLL_INTERVAL_S)
        self._size = _label_size(options)
        self._driver_options = {k: v for k, v in options.items() if k not in const.BINDING_OPTIONS}
        unknown = sorted(set(self._driver_options) - const.DRIVER_OPTIONS)
        if unknown:
            raise DriverConfigError(
                f"принтер этикеток: неизвестные параметры {', '.join(unknown)}; допустимы: "
                f"{', '.join(sorted(const.DRIVER_OPTIONS | const.BINDING_OPTIONS))}"
            )
        self._printer: LabelPrinter | None = None
        self._store: ProgressStore | None = None
        self._status: HostStatus | None = None
        self._model = ""
        self._actions: dict[str, Action] = {
            const.ACTION_PRINT_LABEL: Action(
                const.ACTION_PRINT_LABEL, PrintLabelArgs, self._print_label, side_effect=True, context=True,
                rerun_on=const.RESUMABLE_CODES, doc="печать этикетки по шаблону; повтор допечатывает остаток",
            ),
            const.ACTION_STATUS: Action(const.ACTION_STATUS, NoArgs, self._status_action),
        }

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    @property
    def state_file(self) -> Path:
        """The progress table: ``state_file`` option, else ``{data_dir}/label_printer-{id}.db``."""
        return self.state_path("label_printer")

    # Validation (dispatcher thread) -----------------------------------------------------------
    def validate(self, action: str, args: dict[str, Any]) -> BaseModel:
        """Shape by pydantic, then the label data by ``protocols.zpl`` (the field is named)."""
        spec = self._actions.get(action)
        if spec is None or spec.args is not PrintLabelArgs:
            return super().validate(action, args)
        try:
            parsed = PrintLabelArgs.model_validate(args)
        except ValidationError as exc:
            raise InvalidArgs(f"{action}: неверные аргументы: {describe(exc)}") from exc
        try:
            build_label(parsed.template, parsed.data)
        except TemplateDataError as exc:
            raise InvalidArgs(f"{action}: data.{exc}", result={"field": f"data.{exc.field}"}) from exc
        except LocalProtocolError as exc:
            raise InvalidArgs(f"{action}: {exc}") from exc
        return parsed

    # Lifecycle (worker thread) ---------------------------------------------------------------
    @property
    def poll_interval(self) -> float | None:
        return self._poll_interval

    def open(self) -> None:
        self.close()
        self._require_store()
        options: dict[str, Any] = dict(self._driver_options)
        if self._size is not None:
            options["size"] = self._size
        printer = self._factory(self.config.driver, self.config.url, options)
        try:
            printer.open()
            ident = printer.identify()
            self._observe(printer.status())
        except BaseException:
            _close_quietly(printer)
            raise
        self._model = f"{ident.model} {ident.firmware}".strip()
        self._printer = printer

    def close(self) -> None:
        printer, self._printer = self._printer, None
        if printer is not None:
            _close_quietly(printer)

    def poll(self) -> None:
        self._observe(self._require().status())

    def _observe(self, status: HostStatus | None) -> None:
        """Keep the printer's status; a fault makes the device ``error`` with the Russian reason."""
        self._status = status
        faults = list(status.faults) if status is not None else []
        detail = "; ".join(fault_message(f) for f in faults)
        self.report_status(DeviceState.ERROR if faults else None, detail)

    def status_data(self) -> dict[str, Any]:
        return _status_json(self._status, self._model)

    def recover(self, entry: StoredReply) -> Outcome:
        """Answer from the progress table (module doc, last paragraph)."""
        job = self._require_store().get(entry.command_id)
        if job is None or job.state not in (SENDING, DONE, UNKNOWN):
            done = job.confirmed if job is not None else 0
            return Outcome.failed(
                ReplyCode.INTERRUPTED,
                f"Шлюз перезапустился до отправки этикеток на принтер; напечатано {done}. "
                "Повторите команду с тем же command_id",
                {"last": job.as_dict()} if job is not None else None,
            )
        if job.state == DONE:
            return Outcome.done(job.as_dict())
        job = self._require_store().ended(job.command_id, UNKNOWN, 0, "interrupted")
        return Outcome.failed(const.CODE_UNKNOWN_OUTCOME, _unknown_message(job), {"last": job.as_dict()})

    # Actions ----------------------------------------------------------------------------
    def _print_label(self, args: PrintLabelArgs, context: CommandContext) -> dict[str, Any]:
        store = self._require_store()
        printer = self._require()
        digest = args_hash(args.model_dump(mode="json"))
        job = store.get(context.command_id) or store.create(context.command_id, digest, args.copies)
        if job.args_hash != digest:
            raise PrintFailed(
                f"command_id {context.command_id!r} уже использован для другой этикетки", code="command_id_reused",
                job=job,
            )
        if job.state == DONE or job.remaining <= 0:
            return store.ended(job.command_id, DONE, 0, None).as_dict()
        if job.state in (SENDING, UNKNOWN):
            if job.state == SENDING:
                job = store.ended(job.command_id, UNKNOWN, 0, "interrupted")
            raise PrintFailed(_unknown_message(job), code=const.CODE_UNKNOWN_OUTCOME, job=job)
        # Nothing of this job is on the wire now: a fault or a dead link here keeps it resumable.
        try:
            self._observe(printer.check_ready())
        except LabelPrinterFault as exc:
            self._observe(_faulted(exc.code, self._status))
            job = store.ended(job.command_id, STOPPED, 0, exc.code)
            raise PrintFailed(_stopped_message(exc.message, job), code=exc.code, job=job) from exc
        if job.confirmed:
            context.progress("resuming", f"допечатка: {job.remaining} из {job.requested}")
        store.sending(job.command_id, job.remaining)
        try:
            result = printer.print_label(args.template, args.data, job.remaining, confirm=True)
        except (LabelPrinterFault, PrinterBusy) as exc:  # raised by the driver's check, before sending
            job = store.ended(job.command_id, STOPPED, 0, exc.code)
            raise PrintFailed(_stopped_message(exc.message, job), code=exc.code, job=job) from exc
        except DriverError as exc:
            job = store.ended(job.command_id, UNKNOWN, 0, exc.code)
            if isinstance(exc, DeviceUnavailable):
                raise LinkLostWhilePrinting(_unknown_message(job)) from exc
            raise PrintFailed(_unknown_message(job), code=const.CODE_UNKNOWN_OUTCOME, job=job) from exc
        return self._conclude(job, result)

    def _conclude(self, job: Job, result: LabelJobResult) -> dict[str, Any]:
        store = self._require_store()
        if result.state is JobState.PRINTED:
            return {**store.ended(job.command_id, DONE, result.copies_requested, None).as_dict(),
                    "copies_printed_now": result.copies_requested}
        if result.state is JobState.PARTIAL and result.reason != "timeout":
            job = store.ended(job.command_id, STOPPED, result.copies_confirmed, result.reason)
            self._observe(_faulted(result.reason or "", self._status))
            code = result.reason or "printer_fault"
            raise PrintFailed(_stopped_message(fault_message(code), job), code=code, job=job)
        # UNKNOWN, or a timeout (labels may still have come out after the last count): a lower bound.
        job = store.ended(job.command_id, UNKNOWN, result.copies_confirmed, result.reason)
        raise PrintFailed(f"{result.message}. {_unknown_message(job)}", code=const.CODE_UNKNOWN_OUTCOME, job=job)

    def _status_action(self, args: NoArgs) -> dict[str, Any]:
        self._observe(self._require().status())
        return self.status_data()

    # Internals ----------------------------------------------------------------------------
    def _require(self) -> LabelPrinter:
        if self._printer is None:
            raise DeviceUnavailable(f"принтер этикеток {self.id!r} не подключён")
        return self._printer

    def _require_store(self) -> ProgressStore:
        if self._store is None:
            try:
                self._store = ProgressStore(self.state_file)
                self._store.prune(30.0)
            except StorageError as exc:
                raise DriverConfigError(f"таблица заданий принтера этикеток недоступна: {exc.message}") from exc
        return self._store


def _stopped_message(reason: str, job: Job) -> str:
    return (
        f"{reason}. Напечатано {job.confirmed} из {job.requested}, остаток {job.remaining} отменён; "
        "устраните причину и повторите команду с тем же command_id — допечатается только остаток"
    )


def _unknown_message(job: Job) -> str:
    return (
        f"Неизвестно, сколько этикеток напечаталось: подтверждено не меньше {job.confirmed} из {job.requested}. "
        "Проверьте принтер и отправьте новую команду на недостающие этикетки"
    )


def _faulted(code: str, last: HostStatus | None) -> HostStatus | None:
    """The last status with the fault just seen (so the status data shows it before the next poll)."""
    flag = {"paper_out": "paper_out", "head_open": "head_open", "paused": "paused", "ribbon_out": "ribbon_out",
            "over_temperature": "over_temperature"}.get(code)
    if flag is None:
        return last
    flags: dict[str, Any] = {flag: True}
    return dataclasses.replace(last or HostStatus(), **flags)


def _status_json(status: HostStatus | None, model: str) -> dict[str, Any]:
    if status is None:
        return {"model": model or None}
    faults = list(status.faults)
    return {
        "model": model or None,
        "ready": not faults,
        "paper_out": status.paper_out,
        "head_open": status.head_open,
        "paused": status.paused,
        "ribbon_out": status.ribbon_out,
        "over_temperature": status.over_temperature,
        "faults": faults,
        "message": fault_message(faults[0]) if faults else "",
        "labels_remaining": status.labels_remaining,
        "formats_in_buffer": status.formats_in_buffer,
    }


def _label_size(options: Mapping[str, Any]) -> LabelSize | None:
    keys = ("width_mm", "height_mm", "dpi", "font")
    given = {k: options[k] for k in keys if k in options}
    if not given:
        return None
    try:
        return LabelSize(**given)
    except (LocalProtocolError, TypeError) as exc:
        raise DriverConfigError(f"размер этикетки: {exc}") from exc


def _close_quietly(printer: LabelPrinter) -> None:
    try:
        printer.close()
    except Exception as exc:
        log.debug("closing label printer: %s", exc)


def _positive(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise DriverConfigError(f"option {key} must be a number, got {value!r}") from exc
    if number <= 0:
        raise DriverConfigError(f"option {key} must be > 0, got {value!r}")
    return number


def _check_url(url: str) -> None:
    """A device address this family can open: a network/USB URL or an absolute device path."""
    schemes = ("tcp://", "socket://", "rfc2217://", "usb://")
    if url.lower().startswith(schemes) or url.startswith("/"):
        return
    raise DriverConfigError(
        f"label_printer: адрес {url!r} не подходит: ожидается {', '.join(schemes)}… "
        "или абсолютный путь к порту (/dev/…)"
    )
