"""A checkout lane and its sale saga: every step journaled under the sale's id before its effect.

One :class:`Lane` per ``kind = "lane"`` device. It drives the devices named in its options through
:class:`~gateway.checkout.calls.DeviceCalls` (the same journal + worker + recovery path as a bus
command), keeps its sales in :class:`~gateway.checkout.store.CheckoutStore` and its state machine
in :mod:`gateway.checkout.machine`.

Ids. A sale id is a UUIDv7 in hex (32 characters). Under it: the fiscal receipt's command id *is*
the sale id (the fiscal family's attempt store pins the receipt to it); card attempts are
``{sale}.p{n}`` (the terminal's operation id, ``ORDER=`` on the slip and control tape); the void
of a charge is journaled as ``{sale}.v{n}``. Returns use their own id the same way.

A card sale, step by step (crash points, ``VITRINA_CRASHPOINT``, in the order met):

1. scan → line saved (``add_line``) ...................................... ``lane.after_lines``
2. ``pay`` saved: state ``payment_pending`` with the card operation id
3. journal ``{sale}.p1`` running → the terminal charges ........ (``payment.*`` crash points)
4. the charge is known, not yet saved ........................ ``lane.after_charge``
5. ``charged`` saved: state ``paid`` with RRN / auth code ....... ``lane.after_charge_saved``
6. ``fiscalize`` saved: state ``fiscal_pending`` with the receipt's exact args
7. journal ``{sale}`` running → the register prints .............. (``fiscal.*`` crash points)
8. the receipt is known, not yet saved ......................... ``lane.after_receipt``
9. ``fiscalized`` saved (``completed``, event pending) → the card slip planned (a card payment and
   a ``printer``) → ``sale_completed`` into the outbox → ``event_stored`` saved ... ``lane.before_reply``
10. the card slip printed on the lane's receipt printer: at most once, and a printer fault never
    fails the sale (:mod:`gateway.checkout.slips`, its own steps and crash points)

Scans from the lane's ``scanner`` device reach :meth:`Lane.scan` inside the gateway process
(:mod:`gateway.checkout.scans`), as the cashier page's keyboard wedge does.

Recovery (``recover``, at start, before the cashier can touch the lane) for every operation not
final: ``payment_pending`` → the journal's answer for the card operation, which the payment
family's own recovery got from the terminal (``find``): approved → ``paid`` and on to the
receipt; proved not charged → back to ``lines`` (the cashier takes payment again); unknown →
``needs_attention``. Recovery never starts a charge. ``paid``/``fiscal_pending`` → the receipt
under the sale id: the fiscal family finds it in the FN or makes it once. ``refund_pending`` →
the void again (idempotent). A final operation whose event was not stored → stored now (and its
card slip planned). A slip still ``printing`` → printed under the same id: the journal decides.

Policy (BRIEF: never charged without a receipt, never a receipt without payment): the receipt is
attempted only after every payment is settled; when it cannot be printed (paper out, register
offline) the sale stays ``fiscal_pending`` and the cashier retries; if the cashier gives up, the
card charge is voided on the terminal and the sale ends ``cancelled_refunded`` (cash is handed
back). Giving up is refused while the register's outcome is unknown: the FN must be read first.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.checkout.calls import CODE_NOT_STARTED, CODE_PENDING, DeviceCalls
from gateway.checkout.machine import FINAL, IllegalTransition, SaleState, step
from gateway.checkout.prices import PriceStore
from gateway.checkout.slips import KIND_SLIP, SLIP_FINAL, SlipPrinter
from gateway.checkout.store import (
    KIND_CASH,
    KIND_FISCALIZE,
    KIND_RETURN,
    KIND_SALE,
    KIND_SHIFT_CLOSE,
    KIND_SHIFT_OPEN,
    CheckoutStore,
    Op,
)
from gateway.crashpoints import crashpoint
from gateway.devices.base import Outcome
from gateway.errors import GatewayError
from protocols.barcodes import (
    MarkingCode,
    ProductBarcode,
    UnknownBarcode,
    WeightBarcodeFormat,
    WeightLabel,
    classify,
)
from protocols.bus import ReplyStatus, uuid7
from protocols.bus import sales as ev
from protocols.fiscal import VatKind, resolve

log = logging.getLogger(__name__)

S = SaleState

CRASH_AFTER_LINES = "lane.after_lines"
CRASH_AFTER_CHARGE = "lane.after_charge"
CRASH_AFTER_CHARGE_SAVED = "lane.after_charge_saved"
CRASH_AFTER_RECEIPT = "lane.after_receipt"
CRASH_BEFORE_REPLY = "lane.before_reply"
CRASH_POINTS = (CRASH_AFTER_LINES, CRASH_AFTER_CHARGE, CRASH_AFTER_CHARGE_SAVED, CRASH_AFTER_RECEIPT,
                CRASH_BEFORE_REPLY)

UNKNOWN_CODES = frozenset({"unknown_outcome", CODE_PENDING})
"""Outcomes that prove nothing: the device may or may not have done it."""

EmitFn = Callable[[str, dict[str, Any]], None]
Listener = Callable[[str, dict[str, Any]], None]
KG = Decimal("0.001")


class CheckoutRefused(GatewayError):
    """The cashier's (or the cloud's) request cannot be done now; the message is Russian."""

    code = "checkout_refused"


class LaneSettings(BaseModel):
    """A lane device's options: which devices it drives (by device id) and the taxation system."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fiscal: str
    payment: str | None = None
    scanner: str | None = None
    scale: str | None = None
    printer: str | None = None
    taxation: int = Field(default=1, description="1055: 1 ОСН, 2 УСН доход, 4 УСН доход-расход, 16 ЕСХН, 32 патент")


