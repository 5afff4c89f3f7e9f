"""The Massa-K driver against the simulator over a real pty and a real TCP socket."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from drivers.errors import DeviceProtocolError, DeviceTimeout, DeviceUnavailable
from drivers.scale.base import Scale, ScaleOverload, ScaleUnstable
from drivers.scale.massak import (
    MassaKRejected,
    MassaKScale,
    MassaKTareRefused,
    MassaKUnsupported,
    MassaKZeroRefused,
)
from protocols import massak
from simulators.scale.massak import MassaKConfig, MassaKSimulator

pytestmark = pytest.mark.integration


@pytest.fixture(params=["pty", "tcp"])
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[MassaKSimulator, MassaKScale]]:
    sim = MassaKSimulator(MassaKConfig(unstable_after_change=0.2))
    if request.param == "pty":
        url = sim.serve_pty()
    else:
        host, port = sim.serve_tcp()
        url = f"tcp://{host}:{port}"
    scale = MassaKScale(url, timeout=0.5, poll_interval=0.05)
    scale.open()
    try:
        yield sim, scale
    finally:
        scale.close()
        sim.stop()


def test_weigh_tare_zero_round_trip(rig: tuple[MassaKSimulator, MassaKScale]) -> None:
    sim, scale = rig
    assert isinstance(scale, Scale)
    sim.set_weight(Decimal("1.234"))
    quick = scale.weigh(stable=False)
    assert not quick.stable
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
    with pytest.raises(MassaKZeroRefused):
        scale.zero()
    sim.set_weight(Decimal("0.010"))
    scale.weigh(timeout=2.0)
    scale.zero()
    assert scale.weigh(timeout=2.0).net == Decimal("0.000")
    info = scale.info()
    assert info.capacity == Decimal("15.000") and info.firmware == "2.10"


def test_scale_errors_are_typed(rig: tuple[MassaKSimulator, MassaKScale]) -> None:
    sim, scale = rig
    sim.set_weight(Decimal("20"))
    with pytest.raises(ScaleOverload):
        scale.weigh()
    sim.set_weight(Decimal("1"))
    sim.set_error(massak.ErrorCode.NO_ADC_LINK)
    with pytest.raises(MassaKRejected, match="АЦП") as info:
        scale.weigh()
    assert info.value.error == 0x17
    sim.set_error(None)
    with pytest.raises(MassaKTareRefused):
        scale.set_tare(Decimal("7"))
    sim.set_unstable(5.0)
    with pytest.raises(ScaleUnstable) as unstable:
        scale.weigh(timeout=0.3)
    assert unstable.value.last is not None and not unstable.value.last.stable


def test_noise_is_survived_and_silence_times_out(rig: tuple[MassaKSimulator, MassaKScale]) -> None:
    sim, scale = rig
    sim.set_weight(Decimal("0.500"))
    sim.inject_garbage(b"\x00\xffnoise")
    sim.corrupt_next()
    assert scale.weigh(timeout=2.0).net == Decimal("0.500")  # resent once after the bad CRC
    sim.set_silent()
    with pytest.raises(DeviceTimeout):
        scale.weigh(stable=False)
    sim.set_silent(False)
    assert scale.weigh(stable=False).net == Decimal("0.500")


def test_double_corruption_is_a_protocol_error(rig: tuple[MassaKSimulator, MassaKScale]) -> None:
    sim, scale = rig

    original = sim.feed

    def corrupt_always(data: bytes, now: float) -> bytes:
        sim.corrupt_next()
        return original(data, now)

    sim.feed = corrupt_always  # type: ignore[method-assign]
    with pytest.raises(DeviceProtocolError):
        scale.weigh(stable=False)


def test_unsupported_command() -> None:
    sim = MassaKSimulator(MassaKConfig(unsupported=frozenset({massak.Cmd.SET_ZERO})))
    host, port = sim.serve_tcp()
    scale = MassaKScale(f"socket://{host}:{port}", timeout=0.5)
    scale.open()
    try:
        with pytest.raises(MassaKUnsupported):
            scale.zero()
    finally:
        scale.close()
        sim.stop()


def test_unplugged_pty_is_unavailable() -> None:
    sim = MassaKSimulator()
    path = sim.serve_pty()
    scale = MassaKScale(path, timeout=0.3)
    scale.open()
    try:
        sim.unplug()
        with pytest.raises((DeviceUnavailable, DeviceTimeout)):
            scale.weigh(stable=False)
        sim.plug()
        scale.close()
        scale.open()
        assert scale.weigh(stable=False).net == Decimal("0.000")
    finally:
        scale.close()
        sim.stop()
