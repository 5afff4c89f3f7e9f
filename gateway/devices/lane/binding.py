"""Binds a checkout lane (``gateway.checkout.lane.Lane``) to the bus as a device of kind ``lane``.

Commands: ``open_shift {cashier}``, ``close_shift {cashier?}`` (Z report, terminal reconciliation,
totals compared), ``x_report``, ``cash_in``/``cash_out {amount, reason?, cashier?}`` (idempotent by
command_id), ``status``, and ``fiscalize`` — a receipt the cloud asks this store to make for a sale
not rung up at the lane (a delivery's full settlement with its prepayment offset). ``fiscalize``
goes through the same saga and the fiscal family's path as a lane sale; its operation id is derived
from the command_id, so a repeat or a crash never makes a second receipt.

The "driver" is the :class:`~gateway.checkout.service.CheckoutService`, passed as the factory by
the runtime; without a ``[checkout]`` table the lane is reported misconfigured.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from drivers.errors import DeviceUnavailable, DriverConfigError, DriverError
from gateway.checkout.base import CheckoutRefused
from gateway.checkout.lane import Lane
from gateway.config import DeviceConfig
from gateway.devices.base import Action, CommandContext, DeviceBinding, EmitFn, NoArgs, Outcome
from gateway.devices.lane import const
from gateway.errors import GatewayError
from gateway.journal import StoredReply
from protocols.bus import DeviceKind, ReplyCode
from protocols.bus.sales import VAT_KINDS
from protocols.fiscal import VatKind, resolve


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CashierArgs(_Args):
    name: str = Field(min_length=1, max_length=64)
    inn: str | None = Field(default=None, pattern=r"^([0-9]{10}|[0-9]{12})$")


class ShiftArgs(_Args):
    cashier: CashierArgs | None = None


class CashArgs(_Args):
    amount: StrictInt = Field(gt=0, le=10**11)
    reason: str = Field(default="", max_length=200)
    cashier: CashierArgs | None = None


class OrderItem(_Args):
    product_id: str = Field(default="order-item", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    name: str = Field(min_length=1, max_length=128)
    quantity: str = Field(pattern=r"^[0-9]{1,7}(\.[0-9]{1,3})?$")
    price: StrictInt = Field(ge=0)
    vat: str
    measure: Literal["piece", "kg"] = "piece"
    marking_code: str | None = None
    item_type: StrictInt = 1
    payment_method: StrictInt = 4


class OrderPayments(_Args):
    cash: StrictInt = Field(default=0, ge=0)
    electronic: StrictInt = Field(default=0, ge=0)
    prepayment: StrictInt = Field(default=0, ge=0)
    rrn: str | None = None


class FiscalizeArgs(_Args):
    """``fiscalize``: items and payments as the cloud settled them (kopecks)."""

    order_id: str = Field(min_length=1, max_length=64)
    items: list[OrderItem] = Field(min_length=1, max_length=100)
    payments: OrderPayments
    customer_contact: str | None = None
    cashier: CashierArgs | None = None


def operation_id(command_id: str) -> str:
    """The lane operation id of a ``fiscalize`` command (a valid fiscal command id, ≤ 64 chars)."""
    return "o" + hashlib.sha256(command_id.encode()).hexdigest()[:31]


class LaneBinding(DeviceBinding):
    kind = DeviceKind.LANE
    events = const.EVENTS

    def __init__(self, config: DeviceConfig, emit: EmitFn, factory: Any = None) -> None:
        super().__init__(config, emit, factory)
        make = getattr(factory, "make_lane", None)
        if make is None:
            raise DriverConfigError("checkout lanes need the [checkout] table in the gateway config")
        if config.driver != const.DRIVER:
            raise DriverConfigError(f"lane driver must be {const.DRIVER!r}, got {config.driver!r}")
        try:
            self.lane: Lane = make(config, emit)
        except GatewayError as exc:
            raise DriverConfigError(exc.message) from exc
        self._actions = {
            const.ACTION_OPEN_SHIFT: Action(const.ACTION_OPEN_SHIFT, ShiftArgs, self._open_shift, side_effect=True),
            const.ACTION_CLOSE_SHIFT: Action(const.ACTION_CLOSE_SHIFT, ShiftArgs, self._close_shift,
                                             side_effect=True),
            const.ACTION_X_REPORT: Action(const.ACTION_X_REPORT, NoArgs, self._x_report, side_effect=True),
            const.ACTION_CASH_IN: Action(const.ACTION_CASH_IN, CashArgs, self._cash_in, side_effect=True,
                                         context=True),
            const.ACTION_CASH_OUT: Action(const.ACTION_CASH_OUT, CashArgs, self._cash_out, side_effect=True,
                                          context=True),
            const.ACTION_STATUS: Action(const.ACTION_STATUS, NoArgs, self._status),
            const.ACTION_FISCALIZE: Action(const.ACTION_FISCALIZE, FiscalizeArgs, self._fiscalize,
                                           side_effect=True, context=True),
        }

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    # Lifecycle ------------------------------------------------------------------------------
    @property
    def poll_interval(self) -> float | None:
        return const.POLL_S

    def open(self) -> None:
        self.poll()

    def close(self) -> None:
        return None

    def poll(self) -> None:
        if self.lane.problem:
            raise DeviceUnavailable(self.lane.problem)

    def status_data(self) -> dict[str, Any]:
        return self.lane.status_data()

    # Actions --------------------------------------------------------------------------------
    def _open_shift(self, args: ShiftArgs) -> dict[str, Any]:
        return _run(lambda: self.lane.open_shift(_who(args.cashier)))

    def _close_shift(self, args: ShiftArgs) -> dict[str, Any]:
        return _run(lambda: self.lane.close_shift(_who(args.cashier)))

    def _x_report(self, args: NoArgs) -> dict[str, Any]:
        return _run(self.lane.x_report)

    def _cash_in(self, args: CashArgs, ctx: CommandContext) -> dict[str, Any]:
        return _run(lambda: self.lane.cash_move("in", args.amount, args.reason, _who(args.cashier),
                                                operation_id(ctx.command_id)))

    def _cash_out(self, args: CashArgs, ctx: CommandContext) -> dict[str, Any]:
        return _run(lambda: self.lane.cash_move("out", args.amount, args.reason, _who(args.cashier),
                                                operation_id(ctx.command_id)))

    def _status(self, args: NoArgs) -> dict[str, Any]:
        return self.lane.view()

    def _fiscalize(self, args: FiscalizeArgs, ctx: CommandContext) -> dict[str, Any]:
        for item in args.items:
            if item.vat not in VAT_KINDS:
                raise CheckoutRefused(f"Неизвестная ставка НДС «{item.vat}»")
        return _run(lambda: self.lane.fiscalize_order(operation_id(ctx.command_id), _order(args)))

    # Recovery -------------------------------------------------------------------------------
    def recover(self, entry: StoredReply) -> Outcome:
        """A lane command the gateway died in: the lane's own recovery finishes the operation."""
        self.lane.recovered.wait(600)
        op = self.lane.store.get(operation_id(entry.command_id)) if entry.action in (
            const.ACTION_FISCALIZE, const.ACTION_CASH_IN, const.ACTION_CASH_OUT) else None
        if op is None:
            return Outcome.failed(ReplyCode.INTERRUPTED, f"шлюз перезапустился во время {entry.action}; "
                                  "проверьте состояние кассы (status) и повторите при необходимости")
        if op.state == "completed":
            return Outcome.done(op.doc.get("event") or {"sale_id": op.id, "fiscal": op.doc.get("fiscal")})
        return Outcome.failed(ReplyCode.UNKNOWN_OUTCOME, f"операция {op.id} в состоянии {op.state}")


