from __future__ import annotations

from decimal import Decimal

from protocols import massak
from simulators.scale.massak import MassaKConfig, MassaKSimulator


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ask(sim: MassaKSimulator, clock: Clock, request: massak.Request) -> massak.Reply:
    host = massak.HostConnection()
    out = sim.feed(host.send(request), clock.now)
    host.receive_data(out)
    reply = host.next_event()
    assert reply is not massak.NEED_DATA
    return reply


def test_weight_tare_zero_model() -> None:
    clock = Clock()
    sim = MassaKSimulator(MassaKConfig(unstable_after_change=1.0), clock=clock)
    sim.set_weight(Decimal("1.2345"))
    unstable = ask(sim, clock, massak.GetMassa())
    assert isinstance(unstable, massak.Massa) and not unstable.stable
    clock.now += 1.0
    stable = ask(sim, clock, massak.GetMassa())
    assert stable == massak.Massa(1235, massak.Division.D_1_G, True, False, False, 0)  # 5 g step
    # Zero refused with a load on the platform, tare accepted.
    assert ask(sim, clock, massak.SetZero()) == massak.ErrorReply(massak.ErrorCode.ZERO_IMPOSSIBLE)
    assert ask(sim, clock, massak.SetTare(1235)) == massak.TareSet()
    tared = ask(sim, clock, massak.GetMassa())
    assert tared == massak.Massa(0, massak.Division.D_1_G, True, True, False, 1235)
    assert ask(sim, clock, massak.SetTare(7000)) == massak.TareRefused()  # above tare_max 6 kg
    assert ask(sim, clock, massak.SetTare(0)) == massak.TareSet()
    sim.set_weight(Decimal("0.010"))
    assert ask(sim, clock, massak.SetZero()) == massak.ErrorReply(massak.ErrorCode.ZERO_IMPOSSIBLE)  # unstable
    clock.now += 1.0
    assert ask(sim, clock, massak.SetZero()) == massak.ZeroSet()
    zeroed = ask(sim, clock, massak.GetMassa())
    assert isinstance(zeroed, massak.Massa) and zeroed.weight == 0 and zeroed.zero


def test_overload_error_injection_and_unsupported() -> None:
    clock = Clock()
    sim = MassaKSimulator(MassaKConfig(unsupported=frozenset({massak.Cmd.SET_ZERO})), clock=clock)
    sim.set_weight(Decimal("15.050"))
    assert ask(sim, clock, massak.GetMassa()) == massak.ErrorReply(massak.ErrorCode.OVERLOAD)
    sim.set_weight(Decimal("1"))
    sim.set_error(massak.ErrorCode.NO_ADC_LINK)
    assert ask(sim, clock, massak.GetMassa()) == massak.ErrorReply(0x17)
    sim.set_error(None)
    assert ask(sim, clock, massak.SetZero()) == massak.Nack()
    params = ask(sim, clock, massak.GetScalePar())
    assert isinstance(params, massak.ScaleParameters)
    assert params.as_dict()["max"] == "15 kg" and params.as_dict()["e"] == "5 g"


def test_garbage_and_bad_frames_are_dropped_and_counted() -> None:
    clock = Clock()
    sim = MassaKSimulator(clock=clock)
    good = massak.encode_frame(b"\x23")
    out = sim.feed(b"\x00\x01" + good[:-1] + b"\x55" + good, clock.now)
    host = massak.HostConnection()
    host.send(massak.GetMassa())
    host.receive_data(out)
    assert isinstance(host.next_event(), massak.Massa)
    assert len(sim.requests) == 1


def test_corrupt_next_and_silent() -> None:
    clock = Clock()
    sim = MassaKSimulator(clock=clock)
    sim.corrupt_next()
    frame = sim.feed(massak.encode_frame(b"\x23"), clock.now)
    parser = massak.FrameParser()
    parser.feed(frame)
    try:
        parser.next_body()
        raise AssertionError("a corrupted frame parsed")
    except massak.BadCrc:
        pass
    sim.set_silent()
    assert sim.feed(massak.encode_frame(b"\x23"), clock.now) == b""
