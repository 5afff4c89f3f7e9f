"""Card slips and receipt copies on the lane's receipt printer: at most once each, never in a sale's way.

The customer of a card payment gets the terminal's slip (``ОДОБРЕНО``, amount, card, RRN, auth
code), printed on the lane's ``printer`` after the fiscal receipt. When the receipt could not be
printed and the cashier gave up, the charge is voided and the customer gets the terminal's
cancellation slip instead (``ОТМЕНА``). Two rules shape this module:

* **The sale comes first.** A slip is planned only once the sale (or return) is saved final —
  ``completed``, or ``cancelled_refunded`` for the void slip — and its event is on its way; a
  printer that is offline, out of paper or broken leaves the sale as it ended and the slip
  ``failed`` (or ``unknown``) with a Russian message for the cashier, who reprints it when the
  printer is fixed. Nothing here raises into the saga.
* **At most once per id.** A slip print is an operation of its own in the checkout store (kind
  ``slip``), and its id is also the ``print_document`` command id in the gateway's journal, so
  the printer family's at-most-once machinery applies unchanged (see ``gateway.checkout.calls``).

Ids. The automatic card slip of operation ``{op}`` (a sale or a return) is ``{op}.slip1``; the
automatic void slip of a given-up one is ``{op}.void1``; a reprint the cashier asks for is
``{op}.slip{n}`` / ``{op}.void{n}`` (n = 2, 3, …; marked ``КОПИЯ`` when an earlier one printed or
may have printed); a non-fiscal copy of the receipt is ``{op}.copy{n}``. A reprint is always a new
id: a repeat of an old one would only return the stored answer.

The automatic slip, step by step (crash points, ``VITRINA_CRASHPOINT``, in the order met):

1. the sale is saved final: ``completed`` (the saga's ``fiscalized`` step) or ``cancelled_refunded``
   (its ``voided`` step)
2. the slip is saved ``printing`` with its exact document (only with a card payment — a voided
   one for the void slip — and a printer)
3. the sale's event goes to the outbox
4. ................................................................ ``lane.before_slip``
5. journal ``{op}.slip1`` (``{op}.void1``) running → the printer prints
6. the printer answered, the slip does not know yet ................ ``lane.after_slip``
7. ``printed`` / ``failed`` / ``unknown`` saved

The slip's text is the terminal's own, from the journaled answer of the card operation (the
charge ``{op}.p{n}``, the void ``{op}.v{n}``), cut at its ``~S`` mark; when the terminal gave none
it is composed from the approval (amount, card, auth code, RRN).

Recovery: a final sale whose event was pending gets its slip planned (a crash between 1
and 2); a slip still ``printing`` is printed again *under the same command id*, so the journal
decides: the printer was never asked (died before 5) → it prints now, once; the printer
answered (died at 6) → its stored answer, nothing printed again; the gateway died while the
printer printed → the receipt printer family answers ``interrupted`` without touching the
printer, and the slip is ``unknown``: a person looks at the paper and reprints if needed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from gateway.checkout.base import rub_amount
from gateway.checkout.calls import CODE_NOT_STARTED, DeviceCalls, stored_outcome
from gateway.checkout.store import KIND_FISCALIZE, KIND_RETURN, KIND_SALE, CheckoutStore, Op
from gateway.crashpoints import crashpoint
from gateway.devices.base import Outcome
from gateway.errors import GatewayError
from protocols.bus import ReplyCode, ReplyStatus
from protocols.upos.files import CUT as UPOS_CUT

log = logging.getLogger(__name__)

KIND_SLIP = "slip"
"""The checkout store's kind of a slip or copy print (its own row, its own steps)."""

PRINTING = "printing"
"""Saved before the printer is asked; recovery prints it under the same id (the journal decides)."""
PRINTED = "printed"
FAILED = "failed"
"""Nothing was printed (the printer refused before sending, or was offline)."""
UNKNOWN = "unknown"
"""Sent, but the outcome is not known (half printed, link lost, the gateway died while printing)."""
SLIP_FINAL = frozenset({PRINTED, FAILED, UNKNOWN})

