"""Scale drivers behind one ``Scale`` API, chosen by name from the device config.

``SCALE_DRIVERS`` maps a config name to a constructor ``(url, **options) -> Scale``; other
families register theirs here ("massak", "shtrih_m5", "modbus"). Options are checked against
the constructor's keyword parameters so a typo in a store's config is a ``DriverConfigError``
naming the option, not a ``TypeError`` deep in the gateway.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from drivers.errors import DriverConfigError
from drivers.scale.base import Scale, ScaleInfo, ScaleOverload, ScaleUnderload, ScaleUnstable, WeightReading
from drivers.scale.massak import MassaKScale
from drivers.scale.modbus import ModbusScale
from drivers.scale.mtsics import MtSicsScale
from drivers.scale.shtrih_m5 import ShtrihM5Scale

SCALE_DRIVERS: dict[str, Callable[..., Scale]] = {
    "mtsics": MtSicsScale,
    "massak": MassaKScale,
    "modbus": ModbusScale,
    "shtrih_m5": ShtrihM5Scale,
}


def create_scale(driver: str, url: str, options: dict[str, object] | None = None) -> Scale:
    """Build a scale driver without opening it."""
    factory = SCALE_DRIVERS.get(driver)
    if factory is None:
        known = ", ".join(sorted(SCALE_DRIVERS))
        raise DriverConfigError(f"Неизвестный драйвер весов {driver!r}; доступны: {known}")
    options = dict(options or {})
    params = inspect.signature(factory).parameters
    accepted = {name for name, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise DriverConfigError(
            f"Драйвер весов {driver!r} не знает параметров: {', '.join(unknown)}; "
            f"допустимы: {', '.join(sorted(accepted)) or 'нет'}"
        )
    return factory(url, **options)


def open_scale(driver: str, url: str, options: dict[str, object] | None = None) -> Scale:
    """Build the driver named ``driver`` for ``url`` and open it (``DeviceUnavailable`` if
    the port cannot be opened)."""
    scale = create_scale(driver, url, options)
    scale.open()
    return scale


__all__ = [
    "SCALE_DRIVERS",
    "MtSicsScale",
    "Scale",
    "ScaleInfo",
    "ScaleOverload",
    "ScaleUnderload",
    "ScaleUnstable",
    "WeightReading",
    "create_scale",
    "open_scale",
]
