"""Binds a ``drivers.scale`` Scale to the bus: actions, polling, ``weight`` events, status.

Polling reads the immediate weight (``weigh(stable=False)``) every ``poll_interval_s``; a
``weight`` event goes through the outbox only for a *stable* reading that differs from the last
published one by more than ``deadband_kg`` (Odoo sends on change only too: a scale polled twice
a second must not produce 170,000 identical events a day). Overload and underload are not
errors of the link: the device stays ``online`` and the status data says which.

The driver comes from a factory with the contract of ``drivers.scale.open_scale(driver, url,
options)`` — it returns an *opened* scale or raises a ``DriverError`` — by default that very
function; tests inject their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from drivers.errors import DeviceUnavailable, DriverConfigError
from drivers.scale import open_scale
from drivers.scale.base import Scale, ScaleOverload, ScaleUnderload, WeightReading
from gateway.config import DeviceConfig
from gateway.devices.base import Action, DeviceBinding, EmitFn, NoArgs
from gateway.devices.scale import const
from gateway.devices.scale.actions import WeighArgs, kg, reading_json
from protocols.bus import DeviceKind

log = logging.getLogger(__name__)

ScaleFactory = Callable[[str, str, dict[str, Any]], Scale]


def default_factory(driver: str, url: str, options: dict[str, Any]) -> Scale:
    """``drivers.scale.open_scale``: build the named driver and open it."""
    return open_scale(driver, url, options)


class ScaleBinding(DeviceBinding):
    kind = DeviceKind.SCALE
    capabilities = (const.ACTION_WEIGH, const.ACTION_ZERO, const.ACTION_TARE, const.ACTION_CLEAR_TARE)
    events = const.EVENTS

    def __init__(self, config: DeviceConfig, emit: EmitFn, factory: ScaleFactory | None = None) -> None:
        super().__init__(config, emit, factory)
        self._factory: ScaleFactory = factory or default_factory
        options = dict(config.options)
        self._poll_interval = _positive_float(options, "poll_interval_s", const.DEFAULT_POLL_INTERVAL_S)
        self._deadband = _decimal(options, "deadband_kg", const.DEFAULT_DEADBAND_KG)
        self._driver_options = {k: v for k, v in options.items() if k not in const.BINDING_OPTIONS}
        self._scale: Scale | None = None
        self._published: WeightReading | None = None
        self._overload = False
        self._underload = False
        self._actions: dict[str, Action] = {
            const.ACTION_WEIGH: Action(const.ACTION_WEIGH, WeighArgs, self._weigh, doc="read the weight"),
            const.ACTION_ZERO: Action(const.ACTION_ZERO, NoArgs, self._zero, side_effect=True),
            const.ACTION_TARE: Action(const.ACTION_TARE, NoArgs, self._tare, side_effect=True),
            const.ACTION_CLEAR_TARE: Action(const.ACTION_CLEAR_TARE, NoArgs, self._clear_tare, side_effect=True),
            const.ACTION_STATUS: Action(const.ACTION_STATUS, NoArgs, self._status),
        }

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    # Lifecycle ----------------------------------------------------------------------------
    @property
    def poll_interval(self) -> float | None:
        return self._poll_interval

    def open(self) -> None:
        self.close()
        self._scale = self._factory(self.config.driver, self.config.url, dict(self._driver_options))

    def close(self) -> None:
        scale, self._scale = self._scale, None
        if scale is not None:
            _close_quietly(scale)

    def poll(self) -> None:
        try:
            reading = self._require().weigh(stable=False, timeout=max(0.2, min(self._poll_interval, 2.0)))
        except ScaleOverload:
            self._overload, self._underload = True, False
            return
        except ScaleUnderload:
            self._overload, self._underload = False, True
            return
        self._overload = self._underload = False
        if reading.stable and self._differs(reading):
            self.emit(const.EVENT_WEIGHT, reading_json(reading))
            self._published = reading

    def status_data(self) -> dict[str, Any]:
        last = self._published
        return {
            "weight": kg(last.net) if last else None,
            "tare": kg(last.tare) if last else None,
            "stable": last.stable if last else None,
            "overload": self._overload,
            "underload": self._underload,
        }

    # Actions ----------------------------------------------------------------------------
    def _weigh(self, args: WeighArgs) -> dict[str, Any]:
        return reading_json(self._require().weigh(stable=args.stable, timeout=args.timeout))

    def _zero(self, args: NoArgs) -> dict[str, Any]:
        self._require().zero()
        return {}

    def _tare(self, args: NoArgs) -> dict[str, Any]:
        reading = self._require().tare()
        return {"tare": kg(reading.tare if reading.tare is not None else reading.net), **reading_json(reading)}

    def _clear_tare(self, args: NoArgs) -> dict[str, Any]:
        self._require().clear_tare()
        return {}

    def _status(self, args: NoArgs) -> dict[str, Any]:
        return self.status_data()

    # Internals ----------------------------------------------------------------------------
    def _require(self) -> Scale:
        if self._scale is None:
            raise DeviceUnavailable(f"scale {self.id!r} is not open")
        return self._scale

    def _differs(self, reading: WeightReading) -> bool:
        last = self._published
        if last is None:
            return True
        return abs(reading.net - last.net) > self._deadband or reading.tare != last.tare


def _close_quietly(scale: Scale) -> None:
    try:
        scale.close()
    except Exception as exc:
        log.debug("closing scale: %s", exc)


def _positive_float(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise DriverConfigError(f"option {key} must be a number, got {value!r}") from exc
    if number <= 0:
        raise DriverConfigError(f"option {key} must be > 0, got {value!r}")
    return number


def _decimal(options: Mapping[str, Any], key: str, default: Decimal) -> Decimal:
    value = options.get(key, default)
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise DriverConfigError(f"option {key} must be a number, got {value!r}") from exc
    if number < 0:
        raise DriverConfigError(f"option {key} must be >= 0, got {value!r}")
    return number
