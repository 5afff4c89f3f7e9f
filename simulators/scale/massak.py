"""A Massa-K scale speaking Protocol 100: stateful weighing model + the device side of
``protocols.massak``, served over a pty or TCP by ``simulators.link``.

The model, in kg (``Decimal``), as a trade scale behaves:

- ``gross`` is what lies on the platform; the scale shows ``gross - zero_offset - tare``
  rounded to ``step`` and reports it in ``division`` units (1 g by default);
- after every weight change the reading is unstable for ``unstable_after_change`` seconds
  (``stable`` = 0 and a wobble of one step);
- above ``capacity + 9 step`` the scale is overloaded: ``CMD_GET_MASSA`` answers
  ``CMD_ERROR 08``;
- ``CMD_SET_ZERO`` works only when stable and within ``±zero_range`` of the power-on zero
  (else ``CMD_ERROR 15``), and clears the tare;
- ``CMD_SET_TARE t`` sets the tare to ``t`` divisions (0 clears it); refused with
  ``CMD_NACK_TARE`` while unstable or outside ``0..tare_max``;
- commands listed in ``unsupported`` answer ``CMD_NACK`` (models without tare or zero).

Faults: ``set_unstable``, ``set_error`` (every weight request answers ``CMD_ERROR`` with that
code, e.g. 0x17 no ADC link), ``corrupt_next`` (the next answer goes out with a bad CRC),
``inject_garbage``, ``set_silent``, ``unplug``/``plug``. Never imports a driver.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from protocols import massak
from simulators.scale.platform import SimulatedScale


@dataclass(frozen=True, slots=True)
class MassaKConfig:
    """What a tester sets up; defaults are a 15 kg retail scale with a 5 g step."""

    capacity: Decimal = Decimal("15.000")
    minimum: Decimal = Decimal("0.040")
    step: Decimal = Decimal("0.005")
    division: massak.Division = massak.Division.D_1_G
    tare_max: Decimal = Decimal("6.000")
    initial_weight: Decimal = Decimal("0.000")
    zero_range: Decimal = Decimal("0.300")
    unstable_after_change: float = 0.5
    firmware: str = "2.10"
    calibration_code: str = "1204"
    unsupported: frozenset[massak.Cmd] = field(default_factory=frozenset)
    latency: float = 0.0
    baudrate: int | None = None

    def __post_init__(self) -> None:
        for name in ("capacity", "minimum", "step", "tare_max", "initial_weight", "zero_range"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise ValueError(f"MassaKConfig.{name} must be a finite Decimal, got {value!r}")
        if self.capacity <= 0 or self.step <= 0 or self.zero_range < 0 or self.tare_max < 0:
            raise ValueError("capacity and step must be > 0, zero_range and tare_max >= 0")
        if self.step < self.division.kg or (self.step / self.division.kg) % 1:
            raise ValueError("step must be a whole number of reporting divisions")
        if self.unstable_after_change < 0:
            raise ValueError("unstable_after_change must be >= 0")


class MassaKSimulator(SimulatedScale):
    """A ``ByteDevice`` speaking Massa-K Protocol 100, with control methods for tests."""

    def __init__(self, config: MassaKConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or MassaKConfig()
        super().__init__(self.config, clock)
        self._conn = massak.DeviceConnection()
        self._error: int | None = None
        self._corrupt_next = False
        self.requests: list[massak.Request | massak.RequestRejected] = []
        """Every request received, in order (for tests that check what the host sent)."""

    # --- control ---------------------------------------------------------------------------

    def set_error(self, code: int | None) -> None:
        """Answer every weight request with ``CMD_ERROR code`` (``None`` to heal)."""
        with self._lock:
            self._error = code

    def corrupt_next(self) -> None:
        """Send the next answer with a wrong CRC (line noise)."""
        with self._lock:
            self._corrupt_next = True

    # --- ByteDevice --------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> bytes:
        with self._lock:
            self._conn.receive_data(data)
            out = bytearray(self._take_pending_garbage())
            while (event := self._conn.next_event()) is not massak.NEED_DATA:
                self.requests.append(event)
                if self._silent:
                    continue
                reply = event.reply if isinstance(event, massak.RequestRejected) else self._execute(event, now)
                frame = self._conn.send(reply)
                if self._corrupt_next:
                    self._corrupt_next = False
                    frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
                out += frame
            return bytes(out)

    # --- model -----------------------------------------------------------------------------

    def _shown_gross(self) -> Decimal:
        return self.gross - self.zero_offset

    def _round_step(self, kg: Decimal) -> Decimal:
        step = self.config.step
        return (kg / step).to_integral_value(rounding=ROUND_HALF_UP) * step

    def _divisions(self, kg: Decimal) -> int:
        return int((self._round_step(kg) / self.config.division.kg).to_integral_value(rounding=ROUND_HALF_UP))

    def _execute(self, request: massak.Request, now: float) -> massak.Reply:
        if request.code in self.config.unsupported:
            return massak.Nack()
        if isinstance(request, massak.GetMassa):
            return self._get_massa(now)
        if isinstance(request, massak.SetZero):
            return self._set_zero(now)
        if isinstance(request, massak.SetTare):
            return self._set_tare(request, now)
        return self._scale_par()

    def _get_massa(self, now: float) -> massak.Reply:
        if self._error is not None:
            return massak.ErrorReply(self._error)
        shown = self._shown_gross()
        if shown > self.config.capacity + 9 * self.config.step:
            return massak.ErrorReply(massak.ErrorCode.OVERLOAD)
        stable = self._stable(now)
        net = shown - self.tare
        if not stable:
            net += self.config.step if int(now * 10) % 2 else -self.config.step
        return massak.Massa(
            weight=self._divisions(net),
            division=self.config.division,
            stable=stable,
            net=self.tare != 0,
            zero=self._divisions(shown) == 0,
            tare=self._divisions(self.tare),
        )

    def _set_zero(self, now: float) -> massak.Reply:
        if self._error is not None:
            return massak.ErrorReply(self._error)
        if not self._stable(now) or abs(self.gross) > self.config.zero_range:
            return massak.ErrorReply(massak.ErrorCode.ZERO_IMPOSSIBLE)
        self.zero_offset = self.gross
        self.tare = Decimal(0)
        return massak.ZeroSet()

    def _set_tare(self, request: massak.SetTare, now: float) -> massak.Reply:
        kg = Decimal(request.tare) * self.config.division.kg
        if request.tare == 0:
            self.tare = Decimal(0)
            return massak.TareSet()
        if not self._stable(now) or kg < 0 or kg > self.config.tare_max:
            return massak.TareRefused()
        self.tare = self._round_step(kg)
        return massak.TareSet()

    def _scale_par(self) -> massak.Reply:
        c = self.config
        return massak.ScaleParameters(
            (
                f"{c.capacity.normalize():f} kg",
                f"{c.minimum.normalize():f} kg",
                f"{(c.step * 1000).normalize():f} g",
                f"{c.tare_max.normalize():f} kg",
                "1",
                c.calibration_code,
                c.firmware,
                "0000",
            )
        )
