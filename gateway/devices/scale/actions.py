"""Argument schemas of scale actions and how readings become JSON.

Weights leave the gateway as strings of ``Decimal`` kilograms with exactly 3 decimals
(``"1.250"``): a float would turn 0.1 kg into 0.1000000000000000055 somewhere downstream.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from drivers.scale.base import WeightReading
from gateway.devices.scale.const import DEFAULT_WEIGH_TIMEOUT_S, KG, MAX_WEIGH_TIMEOUT_S


class WeighArgs(BaseModel):
    """``weigh``: a stable weight (default) or the immediate one; waits up to ``timeout`` s."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stable: bool = True
    timeout: float = Field(default=DEFAULT_WEIGH_TIMEOUT_S, gt=0, le=MAX_WEIGH_TIMEOUT_S)


def kg(value: Decimal | None) -> str | None:
    """``Decimal`` kg → ``"1.250"``."""
    return None if value is None else str(Decimal(value).quantize(KG))


def reading_json(reading: WeightReading) -> dict[str, Any]:
    return {"net": kg(reading.net), "stable": reading.stable, "unit": reading.unit, "tare": kg(reading.tare)}
