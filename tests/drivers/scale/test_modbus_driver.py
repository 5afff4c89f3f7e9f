"""The Modbus scale driver against a real pymodbus server (the simulator), TCP and RTU."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from decimal import Decimal

import pytest
from pymodbus.constants import ExcCodes

from drivers.errors import DeviceTimeout, DeviceUnavailable, DriverConfigError
from drivers.scale.base import Scale, ScaleOverload, ScaleUnderload, ScaleUnstable
from drivers.scale.modbus import ModbusScale, ModbusScaleRejected, RegisterMap
from simulators.scale.modbus import ModbusScaleSimConfig, ModbusScaleSimulator

pytestmark = pytest.mark.integration


def test_register_map_decoding() -> None:
    m = RegisterMap()
    assert m.span == (0, 5)
    assert m.int32([0xFFFF, 0xFB2E, 0, 0, 0], 0) == -1234
    assert m.kg(-1234) == Decimal("-1.234")
    little = RegisterMap(word_order="little", decimals=2, status_address=None, tare_address=None)
    assert little.span == (0, 2)
    assert little.int32([0x86A0, 0x0001], 0) == 100_000
    assert little.kg(100_000) == Decimal("1000.000")
    assert RegisterMap(decimals=0, factor=Decimal("0.5")).kg(3) == Decimal("1.500")
    with pytest.raises(DriverConfigError):
        RegisterMap(word_order="middle")  # type: ignore[arg-type]
    with pytest.raises(DriverConfigError):
        RegisterMap(tare_address=300)
    with pytest.raises(DriverConfigError):
        RegisterMap(stable_bit=16)


@pytest.fixture
def tcp_rig() -> Iterator[tuple[ModbusScaleSimulator, ModbusScale]]:
    sim = ModbusScaleSimulator(ModbusScaleSimConfig(unstable_after_change=0.2))
    host, port = sim.serve_tcp()
    scale = ModbusScale(f"tcp://{host}:{port}", timeout=0.5, poll_interval=0.05)
    scale.open()
    try:
        yield sim, scale
    finally:
        scale.close()
        sim.stop()


def test_default_map_over_tcp(tcp_rig: tuple[ModbusScaleSimulator, ModbusScale]) -> None:
    sim, scale = tcp_rig
    assert isinstance(scale, Scale)
    sim.set_weight(Decimal("1.234"))
    assert not scale.weigh(stable=False).stable
    reading = scale.weigh(timeout=2.0)
    assert reading.net == Decimal("1.235") and reading.stable and reading.tare == Decimal("0.000")
    with pytest.raises(ModbusScaleRejected) as refused:
        scale.zero()  # 1.2 kg is outside the ±0.6 kg zero range
    assert refused.value.exception_code == ExcCodes.DEVICE_FAILURE
    tared = scale.tare()
    assert tared.tare == Decimal("1.235") and tared.net == Decimal("0.000")
    sim.set_weight(Decimal("3.000"))
    after = scale.weigh(timeout=2.0)
    assert after.net == Decimal("1.765") and after.tare == Decimal("1.235")
    scale.clear_tare()
    assert scale.weigh(timeout=2.0).net == Decimal("3.000")
    sim.set_weight(Decimal("-0.200"))
    negative = scale.weigh(timeout=2.0)
    assert negative.net == Decimal("-0.200")
    scale.zero()
    assert scale.weigh(timeout=2.0).net == Decimal("0.000")
    assert sim.commands == ["tare", "clear_tare", "zero"]


def test_status_errors_and_faults(tcp_rig: tuple[ModbusScaleSimulator, ModbusScale]) -> None:
    sim, scale = tcp_rig
    sim.set_weight(Decimal("40"))
    with pytest.raises(ScaleOverload):
        scale.weigh(stable=False)
    sim.set_weight(Decimal("-1"))
    with pytest.raises(ScaleUnderload):
        scale.weigh(stable=False)
    sim.set_weight(Decimal("0.100"))
    with pytest.raises(ModbusScaleRejected) as busy:
        scale.zero()
    assert busy.value.exception_code == ExcCodes.DEVICE_BUSY
    sim.set_unstable(5)
    with pytest.raises(ScaleUnstable) as unstable:
        scale.weigh(timeout=0.3)
    assert unstable.value.last is not None and not unstable.value.last.stable
    sim.set_unstable(0)
    sim.set_failure(ExcCodes.GATEWAY_NO_RESPONSE)
    with pytest.raises(ModbusScaleRejected, match="шлюз"):
        scale.weigh()
    sim.set_failure(None)
    sim.set_delay(1.5)
    with pytest.raises(DeviceTimeout):
        scale.weigh(stable=False)
    sim.set_delay(0)


def test_custom_map_input_registers_little_endian_coils() -> None:
    config = ModbusScaleSimConfig(
        capacity=Decimal("2000"),
        step=Decimal("0.02"),
        zero_range=Decimal("6"),
        unstable_after_change=0,
        device_id=7,
        table="input",
        weight_address=100,
        status_address=99,
        tare_address=None,
        word_order="little",
        decimals=2,
        stable_bit=5,
        overload_bit=6,
        underload_bit=7,
        zero_bit=8,
        commands="coils",
        zero_coil=3,
        tare_coil=4,
        clear_tare_coil=5,
        registers=128,
    )
    sim = ModbusScaleSimulator(config)
    host, port = sim.serve_tcp()
    scale = ModbusScale(
        f"tcp://{host}:{port}",
        device_id=7,
        timeout=0.5,
        table="input",
        weight_address=100,
        status_address=99,
        tare_address=None,
        word_order="little",
        decimals=2,
        stable_bit=5,
        overload_bit=6,
        underload_bit=7,
        zero_bit=8,
        commands="coils",
        zero_coil=3,
        tare_coil=4,
        clear_tare_coil=5,
    )
    scale.open()
    try:
        sim.set_weight(Decimal("1234.56"))  # above 655.35: both words carry bits
        reading = scale.weigh(stable=False)
        assert reading.net == Decimal("1234.56") and reading.tare is None
        sim.set_weight(Decimal("120.50"))
        assert scale.tare().tare == Decimal("120.50")
        sim.set_weight(Decimal("150.00"))
        assert scale.weigh().net == Decimal("29.50")
        scale.clear_tare()
        sim.set_weight(Decimal("2"))
        scale.zero()
        assert scale.weigh().net == Decimal("0.00")
        assert sim.commands == ["tare", "clear_tare", "zero"]
    finally:
        scale.close()
        sim.stop()


def test_rtu_over_a_pty() -> None:
    sim = ModbusScaleSimulator(ModbusScaleSimConfig(unstable_after_change=0))
    path = sim.serve_rtu_pty(baudrate=19200)
    scale = ModbusScale(path, baudrate=19200, timeout=0.5)
    scale.open()
    try:
        sim.set_weight(Decimal("2.500"))
        assert scale.weigh().net == Decimal("2.500")
        scale.tare()
        sim.set_weight(Decimal("3.000"))
        reading = scale.weigh()
        assert (reading.net, reading.tare) == (Decimal("0.500"), Decimal("2.500"))
    finally:
        scale.close()
        sim.stop()


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scale = ModbusScale(f"tcp://127.0.0.1:{port}", timeout=0.3, retries=0)
    with pytest.raises(DeviceUnavailable):
        scale.open()
    with pytest.raises(DriverConfigError):
        ModbusScale("tcp://nohostport", timeout=0.3).open()
