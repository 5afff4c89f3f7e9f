"""Card payment terminals: the ``PaymentTerminal`` API (``base``) and its drivers.

``open_payment_terminal(driver, options)`` builds one from a device config::

    open_payment_terminal("upos", {"command": "sb_pilot", "workdir": "/opt/upos", "timeout": 180})
    open_payment_terminal("nexo", {"host": "10.0.0.5", "port": 4000, "poi_id": "POI1"})

Drivers are imported lazily, so a store without one family's dependencies still starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from drivers.errors import DriverConfigError
from drivers.payment.base import (
    OutcomeUnknown,
    PaymentError,
    PaymentResult,
    PaymentTerminal,
    ReconciliationResult,
    TerminalBusy,
    TerminalStatus,
)

REGISTRY: dict[str, str] = {
    "upos": "drivers.payment.upos:UposTerminal",
    "sberbank_upos": "drivers.payment.upos:UposTerminal",
    "nexo": "drivers.payment.nexo:NexoTerminal",
}


def open_payment_terminal(driver: str, options: Mapping[str, Any]) -> PaymentTerminal:
    """A configured (not yet opened) terminal; unknown driver or bad options → ``DriverConfigError``."""
    target = REGISTRY.get(driver)
    if target is None:
        raise DriverConfigError(f"Неизвестный драйвер платёжного терминала {driver!r}: есть {', '.join(REGISTRY)}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        terminal: PaymentTerminal = cls(**dict(options))
    except TypeError as exc:
        raise DriverConfigError(f"Неверные параметры драйвера {driver}: {exc}") from exc
    return terminal


__all__ = [
    "REGISTRY",
    "OutcomeUnknown",
    "PaymentError",
    "PaymentResult",
    "PaymentTerminal",
    "ReconciliationResult",
    "TerminalBusy",
    "TerminalStatus",
    "open_payment_terminal",
]
