"""Slips without devices: what an outcome means for the paper, the documents' layout, ids and reprints;
the void slip of a given-up sale, planned before it prints and never in the give-up's way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.checkout.lane import Lane, LaneSettings
from gateway.checkout.prices import PriceStore
from gateway.checkout.slips import (
    FAILED,
    KIND_SLIP,
    PRINTED,
    PRINTING,
    SLIP_CARD,
    SLIP_VOID,
    UNKNOWN,
    SlipPrinter,
    SlipRefused,
    card_slip,
    receipt_copy,
    slip_id,
    void_slip,
)
from gateway.checkout.store import KIND_RETURN, KIND_SALE, CheckoutStore, Op
from gateway.devices.base import Outcome
from gateway.devices.receipt_printer.actions import PrintDocumentArgs
from protocols.escpos import layout

SALE = "01a2b3c4d5e6f708192a3b4c5d6e7f80"
UPOS_SLIP = ("ПАО СБЕРБАНК\r\nТерминал: 00123456\r\nОПЛАТА\r\nСумма (Руб): 134.90\r\nRRN: 747288000001\r\n"
             "ОДОБРЕНО\r\n~S\r\nКОПИЯ ДЛЯ КАССИРА\r\n")
UPOS_VOID = ("ПАО СБЕРБАНК\r\nТерминал: 00123456\r\nОТМЕНА\r\nСумма (Руб): 134.90\r\nRRN: 747288000001\r\n"
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


def _given_up(kind: str = KIND_SALE, *, card: bool = True) -> Op:
    """A sale whose receipt could not be printed, given up: its card charge voided under ``{sale}.v2``."""
    op = _sale(kind, card=card, state="cancelled_refunded")
    op.doc.pop("fiscal")
    op.doc.pop("completed_at")
    op.doc["voided"] = [{**p, "void_id": f"{SALE}.v2"} for p in op.doc["payments"] if p["type"] == "card"]
    op.doc["voided_at"] = "2026-11-27T09:20:00+00:00"
    return op


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


# The void slip of a given-up sale --------------------------------------------------------------------
def test_the_void_slip_is_planned_once_and_printed_with_the_terminals_cancellation_text(
        store: CheckoutStore) -> None:
    calls = FakeCalls(Outcome.done({"printed": True}))
    calls.journal.slips[f"{SALE}.p1"] = UPOS_SLIP
    calls.journal.slips[f"{SALE}.v2"] = UPOS_VOID
    slips = _printer(store, calls)
    sale = _given_up()
    planned = slips.plan(sale)
    assert planned is not None and planned.id == f"{SALE}.void1" and planned.state == PRINTING
    assert planned.doc["slip"] == SLIP_VOID and slips.plan(sale).id == planned.id  # type: ignore[union-attr]
    assert store.get(slip_id(SALE, SLIP_CARD, 1)) is None, "no sale slip: the sale was never completed"
    printed = slips.run(planned)
    assert printed is not None and printed.state == PRINTED
    assert [(d, a, i) for d, a, i, _ in calls.asked] == [("rp1", "print_document", f"{SALE}.void1")]
    text = _lines(calls.asked[0][3])
    assert text[0].strip() == "Отмена оплаты картой", text
    assert "ОТМЕНА" in text and "ОПЛАТА" not in text and "КОПИЯ ДЛЯ КАССИРА" not in text, text
    assert "Чек не напечатан: оплата отменена" in text
    assert [s for s, _, _ in store.steps(planned.id)] == ["slip_planned", "slip_printed"]
    assert slips.run(printed) is printed and len(calls.asked) == 1, "a final slip is never printed again"
    assert slips.view(sale) == {"state": PRINTED, "message": "Слип отмены напечатан", "prints": 1,
                                "can_reprint": True}


def test_composed_void_slip_when_the_terminal_gave_no_text(store: CheckoutStore) -> None:
    text = _lines(void_slip(_given_up(), "", terminal="pos1", lane="lane1", copy=False), 32)
    assert text[0].strip() == "Отмена оплаты картой" and "ОТМЕНА" in text
    assert "ОДОБРЕНО" in [t.strip() for t in text]
    joined = "\n".join(text)
    for want in ("Терминал: pos1", "Карта: ************5678", "Код авторизации: 6245DD", "RRN: 747288000001",
                 "134,90", "Дата: 27.11.2026", "Чек не напечатан"):
        assert want in joined, want
    refund = _lines(void_slip(_given_up(KIND_RETURN), "", terminal="pos1", lane="lane1", copy=True), 32)
    assert refund[0].strip() == "Отмена возврата на карту" and "КОПИЯ" in [t.strip() for t in refund]


@pytest.mark.parametrize(("sale", "printer"), [
    (_given_up(card=False), "rp1"),  # cash only: nothing voided on the terminal
    (_sale(state="cancelled"), "rp1"),  # cancelled before payment
    (_sale(state="refund_pending"), "rp1"),  # the void not done yet
    (_given_up(), None),
])
def test_no_void_slip_without_a_voided_card_charge_and_a_printer(store: CheckoutStore, sale: Op,
                                                                 printer: str | None) -> None:
    slips = _printer(store, FakeCalls(), printer)
    assert slips.plan(sale) is None and store.get(slip_id(SALE, SLIP_VOID, 1)) is None
    assert slips.view(sale) is None


def test_a_failed_void_slip_is_reprinted_under_a_new_id(store: CheckoutStore) -> None:
    calls = FakeCalls(Outcome.failed("paper_out", "Закончилась бумага. Документ не печатался",
                                     {"last": {"printed": False}}), Outcome.done({"printed": True}))
    slips = _printer(store, calls)
    sale = _given_up()
    slip = slips.run(slips.plan(sale))
    assert slip is not None and slip.state == FAILED
    assert slip.doc["message"].startswith("Слип отмены не напечатан: Закончилась бумага"), slip.doc
    again = slips.reprint(sale)
    assert again.id == f"{SALE}.void2" and again.state == PRINTED
    assert "КОПИЯ" not in _lines(calls.asked[1][3]), "nothing printed before: this is the slip, not a copy"
    with pytest.raises(SlipRefused, match="нет оплаты картой"):
        slips.reprint(_given_up(card=False))


# The give-up itself, on a lane with scripted devices --------------------------------------------------
class ScriptedDevices(FakeCalls):
    """``cancel`` voids (its answer journaled with the terminal's slip text); the printer answers as scripted
    and each print records what the store held when the printer was asked."""

    def __init__(self, store: CheckoutStore, *printer: Outcome | Exception) -> None:
        super().__init__()
        self.store = store
        self.printer = list(printer)
        self.seen: list[tuple[str, str]] = []

    def call(self, device: str, action: str, command_id: str, args: dict[str, Any], **_: Any) -> Outcome:
        self.asked.append((device, action, command_id, args))
        if action == "cancel":
            self.journal.slips[command_id] = UPOS_VOID
            return Outcome.done({"rrn": "747288000001", "slip": UPOS_VOID})
        sale, slip = self.store.get(SALE), self.store.get(command_id)
        assert sale is not None and slip is not None
        self.seen.append((sale.state, slip.state))
        answer = self.printer.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _lane(tmp_path: Path, store: CheckoutStore, devices: ScriptedDevices) -> tuple[Lane, list[str]]:
    events: list[str] = []
    lane = Lane("lane1", LaneSettings(fiscal="kkt1", payment="pos1", printer="rp1"), store,
                PriceStore(tmp_path / "prices.db"), devices, lambda kind, data: events.append(kind),  # type: ignore[arg-type]
                weight_formats=())
    sale = _sale(state="fiscal_pending")
    sale.doc.pop("fiscal")
    sale.doc["lines"] = [{**line, "product_id": "p1", "vat": "vat10", "vat_rate": "НДС 10%", "marking_codes": [],
                          "source": "scan"} for line in sale.doc["lines"]]
    sale.doc["fiscal_error"] = {"code": "fiscal_paper_out", "message": "Нет бумаги"}
    store.save(sale, "fiscal_failed")
    lane.update_record(shift_state="open", shift_id="shift1", current_sale=SALE)
    lane.recovered.set()
    return lane, events


@pytest.mark.parametrize("printer", [
    Outcome.done({"printed": True}),
    Outcome.failed("device_offline", "устройство 'rp1' не в сети"),
    RuntimeError("the printer's worker blew up"),
])
def test_give_up_prints_the_void_slip_after_the_sale_and_its_slip_are_saved(
        tmp_path: Path, store: CheckoutStore, printer: Outcome | Exception) -> None:
    devices = ScriptedDevices(store, printer)
    lane, events = _lane(tmp_path, store, devices)
    done = lane.give_up()
    assert done["state"] == "cancelled_refunded" and lane.current() is None
    assert [(a, i) for _, a, i, _ in devices.asked] == [("cancel", f"{SALE}.v2"), ("print_document", f"{SALE}.void1")]
    assert devices.seen == [("cancelled_refunded", PRINTING)], "the sale and the slip's plan saved before the print"
    assert "ОТМЕНА" in _lines(devices.asked[1][3]) and events == ["sale_cancelled"]
    sale = store.get(SALE)
    assert sale is not None and sale.doc["voided"][0]["void_id"] == f"{SALE}.v2" and not sale.event_pending
    slip = store.get(f"{SALE}.void1")
    assert slip is not None
    if isinstance(printer, Exception):  # left "printing": the next start prints it under the same id
        assert slip.state == PRINTING and done["slip"]["state"] == PRINTING
    else:
        want = PRINTED if printer.status.value == "done" else FAILED
        assert slip.state == want and done["slip"]["state"] == want, done["slip"]


def test_recovery_after_a_crash_between_voided_and_the_slips_plan_prints_the_void_slip_once(
        tmp_path: Path, store: CheckoutStore) -> None:
    devices = ScriptedDevices(store, Outcome.done({"printed": True}))
    lane, events = _lane(tmp_path, store, devices)
    sale = store.get(SALE)
    assert sale is not None
    sale.state, sale.event_pending = "cancelled_refunded", True  # died right after "voided" was saved
    sale.doc["voided"] = [{**sale.doc["payments"][1], "void_id": f"{SALE}.v2"}]
    devices.journal.slips[f"{SALE}.v2"] = UPOS_VOID
    store.save(sale, "voided")
    lane.recovered.clear()
    assert SALE in lane.recover()
    assert lane.recover() == [], "nothing left to do"
    assert [(a, i) for _, a, i, _ in devices.asked] == [("print_document", f"{SALE}.void1")]
    assert events == ["sale_cancelled"] and store.get(f"{SALE}.void1").state == PRINTED  # type: ignore[union-attr]