def new_id() -> str:
    return uuid7().hex


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class Lane:
    """The saga of one lane. Every public method is serialised by the lane's lock."""

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
        self.slips = SlipPrinter(lane_id, settings.printer, settings.payment, store, calls)

    # Lane state ------------------------------------------------------------------------------
    def _lane(self) -> dict[str, Any]:
        return self.store.lane(self.id)

    def _set_lane(self, **changes: Any) -> None:
        doc = {**self._lane(), **changes}
        self.store.set_lane(self.id, doc)

    def login(self, cashier: dict[str, Any]) -> None:
        with self.lock:
            self._set_lane(cashier=cashier)
        self._changed()

    def current(self) -> Op | None:
        sale_id = self._lane().get("current_sale")
        return self.store.get(sale_id) if sale_id else None

    def view(self) -> dict[str, Any]:
        """What the cashier page and the device status show (never blocks on the lock)."""
        lane = self._lane()
        sale = self.current()
        return {
            "lane": self.id,
            "shift": {"state": lane.get("shift_state", "closed"), "id": lane.get("shift_id"),
                      "number": lane.get("shift_number")},
            "cashier": lane.get("cashier"),
            "sale": self._view_of(sale) if sale is not None else None,
            "recovering": not self.recovered.is_set(),
            "problem": self.problem,
            "prices_version": self.prices.version,
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

    def _view_of(self, op: Op) -> dict[str, Any]:
        """The sale as the page shows it, with its card slip's fate (``slip``: None when there is none)."""
        return {**_sale_view(op), "slip": self.slips.view(op)}

    def announce(self, message: dict[str, Any]) -> None:
        """Push ``message`` to the lane's listeners (the page): a hardware scan's result, say."""
        for listener in list(self.listeners):
            try:
                listener(self.id, message)
            except Exception:
                log.exception("lane %s: listener failed", self.id)

    def _changed(self, extra: dict[str, Any] | None = None) -> None:
        self.announce({"type": "lane", **self.view(), **(extra or {})})

    def _progress(self, stage: str, message: str) -> None:
        self.announce({"type": "progress", "stage": stage, "message": message})

    def _cashier(self, given: dict[str, Any] | None = None) -> dict[str, Any]:
        cashier = given or self._lane().get("cashier")
        if not cashier:
            raise CheckoutRefused("Кассир не вошёл в систему")
        return {"name": cashier["name"], "inn": cashier.get("inn")}

    def _require_ready(self) -> None:
        if not self.recovered.is_set():
            raise CheckoutRefused("Касса восстанавливается после перезапуска: подождите")

    def _require_shift(self) -> dict[str, Any]:
        lane = self._lane()
        if lane.get("shift_state") != "open":
            raise CheckoutRefused("Смена закрыта: откройте смену")
        return lane

    # Shift -----------------------------------------------------------------------------------
    def open_shift(self, cashier: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.lock:
            self._require_ready()
            who = self._cashier(cashier)
            lane = self._lane()
            if lane.get("shift_state") == "open":
                raise CheckoutRefused(f"Смена {lane.get('shift_number')} уже открыта")
            op = Op(new_id(), self.id, KIND_SHIFT_OPEN, S.FISCAL_PENDING, {"cashier": who, "opened_at": _now()})
            op.shift_id = op.id
            self.store.save(op, "open_shift")
            return self._finish_shift_open(op)

    def _finish_shift_open(self, op: Op) -> dict[str, Any]:
        who = op.doc["cashier"]
        out = self.calls.call(self.settings.fiscal, "open_shift", op.id, {"cashier": _fiscal_cashier(who)},
                              progress=self._progress)
        fiscal: dict[str, Any] | None
        if out.status is ReplyStatus.DONE:
            fiscal = out.result or {}
        elif out.code == "fiscal_shift_open":  # the register's shift is open already: adopt it
            st = self.calls.call(self.settings.fiscal, "status", f"{op.id}.st", {}, journaled=False)
            if st.status is not ReplyStatus.DONE:
                raise CheckoutRefused(f"ККТ не отвечает: {st.message}")
            fiscal = None
            op.doc["adopted_shift_number"] = (st.result or {}).get("shift_number")
        else:
            if out.code not in UNKNOWN_CODES:
                op.state = S.CANCELLED
                self.store.save(op, "open_failed", {"code": out.code, "message": out.message})
            raise CheckoutRefused(f"Смена не открыта: {out.message}")
        number = (fiscal or {}).get("shift_number") or op.doc.get("adopted_shift_number")
        op.state, op.event_pending = S.COMPLETED, True
        op.doc.update(fiscal=fiscal, shift_number=number)
        self.store.save(op, "opened", {"fiscal": fiscal})
        self._set_lane(shift_state="open", shift_id=op.id, shift_number=number, shift_opened_at=op.doc["opened_at"])
        self._emit_event(op)
        self._changed()
        return {"shift_id": op.id, "shift_number": number, "fiscal": fiscal}

    def close_shift(self, cashier: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.lock:
            self._require_ready()
            who = self._cashier(cashier)
            lane = self._require_shift()
            sale = self.current()
            if sale is not None and S(sale.state) not in FINAL and sale.doc.get("lines"):
                raise CheckoutRefused("Сначала завершите или отмените текущий чек")
            op = Op(f"{lane['shift_id'][:28]}.z", self.id, KIND_SHIFT_CLOSE, S.FISCAL_PENDING,
                    {"cashier": who, "shift_number": lane.get("shift_number")}, shift_id=lane["shift_id"])
            existing = self.store.get(op.id)
            self.store.save(existing or op, "close_shift")
            return self._finish_shift_close(existing or op)

    def _finish_shift_close(self, op: Op) -> dict[str, Any]:
        assert op.shift_id is not None
        if "z" not in op.doc:
            out = self.calls.call(self.settings.fiscal, "close_shift", op.id,
                                  {"cashier": _fiscal_cashier(op.doc["cashier"])}, progress=self._progress)
            if out.status is not ReplyStatus.DONE:
                self.store.save(op, "close_failed", {"code": out.code, "message": out.message})
                raise CheckoutRefused(f"Смена не закрыта: {out.message}")
            op.doc["z"] = out.result or {}
            self.store.save(op, "z_report", {"fd_number": op.doc["z"].get("fd_number")})
        if "reconciliation" not in op.doc and self.settings.payment:
            out = self.calls.call(self.settings.payment, "reconcile", f"{op.id}.rc", {}, progress=self._progress)
            op.doc["reconciliation"] = out.result if out.status is ReplyStatus.DONE else {
                "ok": False, "code": out.code, "message": out.message}
            self.store.save(op, "reconciled", {"code": op.doc["reconciliation"].get("code")})
        data = self._shift_closed(op)
        op.doc["closed"] = data
        op.state, op.event_pending = S.COMPLETED, True
        self.store.save(op, "closed")
        self._set_lane(shift_state="closed", shift_id=None, current_sale=None)
        self._emit_event(op)
        self._changed()
        return data

    def _shift_closed(self, op: Op) -> dict[str, Any]:
        assert op.shift_id is not None
        totals = ev.Totals()
        receipts = 0
        t = totals.model_dump()
        for o in self.store.in_shift(op.shift_id):
            if o.state != S.COMPLETED:
                continue
            if o.kind in (KIND_SALE, KIND_FISCALIZE):
                receipts += 1
                t["sales_count"] += 1
                for p in o.doc.get("payments", []):
                    if p["type"] == "cash":
                        t["sales_cash"] += p["amount"]
                    elif p["type"] == "card":
                        t["sales_card"] += p["amount"]
            elif o.kind == KIND_RETURN:
                receipts += 1
                t["returns_count"] += 1
                for p in o.doc.get("payments", []):
                    t["returns_cash" if p["type"] == "cash" else "returns_card"] += p["amount"]
            elif o.kind == KIND_CASH:
                t["cash_in" if o.doc["direction"] == "in" else "cash_out"] += o.doc["amount"]
        totals = ev.Totals(**t)
        opened = self.store.get(op.shift_id)
        z = op.doc.get("z") or {}
        fn_receipts = None
        open_fd = ((opened.doc.get("fiscal") or {}).get("fd_number")) if opened else None
        if open_fd is not None and z.get("fd_number") is not None:
            fn_receipts = int(z["fd_number"]) - int(open_fd) - 1
        differences: list[ev.Difference] = []
        if fn_receipts is not None and fn_receipts != receipts:
            differences.append(ev.Difference(
                what="receipts", lane=receipts, other=fn_receipts, source="fiscal",
                message=f"Чеков в кассе {receipts}, документов в ФН за смену {fn_receipts}"))
        rec = op.doc.get("reconciliation")
        if rec and "purchases" in rec:
            card = rec["purchases"]["amount"] - rec["voids"]["amount"]
            if card != totals.sales_card:
                differences.append(ev.Difference(
                    what="card_sales", lane=totals.sales_card, other=card, source="terminal",
                    message=f"Оплаты картой по кассе {_rub(totals.sales_card)}, по терминалу {_rub(card)}"))
            if rec["refunds"]["amount"] != totals.returns_card:
                differences.append(ev.Difference(
                    what="card_returns", lane=totals.returns_card, other=rec["refunds"]["amount"], source="terminal",
                    message=f"Возвраты на карту по кассе {_rub(totals.returns_card)}, "
                            f"по терминалу {_rub(rec['refunds']['amount'])}"))
        elif self.settings.payment:
            differences.append(ev.Difference(
                what="reconciliation", lane=totals.sales_card, other=0, source="terminal",
                message=f"Сверка итогов не выполнена: {(rec or {}).get('message', 'нет ответа терминала')}"))
        data = ev.ShiftClosed(
            shift_id=op.shift_id, lane=self.id, cashier=ev.Cashier(**op.doc["cashier"]),
            shift_number=z.get("shift_number") or op.doc.get("shift_number"),
            z_report=_fiscal_data(z), totals=totals, fiscal_receipts=receipts, fn_receipts=fn_receipts,
            reconciliation=rec, differences=tuple(differences), closed_at=dt.datetime.now(dt.UTC),
        )
        return data.model_dump(mode="json")

    def x_report(self) -> dict[str, Any]:
        with self.lock:
            self._require_ready()
            self._require_shift()
            out = self.calls.call(self.settings.fiscal, "x_report", f"x{new_id()[:30]}", {}, journaled=False)
            if out.status is not ReplyStatus.DONE:
                raise CheckoutRefused(f"X-отчёт не напечатан: {out.message}")
            return {"printed": True}

    def cash_move(self, direction: str, amount: int, reason: str = "", cashier: dict[str, Any] | None = None,
                  move_id: str | None = None) -> dict[str, Any]:
        with self.lock:
            self._require_ready()
            who = self._cashier(cashier)
            lane = self._require_shift()
            if amount <= 0:
                raise CheckoutRefused("Сумма должна быть больше нуля")
            op_id = move_id or new_id()
            existing = self.store.get(op_id)
            if existing is not None:
                return dict(existing.doc["event"])
            op = Op(op_id, self.id, KIND_CASH, S.COMPLETED, {"direction": direction, "amount": amount},
                    shift_id=lane["shift_id"], event_pending=True)
            data = ev.CashMoved(move_id=op.id, lane=self.id, shift_id=lane["shift_id"], cashier=ev.Cashier(**who),
                                direction=direction, amount=amount, reason=reason,
                                moved_at=dt.datetime.now(dt.UTC)).model_dump(mode="json")
            op.doc["event"] = data
            self.store.save(op, f"cash_{direction}", {"amount": amount})
            self._emit_event(op)
            return data

    # Sale: lines -----------------------------------------------------------------------------
    def _open_sale(self) -> Op:
        sale = self.current()
        if sale is not None and sale.kind == KIND_SALE and S(sale.state) in (S.OPEN, S.LINES):
            return sale
        if sale is not None and S(sale.state) not in FINAL:
            raise CheckoutRefused(f"Текущий чек не завершён ({_sale_view(sale)['state_text']})")
        lane = self._require_shift()
        op = Op(new_id(), self.id, KIND_SALE, S.OPEN,
                {"lines": [], "payments": [], "cashier": self._cashier(), "opened_at": _now(), "attempts": 0},
                shift_id=lane["shift_id"])
        self.store.save(op, "open")
        self._set_lane(current_sale=op.id)
        return op

    def scan(self, code: str) -> dict[str, Any]:
        """A barcode from the scanner: EAN → product; weight label → PLU and weight; marking code."""
        with self.lock:
            self._require_ready()
            self._cashier()
            parsed = classify(code, self.weight_formats)
            if isinstance(parsed, UnknownBarcode):
                raise CheckoutRefused(f"Штрихкод не распознан: {parsed.reason}")
            marking: str | None = None
            source = "scan"
            if isinstance(parsed, WeightLabel):
                item = self.prices.by_plu(parsed.barcode.item_code)
                if item is None:
                    raise CheckoutRefused(f"Весовой товар с ПЛУ {parsed.barcode.item_code} не найден в прайс-листе")
                if item.measure != "kg":
                    raise CheckoutRefused(f"«{item.name}» — штучный товар, а этикетка весовая")
                qty = (Decimal(parsed.barcode.value) / 1000).quantize(KG)
                source = "weight_label"
            elif isinstance(parsed, MarkingCode):
                item = self.prices.by_barcode(parsed.gtin)
                if item is None:
                    raise CheckoutRefused(f"Товар с GTIN {parsed.gtin} не найден в прайс-листе")
                marking = parsed.raw
                qty = Decimal(1)
            elif isinstance(parsed, ProductBarcode):
                item = self.prices.by_barcode(parsed.gtin.gtin14)
                if item is None:
                    raise CheckoutRefused(f"Товар со штрихкодом {parsed.gtin.code} не найден в прайс-листе")
                if item.marked:
                    raise CheckoutRefused(f"«{item.name}» — маркированный товар: отсканируйте код маркировки (DataMatrix)")
                if item.measure == "kg":
                    raise CheckoutRefused(f"«{item.name}» — весовой товар: взвесьте его или отсканируйте этикетку")
                qty = Decimal(1)
            else:
                raise CheckoutRefused("Это код упаковки (агрегат): отсканируйте товар")
            sale = self._open_sale()
            if marking is not None:
                if any(marking in line["marking_codes"] for line in sale.doc["lines"]):
                    raise CheckoutRefused("Этот код маркировки уже в чеке")
                self._check_marking(marking, item.name)
            return self._add_line(sale, item, qty, source, marking)

    def _check_marking(self, code: str, name: str) -> None:
        out = self.calls.call(self.settings.fiscal, "check_marking_code", f"km{new_id()[:30]}",
                              {"code": code}, journaled=False)
        if out.status is not ReplyStatus.DONE:
            raise CheckoutRefused(f"Код маркировки не проверен: {out.message}")
        if not (out.result or {}).get("valid"):
            raise CheckoutRefused(f"Код маркировки «{name}» не прошёл проверку: продажа запрещена")

    def weigh(self, plu: int) -> dict[str, Any]:
        """A weighed item: the PLU typed by the cashier, the weight from the lane's scale."""
        with self.lock:
            self._require_ready()
            self._cashier()
            if not self.settings.scale:
                raise CheckoutRefused("К кассе не подключены весы")
            item = self.prices.by_plu(plu)
            if item is None or item.measure != "kg":
                raise CheckoutRefused(f"Весовой товар с ПЛУ {plu} не найден в прайс-листе")
            out = self.calls.call(self.settings.scale, "weigh", f"w{new_id()[:30]}", {"stable": True}, journaled=False)
            if out.status is not ReplyStatus.DONE:
                raise CheckoutRefused(f"Весы: {out.message}")
            net = Decimal(str((out.result or {}).get("net") or "0")).quantize(KG)
            if net <= 0:
                raise CheckoutRefused("Положите товар на весы")
            return self._add_line(self._open_sale(), item, net, "scale", None)

    def _add_line(self, sale: Op, item: ev.PriceItem, qty: Decimal, source: str, marking: str | None
                  ) -> dict[str, Any]:
        sale.state = step(S(sale.state), "add_line")
        lines = sale.doc["lines"]
        number = max((line["line_no"] for line in lines), default=0) + 1
        line = {
            "line_no": number, "product_id": item.product_id, "name": item.name, "quantity": str(qty),
            "measure": item.measure, "price": item.price, "amount": _amount(item.price, qty), "vat": item.vat,
            "vat_rate": resolve(VatKind(item.vat), dt.date.today()).label,
            "marking_codes": [marking] if marking else [], "source": source,
        }
        lines.append(line)
        self.store.save(sale, "add_line", line)
        crashpoint(CRASH_AFTER_LINES)
        self._changed()
        return _sale_view(sale)

    def remove_line(self, line_no: int) -> dict[str, Any]:
        with self.lock:
            sale = self._active_sale()
            sale.state = step(S(sale.state), "remove_line")
            kept = [line for line in sale.doc["lines"] if line["line_no"] != line_no]
            if len(kept) == len(sale.doc["lines"]):
                raise CheckoutRefused(f"В чеке нет позиции {line_no}")
            sale.doc["lines"] = kept
            self.store.save(sale, "remove_line", {"line_no": line_no})
            self._changed()
            return _sale_view(sale)

    def _active_sale(self) -> Op:
        self._require_ready()
        sale = self.current()
        if sale is None or S(sale.state) in FINAL:
            raise CheckoutRefused("Нет открытого чека")
        return sale

    def cancel_sale(self, reason: str = "отменён кассиром") -> dict[str, Any]:
        with self.lock:
            sale = self._active_sale()
            sale.state = step(S(sale.state), "cancel")
            sale.event_pending = True
            sale.doc["reason"] = reason
            self.store.save(sale, "cancel", {"reason": reason})
            self._emit_event(sale)
            self._set_lane(current_sale=None)
            self._changed()
            return _sale_view(sale)

    # Sale: payment and receipt ---------------------------------------------------------------
    def pay(self, cash: int = 0, card: int = 0) -> dict[str, Any]:
        """Take payment (cash, card or both), then print the receipt (see the module doc)."""
        with self.lock:
            sale = self._active_sale()
            if S(sale.state) is S.FISCAL_PENDING:
                return self._fiscalize(sale)
            total = sum(line["amount"] for line in sale.doc["lines"])
            if total <= 0:
                raise CheckoutRefused("В чеке нет товаров")
            if cash < 0 or card < 0:
                raise CheckoutRefused("Сумма оплаты не может быть отрицательной")
            if card > total:
                raise CheckoutRefused(f"Оплата картой {_rub(card)} больше суммы чека {_rub(total)}")
            if cash + card < total:
                raise CheckoutRefused(f"Недостаточно: внесено {_rub(cash + card)}, к оплате {_rub(total)}")
            if card and not self.settings.payment:
                raise CheckoutRefused("К кассе не подключён платёжный терминал")
            sale.state = step(S(sale.state), "pay")
            sale.doc["attempts"] = int(sale.doc.get("attempts", 0)) + (1 if card else 0)
            sale.doc["tender"] = {"cash": cash, "card": card, "total": total,
                                  "card_op": f"{sale.id}.p{sale.doc['attempts']}" if card else None}
            self.store.save(sale, "pay", sale.doc["tender"])
            self._changed()
            return self._settle_payment(sale, recovering=False)

    def _settle_payment(self, sale: Op, *, recovering: bool) -> dict[str, Any]:
        tender = sale.doc["tender"]
        card_op = tender.get("card_op")
        payment: dict[str, Any] | None = None
        if card_op:
            assert self.settings.payment is not None
            if recovering:  # never a new charge: only what the journal (the terminal's find) knows
                out = self.calls.outcome(card_op) if self.calls.started(card_op) else \
                    Outcome.failed(CODE_NOT_STARTED, "оплата не начиналась")
            else:
                amount = {"amount": tender["card"]}
                out = self.calls.call(self.settings.payment, "pay", card_op, amount, progress=self._progress)
                if out.status is ReplyStatus.DONE:
                    crashpoint(CRASH_AFTER_CHARGE)
            if out.status is not ReplyStatus.DONE:
                if recovering and out.code == CODE_PENDING:
                    raise CheckoutRefused("Терминал ещё не ответил после перезапуска")
                if out.code in UNKNOWN_CODES:
                    sale.state = step(S(sale.state), "unknown")
                    sale.doc["problem"] = out.message
                    self.store.save(sale, "payment_unknown", {"code": out.code, "message": out.message})
                    self._changed()
                    raise CheckoutRefused(f"Результат оплаты неизвестен: {out.message}")
                sale.state = step(S(sale.state), "declined")
                sale.doc["problem"] = f"Оплата не прошла: {out.message}"
                self.store.save(sale, "declined", {"code": out.code, "message": out.message})
                self._changed()
                raise CheckoutRefused(sale.doc["problem"])
            r = out.result or {}
            payment = {"type": "card", "amount": tender["card"], "operation_id": card_op, "rrn": r.get("rrn"),
                       "auth_code": r.get("auth_code"), "card_mask": r.get("card_mask")}
        payments = [payment] if payment else []
        change = max(tender["cash"] + tender["card"] - tender["total"], 0)
        if tender["cash"]:
            payments.insert(0, {"type": "cash", "amount": tender["cash"] - change})
        sale.doc.update(payments=[p for p in payments if p["amount"] > 0], change=change, problem="")
        sale.state = step(S(sale.state), "charged")
        self.store.save(sale, "charged", {"payments": sale.doc["payments"]})
        crashpoint(CRASH_AFTER_CHARGE_SAVED)
        return self._fiscalize(sale)

    def _receipt_args(self, op: Op) -> dict[str, Any]:
        returning = op.kind == KIND_RETURN
        items = []
        for line in op.doc["lines"]:
            item: dict[str, Any] = {
                "name": line["name"], "quantity": line["quantity"], "price": line["price"], "vat": line["vat"],
                "measure": 11 if line["measure"] == "kg" else 0,
            }
            if line["marking_codes"]:
                item["item_type"] = 33
                item["marking"] = {"code": line["marking_codes"][0], "planned_status": 3 if returning else 1}
            items.append(item)
        cash = sum(p["amount"] for p in op.doc["payments"] if p["type"] == "cash") + op.doc.get("change", 0)
        card = sum(p["amount"] for p in op.doc["payments"] if p["type"] == "card")
        prepaid = sum(p["amount"] for p in op.doc["payments"] if p["type"] == "prepayment")
        args: dict[str, Any] = {
            "items": op.doc.get("receipt_items") or items,
            "payments": {"cash": cash, "electronic": card, "prepayment": prepaid},
            "taxation": self.settings.taxation, "cashier": _fiscal_cashier(op.doc["cashier"]),
        }
        if op.doc.get("customer_contact"):
            args["customer_contact"] = op.doc["customer_contact"]
        return args

    def _fiscalize(self, op: Op) -> dict[str, Any]:
        if "receipt" not in op.doc:
            op.doc["receipt"] = self._receipt_args(op)
        if S(op.state) is S.PAID:
            op.state = step(S(op.state), "fiscalize")
            self.store.save(op, "fiscalize", {"receipt": op.doc["receipt"]})
        action = "refund" if op.kind == KIND_RETURN else "sell"
        self._progress("fiscal", "Печать чека…")
        out = self.calls.call(self.settings.fiscal, action, op.id, op.doc["receipt"], progress=self._progress)
        if out.status is not ReplyStatus.DONE:
            op.doc["problem"] = f"Чек не напечатан: {out.message}"
            op.doc["fiscal_error"] = {"code": out.code, "message": out.message}
            op.state = step(S(op.state), "fiscal_failed")
            self.store.save(op, "fiscal_failed", op.doc["fiscal_error"])
            self._changed()
            raise CheckoutRefused(op.doc["problem"] + ". Устраните причину и повторите печать"
                                  + ("" if out.code in UNKNOWN_CODES else " или отмените оплату"))
        crashpoint(CRASH_AFTER_RECEIPT)
        op.doc.update(fiscal=out.result or {}, problem="", completed_at=_now())
        op.doc.pop("fiscal_error", None)
        op.state = step(S(op.state), "fiscalized")
        op.event_pending = True
        self.store.save(op, "fiscalized", {"fd_number": op.doc["fiscal"].get("fd_number")})
        slip = self.slips.plan(op)
        self._emit_event(op)
        crashpoint(CRASH_BEFORE_REPLY)
        self.slips.run(slip, self._progress)
        self._changed()
        return self._view_of(op)

    def retry_receipt(self) -> dict[str, Any]:
        with self.lock:
            sale = self._active_sale()
            if S(sale.state) is not S.FISCAL_PENDING:
                raise CheckoutRefused("Чек не ждёт печати")
            return self._fiscalize(sale)

    def reprint_slip(self, sale_id: str) -> dict[str, Any]:
        """The card slip of a completed sale or return again (a new print, marked as a copy if one printed)."""
        with self.lock:
            self._require_ready()
            self.slips.reprint(self._completed(sale_id), self._progress)
            self._changed()
            return self._view_of(self._completed(sale_id))

    def print_copy(self, sale_id: str) -> dict[str, Any]:
        """A non-fiscal copy of a completed receipt on the lane's receipt printer."""
        with self.lock:
            self._require_ready()
            op = self._completed(sale_id)
            self.slips.copy(op, self._progress)
            return self._view_of(op)

    def _completed(self, op_id: str) -> Op:
        op = self.store.get(op_id)
        if op is None or op.lane != self.id or op.kind == KIND_SLIP:
            raise CheckoutRefused(f"Чек {op_id} не найден на кассе {self.id}")
        return op

    def give_up(self) -> dict[str, Any]:
        """The receipt cannot be printed and the cashier gives up: void the card charge, hand back cash."""
        with self.lock:
            sale = self._active_sale()
            error = sale.doc.get("fiscal_error") or {}
            if S(sale.state) is S.FISCAL_PENDING and error.get("code") in UNKNOWN_CODES | {None}:
                raise CheckoutRefused("Неизвестно, напечатан ли чек: сначала повторите печать (ККТ проверит ФН)")
            sale.state = step(S(sale.state), "give_up")
            self.store.save(sale, "give_up", error)
            return self._void(sale)

    def _void(self, sale: Op) -> dict[str, Any]:
        voided = []
        for n, p in enumerate(sale.doc.get("payments", []), start=1):
            if p["type"] != "card":
                continue
            assert self.settings.payment is not None
            out = self.calls.call(self.settings.payment, "cancel", f"{sale.id}.v{n}",
                                  {"operation_id": p["operation_id"]}, progress=self._progress)
            if out.status is not ReplyStatus.DONE:
                sale.state = step(S(sale.state), "void_failed")
                sale.doc["problem"] = f"Оплата картой не отменена: {out.message}"
                self.store.save(sale, "void_failed", {"code": out.code, "message": out.message})
                self._changed()
                raise CheckoutRefused(sale.doc["problem"] + ". Требуется разбор: не выдавайте товар")
            voided.append({**p, "rrn": (out.result or {}).get("rrn") or p.get("rrn")})
        sale.doc["voided"] = voided
        sale.doc["cash_returned"] = sum(p["amount"] for p in sale.doc.get("payments", []) if p["type"] == "cash")
        sale.doc["reason"] = "чек не напечатан: оплата отменена"
        sale.state = step(S(sale.state), "voided")
        sale.event_pending = True
        self.store.save(sale, "voided", {"voided": voided})
        self._emit_event(sale)
        self._set_lane(current_sale=None)
        self._changed()
        return _sale_view(sale)

    def new_sale(self) -> dict[str, Any]:
        """Clear a finished sale off the screen."""
        with self.lock:
            sale = self.current()
            if sale is not None and S(sale.state) not in FINAL:
                raise CheckoutRefused("Текущий чек не завершён")
            self._set_lane(current_sale=None)
            self._changed()
            return self.view()

    # Returns ---------------------------------------------------------------------------------
    def sales(self, limit: int = 20) -> list[dict[str, Any]]:
        return [_sale_view(o) for o in self.store.recent(self.id, KIND_SALE, limit) if o.state == S.COMPLETED]

    def return_sale(self, sale_id: str, lines: list[dict[str, Any]] | None = None,
                    return_id: str | None = None) -> dict[str, Any]:
        """A return by the original receipt: ``lines`` [{line_no, quantity}] (all when None)."""
        with self.lock:
            self._require_ready()
            who = self._cashier()
            lane = self._require_shift()
            original = self.store.get(sale_id)
            if original is None or original.kind not in (KIND_SALE, KIND_FISCALIZE) or original.state != S.COMPLETED:
                raise CheckoutRefused(f"Чек продажи {sale_id} не найден или не завершён")
            rid = return_id or new_id()
            existing = self.store.get(rid)
            if existing is not None:
                return self._continue(existing)
            returned = self._returned_qty(sale_id)
            by_no = {line["line_no"]: line for line in original.doc["lines"]}
            wanted = lines or [{"line_no": n, "quantity": by_no[n]["quantity"]} for n in by_no]
            out_lines = []
            for n, w in enumerate(wanted, start=1):
                src = by_no.get(int(w["line_no"]))
                if src is None:
                    raise CheckoutRefused(f"В чеке продажи нет позиции {w['line_no']}")
                qty = Decimal(str(w.get("quantity") or src["quantity"])).quantize(KG)
                left = Decimal(src["quantity"]) - returned.get(src["line_no"], Decimal(0))
                if qty <= 0 or qty > left:
                    raise CheckoutRefused(f"«{src['name']}»: можно вернуть не больше {left.normalize()}")
                amount = src["amount"] if qty == Decimal(src["quantity"]) else _amount(src["price"], qty)
                out_lines.append({**src, "line_no": n, "original_line_no": src["line_no"], "quantity": str(qty),
                                  "amount": amount})
            total = sum(line["amount"] for line in out_lines)
            card_paid = sum(p["amount"] for p in original.doc["payments"] if p["type"] == "card")
            card_refunded = self._refunded_card(sale_id)
            card = min(total, card_paid - card_refunded)
            card_src = next((p for p in original.doc["payments"] if p["type"] == "card"), None)
            op = Op(rid, self.id, KIND_RETURN, S.PAYMENT_PENDING, {
                "sale_id": sale_id, "lines": out_lines, "cashier": who, "opened_at": _now(),
                "tender": {"cash": total - card, "card": card, "total": total,
                           "card_op": f"{rid}.p1" if card else None,
                           "rrn": card_src.get("rrn") if card_src else None},
                "payments": [],
            }, shift_id=lane["shift_id"])
            self.store.save(op, "return", {"sale_id": sale_id, "total": total})
            self._set_lane(current_sale=op.id)
            return self._refund_payment(op, recovering=False)

    def _returned_qty(self, sale_id: str) -> dict[int, Decimal]:
        out: dict[int, Decimal] = {}
        for o in self.store.recent(self.id, KIND_RETURN, 1000):
            if o.doc.get("sale_id") == sale_id and o.state not in (S.CANCELLED, S.CANCELLED_REFUNDED):
                for line in o.doc["lines"]:
                    key = line["original_line_no"]
                    out[key] = out.get(key, Decimal(0)) + Decimal(line["quantity"])
        return out

    def _refunded_card(self, sale_id: str) -> int:
        return sum(p["amount"] for o in self.store.recent(self.id, KIND_RETURN, 1000)
                   if o.doc.get("sale_id") == sale_id and o.state == S.COMPLETED
                   for p in o.doc["payments"] if p["type"] == "card")

    def _refund_payment(self, op: Op, *, recovering: bool) -> dict[str, Any]:
        tender = op.doc["tender"]
        payments = []
        if tender.get("card_op"):
            assert self.settings.payment is not None
            if recovering and not self.calls.started(tender["card_op"]):
                out = Outcome.failed(CODE_NOT_STARTED, "возврат не начинался")
            elif recovering:
                out = self.calls.outcome(tender["card_op"])
            else:
                args = {"amount": tender["card"], "rrn": tender["rrn"]}
                out = self.calls.call(self.settings.payment, "refund", tender["card_op"], args,
                                      progress=self._progress)
            if out.status is not ReplyStatus.DONE:
                if out.code in UNKNOWN_CODES:
                    op.state = step(S(op.state), "unknown")
                    self.store.save(op, "refund_unknown", {"code": out.code, "message": out.message})
                    self._changed()
                    raise CheckoutRefused(f"Результат возврата на карту неизвестен: {out.message}")
                op.state = S.CANCELLED
                op.doc["reason"] = f"возврат на карту не прошёл: {out.message}"
                self.store.save(op, "refund_declined", {"code": out.code, "message": out.message})
                self._set_lane(current_sale=None)
                self._changed()
                raise CheckoutRefused(f"Возврат на карту не прошёл: {out.message}")
            r = out.result or {}
            payments.append({"type": "card", "amount": tender["card"], "operation_id": tender["card_op"],
                             "rrn": r.get("rrn"), "auth_code": r.get("auth_code"), "card_mask": r.get("card_mask")})
        if tender["cash"]:
            payments.insert(0, {"type": "cash", "amount": tender["cash"]})
        op.doc["payments"] = payments
        op.state = step(S(op.state), "charged")
        self.store.save(op, "refunded", {"payments": payments})
        return self._fiscalize(op)

    # Receipts the cloud asks for -------------------------------------------------------------
    def fiscalize_order(self, op_id: str, args: dict[str, Any]) -> dict[str, Any]:
        """A receipt for a sale not made at this lane (a delivery's settlement with its prepayment)."""
        with self.lock:
            self._require_ready()
            existing = self.store.get(op_id)
            if existing is not None:
                return self._continue(existing)
            lane = self._lane()
            op = Op(op_id, self.id, KIND_FISCALIZE, S.PAID, {
                "order_id": args.get("order_id"), "lines": args["lines"], "payments": args["payments"],
                "receipt_items": args["receipt_items"], "cashier": self._cashier(args.get("cashier")),
                "customer_contact": args.get("customer_contact"), "opened_at": _now(), "change": 0,
            }, shift_id=lane.get("shift_id"))
            self.store.save(op, "fiscalize_order", {"order_id": args.get("order_id")})
            return self._fiscalize(op)

    # Events ----------------------------------------------------------------------------------
    def _event(self, op: Op) -> tuple[str, dict[str, Any]] | None:
        d = op.doc
        shift = op.shift_id
        if op.kind in (KIND_SALE, KIND_FISCALIZE) and op.state == S.COMPLETED:
            total = sum(line["amount"] for line in d["lines"])
            data: Any = ev.SaleCompleted(
                sale_id=op.id, lane=self.id, shift_id=shift, cashier=ev.Cashier(**d["cashier"]),
                lines=tuple(ev.SaleLine(**_line(line)) for line in d["lines"]),
                payments=tuple(ev.SalePayment(**p) for p in d["payments"]), total=total, change=d.get("change", 0),
                fiscal=_fiscal_data(d["fiscal"]), opened_at=d["opened_at"], completed_at=d["completed_at"],
                origin="cloud" if op.kind == KIND_FISCALIZE else "checkout", order_id=d.get("order_id"))
            return ev.EVENT_SALE_COMPLETED, data.model_dump(mode="json")
        if op.kind == KIND_SALE and op.state in (S.CANCELLED, S.CANCELLED_REFUNDED):
            data = ev.SaleCancelled(
                sale_id=op.id, lane=self.id, shift_id=shift, cashier=ev.Cashier(**d["cashier"]),
                state=op.state, reason=d.get("reason", ""),
                total=sum(line["amount"] for line in d["lines"]),
                voided=tuple(ev.SalePayment(**p) for p in d.get("voided", [])),
                cash_returned=d.get("cash_returned", 0),
                lines=tuple(ev.SaleLine(**_line(line)) for line in d["lines"]), cancelled_at=dt.datetime.now(dt.UTC))
            return ev.EVENT_SALE_CANCELLED, data.model_dump(mode="json")
        if op.kind == KIND_RETURN and op.state == S.COMPLETED:
            data = ev.ReturnCompleted(
                return_id=op.id, sale_id=d["sale_id"], lane=self.id, shift_id=shift, cashier=ev.Cashier(**d["cashier"]),
                lines=tuple(ev.SaleLine(**_line(line)) for line in d["lines"]),
                refunds=tuple(ev.SalePayment(**p) for p in d["payments"]),
                total=sum(line["amount"] for line in d["lines"]), fiscal=_fiscal_data(d["fiscal"]),
                completed_at=d["completed_at"])
            return ev.EVENT_RETURN_COMPLETED, data.model_dump(mode="json")
        if op.kind == KIND_SHIFT_OPEN and op.state == S.COMPLETED:
            data = ev.ShiftOpened(
                shift_id=op.id, lane=self.id, cashier=ev.Cashier(**d["cashier"]), shift_number=d.get("shift_number"),
                fiscal=_fiscal_data(d["fiscal"]) if d.get("fiscal") else None, opened_at=d["opened_at"])
            return ev.EVENT_SHIFT_OPENED, data.model_dump(mode="json")
        if op.kind == KIND_SHIFT_CLOSE and op.state == S.COMPLETED:
            return ev.EVENT_SHIFT_CLOSED, d["closed"]
        if op.kind == KIND_CASH:
            return ev.EVENT_CASH_MOVED, d["event"]
        return None

    def _emit_event(self, op: Op) -> None:
        """Store the operation's event in the outbox, then record that it is stored."""
        found = self._event(op)
        if found is not None:
            self.emit(*found)
        op.event_pending = False
        self.store.save(op, "event_stored", {"event": found[0] if found else None})

    # Recovery --------------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Move every unfinished operation forward (module doc); returns the ids it touched."""
        touched = []
        with self.lock:
            for op in self.store.unfinished(self.id, frozenset(FINAL | {S.NEEDS_ATTENTION} | SLIP_FINAL)):
                try:
                    self._recover_one(op)
                except (CheckoutRefused, IllegalTransition) as exc:
                    log.warning("lane %s: %s %s left %s: %s", self.id, op.kind, op.id, op.state, exc.message)
                touched.append(op.id)
            self.recovered.set()
        self._changed()
        return touched

    def _recover_one(self, op: Op) -> None:
        if op.kind == KIND_SLIP:
            self.slips.recover(op)
            return
        state = S(op.state)
        log.warning("lane %s: recovering %s %s in state %s", self.id, op.kind, op.id, state.value)
        if state in FINAL or state is S.NEEDS_ATTENTION:
            if op.event_pending:
                slip = self.slips.plan(op)  # died between "fiscalized" and the slip's plan
                self._emit_event(op)
                self.slips.run(slip)
            return
        if op.kind == KIND_SHIFT_OPEN:
            self._finish_shift_open(op)
        elif op.kind == KIND_SHIFT_CLOSE:
            self._finish_shift_close(op)
        elif state is S.PAYMENT_PENDING:
            if op.kind == KIND_RETURN:
                self._refund_payment(op, recovering=True)
            else:
                self._settle_payment(op, recovering=True)
        elif state in (S.PAID, S.FISCAL_PENDING):
            self._fiscalize(op)
        elif state is S.REFUND_PENDING:
            self._void(op)

    def _continue(self, op: Op) -> dict[str, Any]:
        if S(op.state) in FINAL or S(op.state) is S.NEEDS_ATTENTION:
            return _sale_view(op)
        self._recover_one(op)
        refreshed = self.store.get(op.id)
        assert refreshed is not None
        return _sale_view(refreshed)


# Helpers -------------------------------------------------------------------------------------------
def _amount(price: int, qty: Decimal) -> int:
    return int((Decimal(price) * qty).quantize(Decimal(1), ROUND_HALF_UP))


def _rub(kop: int) -> str:
    return f"{kop // 100},{kop % 100:02d} ₽"


def _fiscal_cashier(who: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in {"name": who["name"], "inn": who.get("inn")}.items() if v is not None}


def _line(line: dict[str, Any]) -> dict[str, Any]:
    keys = ("line_no", "product_id", "name", "quantity", "measure", "price", "amount", "vat", "vat_rate",
            "marking_codes", "source")
    return {k: line[k] for k in keys if k in line}


def _fiscal_data(doc: dict[str, Any]) -> ev.FiscalData:
    return ev.FiscalData(
        fd_number=doc.get("fd_number", 0), fiscal_sign=doc.get("fiscal_sign", 0), fn_number=doc.get("fn_number"),
        shift_number=doc.get("shift_number"), receipt_number=doc.get("receipt_number"),
        issued_at=(dt.datetime.fromisoformat(str(doc["issued_at"])).astimezone(dt.UTC)  # the FN's clock: naive, local
                   if doc.get("issued_at") else dt.datetime.now(dt.UTC)),
    )


_STATE_TEXT = {
    S.OPEN: "Новый чек", S.LINES: "Чек набирается", S.PAYMENT_PENDING: "Идёт оплата", S.PAID: "Оплачено",
    S.FISCAL_PENDING: "Печать чека", S.COMPLETED: "Чек напечатан", S.REFUND_PENDING: "Отмена оплаты",
    S.CANCELLED: "Чек отменён", S.CANCELLED_REFUNDED: "Оплата отменена, чек не напечатан",
    S.NEEDS_ATTENTION: "Требует разбора",
}


def _sale_view(op: Op) -> dict[str, Any]:
    d = op.doc
    total = sum(line["amount"] for line in d.get("lines", []))
    fiscal = d.get("fiscal") or {}
    return {
        "sale_id": op.id, "kind": op.kind, "state": op.state, "state_text": _STATE_TEXT[S(op.state)],
        "lines": d.get("lines", []), "total": total, "payments": d.get("payments", []),
        "change": d.get("change", 0), "problem": d.get("problem", ""),
        "fiscal_error": d.get("fiscal_error"), "original_sale": d.get("sale_id"),
        "fiscal": {k: fiscal.get(k) for k in ("fd_number", "fiscal_sign", "fn_number", "shift_number",
                                              "receipt_number", "issued_at")} if fiscal else None,
        "updated": time.time(),
    }
