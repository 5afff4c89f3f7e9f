"""Slips without devices: what an outcome means for the paper, the documents' layout, ids and reprints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.checkout.slips import (
    FAILED,
    KIND_SLIP,
    PRINTED,
    PRINTING,
    SLIP_CARD,
    UNKNOWN,
    SlipPrinter,
    SlipRefused,
    card_slip,
    receipt_copy,
    slip_id,
)
from gateway.checkout.store import KIND_RETURN, KIND_SALE, CheckoutStore, Op
from gateway.devices.base import Outcome
from gateway.devices.receipt_printer.actions import PrintDocumentArgs
from protocols.escpos import layout

SALE = "01a2b3c4d5e6f708192a3b4c5d6e7f80"
UPOS_SLIP = ("ПАО СБЕРБАНК\r\nТерминал: 00123456\r\nОПЛАТА\r\nСумма (Руб): 134.90\r\nRRN: 747288000001\r\n"
             "ОДОБРЕНО\r\n~S\r\nКОПИЯ ДЛЯ КАССИРА\r\n")


class FakeJournal:
    def __init__(self) -> None:
        self.slips: dict[str, str] = {}

    def lookup(self, command_id: str) -> Any:
        if command_id not in self.slips:
            return None
        reply = Outcome.done({"slip": self.slips[command_id]}).to_reply(command_id, 0)
        return type("Entry", (), {"reply": reply})()


class FakeCalls:
    """The journal's answers, scripted: each ``call`` returns the next outcome and records the args."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.asked: list[tuple[str, str, str, dict[str, Any]]] = []
        self.journal = FakeJournal()

    def call(self, device: str, action: str, command_id: str, args: dict[str, Any], **_: Any) -> Outcome:
        self.asked.append((device, action, command_id, args))
        return self.outcomes.pop(0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CheckoutStore]:
    s = CheckoutStore(tmp_path / "checkout.db")
    yield s
    s.close()


def _sale(kind: str = KIND_SALE, *, card: bool = True, state: str = "completed") -> Op:
    payments = [{"type": "cash", "amount": 500}]
    if card:
        payments.append({"type": "card", "amount": 13490, "operation_id": f"{SALE}.p1", "rrn": "747288000001",
                         "auth_code": "6245DD", "card_mask": "************5678"})
    return Op(SALE, "lane1", kind, state, {
        "lines": [{"line_no": 1, "name": "Молоко 3,2% 1 л", "quantity": "1", "measure": "piece", "price": 13990,
                   "amount": 13990},
                  {"line_no": 2, "name": "Сыр Российский весовой", "quantity": "0.734", "measure": "kg",
                   "price": 45990, "amount": 33757}],
        "payments": payments, "change": 0, "cashier": {"name": "Иванова Анна"},
        "completed_at": "2026-11-27T09:15:00+00:00",
        "fiscal": {"fd_number": 7, "fiscal_sign": 1248126750, "fn_number": "9999078900012345", "shift_number": 1,
                   "receipt_number": 3},
    }, shift_id="shift1")


def _printer(store: CheckoutStore, calls: FakeCalls, printer: str | None = "rp1") -> SlipPrinter:
    return SlipPrinter("lane1", printer, "pos1", store, calls)  # type: ignore[arg-type]


def _lines(document: dict[str, Any], width: int = 48) -> list[str]:
    """The document as the printer family lays it out (validation included: it must fit the paper)."""
    return [line.text for line in layout(PrintDocumentArgs.model_validate(document).build(), width)]


def test_the_automatic_slip_is_planned_once_and_printed_under_its_own_id(store: CheckoutStore) -> None:
    calls = FakeCalls(Outcome.done({"printed": True}))
    calls.journal.slips[f"{SALE}.p1"] = UPOS_SLIP
    slips = _printer(store, calls)
    sale = _sale()
    planned = slips.plan(sale)
    assert planned is not None and planned.id == f"{SALE}.slip1" and planned.state == PRINTING
    assert planned.kind == KIND_SLIP and slips.plan(sale).id == planned.id  # type: ignore[union-attr]
    printed = slips.run(planned)
    assert printed is not None and printed.state == PRINTED
    assert [(d, a, i) for d, a, i, _ in calls.asked] == [("rp1", "print_document", f"{SALE}.slip1")]
    text = _lines(calls.asked[0][3])
    assert "ПАО СБЕРБАНК" in text and "ОДОБРЕНО" in text and "КОПИЯ ДЛЯ КАССИРА" not in text, text
    assert [s for s, _, _ in store.steps(planned.id)] == ["slip_planned", "slip_printed"]
    assert slips.run(printed) is printed and len(calls.asked) == 1, "a final slip is never printed again"
    assert slips.view(sale) == {"state": PRINTED, "message": "Слип напечатан", "prints": 1, "can_reprint": True}


