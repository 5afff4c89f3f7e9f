"""The sale saga: every step journaled under the sale's id before its effect.

Lines are rung up (a scan, a weight label, a marking code, the scale), the sale is paid (cash,
card or both), the receipt is printed; or the sale is cancelled, or — the receipt impossible —
the card charge is voided. Returns (:mod:`gateway.checkout.returns`) and receipts the cloud asks
for (:func:`fiscalize_order`) share the receipt step. Every function here is called by the
:class:`~gateway.checkout.lane.Lane` facade (or by recovery) under the lane's lock.

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

Giving up on a receipt that cannot be printed (``give_up``, from ``fiscal_pending``):

1. ``give_up`` saved: state ``refund_pending``
2. journal ``{sale}.v{n}`` running → the terminal voids the charge (``cancel`` by the charge's id)
3. ``voided`` saved (``cancelled_refunded``, event pending, each void's id kept as ``void_id``) → the
   void slip planned (a voided card payment and a ``printer``) → ``sale_cancelled`` into the outbox
   → ``event_stored`` saved → the sale leaves the lane's screen
4. the void slip (the terminal's ``ОТМЕНА`` slip) printed on the lane's receipt printer: at most
   once, and a printer fault never fails the give-up (:mod:`gateway.checkout.slips`)

How each unfinished state moves on after a crash: :mod:`gateway.checkout.recovery`.

Policy (BRIEF: never charged without a receipt, never a receipt without payment): the receipt is
attempted only after every payment is settled; when it cannot be printed (paper out, register
offline) the sale stays ``fiscal_pending`` and the cashier retries; if the cashier gives up, the
card charge is voided on the terminal and the sale ends ``cancelled_refunded`` (cash is handed
back). Giving up is refused while the register's outcome is unknown: the FN must be read first.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gateway.checkout.base import KG, UNKNOWN_CODES, CheckoutRefused, amount, fiscal_cashier, new_id, now, rub
from gateway.checkout.calls import CODE_NOT_STARTED, CODE_PENDING
from gateway.checkout.machine import FINAL, SaleState, step
from gateway.checkout.store import KIND_FISCALIZE, KIND_RETURN, KIND_SALE, Op
from gateway.checkout.views import sale_view
from gateway.crashpoints import crashpoint
from gateway.devices.base import Outcome
from protocols.barcodes import MarkingCode, ProductBarcode, UnknownBarcode, WeightLabel, classify
from protocols.bus import ReplyStatus
from protocols.bus import sales as ev
from protocols.fiscal import VatKind, resolve

if TYPE_CHECKING:
    from gateway.checkout.lane import Lane

S = SaleState

CRASH_AFTER_LINES = "lane.after_lines"
CRASH_AFTER_CHARGE = "lane.after_charge"
CRASH_AFTER_CHARGE_SAVED = "lane.after_charge_saved"
CRASH_AFTER_RECEIPT = "lane.after_receipt"
CRASH_BEFORE_REPLY = "lane.before_reply"
CRASH_POINTS = (CRASH_AFTER_LINES, CRASH_AFTER_CHARGE, CRASH_AFTER_CHARGE_SAVED, CRASH_AFTER_RECEIPT,
                CRASH_BEFORE_REPLY)


# Lines --------------------------------------------------------------------------------------------
def scan(lane: Lane, code: str) -> dict[str, Any]:
    """A barcode from the scanner: EAN → product; weight label → PLU and weight; marking code."""
    lane.require_ready()
    lane.require_cashier()
    parsed = classify(code, lane.weight_formats)
    if isinstance(parsed, UnknownBarcode):
        raise CheckoutRefused(f"Штрихкод не распознан: {parsed.reason}")
    marking: str | None = None
    source = "scan"
    if isinstance(parsed, WeightLabel):
        item = lane.prices.by_plu(parsed.barcode.item_code)
        if item is None:
            raise CheckoutRefused(f"Весовой товар с ПЛУ {parsed.barcode.item_code} не найден в прайс-листе")
        if item.measure != "kg":
            raise CheckoutRefused(f"«{item.name}» — штучный товар, а этикетка весовая")
        qty = (Decimal(parsed.barcode.value) / 1000).quantize(KG)
        source = "weight_label"
    elif isinstance(parsed, MarkingCode):
        item = lane.prices.by_barcode(parsed.gtin)
        if item is None:
            raise CheckoutRefused(f"Товар с GTIN {parsed.gtin} не найден в прайс-листе")
        marking = parsed.raw
        qty = Decimal(1)
    elif isinstance(parsed, ProductBarcode):
        item = lane.prices.by_barcode(parsed.gtin.gtin14)
        if item is None:
            raise CheckoutRefused(f"Товар со штрихкодом {parsed.gtin.code} не найден в прайс-листе")
        if item.marked:
            raise CheckoutRefused(f"«{item.name}» — маркированный товар: отсканируйте код маркировки (DataMatrix)")
        if item.measure == "kg":
            raise CheckoutRefused(f"«{item.name}» — весовой товар: взвесьте его или отсканируйте этикетку")
        qty = Decimal(1)
    else:
        raise CheckoutRefused("Это код упаковки (агрегат): отсканируйте товар")
    sale = _open_sale(lane)
    if marking is not None:
        if any(marking in line["marking_codes"] for line in sale.doc["lines"]):
            raise CheckoutRefused("Этот код маркировки уже в чеке")
        _check_marking(lane, marking, item.name)
    return _add_line(lane, sale, item, qty, source, marking)


def weigh(lane: Lane, plu: int) -> dict[str, Any]:
    """A weighed item: the PLU typed by the cashier, the weight from the lane's scale."""
    lane.require_ready()
    lane.require_cashier()
    if not lane.settings.scale:
        raise CheckoutRefused("К кассе не подключены весы")
    item = lane.prices.by_plu(plu)
    if item is None or item.measure != "kg":
        raise CheckoutRefused(f"Весовой товар с ПЛУ {plu} не найден в прайс-листе")
    out = lane.calls.call(lane.settings.scale, "weigh", f"w{new_id()[:30]}", {"stable": True}, journaled=False)
    if out.status is not ReplyStatus.DONE:
        raise CheckoutRefused(f"Весы: {out.message}")
    net = Decimal(str((out.result or {}).get("net") or "0")).quantize(KG)
    if net <= 0:
        raise CheckoutRefused("Положите товар на весы")
    return _add_line(lane, _open_sale(lane), item, net, "scale", None)


