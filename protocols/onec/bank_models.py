"""Typed, frozen values of a 1CClientBankExchange file (format 1.02/1.03).

Layout of a file (one ``Key=Value`` per line, CRLF, code page per ``Кодировка``)::

    1CClientBankExchange
    ВерсияФормата=1.03            ┐
    Кодировка=Windows             │ header: FileHeader
    Отправитель=… ДатаСоздания=…  │ (РасчСчет= and Документ= may repeat)
    РасчСчет=40702810…            ┘
    СекцияРасчСчет                ┐ AccountSection, one per account:
    РасчСчет=… НачальныйОстаток=… │ balances and turnovers for the period
    КонецРасчСчет                 ┘
    СекцияДокумент=Платежное поручение   ┐ BankDocument, any kind (банковский ордер,
    Номер=… Дата=… Сумма=…               │ платежное требование, инкассовое поручение…)
    Плательщик…= Получатель…= …          │
    КонецДокумента                       ┘
    КонецФайла

The fields this code reasons about are typed attributes; every other field of a section is
kept verbatim, in file order, in ``extra`` so that a file read and written back loses nothing
the bank or 1C put there (line 2–4 of a name, the bank's receipt fields, letters of credit…).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from protocols.onec.encoding import Encoding

Extra = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class FileHeader:
    """The lines between ``1CClientBankExchange`` and the first section."""

    format_version: str = "1.03"
    encoding: Encoding = Encoding.WINDOWS
    sender: str = ""
    receiver: str = ""
    created_on: dt.date | None = None
    created_at: dt.time | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    accounts: tuple[str, ...] = ()
    document_kinds: tuple[str, ...] = ()
    extra: Extra = ()


@dataclass(frozen=True, slots=True)
class AccountSection:
    """``СекцияРасчСчет``: the bank's own totals for one account; any of them may be absent."""

    account: str
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    opening_balance: Decimal | None = None
    total_inflow: Decimal | None = None
    total_outflow: Decimal | None = None
    closing_balance: Decimal | None = None
    extra: Extra = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Party:
    """One side of a payment: ``Плательщик…`` or ``Получатель…`` fields.

    ``account`` is ``…Счет`` (the account in this bank's books); ``settlement_account`` is
    ``…РасчСчет`` (differs from it when a payment goes through a correspondent bank).
    ``full_name`` is ``Плательщик=`` which banks often fill as "ИНН 7701… ООО Ромашка";
    ``name`` is ``Плательщик1=``, the name alone. Use :attr:`display_name`.
    """

    account: str = ""
    inn: str = ""
    kpp: str = ""
    full_name: str = ""
    name: str = ""
    settlement_account: str = ""
    bank_name: str = ""
    bank_city: str = ""
    bic: str = ""
    corr_account: str = ""

    @property
    def display_name(self) -> str:
        return self.name or self.full_name


@dataclass(frozen=True, slots=True)
class TaxFields:
    """Fields of payments to the budget (taxes, ЕНП). Kept as strings: "0" is a valid value."""

    drafter_status: str = ""  # СтатусСоставителя (e.g. 01; 02 for tax agents)
    kbk: str = ""  # ПоказательКБК (20 digits)
    oktmo: str = ""  # ОКАТО key; since 2014 it carries the ОКТМО code
    basis: str = ""  # ПоказательОснования
    period: str = ""  # ПоказательПериода
    number: str = ""  # ПоказательНомера
    date: str = ""  # ПоказательДаты ("0" allowed, so not a date)
    kind: str = ""  # ПоказательТипа

    @property
    def is_empty(self) -> bool:
        return not any(
            (
                self.drafter_status,
                self.kbk,
                self.oktmo,
                self.basis,
                self.period,
                self.number,
                self.date,
                self.kind,
            )
        )


@dataclass(frozen=True, slots=True)
class BankDocument:
    """``СекцияДокумент=<kind>``: one payment document of any kind.

    ``debited_on``/``credited_on`` (``ДатаСписано``/``ДатаПоступило``) are the dates money
    left or reached the account; in a statement exactly the one on our side is usually set.
    """

    kind: str
    number: str
    date: dt.date
    amount: Decimal
    payer: Party = field(default_factory=Party)
    payee: Party = field(default_factory=Party)
    purpose: str = ""
    debited_on: dt.date | None = None
    credited_on: dt.date | None = None
    payment_kind: str = ""  # ВидПлатежа: почтой / телеграфом / электронно / срочно
    operation_kind: str = ""  # ВидОплаты: 01 платёжное поручение, 17 банковский ордер…
    priority: str = ""  # Очередность
    uin: str = ""  # Код (УИН)
    purpose_code: str = ""  # КодНазПлатежа
    tax: TaxFields = field(default_factory=TaxFields)
    extra: Extra = ()
    line: int = field(default=0, compare=False)

    @property
    def purpose_text(self) -> str:
        """The purpose, from ``НазначениеПлатежа`` or, when empty, its numbered lines 1–6."""
        if self.purpose:
            return self.purpose
        parts = [value for key, value in self.extra if key.startswith("НазначениеПлатежа") and value]
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class StatementFile:
    """A whole file. ``warnings`` are facts worth logging that did not stop the import."""

    header: FileHeader
    accounts: tuple[AccountSection, ...] = ()
    documents: tuple[BankDocument, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def own_accounts(self) -> frozenset[str]:
        """Accounts the file is about: from the sections, or from the header when there are none."""
        return frozenset(a.account for a in self.accounts) | frozenset(self.header.accounts)
