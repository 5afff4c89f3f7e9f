"""Byte links to devices: one ``SerialTransport`` over every pyserial URL, and the ``Transport``
protocol drivers depend on so they can be tested over any link.

Why one class for serial, pty and TCP: a scale on ``/dev/ttyUSB0``, a simulator on
``/dev/pts/7`` and a device behind a serial-to-Ethernet converter at ``tcp://10.0.0.5:4001``
are the same byte stream to a driver; ``serial.serial_for_url`` already knows how to open each.
``tcp://host:port`` is accepted as an alias of pyserial's ``socket://host:port`` because that
is what installers write in device configs.

Every pyserial/OS failure leaves this module as ``DeviceUnavailable`` (the gateway marks the
device offline and reconnects); a bad URL or option is ``DriverConfigError`` (our fault).
Reads never raise on a timeout: they return what arrived (possibly ``b""``), because only the
protocol layer knows whether silence is an error.
"""

from __future__ import annotations

import errno
import time
from typing import Protocol, runtime_checkable

import serial

from drivers.errors import DeviceUnavailable, DriverConfigError

_PARITIES = {"N", "E", "O", "M", "S"}


def _link_errors() -> tuple[type[BaseException], ...]:
    """What pyserial lets through on a lost link: its own errors, OSError, and on POSIX the
    bare ``termios.error`` (not an OSError) from ``tcflush`` on a hung-up tty."""
    errors: tuple[type[BaseException], ...] = (serial.SerialException, OSError)
    try:
        import termios
    except ImportError:  # pragma: no cover - Windows
        return errors
    return (*errors, termios.error)


_LINK_ERRORS = _link_errors()
_DRAIN_RETRIES = 100


def _interrupted(exc: BaseException) -> bool:
    return bool(exc.args) and exc.args[0] == errno.EINTR


def _drain(port: serial.SerialBase) -> None:
    """``port.flush()`` (``tcdrain`` on a tty), again when a signal interrupted it.

    Python retries interrupted system calls itself (PEP 475) but not ``termios.tcdrain``: a
    signal arriving while the bytes drain (a SIGCHLD, a profiler, SIGTERM's handler) raised a bare
    ``termios.error(EINTR)``, and the write of a command the device had already received looked
    like a lost link."""
    for _ in range(_DRAIN_RETRIES):
        try:
            port.flush()
            return
        except _LINK_ERRORS as exc:
            if not _interrupted(exc):
                raise
    port.flush()
_OPEN_ERRORS: tuple[type[BaseException], ...] = (*_LINK_ERRORS, ValueError)


