"""Label scales (scales that print labels and keep a PLU table): CAS CL series.

``LABEL_SCALE_DRIVERS`` maps a config name to a constructor ``(url, **options) -> LabelScale``;
``open_label_scale(driver, url, options)`` builds the named one and opens it. Options are
checked against the constructor's keyword parameters so a typo in a store's config is a
``DriverConfigError`` naming the option, not a ``TypeError`` deep in the gateway.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping

from drivers.errors import DriverConfigError
from drivers.label_scale.cas import LabelScale, LabelScaleRejected, PluResult

LABEL_SCALE_DRIVERS: dict[str, Callable[..., LabelScale]] = {
    "cas": LabelScale,
}


def create_label_scale(driver: str, url: str, options: Mapping[str, object] | None = None) -> LabelScale:
    """Build a label-scale driver without opening it."""
    factory = LABEL_SCALE_DRIVERS.get(driver)
    if factory is None:
        known = ", ".join(sorted(LABEL_SCALE_DRIVERS))
        raise DriverConfigError(f"Неизвестный драйвер весов с печатью этикеток {driver!r}; доступны: {known}")
    opts = dict(options or {})
    params = inspect.signature(factory).parameters
    accepted = {name for name, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(opts) - accepted)
    if unknown:
        raise DriverConfigError(
            f"Драйвер весов с печатью этикеток {driver!r} не знает параметров: {', '.join(unknown)}; "
            f"допустимы: {', '.join(sorted(accepted)) or 'нет'}"
        )
    return factory(url, **opts)


def open_label_scale(driver: str, url: str, options: Mapping[str, object] | None = None) -> LabelScale:
    """Build the driver named ``driver`` for ``url`` and open it (``DeviceUnavailable`` if the
    port cannot be opened)."""
    scale = create_label_scale(driver, url, options)
    scale.open()
    return scale


__all__ = [
    "LABEL_SCALE_DRIVERS",
    "LabelScale",
    "LabelScaleRejected",
    "PluResult",
    "create_label_scale",
    "open_label_scale",
]
