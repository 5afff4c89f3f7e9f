"""What every part of a checkout lane shares: the refusal, the outcomes that prove nothing, ids, time, money.

The lane's parts (:mod:`~gateway.checkout.saga`, :mod:`~gateway.checkout.shifts`,
:mod:`~gateway.checkout.cash`, :mod:`~gateway.checkout.returns`, :mod:`~gateway.checkout.recovery`)
import these from here: :mod:`gateway.checkout.lane`, the facade, imports the parts.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from gateway.checkout.calls import CODE_PENDING
from gateway.errors import GatewayError
from protocols.bus import uuid7

UNKNOWN_CODES = frozenset({"unknown_outcome", CODE_PENDING})
"""Outcomes that prove nothing: the device may or may not have done it."""

KG = Decimal("0.001")


class CheckoutRefused(GatewayError):
    """The cashier's (or the cloud's) request cannot be done now; the message is Russian."""

    code = "checkout_refused"


def new_id() -> str:
    return uuid7().hex


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def amount(price: int, qty: Decimal) -> int:
    """A line's amount in kopecks: price × quantity, half up."""
    return int((Decimal(price) * qty).quantize(Decimal(1), ROUND_HALF_UP))


def rub_amount(kop: int) -> str:
    """Kopecks as printed on paper: ``1234,50``, ``-0,50``."""
    sign = "-" if kop < 0 else ""
    kop = abs(kop)
    return f"{sign}{kop // 100},{kop % 100:02d}"


def rub(kop: int) -> str:
    """Kopecks as the cashier reads them in a message: ``1234,50 ₽``."""
    return f"{rub_amount(kop)} ₽"


def fiscal_cashier(who: dict[str, Any]) -> dict[str, Any]:
    """The cashier as the fiscal register's commands take it (no empty INN)."""
    return {k: v for k, v in {"name": who["name"], "inn": who.get("inn")}.items() if v is not None}
