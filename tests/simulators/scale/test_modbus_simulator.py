from __future__ import annotations

import asyncio
from decimal import Decimal

from pymodbus.constants import ExcCodes

from simulators.scale.modbus import (
    CMD_CLEAR_TARE,
    CMD_TARE,
    CMD_ZERO,
    ModbusScaleSimConfig,
    ModbusScaleSimulator,
)


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def test_snapshot_words_follow_the_model() -> None:
    clock = Clock()
    sim = ModbusScaleSimulator(ModbusScaleSimConfig(unstable_after_change=1), clock=clock)
    sim.set_weight(Decimal("-1.234"))
    clock.now += 1
    words = sim.snapshot()
    assert (words[0], words[1]) == (0xFFFF, 0x10000 - 1235)  # -1.235 kg, int32 high word first
    assert words[2] == 0b101  # stable + underload (below -0.6 kg)
    sim.set_weight(Decimal("2"))
    assert sim.snapshot()[2] & 1 == 0  # unstable right after the change
    assert sim.execute(CMD_TARE) == ExcCodes.DEVICE_BUSY
    clock.now += 1
    assert sim.execute(CMD_TARE) is None
    words = sim.snapshot()
    assert (words[1], words[4], words[2]) == (0, 2000, 0b10001)  # net 0, tare 2 kg, stable + net
    assert sim.execute(CMD_ZERO) == ExcCodes.DEVICE_FAILURE
    assert sim.execute(CMD_CLEAR_TARE) is None
    assert sim.execute(99) == ExcCodes.ILLEGAL_VALUE


def test_little_word_order_and_action_refresh() -> None:
    sim = ModbusScaleSimulator(
        ModbusScaleSimConfig(word_order="little", decimals=2, unstable_after_change=0, table="input")
    )
    sim.set_weight(Decimal("1000"))
    registers = [0] * 32
    assert asyncio.run(sim._action(4, 0, 0, 2, registers, None)) is None
    assert registers[:2] == [100_000 & 0xFFFF, 100_000 >> 16]
    # A holding-register read leaves the input map alone.
    other = [0] * 32
    asyncio.run(sim._action(3, 0, 0, 2, other, None))
    assert other[:2] == [0, 0]
