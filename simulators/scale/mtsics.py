"""A Mettler Toledo MT-SICS scale: stateful weighing model + the device side of
``protocols.mtsics``, served over a pty or TCP by ``simulators.link``.

The model, in kg (``Decimal``), as a trade scale behaves:

- ``gross`` is what lies on the platform; the display shows ``gross - zero_offset - tare``
  rounded to the division ``d``;
- after every weight change the reading is dynamic for ``unstable_after_change`` seconds
  (``S`` answers ``S I``, ``SI`` answers ``S D`` with a wobble of one division);
- above ``capacity + 9 d`` the scale is overloaded (``S +``), below ``-zero_range`` it is
  underloaded (``S -``), as when the platform is lifted;
- ``Z`` works only when stable and within ``±zero_range`` of the power-on zero; ``T`` only
  when stable and within ``0..capacity``; ``@`` clears the tare and keeps the zero.

Faults: ``set_unstable``, ``inject_garbage``, ``set_silent`` (the scale stops answering
but the link stays up), ``unplug``/``plug`` (the link goes away). Never imports a driver.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from protocols import mtsics
from simulators.scale.platform import SimulatedScale


@dataclass(frozen=True, slots=True)
class MtSicsConfig:
    """What a tester sets up; defaults are a 15 kg retail scale with a 5 g division."""

    capacity: Decimal = Decimal("15.000")
    division: Decimal = Decimal("0.005")
    initial_weight: Decimal = Decimal("0.000")
    zero_range: Decimal = Decimal("0.300")
    unstable_after_change: float = 0.5
    serial_number: str = "B123456789"
    model: str = "BC-15 SICS"
    firmware: str = "1.10 10.28.0.493.142"
    unit: str = "kg"
    latency: float = 0.0
    baudrate: int | None = None

    def __post_init__(self) -> None:
        for name in ("capacity", "division", "initial_weight", "zero_range"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise ValueError(f"MtSicsConfig.{name} must be a finite Decimal, got {value!r}")
        if self.capacity <= 0 or self.division <= 0 or self.zero_range < 0:
            raise ValueError("capacity and division must be > 0, zero_range >= 0")
        if self.unit not in ("kg", "g"):
            raise ValueError("unit must be 'kg' or 'g'")
        if self.unstable_after_change < 0:
            raise ValueError("unstable_after_change must be >= 0")
        if '"' in self.serial_number + self.model + self.firmware:
            raise ValueError("identification strings cannot contain quotes")


class MtSicsSimulator(SimulatedScale):
    """A ``ByteDevice`` speaking MT-SICS, with control methods for tests and testers."""

    def __init__(
        self, config: MtSicsConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or MtSicsConfig()
        super().__init__(self.config, clock)
        self._conn = mtsics.DeviceConnection()
        self.commands: list[mtsics.Command | mtsics.CommandRejected] = []
        """Every command received, in order (for tests that check what the host sent)."""

    # --- control ---------------------------------------------------------------------------

    # --- ByteDevice --------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> bytes:
        with self._lock:
            self._conn.receive_data(data)
            out = bytearray(self._take_pending_garbage())
            while (event := self._conn.next_event()) is not mtsics.NEED_DATA:
                self.commands.append(event)
                if self._silent:
                    continue
                if isinstance(event, mtsics.CommandRejected):
                    out += event.reply.encode()
                else:
                    out += self._execute(event, now).encode()
            return bytes(out)

    # --- model -----------------------------------------------------------------------------

    def _displayed_gross(self) -> Decimal:
        return self.gross - self.zero_offset

    def _range(self) -> str | None:
        shown = self._displayed_gross()
        if shown > self.config.capacity + 9 * self.config.division:
            return "+"
        if shown < -self.config.zero_range:
            return "-"
        return None

    def _round(self, kg: Decimal) -> Decimal:
        d = self.config.division
        steps = (kg / d).to_integral_value(rounding=ROUND_HALF_UP)
        value = steps * d
        value = (value * 1000).quantize(d * 1000) if self.config.unit == "g" else value.quantize(d)
        return abs(value) if value == 0 else value  # a scale shows 0.000, never -0.000

    def _weight(self, ident: str, status: mtsics.Status, kg: Decimal) -> mtsics.WeightReply:
        return mtsics.WeightReply(ident, status, self._round(kg), self.config.unit)

    def _execute(self, command: mtsics.Command, now: float) -> mtsics.Reply:
        handler = _HANDLERS.get(type(command))
        if handler is None:  # pragma: no cover - every parsed command has a handler
            return mtsics.ErrorReply("ES")
        return handler(self, command, now)

    def _send_stable(self, _: mtsics.Command, now: float) -> mtsics.Reply:
        out_of_range = self._range()
        if out_of_range:
            return mtsics.StatusReply("S", mtsics.Status(out_of_range))
        if not self._stable(now):
            return mtsics.StatusReply("S", mtsics.Status.NOT_EXECUTABLE)
        return self._weight("S", mtsics.Status.STABLE, self._displayed_gross() - self.tare)

    def _send_immediate(self, _: mtsics.Command, now: float) -> mtsics.Reply:
        out_of_range = self._range()
        if out_of_range:
            return mtsics.StatusReply("S", mtsics.Status(out_of_range))
        net = self._displayed_gross() - self.tare
        if self._stable(now):
            return self._weight("S", mtsics.Status.STABLE, net)
        wobble = self.config.division if int(now * 10) % 2 else -self.config.division
        return self._weight("S", mtsics.Status.DYNAMIC, net + wobble)

    def _zero(self, _: mtsics.Command, now: float) -> mtsics.Reply:
        if not self._stable(now):
            return mtsics.StatusReply("Z", mtsics.Status.NOT_EXECUTABLE)
        if self.gross > self.config.zero_range:
            return mtsics.StatusReply("Z", mtsics.Status.ABOVE)
        if self.gross < -self.config.zero_range:
            return mtsics.StatusReply("Z", mtsics.Status.BELOW)
        self.zero_offset = self.gross
        self.tare = Decimal(0)
        return mtsics.StatusReply("Z", mtsics.Status.EXECUTED)

    def _tare(self, _: mtsics.Command, now: float) -> mtsics.Reply:
        if not self._stable(now):
            return mtsics.StatusReply("T", mtsics.Status.NOT_EXECUTABLE)
        shown = self._displayed_gross()
        if shown > self.config.capacity:
            return mtsics.StatusReply("T", mtsics.Status.ABOVE)
        if shown < 0:
            return mtsics.StatusReply("T", mtsics.Status.BELOW)
        self.tare = self._round(shown) / (1000 if self.config.unit == "g" else 1)
        return self._weight("T", mtsics.Status.STABLE, self.tare)

    def _query_tare(self, _: mtsics.Command, now: float) -> mtsics.Reply:
        return self._weight("TA", mtsics.Status.EXECUTED, self.tare)

    def _preset_tare(self, command: mtsics.Command, now: float) -> mtsics.Reply:
        assert isinstance(command, mtsics.PresetTare)
        factor = {"kg": Decimal(1), "g": Decimal("0.001")}.get(command.unit)
        if factor is None:
            return mtsics.StatusReply("TA", mtsics.Status.PARAMETER_ERROR)
        kg = command.value * factor
        if kg < 0 or kg > self.config.capacity:
            return mtsics.StatusReply("TA", mtsics.Status.PARAMETER_ERROR)
        self.tare = kg
        return self._weight("TA", mtsics.Status.EXECUTED, self.tare)

    def _clear_tare(self, _: mtsics.Command, now: float) -> mtsics.Reply:
        self.tare = Decimal(0)
        return mtsics.StatusReply("TAC", mtsics.Status.EXECUTED)

    def _reset(self, _: mtsics.Command, now: float) -> mtsics.Reply:
        self.tare = Decimal(0)
        return mtsics.TextReply("I4", mtsics.Status.EXECUTED, (self.config.serial_number,))

    def _balance_data(self, _: mtsics.Command, now: float) -> mtsics.Reply:
        capacity = self.config.capacity * (1000 if self.config.unit == "g" else 1)
        text = f"{self.config.model} {capacity} {self.config.unit}"
        return mtsics.TextReply("I2", mtsics.Status.EXECUTED, (text,))

    def _software(self, _: mtsics.Command, now: float) -> mtsics.Reply:
        return mtsics.TextReply("I3", mtsics.Status.EXECUTED, (self.config.firmware,))

    def _serial(self, _: mtsics.Command, now: float) -> mtsics.Reply:
        return mtsics.TextReply("I4", mtsics.Status.EXECUTED, (self.config.serial_number,))


_Handler = Callable[[MtSicsSimulator, mtsics.Command, float], mtsics.Reply]

_HANDLERS: dict[type[mtsics.Command], _Handler] = {
    mtsics.SendStableWeight: MtSicsSimulator._send_stable,
    mtsics.SendImmediateWeight: MtSicsSimulator._send_immediate,
    mtsics.Zero: MtSicsSimulator._zero,
    mtsics.Tare: MtSicsSimulator._tare,
    mtsics.QueryTare: MtSicsSimulator._query_tare,
    mtsics.PresetTare: MtSicsSimulator._preset_tare,
    mtsics.ClearTare: MtSicsSimulator._clear_tare,
    mtsics.Reset: MtSicsSimulator._reset,
    mtsics.QueryBalanceData: MtSicsSimulator._balance_data,
    mtsics.QuerySoftwareVersion: MtSicsSimulator._software,
    mtsics.QuerySerialNumber: MtSicsSimulator._serial,
}
