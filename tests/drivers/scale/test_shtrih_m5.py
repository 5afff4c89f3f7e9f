"""The Shtrih M5 driver against the simulator over a real pty and a real TCP socket."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from drivers.errors import DeviceTimeout, DeviceUnavailable, DriverConfigError
from drivers.scale.base import Scale, ScaleOverload, ScaleUnderload, ScaleUnstable
from drivers.scale.shtrih_m5 import (
    ShtrihM5HardwareFault,
    ShtrihM5Rejected,
    ShtrihM5Scale,
    ShtrihM5TareRefused,
    ShtrihM5WrongPassword,
    ShtrihM5ZeroRefused,
)
from protocols.shtrih_m5 import ErrorCode, StatusFlag
from simulators.scale.shtrih_m5 import ShtrihM5Config, ShtrihM5Simulator

pytestmark = pytest.mark.integration


def _serve(sim: ShtrihM5Simulator, kind: str) -> str:
    if kind == "pty":
        return sim.serve_pty()
    host, port = sim.serve_tcp()
    return f"tcp://{host}:{port}"


@pytest.fixture(params=["pty", "tcp"])
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[ShtrihM5Simulator, ShtrihM5Scale]]:
    sim = ShtrihM5Simulator(ShtrihM5Config(unstable_after_change=0.2))
    scale = ShtrihM5Scale(_serve(sim, request.param), timeout=0.3, poll_interval=0.05)
    scale.open()
    try:
        yield sim, scale
    finally:
        scale.close()
        sim.stop()


def test_weigh_tare_zero_round_trip(rig: tuple[ShtrihM5Simulator, ShtrihM5Scale]) -> None:
    sim, scale = rig
    assert isinstance(scale, Scale)
    sim.set_weight(Decimal("1.234"))
    assert not scale.weigh(stable=False).stable
    reading = scale.weigh(timeout=2.0)
    assert reading.net == Decimal("1.235") and reading.stable and reading.tare == Decimal("0.000")
    tare = scale.tare()
    assert tare.tare == Decimal("1.235") and tare.net == Decimal("0.000")
    sim.set_weight(Decimal("2.000"))
    after = scale.weigh(timeout=2.0)
    assert after.net == Decimal("0.765") and after.tare == Decimal("1.235")
    scale.clear_tare()
    assert scale.weigh(timeout=2.0).net == Decimal("2.000")
    scale.set_tare(Decimal("0.500"))
    assert scale.weigh(timeout=2.0).net == Decimal("1.500")
    with pytest.raises(ShtrihM5ZeroRefused, match="нуля"):
        scale.zero()
    sim.set_weight(Decimal("0.010"))
    scale.weigh(timeout=2.0)
    scale.zero()
    assert scale.weigh(timeout=2.0).net == Decimal("0.000")
    info = scale.info()
    assert info.capacity == Decimal("15.000") and info.firmware == "1.5" and "ШТРИХ" in info.model


def test_flags_and_refusals_are_typed(rig: tuple[ShtrihM5Simulator, ShtrihM5Scale]) -> None:
    sim, scale = rig
    sim.set_weight(Decimal("20"))
    with pytest.raises(ScaleOverload):
        scale.weigh()
    sim.set_weight(Decimal("-1"))
    with pytest.raises(ScaleUnderload):
        scale.weigh()
    sim.set_weight(Decimal("1"))
    sim.set_flags(StatusFlag.NO_ADC)
    with pytest.raises(ShtrihM5HardwareFault, match="АЦП"):
        scale.weigh(stable=False)
    sim.set_flags(StatusFlag(0))
    with pytest.raises(ShtrihM5TareRefused, match="тары"):
        scale.set_tare(Decimal("7"))
    sim.set_error(ErrorCode.KEYBOARD_LOCKED)
    with pytest.raises(ShtrihM5Rejected, match="Клавиатура заблокирована") as refused:
        scale.zero()
    assert refused.value.error == 181
    sim.set_error(None)
    sim.set_unstable(5.0)
    with pytest.raises(ScaleUnstable) as unstable:
        scale.weigh(timeout=0.3)
    assert unstable.value.last is not None and not unstable.value.last.stable


def test_noise_bad_lrc_and_silence(rig: tuple[ShtrihM5Simulator, ShtrihM5Scale]) -> None:
    sim, scale = rig
    sim.set_weight(Decimal("0.500"))
    sim.inject_garbage(b"\x00\xffnoise\x02")
    sim.corrupt_next()
    assert scale.weigh(timeout=2.0).net == Decimal("0.500")  # NAK + ENQ fetched it again
    assert not sim._corrupt_next
    sim.set_silent()
    with pytest.raises(DeviceTimeout):
        scale.weigh(stable=False)
    sim.set_silent(False)
    assert scale.weigh(stable=False).net == Decimal("0.500")


def test_wrong_password_and_bad_options() -> None:
    sim = ShtrihM5Simulator(ShtrihM5Config(password=1111))
    host, port = sim.serve_tcp()
    scale = ShtrihM5Scale(f"tcp://{host}:{port}", timeout=0.3)
    right = ShtrihM5Scale(f"tcp://{host}:{port}", timeout=0.3, password=1111)
    try:
        scale.open()
        with pytest.raises(ShtrihM5WrongPassword, match="Неверный пароль"):
            scale.weigh()
        scale.close()
        right.open()
        assert right.weigh(stable=False).net == Decimal("0.000")
    finally:
        scale.close()
        right.close()
        sim.stop()
    with pytest.raises(DriverConfigError):
        ShtrihM5Scale("/dev/null", password=-1)
    with pytest.raises(DriverConfigError):
        ShtrihM5Scale("/dev/null", timeout=0)


def test_unplugged_pty_is_unavailable_then_recovers() -> None:
    sim = ShtrihM5Simulator()
    path = sim.serve_pty()
    scale = ShtrihM5Scale(path, timeout=0.3)
    scale.open()
    try:
        assert scale.weigh(stable=False).net == Decimal("0.000")
        sim.unplug()
        with pytest.raises((DeviceUnavailable, DeviceTimeout)):
            scale.weigh(stable=False)
        sim.plug()
        scale.close()
        scale.open()
        sim.set_weight(Decimal("0.250"))
        assert scale.weigh(timeout=2.0).net == Decimal("0.250")
    finally:
        scale.close()
        sim.stop()


def test_unplugged_tcp_is_unavailable() -> None:
    sim = ShtrihM5Simulator()
    host, port = sim.serve_tcp()
    scale = ShtrihM5Scale(f"tcp://{host}:{port}", timeout=0.3)
    scale.open()
    try:
        sim.unplug()
        with pytest.raises((DeviceUnavailable, DeviceTimeout)):
            scale.weigh(stable=False)
        scale.close()
        with pytest.raises(DeviceUnavailable):
            scale.open()
        sim.plug()
        scale.open()
        assert scale.weigh(stable=False).net == Decimal("0.000")
    finally:
        scale.close()
        sim.stop()