SLIP_CARD = "card"
SLIP_VOID = "void"
"""The cancellation slip of a card charge voided because the receipt could not be printed."""
SLIP_COPY = "copy"
_NAMES = {SLIP_CARD: "slip", SLIP_VOID: "void", SLIP_COPY: "copy"}
"""The slip kind as its id has it."""
_WHAT = {SLIP_CARD: ("Слип", ""), SLIP_VOID: ("Слип отмены", ""), SLIP_COPY: ("Копия чека", "а")}
"""The print as the cashier's messages name it, and the ending its past participle takes."""

CRASH_BEFORE_SLIP = "lane.before_slip"
CRASH_AFTER_SLIP = "lane.after_slip"
CRASH_POINTS = (CRASH_BEFORE_SLIP, CRASH_AFTER_SLIP)

PRINT_ACTION = "print_document"
PRINT_TIMEOUT_S = 30.0
"""How long the cashier waits for a slip; past it the slip is ``unknown`` (the printer may still print it)."""

NOTHING_PRINTED = frozenset({ReplyCode.DEVICE_OFFLINE, ReplyCode.INVALID_ARGS, ReplyCode.UNKNOWN_ACTION,
                             ReplyCode.UNKNOWN_DEVICE, CODE_NOT_STARTED})
"""Failure codes that prove the printer got nothing (besides ``result.last.printed == false``)."""

ProgressFn = Callable[[str, str], None]


class SlipRefused(GatewayError):
    """A slip or copy the cashier asked for cannot be printed (the message is Russian)."""

    code = "slip_refused"


def _no_progress(stage: str, message: str) -> None:
    return None


