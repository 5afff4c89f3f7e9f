"""A checkout lane: the facade the cashier page, the bus and the lane's scanner talk to.

One :class:`Lane` per ``kind = "lane"`` device. It drives the devices named in its options through
:class:`~gateway.checkout.calls.DeviceCalls` (the same journal + worker + recovery path as a bus
command), keeps its operations in :class:`~gateway.checkout.store.CheckoutStore` and its sales'
states in :mod:`gateway.checkout.machine`. Every request takes the lane's lock, then hands over
to the part that does it:

========================================  ===============================================================
:mod:`gateway.checkout.saga`              the sale saga: lines, payment, receipt, cancel, give-up (its
                                          module doc has the steps, the ids and the crash points)
:mod:`gateway.checkout.returns`           returns by the original receipt (refund, then the receipt step)
:mod:`gateway.checkout.shifts`            open / close the shift, X report, Z + reconciliation, totals
:mod:`gateway.checkout.cash`              cash in / out
:mod:`gateway.checkout.slips`             card slips and receipt copies on the lane's receipt printer
:mod:`gateway.checkout.recovery`          at start: every operation not final moved forward
:mod:`gateway.checkout.views`             an operation on the page and on the bus (pure)
========================================  ===============================================================

The parts share the lane's record (shift, cashier, the sale on screen), its checks (ready,
cashier, shift), its page (``changed``, ``progress``) and its outbox (``emit_event``): the
methods under "The parts' tools" below, always called with the lock held.

Scans from the lane's ``scanner`` device reach :meth:`Lane.scan` inside the gateway process
(:mod:`gateway.checkout.scans`), as the cashier page's keyboard wedge does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.checkout import cash, recovery, returns, saga, shifts
from gateway.checkout.base import CheckoutRefused, new_id
from gateway.checkout.calls import DeviceCalls
from gateway.checkout.machine import FINAL, SaleState
from gateway.checkout.prices import PriceStore
from gateway.checkout.slips import KIND_SLIP, SlipPrinter
from gateway.checkout.store import KIND_SALE, CheckoutStore, Op
from gateway.checkout.views import event_of, sale_view
from protocols.barcodes import WeightBarcodeFormat

log = logging.getLogger(__name__)

S = SaleState

EmitFn = Callable[[str, dict[str, Any]], None]
Listener = Callable[[str, dict[str, Any]], None]


class LaneSettings(BaseModel):
    """A lane device's options: which devices it drives (by device id) and the taxation system."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fiscal: str
    payment: str | None = None
    scanner: str | None = None
    scale: str | None = None
    printer: str | None = None
    taxation: int = Field(default=1, description="1055: 1 ОСН, 2 УСН доход, 4 УСН доход-расход, 16 ЕСХН, 32 патент")


