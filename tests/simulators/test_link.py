"""simulators.link: pty and TCP endpoints, fault hooks, no leaked threads or fds."""

import os
import socket
import threading
import time

import pytest
import serial

from simulators.link import PtyEndpoint, TcpEndpoint

pytestmark = pytest.mark.integration


class Recorder:
    def __init__(self) -> None:
        self.seen = b""
        self.times: list[float] = []

    def feed(self, data: bytes, now: float) -> bytes:
        self.seen += data
        self.times.append(now)
        return b"ok\r\n" if data.endswith(b"\n") else b""


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _threads() -> int:
    return threading.active_count()


def test_pty_no_fd_or_thread_leak_across_plug_cycles() -> None:
    before_fds, before_threads = _fds(), _threads()
    ep = PtyEndpoint(Recorder())
    path = ep.start()
    for _ in range(3):
        with serial.serial_for_url(path, timeout=2) as port:
            port.write(b"hi\n")
            assert port.read_until(b"\r\n") == b"ok\r\n"
        ep.unplug()
        assert not os.path.exists(path)
        ep.plug()
        assert os.path.exists(path)
    ep.stop()
    assert _fds() == before_fds
    assert _threads() == before_threads
    assert not os.path.exists(os.path.dirname(path))


def test_pty_path_is_stable_across_replug_while_pts_changes() -> None:
    ep = PtyEndpoint(Recorder())
    path = ep.start()
    try:
        first = os.path.realpath(path)
        assert first.startswith("/dev/pts/")
        ep.unplug()
        ep.plug()
        assert ep.path == path
        with serial.serial_for_url(path, timeout=2) as port:
            port.write(b"again\n")
            assert port.read_until(b"\r\n") == b"ok\r\n"
    finally:
        ep.stop()


def test_tcp_no_fd_leak_and_unplug_refuses() -> None:
    before_fds, before_threads = _fds(), _threads()
    ep = TcpEndpoint(Recorder())
    host, port = ep.start()
    with socket.create_connection((host, port), timeout=2) as conn:
        conn.sendall(b"hi\n")
        assert conn.recv(10) == b"ok\r\n"
        ep.unplug()
        assert conn.recv(10) == b""  # the device closed the link
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=2)
    ep.plug()
    assert ep.start() == (host, port)
    with socket.create_connection((host, port), timeout=2) as conn:
        conn.sendall(b"hi\n")
        assert conn.recv(10) == b"ok\r\n"
    ep.stop()
    assert _fds() == before_fds
    assert _threads() == before_threads


def test_tcp_new_connection_replaces_old_and_shares_state() -> None:
    device = Recorder()
    ep = TcpEndpoint(device)
    host, port = ep.start()
    try:
        old = socket.create_connection((host, port), timeout=2)
        old.sendall(b"a\n")
        assert old.recv(10) == b"ok\r\n"
        new = socket.create_connection((host, port), timeout=2)
        new.sendall(b"b\n")
        assert new.recv(10) == b"ok\r\n"
        assert old.recv(10) == b""
        assert device.seen == b"a\nb\n"
        assert ep.wait_connected(2.0)
        assert ep.inject(b"push")
        assert new.recv(10) == b"push"
        old.close()
        new.close()
    finally:
        ep.stop()


def test_latency_and_baudrate_delay_the_answer() -> None:
    ep = TcpEndpoint(Recorder(), latency=0.05, baudrate=1200)  # 120 bytes/s: 4 bytes ≈ 33 ms
    host, port = ep.start()
    try:
        with socket.create_connection((host, port), timeout=2) as conn:
            start = time.monotonic()
            conn.sendall(b"x\n")
            got = b""
            while len(got) < 4:
                got += conn.recv(10)
            assert time.monotonic() - start >= 0.07  # latency + 3 byte times before the last byte
            assert got == b"ok\r\n"
    finally:
        ep.stop()


def test_inject_when_unplugged_is_dropped() -> None:
    ep = PtyEndpoint(Recorder())
    ep.start()
    ep.unplug()
    assert ep.inject(b"x") is False
    ep.stop()
