"""``ReceiptPrinter``: an ESC/POS receipt/document printer through python-escpos
(``escpos.printer.Network`` for TCP 9100, ``Usb``, ``Serial``) plus ``protocols.escpos``.

Printing a document: the document is laid out for the paper width (32/42/48 characters)
and composed into bytes with python-escpos on a ``Dummy`` of the same capabilities
profile (so ``ESC t n`` carries the profile's number for CP866: 17 on Epson-compatibles),
after the real-time status (``DLE EOT 1..4``) says the printer can print: cover open,
paper out, cutter error, offline… raise the typed fault with a Russian message and
nothing is sent. The bytes then go out in one write, ending with a cut.

What ESC/POS tells and what not: real-time status answers at once, even while printing,
but there is no "document printed" acknowledgement on common printers (Epson's ``GS ( H``
process-id response is not universal). So after ``settle`` seconds the driver asks the
status again: a fault then means the document is ``INCOMPLETE`` (paper ran out or the
cover was opened while it printed; most printers keep the rest in their buffer and print
it when the paper is loaded — so the gateway must not resend automatically, but ask a
person, and reprint marked as a copy if needed). ``PRINTED`` means sent with no fault
seen; paper near end comes back as a warning.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any

from drivers.errors import DeviceProtocolError, DeviceTimeout, DeviceUnavailable, DriverError
from drivers.printer.errors import DocumentInvalid, fault_error, fault_message
from protocols.escpos import (
    NEED_DATA,
    Align,
    Document,
    LocalProtocolError,
    PrintLine,
    RealTimeStatus,
    RemoteProtocolError,
    StatusKind,
    StatusParser,
    Symbology,
    layout,
    request,
)
from protocols.escpos.status import ALL_KINDS, StatusByte, combine


class DocumentState(StrEnum):
    PRINTED = "printed"  # sent, no fault seen afterwards
    INCOMPLETE = "incomplete"  # a fault appeared while it printed: ask a person
    UNKNOWN = "unknown"  # the link failed after sending started


@dataclass(frozen=True)
class ReceiptJobResult:
    state: DocumentState
    reason: str | None = None
    message: str = ""
    warnings: tuple[str, ...] = ()
    bytes_sent: int = 0

    @property
    def ok(self) -> bool:
        return self.state is DocumentState.PRINTED


def compose(
    doc: Document,
    *,
    width: int = 48,
    profile: str | None = "default",
    codepage: str = "CP866",
    cut: bool = True,
) -> bytes:
    """The document as ESC/POS bytes, composed by python-escpos (no I/O)."""
    from escpos.printer import Dummy

    try:
        lines = layout(doc, width)
    except LocalProtocolError as exc:
        raise DocumentInvalid(f"Документ: {exc}", field=exc.field) from exc
    printer = Dummy(profile=profile)
    printer.hw("INIT")
    printer.charcode(codepage)
    for line in lines:
        _emit(printer, line)
    printer.set(normal_textsize=True, bold=False, align="left")
    if cut:
        printer.cut()
    output: bytes = printer.output
    return output


def _emit(printer: Any, line: PrintLine) -> None:
    if line.barcode is not None:
        printer.set(align="center")
        if line.barcode.symbology is Symbology.EAN13:
            printer.barcode(line.barcode.data, "EAN13", function_type="B", check=False)
        else:  # GS k 73 needs a code set: {B, with a literal "{" written "{{"
            printer.barcode("{B" + line.barcode.data.replace("{", "{{"), "CODE128", function_type="B")
        printer.set(align="left")
        return
    if line.qr is not None:
        printer.qr(line.qr.data, native=True, size=line.qr.size, center=False)
        return
    printer.set(
        align=line.align.value if isinstance(line.align, Align) else "left",
        bold=line.bold,
        double_height=line.double,
        normal_textsize=not line.double,
    )
    printer.textln(line.text)


def _transport_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    try:
        import serial

        errors.append(serial.SerialException)
    except ImportError:  # pragma: no cover - pyserial is a dependency
        pass
    try:
        import usb.core

        errors.append(usb.core.USBError)
    except ImportError:  # pragma: no cover
        pass
    from escpos import exceptions

    errors.append(exceptions.Error)
    return tuple(errors)


class ReceiptPrinter:
    """An ESC/POS printer behind a python-escpos printer object. One caller at a time."""

    def __init__(
        self,
        printer: Any,
        *,
        width: int = 48,
        profile: str | None = "default",
        codepage: str = "CP866",
        timeout: float = 2.0,
        settle: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if width not in (32, 42, 48):
            raise DocumentInvalid(f"ширина бумаги {width}: ожидается 32, 42 или 48 символов", field="width")
        self.printer = printer
        self.width = width
        self.profile = profile
        self.codepage = codepage
        self.timeout = timeout
        self.settle = settle
        self._clock = clock
        self._sleep = sleep
        self._errors = _transport_errors()

    @classmethod
    def network(
        cls,
        host: str,
        port: int = 9100,
        *,
        timeout: float = 2.0,
        profile: str | None = "default",
        **kwargs: Any,
    ) -> ReceiptPrinter:
        from escpos.printer import Network

        return cls(
            Network(host, port, timeout=timeout, profile=profile), timeout=timeout, profile=profile, **kwargs
        )

    @classmethod
    def serial(
        cls,
        devfile: str,
        *,
        baudrate: int = 9600,
        timeout: float = 2.0,
        profile: str | None = "default",
        **kwargs: Any,
    ) -> ReceiptPrinter:
        from escpos.printer import Serial

        return cls(
            Serial(devfile, baudrate=baudrate, timeout=min(timeout, 0.2), dsrdtr=False, profile=profile),
            timeout=timeout,
            profile=profile,
            **kwargs,
        )

    @classmethod
    def usb(
        cls,
        vendor_id: int,
        product_id: int,
        *,
        in_ep: int | None = None,
        out_ep: int | None = None,
        profile: str | None = "default",
        timeout: float = 2.0,
        find: Callable[..., Iterable[Any]] | None = None,
        **kwargs: Any,
    ) -> ReceiptPrinter:
        """A USB printer; endpoints default to what the device's printer interface declares."""
        from escpos.printer import Usb

        if in_ep is None or out_ep is None:
            choice = usb_endpoints(vendor_id, product_id, find=find)
            out_ep = out_ep if out_ep is not None else choice[0]
            in_ep = in_ep if in_ep is not None else (choice[1] if choice[1] is not None else 0x82)
        printer = Usb(
            vendor_id, product_id, timeout=int(timeout * 1000), in_ep=in_ep, out_ep=out_ep, profile=profile
        )
        return cls(printer, timeout=timeout, profile=profile, **kwargs)

    # --- link -------------------------------------------------------------------------------

    def open(self) -> None:
        try:
            self.printer.open()
        except self._errors as exc:
            raise DeviceUnavailable(f"Принтер чеков недоступен: {exc}") from exc

    def close(self) -> None:
        try:
            self.printer.close()
        except self._errors:
            pass

    def __enter__(self) -> ReceiptPrinter:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _write(self, data: bytes) -> None:
        try:
            self.printer._raw(data)
        except self._errors as exc:
            raise DeviceUnavailable(f"Ошибка передачи на принтер чеков: {exc}") from exc

    def _read(self) -> bytes:
        try:
            data = self.printer._read()
        except TimeoutError:
            return b""
        except self._errors as exc:
            if type(exc).__name__ == "USBTimeoutError":
                return b""
            raise DeviceUnavailable(f"Связь с принтером чеков потеряна: {exc}") from exc
        if data is None:
            return b""
        if not data and isinstance(self.printer, _network_class()):  # recv() == b"": peer closed
            raise DeviceUnavailable("Принтер чеков закрыл соединение")
        return bytes(data)

    # --- status -------------------------------------------------------------------------------

    def query(self, *kinds: StatusKind) -> dict[StatusKind, StatusByte]:
        """``DLE EOT n`` for each kind, sent in one write; answers matched in order.

        Sending the four requests together costs one round trip (a serial read waits for
        its full buffer or the timeout, so one-by-one would cost four timeouts)."""
        parser = StatusParser()
        for kind in kinds:
            parser.expect(kind)
        self._write(b"".join(request(kind) for kind in kinds))
        deadline = self._clock() + self.timeout
        bad: RemoteProtocolError | None = None
        got: dict[StatusKind, StatusByte] = {}
        while True:
            try:
                event = parser.next_event()
            except RemoteProtocolError as exc:
                bad = exc
                continue
            if event is not NEED_DATA:
                assert isinstance(event, tuple)
                got[event[0]] = event[1]
                if len(got) == len(kinds):
                    return got
                continue
            if self._clock() >= deadline:
                if bad is not None:
                    raise DeviceProtocolError(f"Принтер чеков ответил не байтом состояния: {bad}") from bad
                asked = ", ".join(str(int(k)) for k in kinds if k not in got)
                raise DeviceTimeout(f"Принтер чеков не ответил на DLE EOT {asked} за {self.timeout} с")
            parser.receive_data(self._read())

    def status(self) -> RealTimeStatus:
        """``DLE EOT 1..4``: online, cover, paper sensors, errors."""
        return combine(self.query(*ALL_KINDS))

    def check_ready(self) -> RealTimeStatus:
        st = self.status()
        if st.faults:
            raise fault_error(st.faults[0])
        return st

    # --- printing -----------------------------------------------------------------------------

    def print_document(self, doc: Document, *, cut: bool = True) -> ReceiptJobResult:
        data = compose(doc, width=self.width, profile=self.profile, codepage=self.codepage, cut=cut)
        before = self.check_ready()
        warnings = ("paper_near_end",) if before.paper_near_end else ()
        try:
            self._write(data)
        except DriverError as exc:
            return ReceiptJobResult(
                DocumentState.UNKNOWN,
                exc.code,
                f"Связь с принтером чеков прервалась при печати: {exc.message}",
                warnings,
            )
        if self.settle > 0:
            self._sleep(self.settle)
        try:
            after = self.status()
        except DriverError as exc:
            return ReceiptJobResult(
                DocumentState.UNKNOWN,
                exc.code,
                f"Документ отправлен, но состояние принтера неизвестно: {exc.message}",
                warnings,
                len(data),
            )
        if after.paper_near_end and "paper_near_end" not in warnings:
            warnings = (*warnings, "paper_near_end")
        if after.faults:
            reason = after.faults[0]
            return ReceiptJobResult(
                DocumentState.INCOMPLETE,
                reason,
                f"{fault_message(reason)}. Документ мог напечататься не полностью",
                warnings,
                len(data),
            )
        return ReceiptJobResult(DocumentState.PRINTED, None, "", warnings, len(data))


def _network_class() -> type:
    from escpos.printer import Network

    cls: type = Network
    return cls


def usb_endpoints(
    vendor_id: int,
    product_id: int,
    *,
    find: Callable[..., Iterable[Any]] | None = None,
) -> tuple[int, int | None]:
    """(bulk OUT, bulk IN) addresses of the device's printer interface (see ``drivers.label.usb``)."""
    from drivers.label.usb import _default_find, select_endpoints

    finder = find or _default_find
    try:
        devices = list(finder(idVendor=vendor_id, idProduct=product_id))
    except Exception as exc:
        raise DeviceUnavailable(
            f"Поиск USB-принтера {vendor_id:04x}:{product_id:04x} не удался: {exc}"
        ) from exc
    if not devices:
        raise DeviceUnavailable(f"USB-принтер {vendor_id:04x}:{product_id:04x} не найден (не подключён?)")
    device = devices[0]
    try:
        configuration = device.get_active_configuration()
    except Exception:
        configuration = next(iter(device))
    choice = select_endpoints(configuration)
    return choice.out_address, choice.in_address
