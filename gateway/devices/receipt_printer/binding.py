"""Binds a ``drivers.printer.ReceiptPrinter`` (ESC/POS) to the bus: ``print_document``, ``status``.

Status: ``DLE EOT 1..4`` every ``poll_interval_s`` (5 s by default); the status data carries
``paper`` (``ok`` / ``near_end`` / ``out``), ``cover`` (``open`` / ``closed``), the faults and
the Russian message of the first one. Published (retained) by the worker when it changes. A
fault (paper out, cover open, cutter…) makes the device status ``error`` with the Russian
reason; ``online`` again when the poll sees it cleared (paper near end is only a warning).

``print_document`` outcomes, and what the cloud should do with each:

* ``done`` — sent, no fault afterwards (``warnings`` may say ``paper_near_end``).
* ``failed`` with the fault's code (``paper_out``, ``cover_open``, ``cutter_error``…) and
  ``result.last.printed = false`` — the printer refused *before* anything was sent. Nothing
  printed; fix the printer and send the document again under a **new** command id (a repeat
  of the same id gets this failure as ``duplicate``: the journal keeps it).
* ``failed``/``print_incomplete`` — the document was sent and a fault appeared while it
  printed (the driver's ``INCOMPLETE``: paper ran out, the cover was opened). It may be half
  printed, and most printers print the rest from their buffer once paper is loaded. It is
  **never resent automatically**, not by a repeat of the same command id either: a person
  looks at the printer and decides whether to reprint (under a new command id, marked as a copy).
* ``failed``/``unknown_outcome`` — the link failed after sending began; same rule.

There is deliberately no resume for documents: unlike a label batch, ESC/POS says nothing
about how far a document got, so "print the rest" cannot be computed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from drivers.errors import DeviceUnavailable, DriverConfigError, DriverError
from drivers.printer import DocumentState, ReceiptJobResult, ReceiptPrinter, ReceiptPrinterFault
from drivers.printer.errors import fault_message
from gateway.config import DeviceConfig
from gateway.devices.base import Action, DeviceBinding, EmitFn, NoArgs
from gateway.devices.receipt_printer import const
from gateway.devices.receipt_printer.actions import PrintDocumentArgs
from gateway.errors import InvalidArgs
from protocols.bus import DeviceKind, DeviceState, describe
from protocols.escpos import LocalProtocolError, RealTimeStatus, layout

log = logging.getLogger(__name__)

PrinterFactory = Callable[[str, str, dict[str, Any]], ReceiptPrinter]


def default_factory(driver: str, url: str, options: dict[str, Any]) -> ReceiptPrinter:
    """A ``ReceiptPrinter`` for ``tcp://host:9100``, ``usb://VID:PID`` or a serial path / pty."""
    if driver != "escpos":
        raise DriverConfigError(f"Неизвестный драйвер принтера чеков {driver!r}; доступен: escpos")
    options = dict(options)
    lower = url.lower()
    if lower.startswith(("tcp://", "socket://")):
        host, _, port = url.split("://", 1)[1].rpartition(":")
        if not host or not port.isdigit():
            raise DriverConfigError(f"Адрес сетевого принтера чеков должен быть tcp://host:port: {url!r}")
        options.pop("baudrate", None)
        return ReceiptPrinter.network(host, int(port), **options)
    if lower.startswith("usb://"):
        vid, _, pid = url[len("usb://"):].partition(":")
        options.pop("baudrate", None)
        try:
            return ReceiptPrinter.usb(int(vid, 16), int(pid, 16), **options)
        except ValueError as exc:
            raise DriverConfigError(f"Адрес USB-принтера должен быть usb://VID:PID (hex): {url!r}") from exc
    return ReceiptPrinter.serial(url, **options)


class DocumentFailed(DriverError):
    """A document that did not (or may not have) printed; ``last`` goes to ``result.last``."""

    def __init__(self, message: str, *, code: str, data: dict[str, Any]) -> None:
        super().__init__(message, code=code)
        self.last = _Data(data)


class _Data:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def as_dict(self) -> dict[str, Any]:
        return self._data