class SlipPrinter:
    """The slips of one lane. Called under the lane's lock (the lane serialises everything)."""

    def __init__(self, lane_id: str, printer: str | None, payment: str | None, store: CheckoutStore,
                 calls: DeviceCalls) -> None:
        self.lane_id = lane_id
        self.printer = printer
        self.payment = payment
        self.store = store
        self.calls = calls

    # The automatic slip ----------------------------------------------------------------------
    def plan(self, op: Op) -> Op | None:
        """Save the card (or void) slip of a final ``op`` as ``printing`` (idempotent; ``None``: no slip)."""
        kind = automatic_slip(op)
        if not self.printer or kind is None:
            return None
        try:
            existing = self.store.get(slip_id(op.id, kind, 1))
            if existing is not None:
                return existing
            return self._save_new(op, kind, 1, copy=False)
        except Exception:  # never in the sale's way: the sale is final already
            log.exception("lane %s: the %s slip of %s could not be planned", self.lane_id, kind, op.id)
            return None

    def run(self, slip: Op | None, progress: ProgressFn = _no_progress) -> Op | None:
        """Print a ``printing`` slip (a final one is returned as it is). Never raises."""
        if slip is None or slip.state != PRINTING:
            return slip
        try:
            return self._print(slip, progress)
        except Exception:
            log.exception("lane %s: slip %s failed unexpectedly", self.lane_id, slip.id)
            return slip

    def recover(self, slip: Op) -> None:
        """A slip found unfinished at start: print it under the same id (see the module doc)."""
        fresh = self.store.get(slip.id)  # the sale's own recovery may have printed it already
        if fresh is not None and fresh.state == PRINTING:
            log.warning("lane %s: recovering slip %s", self.lane_id, slip.id)
            self.run(fresh)

    # What the cashier asks for ---------------------------------------------------------------
    def reprint(self, op: Op, progress: ProgressFn = _no_progress) -> Op:
        """The card (or void) slip of ``op`` again, under a new id; ``SlipRefused`` when it did not print."""
        kind = automatic_slip(op)
        if kind is None:
            if op.kind not in (KIND_SALE, KIND_RETURN) or op.state not in ("completed", "cancelled_refunded"):
                raise SlipRefused(f"Чек {op.id} не завершён: слипа нет")
            raise SlipRefused("В этом чеке нет оплаты картой: слипа нет")
        return self._request(op, kind, self.slips(op.id, kind), progress)

    def copy(self, op: Op, progress: ProgressFn = _no_progress) -> Op:
        """A non-fiscal copy of a completed receipt, under a new id; ``SlipRefused`` when it did not print."""
        if op.kind not in (KIND_SALE, KIND_RETURN, KIND_FISCALIZE) or op.state != "completed":
            raise SlipRefused(f"Чек {op.id} не завершён: копию печатать не с чего")
        return self._request(op, SLIP_COPY, self.slips(op.id, SLIP_COPY), progress)

    def _request(self, op: Op, kind: str, earlier: list[Op], progress: ProgressFn) -> Op:
        if not self.printer:
            raise SlipRefused("К кассе не подключён принтер чеков")
        if earlier and earlier[-1].state == PRINTING:
            raise SlipRefused("Предыдущая печать ещё не завершена: подождите")
        copy = kind == SLIP_COPY or any(s.state in (PRINTED, UNKNOWN) for s in earlier)
        slip = self._print(self._save_new(op, kind, len(earlier) + 1, copy=copy), progress)
        if slip.state != PRINTED:
            raise SlipRefused(slip.doc["message"])
        return slip

    # Reading ----------------------------------------------------------------------------------
    def slips(self, op_id: str, kind: str) -> list[Op]:
        """Every print of ``kind`` for ``op_id``, oldest first (ids are numbered without gaps)."""
        found = []
        n = 1
        while (slip := self.store.get(slip_id(op_id, kind, n))) is not None:
            found.append(slip)
            n += 1
        return found

    def view(self, op: Op) -> dict[str, Any] | None:
        """The card (or void) slip of ``op`` as the cashier page shows it (``None``: no slip for this one)."""
        kind = automatic_slip(op)
        if kind is None:
            return None
        found = self.slips(op.id, kind)
        if not found:
            if not self.printer:
                return None
            return {"state": FAILED, "message": f"{_WHAT[kind][0]} не печатался: напечатайте его", "prints": 0,
                    "can_reprint": True}
        last = found[-1]
        return {"state": last.state, "message": last.doc.get("message", ""), "prints": len(found),
                "can_reprint": bool(self.printer) and last.state != PRINTING}

    # Internals --------------------------------------------------------------------------------
    def _save_new(self, op: Op, kind: str, n: int, *, copy: bool) -> Op:
        assert self.printer is not None
        if kind == SLIP_CARD:
            charge = _card_payment(op.doc["payments"])
            document = card_slip(op, self._terminal_text(charge.get("operation_id")), terminal=self.payment or "",
                                 lane=self.lane_id, copy=copy)
        elif kind == SLIP_VOID:
            voided = _card_payment(op.doc["voided"])
            document = void_slip(op, self._terminal_text(voided.get("void_id")), terminal=self.payment or "",
                                 lane=self.lane_id, copy=copy)
        else:
            document = receipt_copy(op, lane=self.lane_id)
        slip = Op(slip_id(op.id, kind, n), self.lane_id, KIND_SLIP, PRINTING, {
            "op_id": op.id, "slip": kind, "n": n, "copy": copy, "printer": self.printer, "document": document,
            "message": "Печать…",
        }, shift_id=op.shift_id)
        self.store.save(slip, "slip_planned", {"op_id": op.id, "printer": self.printer})
        return slip

    def _print(self, slip: Op, progress: ProgressFn) -> Op:
        crashpoint(CRASH_BEFORE_SLIP)
        progress("slip", _PROGRESS[slip.doc["slip"]])
        out = self.calls.call(slip.doc["printer"], PRINT_ACTION, slip.id, slip.doc["document"],
                              timeout=PRINT_TIMEOUT_S)
        if out.status is ReplyStatus.DONE:
            crashpoint(CRASH_AFTER_SLIP)
        slip.state, slip.doc["message"] = _conclude(out, slip.doc["slip"])
        slip.doc["code"] = out.code
        self.store.save(slip, f"slip_{slip.state}", {"code": out.code, "message": out.message})
        if slip.state != PRINTED:
            log.warning("lane %s: %s %s: %s (%s)", self.lane_id, slip.doc["slip"], slip.id, slip.doc["message"],
                        out.code)
        return slip

    def _terminal_text(self, operation_id: str | None) -> str:
        """The slip text the terminal returned with card operation ``operation_id`` (journaled with its answer)."""
        entry = self.calls.journal.lookup(operation_id) if operation_id else None
        found = stored_outcome(entry) if entry is not None else None
        if found is None or found.status is not ReplyStatus.DONE:
            return ""
        return str((found.result or {}).get("slip") or "")