@pytest.mark.parametrize(("sale", "printer"), [
    (_sale(card=False), "rp1"), (_sale(state="fiscal_pending"), "rp1"), (_sale(), None),
])
def test_no_slip_without_a_completed_card_payment_and_a_printer(store: CheckoutStore, sale: Op,
                                                                printer: str | None) -> None:
    slips = _printer(store, FakeCalls(), printer)
    assert slips.plan(sale) is None and store.get(slip_id(SALE, SLIP_CARD, 1)) is None
    if printer is None:
        with pytest.raises(SlipRefused, match="принтер"):
            slips.reprint(sale)


@pytest.mark.parametrize(("outcome", "state", "words"), [
    (Outcome.failed("paper_out", "Закончилась бумага. Документ не печатался", {"last": {"printed": False}}),
     FAILED, "Слип не напечатан: Закончилась бумага"),
    (Outcome.failed("device_offline", "устройство 'rp1' не в сети"), FAILED, "Слип не напечатан"),
    (Outcome.failed("print_incomplete", "Открыта крышка", {"last": {"printed": None}}), UNKNOWN,
     "Неизвестно, напечатан ли слип"),
    (Outcome.failed("interrupted", "the gateway stopped while 'print_document' was running"), UNKNOWN,
     "Неизвестно, напечатан ли слип"),
    (Outcome.failed("pending", "rp1: print_document не завершилась"), UNKNOWN, "Неизвестно"),
])
def test_a_failed_print_is_recorded_and_a_reprint_is_a_new_print(store: CheckoutStore, outcome: Outcome, state: str,
                                                                  words: str) -> None:
    calls = FakeCalls(outcome, Outcome.done({"printed": True}))
    slips = _printer(store, calls)
    sale = _sale()
    slip = slips.run(slips.plan(sale))
    assert slip is not None and slip.state == state and slip.doc["message"].startswith(words), slip.doc
    view = slips.view(sale)
    assert view is not None and view["state"] == state and view["can_reprint"]
    again = slips.reprint(sale)
    assert again.id == f"{SALE}.slip2" and again.state == PRINTED
    assert [i for _, _, i, _ in calls.asked] == [f"{SALE}.slip1", f"{SALE}.slip2"]
    marked = "КОПИЯ" in _lines(calls.asked[1][3])
    assert marked is (state == UNKNOWN), "a copy only when the first one printed or may have"


def test_a_reprint_that_fails_is_refused_with_the_reason_and_recorded(store: CheckoutStore) -> None:
    calls = FakeCalls(Outcome.failed("cover_open", "Открыта крышка принтера. Документ не печатался",
                                     {"last": {"printed": False}}))
    slips = _printer(store, calls)
    with pytest.raises(SlipRefused, match="Слип не напечатан: Открыта крышка"):
        slips.reprint(_sale())
    assert store.get(f"{SALE}.slip1").state == FAILED  # type: ignore[union-attr]
    with pytest.raises(SlipRefused, match="нет оплаты картой"):
        slips.reprint(_sale(card=False))


def test_recovery_prints_a_planned_slip_under_the_same_id_and_skips_a_finished_one(store: CheckoutStore) -> None:
    calls = FakeCalls(Outcome.done({"printed": True}))
    slips = _printer(store, calls)
    planned = slips.plan(_sale())
    assert planned is not None
    slips.recover(planned)
    slips.recover(planned)  # a stale copy: the store says printed
    assert [i for _, _, i, _ in calls.asked] == [f"{SALE}.slip1"]


def test_composed_slip_when_the_terminal_gave_no_text_fits_narrow_paper(store: CheckoutStore) -> None:
    doc = card_slip(_sale(KIND_RETURN), "", terminal="pos1", lane="lane1", copy=False)
    text = _lines(doc, 32)
    assert text[0].strip() == "Возврат на карту" and "ВОЗВРАТ" in text and "ОДОБРЕНО" in [t.strip() for t in text]
    joined = "\n".join(text)
    for want in ("Терминал: pos1", "Карта: ************5678", "Код авторизации: 6245DD", "RRN: 747288000001",
                 "134,90", "Дата: 27.11.2026"):
        assert want in joined, want
    copy = "\n".join(_lines(receipt_copy(_sale(), lane="lane1"), 32))
    assert "НЕ ЯВЛЯЕТСЯ" in copy and "0,734 кг" in copy and "337,57" in copy and "ФД № 7" in copy
