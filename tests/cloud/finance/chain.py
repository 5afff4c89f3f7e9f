"""The worked example: a small chain (2 stores, 2 accounts, 27 operations, January–February 2026).

ООО «Пример» (ИНН 7701000001) has account A (Сбербанк, 100 000.00 on 1 January) and account B
(ВТБ, 80 000.00). Every figure the tests assert is computed by hand in the test's docstrings
from the lines below.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from protocols.onec import (
    AccountSection,
    BankDocument,
    Encoding,
    FileHeader,
    Party,
    StatementFile,
    write_statement,
)

OWN_INN = "7701000001"
ACC_A = "40702810000000000001"
ACC_B = "40702810000000000002"
BANK_INN = "7707083893"
LANDLORD_INN = "7702000001"
MILK_INN = "7703000001"
REPAIR_INN = "7704000001"
IVANOV_INN = "770400000099"
OPENING = {ACC_A: Decimal("100000.00"), ACC_B: Decimal("80000.00")}

# (day, own account, direction, amount, counterparty inn, name, purpose)
LINES: list[tuple[dt.date, str, str, str, str, str, str]] = [
    # January
    (dt.date(2026, 1, 10), ACC_A, "in", "40000.00", OWN_INN, "ООО Пример", "Инкассация выручки магазин 1"),
    (dt.date(2026, 1, 20), ACC_A, "in", "40000.00", OWN_INN, "ООО Пример", "Инкассация выручки магазин 1 за 19.01"),
    (dt.date(2026, 1, 21), ACC_A, "in", "30000.00", OWN_INN, "ООО Пример", "Инкассация выручки магазин 2"),
    (dt.date(2026, 1, 22), ACC_A, "in", "20000.00", BANK_INN, "ПАО Сбербанк", "Зачисление по эквайрингу за 21.01"),
    (dt.date(2026, 1, 28), ACC_A, "out", "50000.00", LANDLORD_INN, "ООО Арендодатель", "Аренда за февраль 2026"),
    (dt.date(2026, 1, 11), ACC_A, "out", "30000.00", MILK_INN, "ООО Молоко", "Оплата по счету 11 за молочную продукцию"),
    (dt.date(2026, 1, 18), ACC_A, "out", "20000.00", MILK_INN, "ООО Молоко", "Оплата по счету 17 за молочную продукцию"),
    (dt.date(2026, 1, 31), ACC_A, "out", "1500.00", BANK_INN, "ПАО Сбербанк", "Комиссия за ведение счета январь"),
    (dt.date(2026, 1, 30), ACC_A, "out", "1500.00", BANK_INN, "ПАО Сбербанк", "Комиссия за платежи январь"),
    (dt.date(2026, 1, 15), ACC_A, "transfer", "60000.00", OWN_INN, "ООО Пример", "Перевод собственных средств"),
    (dt.date(2026, 1, 25), ACC_B, "out", "35000.00", BANK_INN, "Банк ВТБ", "Перечисление заработной платы по реестру 1"),
    (dt.date(2026, 1, 26), ACC_B, "out", "25000.00", BANK_INN, "Банк ВТБ", "Перечисление заработной платы по реестру 2"),
    (dt.date(2026, 1, 12), ACC_A, "out", "3000.00", IVANOV_INN, "ИП Иванов", "Оплата услуг по договору 5"),
    # February
    (dt.date(2026, 2, 2), ACC_A, "in", "45000.00", OWN_INN, "ООО Пример", "Инкассация выручки магазин 1"),
    (dt.date(2026, 2, 15), ACC_A, "in", "45000.00", OWN_INN, "ООО Пример", "Инкассация выручки магазин 1 за 14.02"),
    (dt.date(2026, 2, 16), ACC_A, "in", "35000.00", OWN_INN, "ООО Пример", "Инкассация выручки магазин 2"),
    (dt.date(2026, 2, 17), ACC_A, "in", "25000.01", BANK_INN, "ПАО Сбербанк", "Зачисление по эквайрингу за 16.02"),
    (dt.date(2026, 2, 5), ACC_A, "in", "2000.00", MILK_INN, "ООО Молоко", "Возврат излишне уплаченных средств"),
    (dt.date(2026, 2, 26), ACC_A, "out", "50000.00", LANDLORD_INN, "ООО Арендодатель", "Аренда за март 2026"),
    (dt.date(2026, 2, 9), ACC_A, "out", "40000.00", MILK_INN, "ООО Молоко", "Оплата по счету 31 за молочную продукцию"),
    (dt.date(2026, 2, 19), ACC_A, "out", "10000.00", MILK_INN, "ООО Молоко", "Оплата по счету 40 за молочную продукцию"),
    (dt.date(2026, 2, 27), ACC_A, "out", "1500.00", BANK_INN, "ПАО Сбербанк", "Комиссия за ведение счета февраль"),
    (dt.date(2026, 2, 25), ACC_B, "out", "60000.00", BANK_INN, "Банк ВТБ", "Перечисление заработной платы по реестру 3"),
    (dt.date(2026, 2, 27), ACC_B, "out", "500.00", BANK_INN, "Банк ВТБ", "Комиссия за платежи февраль"),
    (dt.date(2026, 2, 10), ACC_B, "out", "8000.00", REPAIR_INN, "ООО Ремонт", "Ремонт холодильной витрины"),
]


def _party(account: str, inn: str, name: str) -> Party:
    return Party(account=account, inn=inn, full_name=name, name=name, bic="044525225")


def _other_account(inn: str) -> str:
    return "407028109" + inn.rjust(11, "0")[-11:]


def documents(until: dt.date | None = None, since: dt.date | None = None, accounts: tuple[str, ...] = (ACC_A, ACC_B)) -> list[BankDocument]:
    out = []
    for number, (day, account, kind, amount, inn, name, purpose) in enumerate(LINES, start=1):
        if (until and day > until) or (since and day < since):
            continue
        own = _party(account, OWN_INN, "ООО Пример")
        if kind == "transfer":
            if ACC_A not in accounts and ACC_B not in accounts:
                continue
            payer, payee = own, _party(ACC_B, OWN_INN, "ООО Пример")
        elif account not in accounts:
            continue
        elif kind == "in":
            payer, payee = _party(_other_account(inn), inn, name), own
        else:
            payer, payee = own, _party(_other_account(inn), inn, name)
        out.append(BankDocument("Платежное поручение", str(number), day, Decimal(amount), payer, payee, purpose,
                                debited_on=day if kind != "in" else None, credited_on=day if kind != "out" else None))
    return out


def statement(date_from: dt.date = dt.date(2026, 1, 1), date_to: dt.date = dt.date(2026, 2, 28),
              accounts: tuple[str, ...] = (ACC_A, ACC_B), closing_error: Decimal = Decimal(0)) -> bytes:
    """A 1CClientBankExchange file (cp1251) of the lines in the period, balances consistent."""
    docs = documents(date_to, date_from, accounts)
    sections = []
    for account in accounts:
        before = documents(date_from - dt.timedelta(days=1), None, (ACC_A, ACC_B)) if date_from > dt.date(2026, 1, 1) else []
        opening = OPENING[account] + _net(before, account)
        inflow = sum((d.amount for d in docs if d.payee.account == account), Decimal(0))
        outflow = sum((d.amount for d in docs if d.payer.account == account), Decimal(0))
        sections.append(AccountSection(account, date_from, date_to, opening, inflow, outflow,
                                       opening + inflow - outflow + closing_error))
    header = FileHeader("1.03", Encoding.WINDOWS, "Банк", "1С:Бухгалтерия", date_to, dt.time(12, 0), date_from, date_to,
                        accounts, ("Платежное поручение",))
    return write_statement(StatementFile(header, tuple(sections), tuple(docs)))


def _net(docs: list[BankDocument], account: str) -> Decimal:
    return sum((d.amount for d in docs if d.payee.account == account), Decimal(0)) - sum(
        (d.amount for d in docs if d.payer.account == account), Decimal(0))