def slip_id(op_id: str, kind: str, n: int) -> str:
    """The slip operation's id, also its ``print_document`` command id (≤ 64 characters)."""
    return f"{op_id}.{_NAMES[kind]}{n}"


def automatic_slip(op: Op) -> str | None:
    """The slip ``op`` gets on its own: ``card`` for a completed sale or return paid (refunded) by card,
    ``void`` for one that ended ``cancelled_refunded`` with a card charge voided; otherwise ``None``."""
    if op.kind not in (KIND_SALE, KIND_RETURN):
        return None
    if op.state == "completed" and _has_card(op.doc.get("payments", [])):
        return SLIP_CARD
    if op.state == "cancelled_refunded" and _has_card(op.doc.get("voided", [])):
        return SLIP_VOID
    return None


def _has_card(payments: list[dict[str, Any]]) -> bool:
    return any(p["type"] == "card" and p.get("operation_id") for p in payments)


def _card_payment(payments: list[dict[str, Any]]) -> dict[str, Any]:
    """The card payment a slip is for (a sale has at most one: the tender's ``card_op``)."""
    return next(p for p in payments if p["type"] == "card")


_PROGRESS = {SLIP_CARD: "Печать слипа…", SLIP_VOID: "Печать слипа отмены…", SLIP_COPY: "Печать копии чека…"}


def _conclude(out: Outcome, kind: str) -> tuple[str, str]:
    what, end = _WHAT[kind]
    if out.status is ReplyStatus.DONE:
        return PRINTED, f"{what} напечатан{end}"
    last = (out.result or {}).get("last") or {}
    if out.code in NOTHING_PRINTED or last.get("printed") is False:
        return FAILED, (f"{what} не напечатан{end}: {out.message}. "
                        "Устраните причину и напечатайте повторно")
    return UNKNOWN, (f"Неизвестно, напечатан{end} ли "
                     f"{what.lower()}: {out.message}. Проверьте принтер и при необходимости напечатайте копию")


# Documents (the receipt printer family's ``print_document`` JSON) --------------------------------
def card_slip(op: Op, terminal_text: str, *, terminal: str, lane: str, copy: bool) -> dict[str, Any]:
    """The terminal's own slip text when it gave one; otherwise a slip composed from the approval."""
    refund = op.kind == KIND_RETURN
    return _slip(_card_payment(op.doc["payments"]), terminal_text, copy=copy, terminal=terminal,
                 when=op.doc.get("completed_at"), operation="ВОЗВРАТ" if refund else "ОПЛАТА",
                 title="Возврат на карту" if refund else "Оплата картой",
                 footer=[f"Касса {lane}, {'возврат' if refund else 'чек'} {op.id}"])


def void_slip(op: Op, terminal_text: str, *, terminal: str, lane: str, copy: bool) -> dict[str, Any]:
    """The void's slip: the terminal's own text when it gave one; otherwise composed (``ОТМЕНА``)."""
    refund = op.kind == KIND_RETURN
    return _slip(_card_payment(op.doc["voided"]), terminal_text, copy=copy, terminal=terminal,
                 when=op.doc.get("voided_at"), operation="ОТМЕНА",
                 title="Отмена возврата на карту" if refund else "Отмена оплаты картой",
                 footer=[f"Касса {lane}, {'возврат' if refund else 'чек'} {op.id}",
                         "Чек возврата не напечатан: возврат отменён" if refund
                         else "Чек не напечатан: оплата отменена"])