@runtime_checkable
class Transport(Protocol):
    """What a driver needs from a byte link. Methods block; one caller at a time."""

    @property
    def is_open(self) -> bool: ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Up to ``max_bytes``; returns as soon as any bytes arrived, ``b""`` on timeout."""
        ...

    def read_until(self, terminator: bytes, timeout: float, max_bytes: int = 4096) -> bytes:
        """Bytes up to and including ``terminator``; on timeout or ``max_bytes``, what arrived."""
        ...

    def reset_input(self) -> None:
        """Drop every byte received and not read yet."""
        ...


def normalize_url(url: str) -> str:
    """Map our config spelling to a pyserial URL (``tcp://`` → ``socket://``)."""
    url = url.strip()
    if url.lower().startswith("tcp://"):
        return "socket://" + url[len("tcp://") :]
    return url


class SerialTransport:
    """A ``Transport`` over ``serial.serial_for_url``: device paths, ptys, ``socket://``,
    ``tcp://`` and ``rfc2217://``.

    Bytes read past a ``read_until`` terminator are kept and handed out first by the next
    read, so framing above never loses bytes to chunked reads.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: float = 1,
        write_timeout: float = 1.0,
    ) -> None:
        if not url or not url.strip():
            raise DriverConfigError("Не задан адрес устройства (URL порта)")
        if parity not in _PARITIES:
            raise DriverConfigError(f"Недопустимая чётность {parity!r}: ожидается одно из N, E, O, M, S")
        self.url = url.strip()
        self._pyserial_url = normalize_url(self.url)
        self._pending = b""
        self._timeout: float | None = None
        try:
            self._port: serial.Serial = serial.serial_for_url(
                self._pyserial_url,
                do_not_open=True,
                baudrate=baudrate,
                bytesize=bytesize,
                parity=parity,
                stopbits=stopbits,
                write_timeout=write_timeout,
                timeout=0,
            )
        except (ValueError, serial.SerialException) as exc:
            raise DriverConfigError(f"Неверный адрес или параметры порта {self.url!r}: {exc}") from exc
        self._timeout = 0

    def __repr__(self) -> str:
        return f"SerialTransport({self.url!r}, open={self.is_open})"

    @property
    def is_open(self) -> bool:
        return bool(self._port.is_open)

    def open(self) -> None:
        if self._port.is_open:
            return
        self._pending = b""
        try:
            self._port.open()
        except _OPEN_ERRORS as exc:
            raise DeviceUnavailable(f"Не удалось открыть порт {self.url}: {exc}") from exc

    def close(self) -> None:
        """Close the link; never raises (a lost link is already closed as far as we care)."""
        self._pending = b""
        try:
            self._port.close()
        except _LINK_ERRORS:
            pass

    def write(self, data: bytes) -> None:
        port = self._require_open("писать")
        try:
            port.write(data)
            _drain(port)
        except serial.SerialTimeoutException as exc:
            raise DeviceUnavailable(f"Порт {self.url} не принимает данные (таймаут записи)") from exc
        except _LINK_ERRORS as exc:
            raise DeviceUnavailable(f"Ошибка записи в порт {self.url}: {exc}") from exc

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if max_bytes <= 0:
            return b""
        if self._pending:
            chunk, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
            return chunk
        port = self._require_open("читать")
        try:
            self._set_timeout(port, max(timeout, 0.0))
            first = port.read(1)
            if not first or max_bytes == 1:
                return bytes(first)
            # A zero timeout makes pyserial return whatever is already there (never waits);
            # in_waiting is no help on socket:// where it reports at most 1.
            self._set_timeout(port, 0)
            return bytes(first) + bytes(port.read(max_bytes - 1))
        except _LINK_ERRORS as exc:
            raise DeviceUnavailable(f"Связь с устройством на {self.url} потеряна: {exc}") from exc

    def read_until(self, terminator: bytes, timeout: float, max_bytes: int = 4096) -> bytes:
        if not terminator:
            raise ValueError("terminator must not be empty")
        deadline = time.monotonic() + max(timeout, 0.0)
        buf = bytearray()
        scan_from = 0
        while True:
            end = buf.find(terminator, scan_from)
            if end >= 0:
                cut = end + len(terminator)
                self._pending = bytes(buf[cut:]) + self._pending
                return bytes(buf[:cut])
            if len(buf) >= max_bytes:
                self._pending = bytes(buf[max_bytes:]) + self._pending
                return bytes(buf[:max_bytes])
            scan_from = max(0, len(buf) - len(terminator) + 1)
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(buf)
            buf += self.read(max_bytes - len(buf), left)

    def reset_input(self) -> None:
        self._pending = b""
        port = self._require_open("очистить буфер")
        try:
            port.reset_input_buffer()
        except _LINK_ERRORS as exc:
            raise DeviceUnavailable(f"Связь с устройством на {self.url} потеряна: {exc}") from exc

    def _require_open(self, what: str) -> serial.Serial:
        if not self._port.is_open:
            raise DeviceUnavailable(f"Порт {self.url} закрыт: нельзя {what}")
        return self._port

    def _set_timeout(self, port: serial.Serial, timeout: float) -> None:
        # pyserial reconfigures the port (tcsetattr) on every timeout change: skip no-ops.
        if self._timeout != timeout:
            port.timeout = timeout
            self._timeout = timeout
