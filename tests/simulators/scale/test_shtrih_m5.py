"""The Shtrih M5 simulator's weighing model and link, driven by the protocol's host side."""

from __future__ import annotations

from decimal import Decimal

from protocols import shtrih_m5 as m5
from protocols.shtrih.frames import encode_frame
from protocols.shtrih_m5 import ErrorCode, StatusFlag
from simulators.scale.shtrih_m5 import ShtrihM5Config, ShtrihM5Simulator


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ask(sim: ShtrihM5Simulator, clock: Clock, request: m5.Request) -> m5.Answer:
    host = m5.HostConnection()
    host.send(request, clock.now)
    for _ in range(10):
        out = host.data_to_send()
        if not out:
            break
        host.receive_data(sim.feed(out, clock.now), clock.now)
        event = host.next_event()
        if isinstance(event, m5.Answered):
            return event.answer
    raise AssertionError("no answer")


def test_weight_tare_zero_model() -> None:
    clock = Clock()
    sim = ShtrihM5Simulator(ShtrihM5Config(unstable_after_change=1.0), clock=clock)
    sim.set_weight(Decimal("1.2345"))
    moving = ask(sim, clock, m5.ReadStatus())
    assert isinstance(moving, m5.Status) and not moving.stable
    assert ask(sim, clock, m5.Tare()) == m5.Refused(0x31, ErrorCode.WEIGHT_NOT_FIXED)
    clock.now += 1.0
    stable = ask(sim, clock, m5.ReadStatus())
    assert stable == m5.Status(StatusFlag.FIXED | StatusFlag.STABLE | StatusFlag.CHANNEL_ON, 1235, 0)
    assert ask(sim, clock, m5.Zero()) == m5.Refused(0x30, ErrorCode.ZERO_FAILED)
    assert ask(sim, clock, m5.Tare()) == m5.Done(m5.Command.TARE)
    tared = ask(sim, clock, m5.ReadStatus())
    assert isinstance(tared, m5.Status) and tared.weight == 0 and tared.tare == 1235
    assert StatusFlag.TARE_SET in tared.flags
    assert ask(sim, clock, m5.SetTare(7000)) == m5.Refused(0x32, ErrorCode.TARE_VALUE)
    assert ask(sim, clock, m5.SetTare(0)) == m5.Done(m5.Command.SET_TARE)
    sim.set_weight(Decimal("0.010"))
    clock.now += 1.0
    assert ask(sim, clock, m5.Zero()) == m5.Done(m5.Command.ZERO)
    zeroed = ask(sim, clock, m5.ReadStatus())
    assert isinstance(zeroed, m5.Status) and zeroed.weight == 0


def test_password_overload_underload_and_faults() -> None:
    clock = Clock()
    sim = ShtrihM5Simulator(ShtrihM5Config(unstable_after_change=0.0, password=1234), clock=clock)
    assert ask(sim, clock, m5.ReadStatus()) == m5.Refused(0x3A, ErrorCode.WRONG_PASSWORD)
    sim.set_weight(Decimal("20"))
    over = ask(sim, clock, m5.ReadStatus(1234))
    assert isinstance(over, m5.Status) and over.overload
    sim.set_weight(Decimal("-0.5"))
    under = ask(sim, clock, m5.ReadStatus(1234))
    assert isinstance(under, m5.Status) and under.underload
    sim.set_flags(StatusFlag.NO_ADC)
    dead = ask(sim, clock, m5.ReadStatus(1234))
    assert isinstance(dead, m5.Status) and StatusFlag.NO_ADC in dead.flags
    sim.set_error(ErrorCode.NVRAM_FAULT)
    assert ask(sim, clock, m5.Zero(1234)) == m5.Refused(0x30, ErrorCode.NVRAM_FAULT)
    info = ask(sim, clock, m5.ReadDeviceInfo())  # no password, but the error is global
    assert info == m5.Refused(0xFC, ErrorCode.NVRAM_FAULT)


def test_channel_info_and_bad_frames() -> None:
    clock = Clock()
    sim = ShtrihM5Simulator(clock=clock)
    channel = ask(sim, clock, m5.ReadChannel(0))
    assert isinstance(channel, m5.ChannelInfo) and channel.decimal_point == 3 and channel.max_weight == 15000
    assert ask(sim, clock, m5.ReadChannel(3)) == m5.Refused(0xE8, ErrorCode.BAD_CHANNEL)
    # An unknown command and a short one are ACKed and answered with 120 / 121.
    out = sim.feed(encode_frame(bytes([0x99])), clock.now)
    assert out == b"\x06" + encode_frame(bytes([0x99, 120]))
    sim.feed(b"\x06", clock.now)
    out = sim.feed(encode_frame(bytes([0x3A, 1])), clock.now)
    assert out == b"\x06" + encode_frame(bytes([0x3A, 121]))
    # A frame with a bad LRC is NAKed; garbage alone is ignored.
    assert sim.feed(b"\x02\x01\xea\x00", clock.now) == b"\x15"
    assert sim.feed(b"\xff\x00garbage", clock.now) == b""
