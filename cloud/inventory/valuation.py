"""Valuation of one (product, warehouse) running state, movement by movement. Pure: no I/O.

Quantities are integer thousandths, values integer kopecks, so every step is exact and the
stock value always equals the sum of the movements' values (``value + correction``).

* **Moving average**: an outgoing takes ``value × taken / qty`` (all of it when it empties the stock).
* **FIFO**: layers ``[qty, value, source_row]`` in arrival order; an outgoing consumes from the
  front (a supplier return consumes from its own receipt's layer first).
* **Fixed-value outgoing** (a supplier return at the receipt's cost): the movement carries the
  fixed value; the stock leaves at its valuation value and the difference is ``correction``, so
  the remaining stock's cost never goes negative (Odoo #205668, #187169).
* **Negative stock** (only when the tenant allows it): the missing part leaves at the last known
  unit cost; when goods arrive, the deficit is revalued at the incoming cost and the difference
  is booked as ``correction`` on the incoming row (the "cost correction once stock arrives").
* At zero quantity the value is exactly zero; with non-negative quantity it is never negative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cloud.catalog.units import mul_div


class Method(StrEnum):
    FIFO = "fifo"
    AVERAGE = "average"


@dataclass
class State:
    """Running state after a movement. ``rate`` is the last known unit cost as (value, qty)."""

    qty: int = 0
    value: int = 0
    layers: list[list[int]] = field(default_factory=list)
    rate: tuple[int, int] = (0, 0)

    def to_json(self, method: Method) -> dict[str, Any]:
        data: dict[str, Any] = {"r": list(self.rate)}
        if method is Method.FIFO:
            data["l"] = self.layers
        return data

    @classmethod
    def from_row(cls, qty: int, value: int, data: dict[str, Any] | None) -> State:
        data = data or {}
        rate = data.get("r") or (0, 0)
        return cls(qty, value, [list(x) for x in data.get("l", [])], (int(rate[0]), int(rate[1])))

    def copy(self) -> State:
        return State(self.qty, self.value, [list(x) for x in self.layers], self.rate)


@dataclass(frozen=True)
class Step:
    value: int
    """The movement's own value (signed: negative for outgoing)."""
    correction: int
    """Value adjustment booked with it (deficit revaluation, fixed-cost difference)."""


def _unit_value(rate: tuple[int, int], qty: int) -> int:
    value, per = rate
    return mul_div(value, qty, per) if per > 0 else 0


def _current_rate(state: State) -> tuple[int, int]:
    return (state.value, state.qty) if state.qty > 0 else state.rate


def apply(state: State, method: Method, qty: int, fixed_value: int | None = None,
          source_row: int | None = None, row_id: int = 0) -> tuple[State, Step]:
    """Apply a movement of ``qty`` (signed thousandths) to ``state``; returns the new state and values.

    ``fixed_value`` (a magnitude, >= 0) is the value of a receipt/transfer-in, or the fixed value
    of a fixed-cost outgoing; ``None`` means "at cost" (valuation decides).
    """
    if fixed_value is not None and fixed_value < 0:
        raise ValueError("fixed value must be >= 0")
    new = state.copy()
    if qty > 0:
        value = fixed_value if fixed_value is not None else _unit_value(_current_rate(state), qty)
        new.qty = state.qty + qty
        if state.qty >= 0:
            new.value = state.value + value
            if method is Method.FIFO:
                new.layers.append([qty, value, row_id])
        else:  # filling a deficit: what is left (or still missing) is valued at the incoming cost
            new.value = mul_div(value, new.qty, qty)
            if method is Method.FIFO:
                new.layers = [[new.qty, new.value, row_id]] if new.qty != 0 else []
        new.rate = (new.value, new.qty) if new.qty > 0 else (value, qty)
        return new, Step(value, new.value - state.value - value)
    if qty == 0:
        if fixed_value:
            raise ValueError("a value without a quantity")
        return new, Step(0, 0)
    take = -qty
    natural = _consume(new, method, take, source_row)
    new.qty = state.qty - take
    new.value = state.value - natural
    if new.qty > 0:
        new.rate = (new.value, new.qty)
    if fixed_value is None:
        return new, Step(-natural, 0)
    return new, Step(-fixed_value, fixed_value - natural)


def _consume(state: State, method: Method, take: int, source_row: int | None) -> int:
    """Remove ``take`` from ``state`` (layers only; qty/value set by the caller); returns its value."""
    rate = _current_rate(state)
    if method is Method.AVERAGE:
        available = max(state.qty, 0)
        if available >= take:
            return state.value if take == available else mul_div(state.value, take, available)
        taken = state.value if available > 0 else 0
        return taken + _unit_value(rate, take - available)
    total = 0
    remaining = take
    order = list(range(len(state.layers)))
    if source_row is not None:
        order.sort(key=lambda i: state.layers[i][2] != source_row)
    for i in order:
        layer = state.layers[i]
        if remaining == 0 or layer[0] <= 0:
            continue
        part = min(remaining, layer[0])
        part_value = layer[1] if part == layer[0] else mul_div(layer[1], part, layer[0])
        layer[0] -= part
        layer[1] -= part_value
        total += part_value
        remaining -= part
    kept = [layer for layer in state.layers if layer[0] != 0]
    if remaining:
        deficit_value = _unit_value(rate, remaining)
        total += deficit_value
        negative = [layer for layer in kept if layer[0] < 0]
        if negative:
            negative[0][0] -= remaining
            negative[0][1] -= deficit_value
        else:
            kept.append([-remaining, -deficit_value, 0])
    state.layers[:] = kept
    return total
