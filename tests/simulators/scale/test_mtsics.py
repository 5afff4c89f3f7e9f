"""The MT-SICS driver against the MT-SICS simulator over a real pty and over TCP."""

from collections.abc import Iterator
from decimal import Decimal

import pytest

from drivers.errors import DeviceTimeout, DeviceUnavailable
from drivers.scale import open_scale
from drivers.scale.base import Scale, ScaleOverload, ScaleUnderload, ScaleUnstable
from drivers.scale.mtsics import MtSicsNotExecutable, MtSicsOutOfRange, MtSicsScale
from protocols import mtsics
from simulators.scale import MtSicsConfig, MtSicsSimulator

pytestmark = pytest.mark.integration

CONFIG = MtSicsConfig(division=Decimal("0.001"), unstable_after_change=0.15, serial_number="SIM0000042")


@pytest.fixture(params=["pty", "tcp"])
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[MtSicsSimulator, str]]:
    sim = MtSicsSimulator(CONFIG)
    if request.param == "pty":
        url = sim.serve_pty()
    else:
        host, port = sim.serve_tcp()
        url = f"tcp://{host}:{port}"
    try:
        yield sim, url
    finally:
        sim.stop()


@pytest.fixture
def scale(rig: tuple[MtSicsSimulator, str]) -> Iterator[MtSicsScale]:
    _, url = rig
    driver = open_scale("mtsics", url, {"timeout": 0.5, "poll_interval": 0.02})
    assert isinstance(driver, MtSicsScale)
    assert isinstance(driver, Scale)
    try:
        yield driver
    finally:
        driver.close()


def test_info(scale: MtSicsScale) -> None:
    info = scale.info()
    assert info.serial == "SIM0000042"
    assert info.model == "BC-15 SICS"
    assert info.capacity == Decimal("15.000")


def test_stable_weight(rig: tuple[MtSicsSimulator, str], scale: MtSicsScale) -> None:
    sim, _ = rig
    sim.set_weight(Decimal("1.234"))
    reading = scale.weigh(timeout=2.0)
    assert reading.net == Decimal("1.234") and reading.stable and reading.unit == "kg"
    assert str(reading.net) == "1.234"


def test_unstable_then_stable(rig: tuple[MtSicsSimulator, str], scale: MtSicsScale) -> None:
    sim, _ = rig
    sim.set_weight(Decimal("2.500"))
    immediate = scale.weigh(stable=False)
    assert not immediate.stable
    assert abs(immediate.net - Decimal("2.500")) <= Decimal("0.001")
    assert scale.weigh(timeout=2.0).net == Decimal("2.500")
    assert any(isinstance(c, mtsics.SendStableWeight) for c in sim.commands)


def test_unstable_for_longer_than_the_timeout(rig: tuple[MtSicsSimulator, str], scale: MtSicsScale) -> None:
    sim, _ = rig
    sim.set_weight(Decimal("0.700"))
    sim.set_unstable(5.0)
    with pytest.raises(ScaleUnstable) as info:
        scale.weigh(timeout=0.2)
    assert info.value.last is not None and not info.value.last.stable


def test_zero_and_tare(rig: tuple[MtSicsSimulator, str], scale: MtSicsScale) -> None:
    sim, _ = rig
    sim.set_weight(Decimal("0.020"))  # drift within the zero range
    with pytest.raises(MtSicsNotExecutable):
        scale.zero()  # still settling
    sim.set_unstable(0)
    scale.zero()
    assert scale.weigh().net == Decimal("0.000")
    sim.set_weight(Decimal("0.520"))  # a 0.500 kg box
    sim.set_unstable(0)
    taken = scale.tare()
    assert taken.tare == Decimal("0.500") and taken.net == Decimal("0.000")
    sim.set_weight(Decimal("1.770"))
    reading = scale.weigh(timeout=2.0)
    assert reading.net == Decimal("1.250") and reading.tare == Decimal("0.500")
    scale.clear_tare()
    assert scale.weigh().net == Decimal("1.750")
    scale.set_tare(Decimal("0.250"))
    assert scale.query_tare() == Decimal("0.250")
    assert scale.weigh().net == Decimal("1.500")
    with pytest.raises(MtSicsOutOfRange):
        scale.zero()  # 1.75 kg on the platform is far outside the zero range
    with pytest.raises(MtSicsOutOfRange):
        scale.set_tare(Decimal("99"))
    assert scale.reset() == "SIM0000042"
    assert scale.weigh().net == Decimal("1.750")


def test_overload_and_underload(rig: tuple[MtSicsSimulator, str], scale: MtSicsScale) -> None:
    sim, _ = rig
    sim.set_weight(Decimal("16"))
    with pytest.raises(ScaleOverload):
        scale.weigh()
    with pytest.raises(ScaleOverload):
        scale.weigh(stable=False)
    sim.set_weight(Decimal("-1"))
    with pytest.raises(ScaleUnderload):
        scale.weigh()


def test_garbage_then_driver_resyncs(rig: tuple[MtSicsSimulator, str], scale: MtSicsScale) -> None:
    sim, _ = rig
    sim.set_weight(Decimal("0.300"))
    sim.set_unstable(0)
    assert scale.weigh().net == Decimal("0.300")  # the link is up (TCP accepted)
    sim.inject_garbage(b"\x00\xff\x13junk")
    assert scale.weigh().net == Decimal("0.300")
    sim.inject_garbage(b"noise without end " * 40)
    assert scale.weigh().net == Decimal("0.300")
    sim.inject_garbage(b"S S      9.999 kg\r\n")  # a stale answer
    assert scale.weigh().net == Decimal("0.300")


def test_silent_device_times_out(rig: tuple[MtSicsSimulator, str], scale: MtSicsScale) -> None:
    sim, _ = rig
    sim.set_silent()
    with pytest.raises(DeviceTimeout, match="не ответили"):
        scale.weigh(timeout=0.1)
    sim.set_silent(False)
    sim.set_unstable(0)
    assert scale.weigh().stable


def test_unplug_then_plug(rig: tuple[MtSicsSimulator, str], scale: MtSicsScale) -> None:
    sim, url = rig
    sim.set_weight(Decimal("0.125"))
    sim.set_unstable(0)
    assert scale.weigh().net == Decimal("0.125")
    sim.unplug()
    with pytest.raises(DeviceUnavailable):
        for _ in range(3):  # a pty may report the hangup one call late
            scale.weigh(timeout=0.3)
    scale.close()
    with pytest.raises(DeviceUnavailable):
        scale.open()
    sim.plug()
    again = open_scale("mtsics", url, {"timeout": 0.5})
    try:
        assert again.weigh().net == Decimal("0.125")
    finally:
        again.close()
