"""Serve a byte-stream device model to a real host driver over a pty or a TCP port.

A simulator is a ``ByteDevice``: it consumes the host's bytes and returns its answer, with the
time passed in (sans-I/O, so the same model is unit-testable without any link). An endpoint
owns the I/O: one daemon thread selects on the link and a wake-up pipe, feeds the device and
writes its answer back, optionally after a latency and paced at a baud rate so a driver meets
the timing of a real RS-232 line.

Fault injection the endpoints own (the device model owns its own faults):
``inject`` writes unsolicited bytes (garbage, continuous-mode output, scans); ``unplug`` makes
the device vanish (the host sees an error on its next read or write, a TCP connect is
refused); ``plug`` brings it back.

Paths: ``PtyEndpoint.start()`` returns a *stable symlink* (in a private temp directory) to the
current ``/dev/pts/N``. A pty number cannot be reclaimed after ``unplug`` (the kernel hands
out a new one), so ``plug`` repoints the symlink: the host reopens the same path, as it would
reopen ``/dev/serial/by-id/...`` after a USB replug. ``pts_path`` gives the real device.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import shutil
import socket
import tempfile
import termios
import threading
import time
import tty
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

_CHUNK = 4096


class ByteDevice(Protocol):
    """A device model: host bytes in, the device's answer out (``b""`` for none)."""

    def feed(self, data: bytes, now: float) -> bytes:
        """``now`` is ``time.monotonic()`` when the bytes arrived."""
        ...