def remove_line(lane: Lane, line_no: int) -> dict[str, Any]:
    sale = active_sale(lane)
    sale.state = step(S(sale.state), "remove_line")
    kept = [line for line in sale.doc["lines"] if line["line_no"] != line_no]
    if len(kept) == len(sale.doc["lines"]):
        raise CheckoutRefused(f"В чеке нет позиции {line_no}")
    sale.doc["lines"] = kept
    lane.store.save(sale, "remove_line", {"line_no": line_no})
    lane.changed()
    return sale_view(sale)


def cancel_sale(lane: Lane, reason: str) -> dict[str, Any]:
    sale = active_sale(lane)
    sale.state = step(S(sale.state), "cancel")
    sale.event_pending = True
    sale.doc["reason"] = reason
    lane.store.save(sale, "cancel", {"reason": reason})
    lane.emit_event(sale)
    lane.update_record(current_sale=None)
    lane.changed()
    return sale_view(sale)


def active_sale(lane: Lane) -> Op:
    """The sale (or return) on the lane's screen that is not final; refused when there is none."""
    lane.require_ready()
    sale = lane.current()
    if sale is None or S(sale.state) in FINAL:
        raise CheckoutRefused("Нет открытого чека")
    return sale


def _open_sale(lane: Lane) -> Op:
    sale = lane.current()
    if sale is not None and sale.kind == KIND_SALE and S(sale.state) in (S.OPEN, S.LINES):
        return sale
    if sale is not None and S(sale.state) not in FINAL:
        raise CheckoutRefused(f"Текущий чек не завершён ({sale_view(sale)['state_text']})")
    record = lane.require_shift()
    op = Op(new_id(), lane.id, KIND_SALE, S.OPEN,
            {"lines": [], "payments": [], "cashier": lane.require_cashier(), "opened_at": now(), "attempts": 0},
            shift_id=record["shift_id"])
    lane.store.save(op, "open")
    lane.update_record(current_sale=op.id)
    return op


def _check_marking(lane: Lane, code: str, name: str) -> None:
    out = lane.calls.call(lane.settings.fiscal, "check_marking_code", f"km{new_id()[:30]}",
                          {"code": code}, journaled=False)
    if out.status is not ReplyStatus.DONE:
        raise CheckoutRefused(f"Код маркировки не проверен: {out.message}")
    if not (out.result or {}).get("valid"):
        raise CheckoutRefused(f"Код маркировки «{name}» не прошёл проверку: продажа запрещена")


def _add_line(lane: Lane, sale: Op, item: ev.PriceItem, qty: Decimal, source: str, marking: str | None
              ) -> dict[str, Any]:
    sale.state = step(S(sale.state), "add_line")
    lines = sale.doc["lines"]
    number = max((line["line_no"] for line in lines), default=0) + 1
    line = {
        "line_no": number, "product_id": item.product_id, "name": item.name, "quantity": str(qty),
        "measure": item.measure, "price": item.price, "amount": amount(item.price, qty), "vat": item.vat,
        "vat_rate": resolve(VatKind(item.vat), dt.date.today()).label,
        "marking_codes": [marking] if marking else [], "source": source,
    }
    lines.append(line)
    lane.store.save(sale, "add_line", line)
    crashpoint(CRASH_AFTER_LINES)
    lane.changed()
    return sale_view(sale)