def _slip(card: dict[str, Any], terminal_text: str, *, copy: bool, terminal: str, when: str | None,
          operation: str, title: str, footer: list[str]) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if copy:
        blocks.append(_text("КОПИЯ", align="center", bold=True))
    lines = _terminal_lines(terminal_text)
    if lines:
        blocks += [_text(line) for line in lines]
    else:
        blocks += [
            _text(f"Терминал: {terminal}"),
            _text(f"Дата: {_local(when)}"),
            _text(operation, bold=True),
            {"type": "totals", "items": [["Сумма (Руб)", rub_amount(card["amount"])]]},
        ]
        for label, key in (("Карта", "card_mask"), ("Код авторизации", "auth_code"), ("RRN", "rrn"),
                           ("Номер операции", "operation_id")):
            if card.get(key):
                blocks.append(_text(f"{label}: {card[key]}"))
        blocks.append(_text("ОДОБРЕНО", align="center", bold=True))
    blocks += [{"type": "separator", "char": "-"}, *(_text(line) for line in footer)]
    return {"title": title, "blocks": blocks}


def receipt_copy(op: Op, *, lane: str) -> dict[str, Any]:
    """A non-fiscal copy of a completed receipt: lines, totals, payments and the fiscal attributes."""
    d = op.doc
    refund = op.kind == KIND_RETURN
    total = sum(line["amount"] for line in d["lines"])
    items = [["ИТОГО", rub_amount(total)]]
    names = {"cash": "Наличными", "card": "Картой", "prepayment": "Предоплата"}
    items += [[names.get(p["type"], p["type"]), rub_amount(p["amount"])] for p in d.get("payments", [])]
    if d.get("change"):
        items.append(["Сдача", rub_amount(d["change"])])
    blocks: list[dict[str, Any]] = [
        _text("НЕ ЯВЛЯЕТСЯ ФИСКАЛЬНЫМ ДОКУМЕНТОМ", align="center", bold=True),
        _text(f"Касса {lane}, кассир {(d.get('cashier') or {}).get('name', '')}"),
        _text(f"{'Возврат' if refund else 'Чек'} {op.id} от {_local(d.get('completed_at'))}"),
        {"type": "table", "columns": [{"title": "Товар"}, {"title": "Кол-во", "width": 9, "align": "right"},
                                      {"title": "Сумма", "width": 11, "align": "right"}],
         "rows": [[line["name"], _qty(line), rub_amount(line["amount"])] for line in d["lines"]]},
        {"type": "totals", "items": items},
    ]
    fiscal = d.get("fiscal") or {}
    if fiscal:
        blocks += [{"type": "separator", "char": "-"},
                   _text(f"ФД № {fiscal.get('fd_number')} ФП {fiscal.get('fiscal_sign')}"),
                   _text(f"ФН {fiscal.get('fn_number')}"),
                   _text(f"Смена {fiscal.get('shift_number')}, чек {fiscal.get('receipt_number')}")]
    return {"title": "Копия чека возврата" if refund else "Копия чека", "blocks": blocks}


def _terminal_lines(text: str) -> list[str]:
    """The slip's lines up to the terminal's cut mark (UPOS ``~S``), trailing blanks dropped."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if raw.strip() == UPOS_CUT:
            break
        lines.append(raw.rstrip())
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _text(text: str, *, align: str = "left", bold: bool = False) -> dict[str, Any]:
    return {"type": "text", "text": text, "align": align, "bold": bold}


def _qty(line: dict[str, Any]) -> str:
    qty = Decimal(line["quantity"])
    if line.get("measure") == "kg":
        return f"{qty:.3f}".replace(".", ",") + " кг"
    return f"{qty.normalize():f} шт"


def _local(iso: str | None) -> str:
    """A stored UTC time as the store's local time (the gateway runs in the store's zone)."""
    when = dt.datetime.fromisoformat(iso) if iso else dt.datetime.now(dt.UTC)
    return when.astimezone().strftime("%d.%m.%Y %H:%M")
