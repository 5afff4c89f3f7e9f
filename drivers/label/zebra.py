"""``LabelPrinter``: a ZPL II label printer (Zebra and compatibles) over raw TCP 9100, a
serial/pty URL or USB — a transport plus ``protocols.zpl``.

Printing a label:

1. the data is validated into a template (``LabelDataInvalid`` names the field; nothing
   is sent);
2. ``~HS`` is asked first; paper out, head open, ribbon out, over-temperature or pause
   raise the matching ``LabelPrinterFault`` (Russian message, ``.code`` for the bus) and
   nothing is sent. With other labels still queued or printing we wait for the printer
   to become idle (``busy_timeout``), then raise ``PrinterBusy``: a job must be alone to
   be confirmed;
3. the format is sent (one ``^PQn`` batch);
4. with ``confirm`` the driver polls ``~HS`` until the batch is done.

What a real Zebra tells, and what not: ``~HS`` has no job id and no "printed" counter; it
has "formats in receive buffer" and "labels remaining in batch" (the ``^PQ`` countdown).
So the driver infers: *queued* while formats are in the buffer, *printing n of N* from
the countdown, *done* when both are back to zero (after activity was seen or, if the job
was too quick to catch, after ``settle`` seconds). ``~HS`` is a control command the
printer may answer before it has parsed a format that is still in its input; the settle
time covers that race [K: measured on real printers it is well under a second].

When a fault stops the batch, or confirmation times out, the driver sends ``~JA`` (cancel
all) so the rest does **not** print when the fault is cleared, and returns a
``LabelJobResult`` with ``copies_confirmed`` (labels that came out: ``copies -
labels remaining``; the label under the head when the paper ran out counts as not
printed) and the reason. A retry by the same command id prints ``retry_copies`` only.
If the link is lost while confirming, the outcome is ``UNKNOWN`` with the lower bound
confirmed so far: the gateway must ask a person, not retry blindly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType

from drivers.errors import DeviceProtocolError, DeviceTimeout, DriverError
from drivers.label.errors import LabelDataInvalid, PrinterBusy, fault_error, fault_message
from drivers.transport import SerialTransport, Transport
from protocols.zpl import (
    CANCEL_ALL,
    HOST_IDENTIFICATION,
    HOST_STATUS,
    NEED_DATA,
    AnswerParser,
    HostIdentification,
    HostStatus,
    LabelSize,
    RemoteProtocolError,
    Template,
    TemplateDataError,
    build_label,
    render_label,
)
from protocols.zpl.errors import LocalProtocolError


class JobState(StrEnum):
    PRINTED = "printed"  # every copy confirmed by the printer's counters
    SENT = "sent"  # sent without confirmation (confirm=False)
    PARTIAL = "partial"  # stopped by a fault or timeout; the rest was cancelled (~JA)
    UNKNOWN = "unknown"  # link lost while confirming: ask a person before retrying


@dataclass(frozen=True)
class LabelJobResult:
    state: JobState
    copies_requested: int
    copies_confirmed: int
    reason: str | None = None  # "paper_out", "head_open", "timeout", "device_offline", …
    message: str = ""
    bytes_sent: int = 0

    @property
    def retry_copies(self) -> int:
        """Copies still to print on a retry of the same command."""
        return self.copies_requested - self.copies_confirmed

    @property
    def ok(self) -> bool:
        return self.state in (JobState.PRINTED, JobState.SENT)


class LabelPrinter:
    """A ZPL printer behind any ``Transport``. Methods block; one caller at a time."""

    def __init__(
        self,
        transport: Transport,
        *,
        size: LabelSize | None = None,
        timeout: float = 2.0,
        confirm_timeout: float = 30.0,
        busy_timeout: float = 10.0,
        poll_interval: float = 0.2,
        settle: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.transport = transport
        self.size = size
        self.timeout = timeout
        self.confirm_timeout = confirm_timeout
        self.busy_timeout = busy_timeout
        self.poll_interval = poll_interval
        self.settle = settle
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def tcp(cls, host: str, port: int = 9100, **kwargs: object) -> LabelPrinter:
        """A network printer on raw TCP (port 9100)."""
        return cls(SerialTransport(f"socket://{host}:{port}"), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def usb(
        cls, vendor_id: int, product_id: int, *, serial_number: str | None = None, **kwargs: object
    ) -> LabelPrinter:
        """A USB printer (printer class, bulk OUT/IN), found by VID/PID."""
        from drivers.label.usb import UsbTransport

        return cls(UsbTransport(vendor_id, product_id, serial_number=serial_number), **kwargs)  # type: ignore[arg-type]

    # --- link ------------------------------------------------------------------------------

    def open(self) -> None:
        self.transport.open()

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> LabelPrinter:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- queries ---------------------------------------------------------------------------

    def _ask(self, command: bytes) -> HostStatus | HostIdentification:
        parser = AnswerParser(command)
        self.transport.reset_input()
        self.transport.write(command)
        deadline = self._clock() + self.timeout
        last_error: RemoteProtocolError | None = None
        while True:
            try:
                event = parser.next_event()
            except RemoteProtocolError as exc:
                last_error = exc
                continue
            if event is not NEED_DATA:
                assert isinstance(event, HostStatus | HostIdentification)
                return event
            left = deadline - self._clock()
            if left <= 0:
                if last_error is not None:
                    raise DeviceProtocolError(
                        f"Принтер этикеток ответил непонятно на {command.decode()}: {last_error}"
                    ) from last_error
                raise DeviceTimeout(f"Принтер этикеток не ответил на {command.decode()} за {self.timeout} с")
            parser.receive_data(self.transport.read(4096, min(left, 0.5)))

    def status(self) -> HostStatus:
        """The printer's ``~HS`` answer."""
        result = self._ask(HOST_STATUS)
        assert isinstance(result, HostStatus)
        return result

    def identify(self) -> HostIdentification:
        """The printer's ``~HI`` answer: model, firmware, resolution, memory."""
        result = self._ask(HOST_IDENTIFICATION)
        assert isinstance(result, HostIdentification)
        return result

    def check_ready(self) -> HostStatus:
        """``~HS``; raise the typed fault if the printer cannot print now."""
        status = self.status()
        if status.faults:
            raise fault_error(status.faults[0])
        return status

    def cancel_all(self) -> None:
        """``~JA``: drop every queued format and the rest of the current batch."""
        self.transport.write(CANCEL_ALL)

    # --- printing --------------------------------------------------------------------------

    def print_label(
        self, template: Template | str, data: Mapping[str, object], copies: int = 1, *, confirm: bool = True
    ) -> LabelJobResult:
        """Validate, check the printer, send one batch of ``copies`` labels, confirm."""
        try:
            label = build_label(template, data)
            zpl = render_label(label, self.size, copies)
        except TemplateDataError as exc:
            raise LabelDataInvalid(f"Данные этикетки: {exc}", field=exc.field) from exc
        except LocalProtocolError as exc:
            raise LabelDataInvalid(f"Данные этикетки: {exc}") from exc
        return self._print(zpl, copies, confirm)

    def print_raw(self, zpl: bytes | str, *, copies: int = 1, confirm: bool = False) -> LabelJobResult:
        """Send a ready ZPL format (after the same readiness check). ``copies`` is what the
        format's ``^PQ`` asks, used only to confirm."""
        data = zpl.encode("utf-8") if isinstance(zpl, str) else zpl
        if b"^XA" not in data.upper():
            raise LabelDataInvalid("ZPL без ^XA: это не этикетка", field="zpl")
        return self._print(data, copies, confirm)

    def _print(self, zpl: bytes, copies: int, confirm: bool) -> LabelJobResult:
        self._wait_ready()
        self.transport.write(zpl)
        if not confirm:
            return LabelJobResult(JobState.SENT, copies, 0, bytes_sent=len(zpl))
        return self._confirm(copies, len(zpl))

    def _wait_ready(self) -> None:
        deadline = self._clock() + self.busy_timeout
        while True:
            status = self.check_ready()
            if status.idle:
                return
            if self._clock() >= deadline:
                raise PrinterBusy(
                    f"Принтер этикеток занят: в очереди {status.formats_in_buffer} форм., "
                    f"осталось напечатать {status.labels_remaining} эт."
                )
            self._sleep(self.poll_interval)

    def _confirm(self, copies: int, sent: int) -> LabelJobResult:
        started = self._clock()
        deadline = started + self.confirm_timeout
        seen_activity = False
        confirmed = 0
        while True:
            try:
                status = self.status()
            except DriverError as exc:
                return LabelJobResult(
                    JobState.UNKNOWN,
                    copies,
                    confirmed,
                    exc.code,
                    f"Связь с принтером этикеток потеряна во время печати: {exc.message}",
                    sent,
                )
            queued = status.formats_in_buffer > 0 or status.partial_format
            if status.labels_remaining > 0 and status.formats_in_buffer == 0:
                confirmed = max(confirmed, copies - min(copies, status.labels_remaining))
            if queued or status.labels_remaining > 0:
                seen_activity = True
            elif seen_activity or self._clock() - started >= self.settle:
                return LabelJobResult(JobState.PRINTED, copies, copies, bytes_sent=sent)
            if status.faults:
                return self._abort(copies, confirmed, status.faults[0], fault_message(status.faults[0]), sent)
            if self._clock() >= deadline:
                return self._abort(
                    copies, confirmed, "timeout", f"Печать не подтверждена за {self.confirm_timeout} с", sent
                )
            self._sleep(self.poll_interval)

    def _abort(self, copies: int, confirmed: int, reason: str, message: str, sent: int) -> LabelJobResult:
        try:
            self.cancel_all()
            after = self.status()
        except DriverError as exc:
            return LabelJobResult(
                JobState.UNKNOWN,
                copies,
                confirmed,
                exc.code,
                f"{message}; отменить остаток не удалось: {exc.message}",
                sent,
            )
        if not after.idle:
            return LabelJobResult(
                JobState.UNKNOWN,
                copies,
                confirmed,
                reason,
                f"{message}; принтер не отменил остаток задания",
                sent,
            )
        return LabelJobResult(
            JobState.PARTIAL,
            copies,
            confirmed,
            reason,
            f"{message}. Напечатано {confirmed} из {copies}, остаток отменён",
            sent,
        )