# Payment --------------------------------------------------------------------------------------------
def pay(lane: Lane, cash: int, card: int) -> dict[str, Any]:
    """Take payment (cash, card or both), then print the receipt (see the module doc)."""
    sale = active_sale(lane)
    if S(sale.state) is S.FISCAL_PENDING:
        return fiscalize(lane, sale)
    total = sum(line["amount"] for line in sale.doc["lines"])
    if total <= 0:
        raise CheckoutRefused("В чеке нет товаров")
    if cash < 0 or card < 0:
        raise CheckoutRefused("Сумма оплаты не может быть отрицательной")
    if card > total:
        raise CheckoutRefused(f"Оплата картой {rub(card)} больше суммы чека {rub(total)}")
    if cash + card < total:
        raise CheckoutRefused(f"Недостаточно: внесено {rub(cash + card)}, к оплате {rub(total)}")
    if card and not lane.settings.payment:
        raise CheckoutRefused("К кассе не подключён платёжный терминал")
    sale.state = step(S(sale.state), "pay")
    sale.doc["attempts"] = int(sale.doc.get("attempts", 0)) + (1 if card else 0)
    sale.doc["tender"] = {"cash": cash, "card": card, "total": total,
                          "card_op": f"{sale.id}.p{sale.doc['attempts']}" if card else None}
    lane.store.save(sale, "pay", sale.doc["tender"])
    lane.changed()
    return settle_payment(lane, sale, recovering=False)


def settle_payment(lane: Lane, sale: Op, *, recovering: bool) -> dict[str, Any]:
    """Charge the card (or, recovering, learn from the journal whether it was charged), then the receipt."""
    tender = sale.doc["tender"]
    card_op = tender.get("card_op")
    payment: dict[str, Any] | None = None
    if card_op:
        assert lane.settings.payment is not None
        if recovering:  # never a new charge: only what the journal (the terminal's find) knows
            out = lane.calls.outcome(card_op) if lane.calls.started(card_op) else \
                Outcome.failed(CODE_NOT_STARTED, "оплата не начиналась")
        else:
            out = lane.calls.call(lane.settings.payment, "pay", card_op, {"amount": tender["card"]},
                                  progress=lane.progress)
            if out.status is ReplyStatus.DONE:
                crashpoint(CRASH_AFTER_CHARGE)
        if out.status is not ReplyStatus.DONE:
            if recovering and out.code == CODE_PENDING:
                raise CheckoutRefused("Терминал ещё не ответил после перезапуска")
            if out.code in UNKNOWN_CODES:
                sale.state = step(S(sale.state), "unknown")
                sale.doc["problem"] = out.message
                lane.store.save(sale, "payment_unknown", {"code": out.code, "message": out.message})
                lane.changed()
                raise CheckoutRefused(f"Результат оплаты неизвестен: {out.message}")
            sale.state = step(S(sale.state), "declined")
            sale.doc["problem"] = f"Оплата не прошла: {out.message}"
            lane.store.save(sale, "declined", {"code": out.code, "message": out.message})
            lane.changed()
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
    lane.store.save(sale, "charged", {"payments": sale.doc["payments"]})
    crashpoint(CRASH_AFTER_CHARGE_SAVED)
    return fiscalize(lane, sale)


# Receipt ----------------------------------------------------------------------------------------
def fiscalize(lane: Lane, op: Op) -> dict[str, Any]:
    """Print the receipt of a paid sale or return under its id, then its event and its card slip."""
    if "receipt" not in op.doc:
        op.doc["receipt"] = receipt_args(op, lane.settings.taxation)
    if S(op.state) is S.PAID:
        op.state = step(S(op.state), "fiscalize")
        lane.store.save(op, "fiscalize", {"receipt": op.doc["receipt"]})
    action = "refund" if op.kind == KIND_RETURN else "sell"
    lane.progress("fiscal", "Печать чека…")
    out = lane.calls.call(lane.settings.fiscal, action, op.id, op.doc["receipt"], progress=lane.progress)
    if out.status is not ReplyStatus.DONE:
        op.doc["problem"] = f"Чек не напечатан: {out.message}"
        op.doc["fiscal_error"] = {"code": out.code, "message": out.message}
        op.state = step(S(op.state), "fiscal_failed")
        lane.store.save(op, "fiscal_failed", op.doc["fiscal_error"])
        lane.changed()
        raise CheckoutRefused(op.doc["problem"] + ". Устраните причину и повторите печать"
                              + ("" if out.code in UNKNOWN_CODES else " или отмените оплату"))
    crashpoint(CRASH_AFTER_RECEIPT)
    op.doc.update(fiscal=out.result or {}, problem="", completed_at=now())
    op.doc.pop("fiscal_error", None)
    op.state = step(S(op.state), "fiscalized")
    op.event_pending = True
    lane.store.save(op, "fiscalized", {"fd_number": op.doc["fiscal"].get("fd_number")})
    slip = lane.slips.plan(op)
    lane.emit_event(op)
    crashpoint(CRASH_BEFORE_REPLY)
    lane.slips.run(slip, lane.progress)
    lane.changed()
    return lane.view_of(op)