class _Endpoint:
    """One loop thread per plugged period, a wake-up pipe to stop it at once, paced writes."""

    _name = "endpoint"

    def __init__(self, device: ByteDevice, *, latency: float = 0.0, baudrate: int | None = None) -> None:
        if latency < 0:
            raise ValueError("latency must be >= 0")
        if baudrate is not None and baudrate <= 0:
            raise ValueError("baudrate must be > 0")
        self.device = device
        self.latency = latency
        self.baudrate = baudrate
        # Serialises device.feed and every write to the host (loop thread vs inject callers).
        self._io_lock = threading.RLock()
        # Serialises start/stop/plug/unplug.
        self._state_lock = threading.Lock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None
        self._started = False
        self._plugged = False

    @property
    def plugged(self) -> bool:
        return self._plugged

    def inject(self, data: bytes) -> bool:
        """Send unsolicited bytes to the host; ``False`` when nobody could receive them."""
        if not self._plugged or not data:
            return False
        return self._send(data)

    # --- loop thread management -------------------------------------------------------

    def _start_loop(self) -> None:
        r, w = os.pipe()
        self._wake = (r, w)
        self._halt.clear()
        self._thread = threading.Thread(target=self._run_safely, args=(r,), name=self._name, daemon=True)
        self._thread.start()

    def _stop_loop(self) -> None:
        if self._thread is None or self._wake is None:
            return
        self._halt.set()
        with contextlib.suppress(OSError):
            os.write(self._wake[1], b"x")
        self._thread.join()
        for fd in self._wake:
            os.close(fd)
        self._thread = None
        self._wake = None

    def _run_safely(self, wake_fd: int) -> None:
        try:
            self._run(wake_fd)
        except Exception:  # a dead loop thread would look like a silent device: say why
            log.exception("%s: loop thread crashed", self._name)

    def _run(self, wake_fd: int) -> None:
        raise NotImplementedError

    # --- device and wire ----------------------------------------------------------------

    def _answer(self, data: bytes) -> None:
        """Feed host bytes to the device and send its answer after the configured latency."""
        with self._io_lock:
            try:
                out = self.device.feed(data, time.monotonic())
            except Exception:
                log.exception("%s: device model failed on %r", self._name, data)
                return
        if out:
            if self.latency and self._halt.wait(self.latency):
                return
            self._send(out)

    def _send(self, data: bytes) -> bool:
        with self._io_lock:
            if self.baudrate is None:
                return self._write_raw(data)
            bytes_per_second = self.baudrate / 10  # start + 8 data + stop bits
            step = max(1, int(bytes_per_second // 100))  # ~10 ms slices
            for i in range(0, len(data), step):
                chunk = data[i : i + step]
                if not self._write_raw(chunk):
                    return False
                if self._halt.wait(len(chunk) / bytes_per_second):
                    return False
            return True

    def _write_raw(self, data: bytes) -> bool:
        raise NotImplementedError


class PtyEndpoint(_Endpoint):
    """The device on a pseudo-terminal; the host opens ``start()``'s path with pyserial.

    The endpoint keeps the slave side open itself, so the pty (and bytes the device sent
    meanwhile) survive the host closing and reopening the port, like a real UART.
    """

    _name = "pty-endpoint"

    def __init__(self, device: ByteDevice, *, latency: float = 0.0, baudrate: int | None = None) -> None:
        super().__init__(device, latency=latency, baudrate=baudrate)
        self._master: int | None = None
        self._slave: int | None = None
        self._dir: Path | None = None
        self.pts_path: str | None = None

    @property
    def path(self) -> str:
        """The stable path the host opens (a symlink to the current ``pts_path``)."""
        if self._dir is None:
            raise RuntimeError("PtyEndpoint not started")
        return str(self._dir / "tty")

    def start(self) -> str:
        with self._state_lock:
            if self._started:
                return self.path
            self._dir = Path(tempfile.mkdtemp(prefix="vitrina-pty-"))
            self._started = True
            self._plug_locked()
            return self.path

    def plug(self) -> None:
        with self._state_lock:
            if not self._started:
                raise RuntimeError("PtyEndpoint not started")
            if not self._plugged:
                self._plug_locked()

    def unplug(self) -> None:
        with self._state_lock:
            self._unplug_locked()

    def stop(self) -> None:
        with self._state_lock:
            self._unplug_locked()
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None
            self._started = False

    def _plug_locked(self) -> None:
        master, slave = os.openpty()
        try:
            tty.setraw(slave, termios.TCSANOW)
            os.set_blocking(master, False)
            pts = os.ttyname(slave)
            tmp = Path(self.path + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(pts)
            os.replace(tmp, self.path)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave, self.pts_path = master, slave, pts
        self._plugged = True
        self._start_loop()

    def _unplug_locked(self) -> None:
        if not self._plugged:
            return
        self._plugged = False
        self._stop_loop()
        with self._io_lock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._master = self._slave = None
            self.pts_path = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _run(self, wake_fd: int) -> None:
        master = self._master
        assert master is not None
        while not self._halt.is_set():
            ready, _, _ = select.select([master, wake_fd], [], [])
            if wake_fd in ready:
                return
            try:
                data = os.read(master, _CHUNK)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno != errno.EIO:  # EIO: no slave open at this instant
                    raise
                data = b""
            if not data:
                self._halt.wait(0.01)
                continue
            self._answer(data)

    def _write_raw(self, data: bytes) -> bool:
        view = memoryview(data)
        while view:
            master = self._master
            if master is None:
                return False
            try:
                view = view[os.write(master, view) :]
            except BlockingIOError:
                # The host is not reading and the tty buffer is full: wait, unless stopping.
                if self._halt.wait(0.01):
                    return False
            except OSError:
                return False
        return True


class TcpEndpoint(_Endpoint):
    """The device behind a TCP port (a serial-to-Ethernet converter, a networked scale).

    One device state for every connection; a new connection replaces the previous one, as
    converters that accept a single client do. ``unplug`` closes the connection and the
    listening socket (connects are refused); ``plug`` listens again on the same port.
    """

    _name = "tcp-endpoint"

    def __init__(
        self,
        device: ByteDevice,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        baudrate: int | None = None,
    ) -> None:
        super().__init__(device, latency=latency, baudrate=baudrate)
        self.host = host
        self.port = port
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._has_client = threading.Event()

    @property
    def connected(self) -> bool:
        return self._client is not None

    def wait_connected(self, timeout: float) -> bool:
        """Wait until a host is connected (``accept`` runs in the loop thread, after the
        host's ``connect`` already returned): tests inject only once someone listens."""
        return self._has_client.wait(timeout)

    def start(self) -> tuple[str, int]:
        with self._state_lock:
            if not self._started:
                self._started = True
                self._plug_locked()
            return self.host, self.port

    def plug(self) -> None:
        with self._state_lock:
            if not self._started:
                raise RuntimeError("TcpEndpoint not started")
            if not self._plugged:
                self._plug_locked()

    def unplug(self) -> None:
        with self._state_lock:
            self._unplug_locked()

    def stop(self) -> None:
        with self._state_lock:
            self._unplug_locked()
            self._started = False

    def _plug_locked(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(4)
        except BaseException:
            listener.close()
            raise
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        self._plugged = True
        self._start_loop()

    def _unplug_locked(self) -> None:
        if not self._plugged:
            return
        self._plugged = False
        self._stop_loop()
        with self._io_lock:
            self._drop_client()
            if self._listener is not None:
                self._listener.close()
                self._listener = None

    def _drop_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.shutdown(socket.SHUT_RDWR)
            self._client.close()
            self._client = None
            self._has_client.clear()

    def _run(self, wake_fd: int) -> None:
        listener = self._listener
        assert listener is not None
        while not self._halt.is_set():
            client = self._client
            watch: list[int | socket.socket] = [listener, wake_fd]
            if client is not None:
                watch.append(client)
            ready, _, _ = select.select(watch, [], [])
            if wake_fd in ready:
                return
            if listener in ready:
                conn, _addr = listener.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.settimeout(1.0)  # a host that stops reading cannot wedge the loop for long
                with self._io_lock:
                    self._drop_client()
                    self._client = conn
                    self._has_client.set()
                continue
            if client is not None and client in ready:
                try:
                    data = client.recv(_CHUNK)
                except OSError:
                    data = b""
                if not data:  # the host closed the connection
                    with self._io_lock:
                        if self._client is client:
                            self._drop_client()
                    continue
                self._answer(data)

    def _write_raw(self, data: bytes) -> bool:
        client = self._client
        if client is None:
            return False
        try:
            client.sendall(data)
        except OSError:
            return False
        return True
