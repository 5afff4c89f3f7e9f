"""SerialTransport over real links: a pty and TCP served by simulators.link."""

import sys
from collections.abc import Iterator

import pytest

from drivers.errors import DeviceUnavailable, DriverConfigError
from drivers.transport import SerialTransport, Transport, normalize_url
from simulators.link import PtyEndpoint, TcpEndpoint

pytestmark = pytest.mark.integration


def _connected(ep: PtyEndpoint | TcpEndpoint) -> None:
    if isinstance(ep, TcpEndpoint):
        assert ep.wait_connected(2.0)


class Upper:
    def feed(self, data: bytes, now: float) -> bytes:
        return data.upper()


@pytest.fixture(params=["pty", "tcp"])
def link(request: pytest.FixtureRequest) -> Iterator[tuple[str, PtyEndpoint | TcpEndpoint]]:
    if request.param == "pty":
        ep: PtyEndpoint | TcpEndpoint = PtyEndpoint(Upper())
        url = ep.start()
    else:
        ep = TcpEndpoint(Upper())
        host, port = ep.start()
        url = f"tcp://{host}:{port}"
    try:
        yield url, ep
    finally:
        ep.stop()


def test_roundtrip_and_read_until(link: tuple[str, PtyEndpoint | TcpEndpoint]) -> None:
    url, _ = link
    t = SerialTransport(url)
    assert isinstance(t, Transport)
    t.open()
    try:
        t.write(b"abc\r\ndef\r\n")
        assert t.read_until(b"\r\n", 2.0) == b"ABC\r\n"
        assert t.read_until(b"\r\n", 2.0) == b"DEF\r\n"  # kept from the same chunk
    finally:
        t.close()


def test_read_returns_as_soon_as_bytes_arrive_and_empty_on_timeout(
    link: tuple[str, PtyEndpoint | TcpEndpoint],
) -> None:
    url, ep = link
    with_transport = SerialTransport(url)
    with_transport.open()
    try:
        assert with_transport.read(10, 0.05) == b""
        _connected(ep)
        ep.inject(b"xyz")
        got = b""
        while len(got) < 3:
            chunk = with_transport.read(10, 2.0)
            assert chunk
            got += chunk
        assert got == b"xyz"
        ep.inject(b"no terminator")
        assert with_transport.read_until(b"\r\n", 0.3) == b"no terminator"
    finally:
        with_transport.close()


def test_read_until_stops_at_max_bytes(link: tuple[str, PtyEndpoint | TcpEndpoint]) -> None:
    url, ep = link
    t = SerialTransport(url)
    t.open()
    try:
        _connected(ep)
        ep.inject(b"0123456789")
        assert t.read_until(b"\r\n", 2.0, max_bytes=4) == b"0123"
        t.reset_input()
    finally:
        t.close()


def test_lost_link_raises_device_unavailable(link: tuple[str, PtyEndpoint | TcpEndpoint]) -> None:
    url, ep = link
    t = SerialTransport(url)
    t.open()
    ep.unplug()
    with pytest.raises(DeviceUnavailable, match=url.split("//")[-1]):
        for _ in range(3):  # a pty may answer one more empty read before reporting the hangup
            t.read(10, 0.5)
            t.write(b"x")
    t.close()
    with pytest.raises(DeviceUnavailable):
        t.open()
    ep.plug()
    t.open()
    t.write(b"back\r\n")
    assert t.read_until(b"\r\n", 2.0) == b"BACK\r\n"
    t.close()


def test_closed_transport_raises_device_unavailable() -> None:
    t = SerialTransport("tcp://127.0.0.1:9")
    with pytest.raises(DeviceUnavailable, match="закрыт"):
        t.read(1, 0.1)
    with pytest.raises(DeviceUnavailable, match="закрыт"):
        t.write(b"x")


def test_refused_connection_names_the_url() -> None:
    t = SerialTransport("tcp://127.0.0.1:1")
    with pytest.raises(DeviceUnavailable, match=r"tcp://127\.0\.0\.1:1"):
        t.open()


def test_missing_device_path() -> None:
    with pytest.raises(DeviceUnavailable, match="/dev/ttyNOPE0"):
        SerialTransport("/dev/ttyNOPE0").open()


@pytest.mark.parametrize(
    ("url", "kwargs"),
    [("", {}), ("bogus://x", {}), ("/dev/ttyS0", {"parity": "X"}), ("/dev/ttyS0", {"bytesize": 3})],
)
def test_bad_config_is_driver_config_error(url: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(DriverConfigError):
        SerialTransport(url, **kwargs)  # type: ignore[arg-type]


def test_tcp_alias() -> None:
    assert normalize_url("tcp://10.0.0.5:4001") == "socket://10.0.0.5:4001"
    assert normalize_url("/dev/ttyUSB0") == "/dev/ttyUSB0"


@pytest.mark.skipif(sys.platform == "win32", reason="tcdrain is POSIX")
def test_a_drain_interrupted_by_a_signal_is_retried_not_a_lost_link(monkeypatch: pytest.MonkeyPatch) -> None:
    """``termios.tcdrain`` is not retried by Python on EINTR (PEP 475 leaves it out): a signal
    during a write's drain must not turn a delivered command into a lost link."""
    import errno
    import termios

    ep = PtyEndpoint(Upper())
    url = ep.start()
    real = termios.tcdrain
    failures = [errno.EINTR, errno.EINTR]

    def interrupted(fd: int) -> None:
        if failures:
            raise termios.error(failures.pop(0), "Interrupted system call")
        real(fd)

    t = SerialTransport(url)
    t.open()
    try:
        monkeypatch.setattr(termios, "tcdrain", interrupted)
        t.write(b"ping\r\n")
        assert t.read_until(b"\r\n", 2.0) == b"PING\r\n"
        failures.append(errno.EIO)
        with pytest.raises(DeviceUnavailable):
            t.write(b"x")
    finally:
        t.close()
        ep.stop()