class Lane:
    """One lane. Every request below takes the lane's lock; the parts' tools are called under it."""

    def __init__(
        self, lane_id: str, settings: LaneSettings, store: CheckoutStore, prices: PriceStore, calls: DeviceCalls,
        emit: EmitFn, *, weight_formats: tuple[WeightBarcodeFormat, ...],
    ) -> None:
        self.id = lane_id
        self.settings = settings
        self.store = store
        self.prices = prices
        self.calls = calls
        self.emit = emit
        self.weight_formats = weight_formats
        self.lock = threading.RLock()
        self.listeners: list[Listener] = []
        self.recovered = threading.Event()
        self.problem = ""
        # The page may get a view from a GET after a newer one came over the WebSocket: each view
        # carries (boot, rev) and the page never renders one older than what it shows.
        self.boot = new_id()
        self.rev = 0
        self.slips = SlipPrinter(lane_id, settings.printer, settings.payment, store, calls)

    # What the page and the device status show ---------------------------------------------------
    def login(self, cashier: dict[str, Any]) -> None:
        with self.lock:
            self.update_record(cashier=cashier)
        self.changed()

    def current(self) -> Op | None:
        """The operation on the lane's screen (a sale or a return, final or not), if any."""
        sale_id = self.record().get("current_sale")
        return self.store.get(sale_id) if sale_id else None

    def view(self) -> dict[str, Any]:
        """What the cashier page and the device status show (never blocks on the lock).

        ``rev`` is read before the state, so a view is never older than its ``rev`` says.
        """
        rev = self.rev
        record = self.record()
        sale = self.current()
        return {
            "lane": self.id,
            "shift": {"state": record.get("shift_state", "closed"), "id": record.get("shift_id"),
                      "number": record.get("shift_number")},
            "cashier": record.get("cashier"),
            "sale": self.view_of(sale) if sale is not None else None,
            "recovering": not self.recovered.is_set(),
            "problem": self.problem,
            "prices_version": self.prices.version,
            "boot": self.boot,
            "rev": rev,
        }

    def status_data(self) -> dict[str, Any]:
        v = self.view()
        sale = v["sale"]
        return {
            "shift": v["shift"]["state"], "shift_number": v["shift"]["number"],
            "cashier": (v["cashier"] or {}).get("name"),
            "current_sale": {"sale_id": sale["sale_id"], "state": sale["state"], "total": sale["total"]}
            if sale else None,
            "recovering": v["recovering"], "prices_version": v["prices_version"],
        }

    def announce(self, message: dict[str, Any]) -> None:
        """Push ``message`` to the lane's listeners (the page): a hardware scan's result, say."""
        for listener in list(self.listeners):
            try:
                listener(self.id, message)
            except Exception:
                log.exception("lane %s: listener failed", self.id)

    # Shift and cash ------------------------------------------------------------------------------
    def open_shift(self, cashier: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.lock:
            return shifts.open_shift(self, cashier)

    def close_shift(self, cashier: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.lock:
            return shifts.close_shift(self, cashier)

    def x_report(self) -> dict[str, Any]:
        with self.lock:
            return shifts.x_report(self)

    def cash_move(self, direction: str, amount: int, reason: str = "", cashier: dict[str, Any] | None = None,
                  move_id: str | None = None) -> dict[str, Any]:
        with self.lock:
            return cash.cash_move(self, direction, amount, reason, cashier, move_id)

    # Sale ------------------------------------------------------------------------------------------
    def scan(self, code: str) -> dict[str, Any]:
        """A barcode from the scanner: EAN → product; weight label → PLU and weight; marking code."""
        with self.lock:
            return saga.scan(self, code)

    def weigh(self, plu: int) -> dict[str, Any]:
        """A weighed item: the PLU typed by the cashier, the weight from the lane's scale."""
        with self.lock:
            return saga.weigh(self, plu)

    def remove_line(self, line_no: int) -> dict[str, Any]:
        with self.lock:
            return saga.remove_line(self, line_no)

    def cancel_sale(self, reason: str = "отменён кассиром") -> dict[str, Any]:
        with self.lock:
            return saga.cancel_sale(self, reason)

    def pay(self, cash: int = 0, card: int = 0) -> dict[str, Any]:
        """Take payment (cash, card or both), then print the receipt (:mod:`gateway.checkout.saga`)."""
        with self.lock:
            return saga.pay(self, cash, card)

    def retry_receipt(self) -> dict[str, Any]:
        with self.lock:
            return saga.retry_receipt(self)

    def give_up(self) -> dict[str, Any]:
        """The receipt cannot be printed and the cashier gives up: void the card charge, hand back cash."""
        with self.lock:
            return saga.give_up(self)

    def new_sale(self) -> dict[str, Any]:
        """Clear a finished sale off the screen."""
        with self.lock:
            sale = self.current()
            if sale is not None and S(sale.state) not in FINAL:
                raise CheckoutRefused("Текущий чек не завершён")
            self.update_record(current_sale=None)
            self.changed()
            return self.view()

    def reprint_slip(self, sale_id: str) -> dict[str, Any]:
        """The card slip of a completed sale or return again (a new print, marked as a copy if one printed)."""
        with self.lock:
            self.require_ready()
            self.slips.reprint(self._lane_op(sale_id), self.progress)
            self.changed()
            return self.view_of(self._lane_op(sale_id))

    def print_copy(self, sale_id: str) -> dict[str, Any]:
        """A non-fiscal copy of a completed receipt on the lane's receipt printer."""
        with self.lock:
            self.require_ready()
            op = self._lane_op(sale_id)
            self.slips.copy(op, self.progress)
            return self.view_of(op)

    # Returns and receipts the cloud asks for -------------------------------------------------------
    def sales(self, limit: int = 20) -> list[dict[str, Any]]:
        """The lane's latest completed sales (what a return can be made by)."""
        return [sale_view(o) for o in self.store.recent(self.id, KIND_SALE, limit) if o.state == S.COMPLETED]

    def return_sale(self, sale_id: str, lines: list[dict[str, Any]] | None = None,
                    return_id: str | None = None) -> dict[str, Any]:
        """A return by the original receipt: ``lines`` [{line_no, quantity}] (all when None)."""
        with self.lock:
            return returns.return_sale(self, sale_id, lines, return_id)

    def fiscalize_order(self, op_id: str, args: dict[str, Any]) -> dict[str, Any]:
        """A receipt for a sale not made at this lane (a delivery's settlement with its prepayment)."""
        with self.lock:
            return saga.fiscalize_order(self, op_id, args)

    # Recovery -----------------------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Move every unfinished operation forward (:mod:`gateway.checkout.recovery`); returns the ids it touched."""
        with self.lock:
            touched = recovery.recover(self)
            self.recovered.set()
        self.changed()
        return touched

    # The parts' tools (called with the lock held) ----------------------------------------------------
    def record(self) -> dict[str, Any]:
        """The lane's own record in the store: shift state, id and number, cashier, the sale on screen."""
        return self.store.lane(self.id)

    def update_record(self, **changes: Any) -> None:
        self.store.set_lane(self.id, {**self.record(), **changes})

    def require_ready(self) -> None:
        if not self.recovered.is_set():
            raise CheckoutRefused("Касса восстанавливается после перезапуска: подождите")

    def require_cashier(self, given: dict[str, Any] | None = None) -> dict[str, Any]:
        """The cashier ``given`` (a cloud command's) or the one logged in, as receipts name them."""
        cashier = given or self.record().get("cashier")
        if not cashier:
            raise CheckoutRefused("Кассир не вошёл в систему")
        return {"name": cashier["name"], "inn": cashier.get("inn")}

    def require_shift(self) -> dict[str, Any]:
        """The lane's record, when its shift is open."""
        record = self.record()
        if record.get("shift_state") != "open":
            raise CheckoutRefused("Смена закрыта: откройте смену")
        return record

    def changed(self, extra: dict[str, Any] | None = None) -> None:
        """Show the lane as it is now on the page (a new ``rev``: see :meth:`view`)."""
        self.rev += 1
        self.announce({"type": "lane", **self.view(), **(extra or {})})

    def progress(self, stage: str, message: str) -> None:
        """A device's progress on the page (``waiting for card``, ``Печать чека…``)."""
        self.announce({"type": "progress", "stage": stage, "message": message})

    def view_of(self, op: Op) -> dict[str, Any]:
        """The sale as the page shows it, with its card slip's fate (``slip``: None when there is none)."""
        return {**sale_view(op), "slip": self.slips.view(op)}

    def emit_event(self, op: Op) -> None:
        """Store the operation's event in the outbox, then record that it is stored."""
        found = event_of(op, self.id)
        if found is not None:
            self.emit(*found)
        op.event_pending = False
        self.store.save(op, "event_stored", {"event": found[0] if found else None})

    def resume(self, op: Op) -> dict[str, Any]:
        """An operation a request names again (a retried command): as it ended, or moved forward."""
        return recovery.resume(self, op)

    def _lane_op(self, op_id: str) -> Op:
        op = self.store.get(op_id)
        if op is None or op.lane != self.id or op.kind == KIND_SLIP:
            raise CheckoutRefused(f"Чек {op_id} не найден на кассе {self.id}")
        return op
