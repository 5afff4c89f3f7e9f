"""The one ``Scale`` API every scale driver implements (MT-SICS, Massa-K, Shtrih M5, Modbus).

Weights are ``Decimal`` kilograms with 3 decimals. Overload, underload and an unstable
reading are typed results the caller must handle, not silent zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, runtime_checkable

from drivers.errors import DeviceRejected, DriverError

KG = Decimal("0.001")


@dataclass(frozen=True, slots=True)
class WeightReading:
    """One reading. ``net`` is what is on the platform minus the tare, in kg."""

    net: Decimal
    stable: bool
    unit: str = "kg"
    tare: Decimal | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "net": str(self.net),
            "stable": self.stable,
            "unit": self.unit,
            "tare": None if self.tare is None else str(self.tare),
        }


@dataclass(frozen=True, slots=True)
class ScaleInfo:
    model: str = ""
    serial: str = ""
    firmware: str = ""
    capacity: Decimal | None = None
    extra: dict[str, str] = field(default_factory=dict)


class ScaleError(DriverError):
    code = "scale_error"


class ScaleOverload(ScaleError, DeviceRejected):
    """Load above the capacity: the scale cannot show a weight."""

    code = "overload"


class ScaleUnderload(ScaleError, DeviceRejected):
    """Load below zero range (platform lifted, zero drifted)."""

    code = "underload"


class ScaleUnstable(ScaleError):
    """No stable weight within the timeout; ``last`` is the last dynamic reading, if any."""

    code = "unstable"

    def __init__(self, message: str, last: WeightReading | None = None) -> None:
        super().__init__(message)
        self.last = last


@runtime_checkable
class Scale(Protocol):
    """What the gateway needs from any scale. Methods block; one caller at a time."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def info(self) -> ScaleInfo: ...

    def weigh(self, *, stable: bool = True, timeout: float = 3.0) -> WeightReading:
        """Stable weight (or the immediate one with ``stable=False``)."""
        ...

    def zero(self) -> None: ...

    def tare(self) -> WeightReading:
        """Tare the current load; returns the tare weight (``net`` = 0)."""
        ...

    def clear_tare(self) -> None: ...