def receipt_args(op: Op, taxation: int) -> dict[str, Any]:
    """The register's ``sell`` / ``refund`` args for ``op``: items, payments by kind, taxation, cashier."""
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
        "taxation": taxation, "cashier": fiscal_cashier(op.doc["cashier"]),
    }
    if op.doc.get("customer_contact"):
        args["customer_contact"] = op.doc["customer_contact"]
    return args


def retry_receipt(lane: Lane) -> dict[str, Any]:
    sale = active_sale(lane)
    if S(sale.state) is not S.FISCAL_PENDING:
        raise CheckoutRefused("Чек не ждёт печати")
    return fiscalize(lane, sale)


# Giving up --------------------------------------------------------------------------------------
def give_up(lane: Lane) -> dict[str, Any]:
    """The receipt cannot be printed and the cashier gives up: void the card charge, hand back cash."""
    sale = active_sale(lane)
    error = sale.doc.get("fiscal_error") or {}
    if S(sale.state) is S.FISCAL_PENDING and error.get("code") in UNKNOWN_CODES | {None}:
        raise CheckoutRefused("Неизвестно, напечатан ли чек: сначала повторите печать (ККТ проверит ФН)")
    sale.state = step(S(sale.state), "give_up")
    lane.store.save(sale, "give_up", error)
    return void(lane, sale)


def void(lane: Lane, sale: Op) -> dict[str, Any]:
    """Void every card payment of ``sale`` under ``{sale}.v{n}`` (idempotent), then ``cancelled_refunded``
    and the void slip (see the module doc)."""
    voided = []
    for n, p in enumerate(sale.doc.get("payments", []), start=1):
        if p["type"] != "card":
            continue
        assert lane.settings.payment is not None
        void_id = f"{sale.id}.v{n}"
        out = lane.calls.call(lane.settings.payment, "cancel", void_id,
                              {"operation_id": p["operation_id"]}, progress=lane.progress)
        if out.status is not ReplyStatus.DONE:
            sale.state = step(S(sale.state), "void_failed")
            sale.doc["problem"] = f"Оплата картой не отменена: {out.message}"
            lane.store.save(sale, "void_failed", {"code": out.code, "message": out.message})
            lane.changed()
            raise CheckoutRefused(sale.doc["problem"] + ". Требуется разбор: не выдавайте товар")
        voided.append({**p, "rrn": (out.result or {}).get("rrn") or p.get("rrn"), "void_id": void_id})
    sale.doc["voided"] = voided
    sale.doc["cash_returned"] = sum(p["amount"] for p in sale.doc.get("payments", []) if p["type"] == "cash")
    sale.doc["reason"] = "чек не напечатан: оплата отменена"
    sale.doc["voided_at"] = now()
    sale.state = step(S(sale.state), "voided")
    sale.event_pending = True
    lane.store.save(sale, "voided", {"voided": voided})
    slip = lane.slips.plan(sale)
    lane.emit_event(sale)
    lane.update_record(current_sale=None)
    lane.slips.run(slip, lane.progress)
    lane.changed()
    return lane.view_of(sale)


# Receipts the cloud asks for ----------------------------------------------------------------------
def fiscalize_order(lane: Lane, op_id: str, args: dict[str, Any]) -> dict[str, Any]:
    """A receipt for a sale not made at this lane (a delivery's settlement with its prepayment)."""
    lane.require_ready()
    existing = lane.store.get(op_id)
    if existing is not None:
        return lane.resume(existing)
    record = lane.record()
    op = Op(op_id, lane.id, KIND_FISCALIZE, S.PAID, {
        "order_id": args.get("order_id"), "lines": args["lines"], "payments": args["payments"],
        "receipt_items": args["receipt_items"], "cashier": lane.require_cashier(args.get("cashier")),
        "customer_contact": args.get("customer_contact"), "opened_at": now(), "change": 0,
    }, shift_id=record.get("shift_id"))
    lane.store.save(op, "fiscalize_order", {"order_id": args.get("order_id")})
    return fiscalize(lane, op)