def _run(fn: Any) -> dict[str, Any]:
    """Lane refusals become ``failed`` replies with the Russian message (as driver errors do)."""
    try:
        result: dict[str, Any] = fn()
    except GatewayError as exc:
        raise DriverError(exc.message, code=exc.code) from exc
    return result


def _who(cashier: CashierArgs | None) -> dict[str, Any] | None:
    return cashier.model_dump() if cashier is not None else None


def _order(args: FiscalizeArgs) -> dict[str, Any]:
    """Lines for the event, items for the register, payments as settled."""
    lines, items = [], []
    for n, it in enumerate(args.items, start=1):
        qty = Decimal(it.quantity)
        amount = int((Decimal(it.price) * qty).quantize(Decimal(1), ROUND_HALF_UP))
        lines.append({
            "line_no": n, "product_id": it.product_id, "name": it.name, "quantity": it.quantity,
            "measure": it.measure, "price": it.price, "amount": amount, "vat": it.vat,
            "vat_rate": resolve(VatKind(it.vat), dt.date.today()).label,
            "marking_codes": [it.marking_code] if it.marking_code else [], "source": "order",
        })
        item: dict[str, Any] = {"name": it.name, "quantity": it.quantity, "price": it.price, "vat": it.vat,
                                "measure": 11 if it.measure == "kg" else 0, "item_type": it.item_type,
                                "payment_method": it.payment_method}
        if it.marking_code:
            item["item_type"] = 33
            item["marking"] = {"code": it.marking_code}
        items.append(item)
    p = args.payments
    payments = [x for x in (
        {"type": "cash", "amount": p.cash},
        {"type": "card", "amount": p.electronic, "rrn": p.rrn},
        {"type": "prepayment", "amount": p.prepayment},
    ) if x["amount"]]
    return {"order_id": args.order_id, "lines": lines, "payments": payments, "receipt_items": items,
            "customer_contact": args.customer_contact,
            "cashier": args.cashier.model_dump() if args.cashier else None}
