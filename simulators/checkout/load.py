"""A scripted cashier for load: ``sales`` sales of random baskets from the given barcodes, paid by
card, cash or both (seeded), one after another; returns what each sale ended as."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from simulators.checkout.client import CashierClient, CheckoutRefused


@dataclass
class LoadReport:
    completed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        n = len(self.completed)
        return {"completed": n, "refused": len(self.refused), "seconds": round(self.seconds, 2),
                "sales_per_minute": round(60 * n / self.seconds, 1) if self.seconds else 0.0}


def basket(rng: random.Random, barcodes: list[str], max_items: int = 4) -> list[str]:
    return [rng.choice(barcodes) for _ in range(rng.randint(1, max_items))]


def tender(rng: random.Random, total: int) -> dict[str, int]:
    kind = rng.choice(("card", "card", "cash", "mixed"))
    if kind == "card":
        return {"card": total}
    if kind == "cash":
        return {"cash": (total // 10_000 + 1) * 10_000}  # a round banknote amount: change is given
    part = total // 2
    return {"cash": part, "card": total - part}


def run(client: CashierClient, barcodes: list[str], *, sales: int, seed: int = 1) -> LoadReport:
    rng = random.Random(seed)
    report = LoadReport()
    started = time.monotonic()
    for _ in range(sales):
        try:
            sale: dict[str, Any] = {}
            for code in basket(rng, barcodes):
                sale = client.scan(code)
            done = client.pay(**tender(rng, sale["total"]))
            report.completed.append(done["sale_id"])
        except CheckoutRefused as exc:
            report.refused.append(exc.detail)
    report.seconds = time.monotonic() - started
    return report
