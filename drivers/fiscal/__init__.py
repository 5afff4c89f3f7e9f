"""Fiscal registers: the ``FiscalRegister`` API, the Shtrih-M driver and a factory by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from drivers.errors import DriverConfigError
from drivers.fiscal.atol import AtolFiscalRegister
from drivers.fiscal.base import FiscalRegister, FiscalRejected, MarkingCheck, RegisterStatus
from drivers.fiscal.shtrih import ShtrihFiscalRegister

DRIVERS: dict[str, Callable[..., FiscalRegister]] = {
    "shtrih": ShtrihFiscalRegister,
    "atol": AtolFiscalRegister,
}
"""Driver name in the device config → constructor ``(url, **options)``."""


def open_fiscal_register(driver: str, url: str, options: Mapping[str, Any] | None = None) -> FiscalRegister:
    """Build (not yet open) the driver named in a device config."""
    factory = DRIVERS.get(driver)
    if factory is None:
        raise DriverConfigError(f"Неизвестный драйвер ККТ {driver!r}; есть: {', '.join(sorted(DRIVERS))}")
    try:
        return factory(url, **dict(options or {}))
    except TypeError as exc:
        raise DriverConfigError(f"Неверные параметры драйвера ККТ {driver!r}: {exc}") from exc


__all__ = [
    "DRIVERS",
    "AtolFiscalRegister",
    "FiscalRegister",
    "FiscalRejected",
    "MarkingCheck",
    "RegisterStatus",
    "ShtrihFiscalRegister",
    "open_fiscal_register",
]
