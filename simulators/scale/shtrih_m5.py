"""A Shtrih M5 scale (Shtrih-M POS scale / weighing module): a weighing model + the device
side of ``protocols.shtrih_m5`` (the Shtrih-M ENQ/ACK/NAK link), served over a pty or TCP.

The model, in kg (``Decimal``):

- ``gross`` lies on the platform; the scale reports ``gross - zero_offset - tare`` rounded to
  ``step``, in channel units of ``10**-decimal_point`` kg (1 g by default);
- after every weight change the reading is unstable for ``unstable_after_change`` seconds
  (flags without STABLE/FIXED and a one-step wobble);
- above ``capacity + 9 step`` the OVERLOAD flag is set; below ``-underload_below`` (a lifted
  platform) the UNDERLOAD flag;
- 30h zero works only when stable and within ``±zero_range`` of the power-on zero (else error
  150, or 152 while moving) and clears the tare;
- 31h tare takes the shown gross as the tare (152 while moving, 151 above ``tare_max``); on
  an empty platform it clears the tare;
- 32h sets the tare in channel units (17 above ``tare_max``; 0 clears it);
- every command carrying a password checks it (122 when wrong).

Faults: ``set_unstable``, ``set_flags`` (extra flags, e.g. ``NO_ADC``), ``set_error`` (every
command answers that error code), ``corrupt_next`` (next frame with a bad LRC),
``inject_garbage``, ``set_silent``, ``unplug``/``plug``. Never imports a driver.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from protocols import shtrih_m5 as m5
from protocols.shtrih_m5 import ErrorCode, StatusFlag
from simulators.scale.platform import SimulatedScale


@dataclass(frozen=True, slots=True)
class ShtrihM5Config:
    """What a tester sets up; defaults are a 15 kg POS scale with a 5 g step, reported in grams."""

    capacity: Decimal = Decimal("15.000")
    minimum: Decimal = Decimal("0.040")
    step: Decimal = Decimal("0.005")
    decimal_point: int = 3
    tare_max: Decimal = Decimal("6.000")
    initial_weight: Decimal = Decimal("0.000")
    zero_range: Decimal = Decimal("0.300")
    underload_below: Decimal = Decimal("0.100")
    unstable_after_change: float = 0.5
    password: int = m5.DEFAULT_PASSWORD
    name: str = "ШТРИХ-М5 весовой модуль"
    version: tuple[int, int] = (1, 5)
    latency: float = 0.0
    baudrate: int | None = None

    def __post_init__(self) -> None:
        for field_name in (
            "capacity",
            "minimum",
            "step",
            "tare_max",
            "initial_weight",
            "zero_range",
            "underload_below",
        ):
            value = getattr(self, field_name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise ValueError(f"ShtrihM5Config.{field_name} must be a finite Decimal, got {value!r}")
        if not 0 <= self.decimal_point <= 6:
            raise ValueError("decimal_point must be 0..6")
        if self.capacity <= 0 or self.step <= 0 or self.zero_range < 0 or self.tare_max < 0:
            raise ValueError("capacity and step must be > 0, zero_range and tare_max >= 0")
        if (self.step / self.unit) % 1:
            raise ValueError("step must be a whole number of channel units")
        if self.capacity / self.unit > 0xFFFF or self.tare_max / self.unit > 0xFFFF:
            raise ValueError("capacity and tare_max must fit 16 bits of channel units")
        if self.unstable_after_change < 0:
            raise ValueError("unstable_after_change must be >= 0")

    @property
    def unit(self) -> Decimal:
        """One channel unit in kg."""
        return Decimal(1).scaleb(-self.decimal_point)


class ShtrihM5Simulator(SimulatedScale):
    """A ``ByteDevice`` speaking the Shtrih M5 scale protocol, with control methods for tests."""

    def __init__(
        self, config: ShtrihM5Config | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or ShtrihM5Config()
        super().__init__(self.config, clock)
        self._conn = m5.DeviceConnection()
        self._extra_flags = StatusFlag(0)
        self._error: int | None = None
        self._corrupt_next = False
        self.requests: list[m5.Request | m5.BadRequest] = []
        """Every command received, in order (for tests that check what the host sent)."""

    # --- control ---------------------------------------------------------------------------

    def set_flags(self, flags: StatusFlag) -> None:
        """Report these flags on top of the model's (e.g. ``NO_ADC``, ``READ_ERROR``)."""
        with self._lock:
            self._extra_flags = StatusFlag(flags)

    def set_error(self, code: int | None) -> None:
        """Answer every command with error ``code`` (``None`` to heal)."""
        with self._lock:
            self._error = code

    def corrupt_next(self) -> None:
        """Send the next answer frame with a wrong LRC (line noise)."""
        with self._lock:
            self._corrupt_next = True

    def unplug(self) -> None:
        super().unplug()
        with self._lock:
            self._conn.forget()

    # --- ByteDevice --------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> bytes:
        with self._lock:
            if self._silent:
                return b""
            self._conn.receive_data(data)
            while (event := self._conn.next_event()) is not m5.NEED_DATA:
                if isinstance(event, m5.BadRequest):
                    self.requests.append(event)
                    self._conn.send(event.reply)
                elif isinstance(event, m5.RequestReceived):
                    self.requests.append(event.request)
                    self._conn.send(self._execute(event.request, now))
            out = self._conn.data_to_send()
            if self._corrupt_next and len(out) > 3 and 0x02 in out:
                self._corrupt_next = False
                out = out[:-1] + bytes([out[-1] ^ 0xFF])
            garbage = self._take_pending_garbage()
            return garbage + out

    # --- model -----------------------------------------------------------------------------

    def _units(self, kg: Decimal) -> int:
        step = self.config.step
        rounded = (kg / step).to_integral_value(rounding=ROUND_HALF_UP) * step
        return int((rounded / self.config.unit).to_integral_value(rounding=ROUND_HALF_UP))

    def _execute(self, request: m5.Request, now: float) -> m5.Answer:
        password = getattr(request, "password", None)  # E8h, EAh, FCh carry none
        if password is not None and password != self.config.password:
            return m5.Refused(request.CODE, ErrorCode.WRONG_PASSWORD)
        if self._error is not None:
            return m5.Refused(request.CODE, self._error)
        if isinstance(request, m5.ReadStatus):
            return self._status(now)
        if isinstance(request, m5.Zero):
            return self._zero(now)
        if isinstance(request, m5.Tare):
            return self._tare(now)
        if isinstance(request, m5.SetTare):
            return self._set_tare(request)
        if isinstance(request, m5.ReadChannelNumber):
            return m5.ChannelNumber(0)
        if isinstance(request, m5.ReadChannel):
            if request.number != 0:
                return m5.Refused(request.CODE, ErrorCode.BAD_CHANNEL)
            return self._channel()
        major, minor = self.config.version
        return m5.DeviceInfo(1, 5, major, minor, 1, 0, self.config.name)

    def _status(self, now: float) -> m5.Status:
        c = self.config
        shown = self.gross - self.zero_offset
        stable = self._stable(now)
        flags = StatusFlag.CHANNEL_ON | self._extra_flags
        if stable:
            flags |= StatusFlag.STABLE | StatusFlag.FIXED
        if self.tare:
            flags |= StatusFlag.TARE_SET
        if shown > c.capacity + 9 * c.step:
            flags |= StatusFlag.OVERLOAD
        if shown < -c.underload_below:
            flags |= StatusFlag.UNDERLOAD
        net = shown - self.tare
        if not stable:
            net += c.step if int(now * 10) % 2 else -c.step
        weight = max(min(self._units(net), 2**31 - 1), -(2**31))
        return m5.Status(flags, weight, self._units(self.tare))

    def _zero(self, now: float) -> m5.Answer:
        if not self._stable(now):
            return m5.Refused(m5.Command.ZERO, ErrorCode.WEIGHT_NOT_FIXED)
        if abs(self.gross) > self.config.zero_range:
            return m5.Refused(m5.Command.ZERO, ErrorCode.ZERO_FAILED)
        self.zero_offset = self.gross
        self.tare = Decimal(0)
        return m5.Done(m5.Command.ZERO)

    def _tare(self, now: float) -> m5.Answer:
        if not self._stable(now):
            return m5.Refused(m5.Command.TARE, ErrorCode.WEIGHT_NOT_FIXED)
        shown = self.gross - self.zero_offset
        if shown <= 0:
            self.tare = Decimal(0)
        elif shown > self.config.tare_max:
            return m5.Refused(m5.Command.TARE, ErrorCode.TARE_FAILED)
        else:
            self.tare = self._units(shown) * self.config.unit
        return m5.Done(m5.Command.TARE)

    def _set_tare(self, request: m5.SetTare) -> m5.Answer:
        kg = request.tare * self.config.unit
        if kg > self.config.tare_max:
            return m5.Refused(m5.Command.SET_TARE, ErrorCode.TARE_VALUE)
        self.tare = self._units(kg) * self.config.unit
        return m5.Done(m5.Command.SET_TARE)

    def _channel(self) -> m5.ChannelInfo:
        c = self.config

        def units(kg: Decimal) -> int:
            return int(kg / c.unit)

        return m5.ChannelInfo(
            decimal_point=c.decimal_point,
            max_weight=units(c.capacity),
            min_weight=units(c.minimum),
            max_tare=units(c.tare_max),
            ranges=(units(c.capacity), units(c.capacity), units(c.capacity)),
            discreteness=(units(c.step),) * 4,
        )