class ReceiptPrinterBinding(DeviceBinding):
    kind = DeviceKind.RECEIPT_PRINTER
    capabilities = (const.ACTION_PRINT_DOCUMENT, const.ACTION_STATUS)
    events = const.EVENTS

    def __init__(self, config: DeviceConfig, emit: EmitFn, factory: PrinterFactory | None = None) -> None:
        super().__init__(config, emit, factory)
        self._factory: PrinterFactory = factory or default_factory
        _check_url(config.url)
        options = dict(config.options)
        self._poll_interval = _positive(options, "poll_interval_s", const.DEFAULT_POLL_INTERVAL_S)
        self._driver_options = {k: v for k, v in options.items() if k not in const.BINDING_OPTIONS}
        unknown = sorted(set(self._driver_options) - const.DRIVER_OPTIONS)
        if unknown:
            raise DriverConfigError(
                f"принтер чеков: неизвестные параметры {', '.join(unknown)}; допустимы: "
                f"{', '.join(sorted(const.DRIVER_OPTIONS | const.BINDING_OPTIONS))}"
            )
        self._width = self._driver_options.get("width", 48)
        if self._width not in (32, 42, 48) or isinstance(self._width, bool):
            raise DriverConfigError(f"ширина бумаги {self._width}: ожидается 32, 42 или 48 символов")
        self._printer: ReceiptPrinter | None = None
        self._status: RealTimeStatus | None = None
        self._actions: dict[str, Action] = {
            const.ACTION_PRINT_DOCUMENT: Action(
                const.ACTION_PRINT_DOCUMENT, PrintDocumentArgs, self._print_document, side_effect=True,
                doc="нефискальный документ; незавершённая печать не повторяется автоматически",
            ),
            const.ACTION_STATUS: Action(const.ACTION_STATUS, NoArgs, self._status_action),
        }

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    # Validation (dispatcher thread) -----------------------------------------------------------
    def validate(self, action: str, args: dict[str, Any]) -> BaseModel:
        """Shape by pydantic, then the layout for this printer's paper width."""
        if action != const.ACTION_PRINT_DOCUMENT:
            return super().validate(action, args)
        try:
            parsed = PrintDocumentArgs.model_validate(args)
        except ValidationError as exc:
            raise InvalidArgs(f"{action}: неверные аргументы: {describe(exc)}") from exc
        try:
            layout(parsed.build(), self._width)
        except LocalProtocolError as exc:
            where = f"{exc.field}: " if exc.field else ""
            raise InvalidArgs(f"{action}: {where}{exc}", result={"field": exc.field} if exc.field else None) from exc
        return parsed

    # Lifecycle (worker thread) ---------------------------------------------------------------
    @property
    def poll_interval(self) -> float | None:
        return self._poll_interval

    def open(self) -> None:
        self.close()
        printer = self._factory(self.config.driver, self.config.url, dict(self._driver_options))
        try:
            printer.open()
            self._observe(printer.status())
        except BaseException:
            printer.close()
            raise
        self._printer = printer

    def close(self) -> None:
        printer, self._printer = self._printer, None
        if printer is not None:
            try:
                printer.close()
            except Exception as exc:
                log.debug("closing receipt printer: %s", exc)

    def poll(self) -> None:
        self._observe(self._require().status())

    def _observe(self, status: RealTimeStatus) -> None:
        """Keep the printer's status; a fault makes the device ``error`` with the Russian reason."""
        self._status = status
        faults = list(status.faults)
        self.report_status(DeviceState.ERROR if faults else None, "; ".join(fault_message(f) for f in faults))

    def status_data(self) -> dict[str, Any]:
        return _status_json(self._status)

    # Actions ----------------------------------------------------------------------------
    def _print_document(self, args: PrintDocumentArgs) -> dict[str, Any]:
        printer = self._require()
        try:
            result = printer.print_document(args.build())
        except ReceiptPrinterFault as exc:  # the readiness check refused: nothing was sent
            self._refresh()
            raise DocumentFailed(
                f"{exc.message}. Документ не печатался", code=exc.code,
                data={"printed": False, "state": "not_sent", "reason": exc.code},
            ) from exc
        self._refresh()
        return _conclude(result)

    def _status_action(self, args: NoArgs) -> dict[str, Any]:
        self._observe(self._require().status())
        return self.status_data()

    # Internals ----------------------------------------------------------------------------
    def _require(self) -> ReceiptPrinter:
        if self._printer is None:
            raise DeviceUnavailable(f"принтер чеков {self.id!r} не подключён")
        return self._printer

    def _refresh(self) -> None:
        """Read the status after a job so the published status shows the fault at once."""
        try:
            self._observe(self._require().status())
        except DriverError as exc:
            log.debug("receipt printer %s: status after a job: %s", self.id, exc.message)


def _conclude(result: ReceiptJobResult) -> dict[str, Any]:
    data: dict[str, Any] = {
        "state": result.state.value,
        "reason": result.reason,
        "warnings": list(result.warnings),
        "bytes_sent": result.bytes_sent,
    }
    if result.state is DocumentState.PRINTED:
        return {**data, "printed": True}
    if result.state is DocumentState.INCOMPLETE:
        raise DocumentFailed(
            f"{result.message}. Документ не будет отправлен повторно автоматически: проверьте, что напечаталось, "
            "и при необходимости напечатайте копию новой командой",
            code=const.CODE_INCOMPLETE, data={**data, "printed": None},
        )
    raise DocumentFailed(
        f"{result.message}. Документ не будет отправлен повторно автоматически",
        code=const.CODE_UNKNOWN_OUTCOME, data={**data, "printed": None},
    )


def _status_json(status: RealTimeStatus | None) -> dict[str, Any]:
    if status is None:
        return {}
    paper = const.PAPER_OUT if status.paper_out else const.PAPER_NEAR_END if status.paper_near_end else const.PAPER_OK
    faults = list(status.faults)
    return {
        "ready": not faults,
        "paper": paper,
        "cover": "open" if status.cover_open else "closed",
        "faults": faults,
        "message": fault_message(faults[0]) if faults else "",
    }


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
    schemes = ("tcp://", "socket://", "usb://")
    if url.lower().startswith(schemes) or url.startswith("/"):
        return
    raise DriverConfigError(
        f"receipt_printer: адрес {url!r} не подходит: ожидается {', '.join(schemes)}… "
        "или абсолютный путь к порту (/dev/…)"
    )
