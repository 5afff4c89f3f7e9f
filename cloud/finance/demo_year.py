"""A seeded, deterministic year of a food chain's bank statements, with the true allocation.

Used to measure honestly how much rules learned from the first half-year allocate in the
second, and as demo data. ООО «ВИТРИНА-ПРОДУКТЫ»: 8 stores, a production kitchen, an online
shop; three accounts (Сбербанк: retail acquiring, cash collection, suppliers, rent, taxes;
ВТБ: salary project, loan, some suppliers, per-payment fees; Т-Банк: online acquiring,
marketing, IT, delivery). What is in it and why it is hard:

- ~40 suppliers on different rhythms with purposes in many styles (invoice, УПД, contract,
  abbreviations, upper case, a Latin «c» in «cчету», double spaces, VAT 22 %/10 %/none);
- counterparties with several meanings: the bank (acquiring, fees, salary registries, loan
  principal, interest), the tax office (ЕНП, state duty), our own INN (cash collection per
  store, transfers), landlords (rent paid for next month, utilities re-billed this month),
  utilities with one contract per store;
- one-offs: a new supplier, equipment, a store renovation, legal services, a fine,
  dividends, a new loan tranche; individual payouts without INN.

Every line carries its true allocation (article, ЦФО, accrual shift): the "hand" allocation
of the first half, and the answer key for the second.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal

from cloud.finance.allocation import Share
from protocols.onec import (
    AccountOperation,
    AccountSection,
    BankDocument,
    Direction,
    Encoding,
    FileHeader,
    Party,
    StatementFile,
    TaxFields,
)

OWN_INN, OWN_KPP, OWN_NAME = "7703123456", "770301001", 'ООО "ВИТРИНА-ПРОДУКТЫ"'
ACC_SBER, ACC_VTB, ACC_TBANK = "40702810938000012345", "40702810500000054321", "40702810110000098765"
BANKS = {
    ACC_SBER: ("ПАО СБЕРБАНК", "7707083893", "044525225", "30101810400000000225"),
    ACC_VTB: ("Банк ВТБ (ПАО)", "7702070139", "044525187", "30101810700000000187"),
    ACC_TBANK: ('АО "ТБанк"', "7710140679", "044525974", "30101810145250000974"),
}
STORES = 8
MONTHS_RU = (
    "январь",
    "февраль",
    "март",
    "апрель",
    "май",
    "июнь",
    "июль",
    "август",
    "сентябрь",
    "октябрь",
    "ноябрь",
    "декабрь",
)
MONTHS_GEN = (
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
)


def store_cfo(n: int) -> str:
    return f"STORE-{n:02d}"


@dataclass(frozen=True, slots=True)
class Counterparty:
    name: str
    inn: str
    account: str
    kpp: str = ""


@dataclass(frozen=True, slots=True)
class TrueLine:
    """One generated operation on one own account with its true allocation."""

    account: str
    direction: Direction
    document: BankDocument
    label: Share

    @property
    def key(self) -> str:
        return AccountOperation(self.account, self.direction, self.document).dedupe_key


@dataclass
class DemoYear:
    year: int
    lines: list[TrueLine] = field(default_factory=list)

    def truth(self) -> dict[str, Share]:
        return {line.key: line.label for line in self.lines}

    def statements(self) -> list[StatementFile]:
        """One 1CClientBankExchange statement per account per month, balances consistent."""
        balances = {
            ACC_SBER: Decimal("5000000.00"),
            ACC_VTB: Decimal("1500000.00"),
            ACC_TBANK: Decimal("300000.00"),
        }
        out: list[StatementFile] = []
        for month in range(1, 13):
            start = dt.date(self.year, month, 1)
            end = dt.date(self.year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
            for account in (ACC_SBER, ACC_VTB, ACC_TBANK):
                mine = [ln for ln in self.lines if ln.account == account and start <= _booked(ln) <= end]
                mine.sort(key=lambda ln: (_booked(ln), ln.document.number))
                inflow = sum(
                    (ln.document.amount for ln in mine if ln.direction is Direction.INFLOW), Decimal(0)
                )
                outflow = sum(
                    (ln.document.amount for ln in mine if ln.direction is Direction.OUTFLOW), Decimal(0)
                )
                opening = balances[account]
                balances[account] = opening + inflow - outflow
                section = AccountSection(account, start, end, opening, inflow, outflow, balances[account])
                docs: list[BankDocument] = []
                for ln in mine:
                    if ln.document not in docs:
                        docs.append(ln.document)
                header = FileHeader(
                    "1.03",
                    Encoding.WINDOWS,
                    BANKS[account][0],
                    "1С:Бухгалтерия предприятия",
                    end,
                    dt.time(23, 0),
                    start,
                    end,
                    (account,),
                    ("Платежное поручение", "Банковский ордер", "Мемориальный ордер"),
                )
                out.append(StatementFile(header, (section,), tuple(docs)))
        return out


def _booked(line: TrueLine) -> dt.date:
    d = line.document
    moved = d.debited_on if line.direction is Direction.OUTFLOW else d.credited_on
    return moved or d.date


def _inn(rng: random.Random, digits: int = 10) -> str:
    return str(rng.randint(10 ** (digits - 1), 10**digits - 1))


def _account(rng: random.Random, prefix: str = "40702810") -> str:
    return prefix + str(rng.randint(10**11, 10**12 - 1))


def _money(rng: random.Random, base: float, spread: float = 0.3) -> Decimal:
    kopecks = max(100, int(base * 100 * rng.lognormvariate(0, spread)))
    return Decimal(kopecks) / 100


def _fmt(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _date(d: dt.date, short: bool = False) -> str:
    return d.strftime("%d.%m.%y" if short else "%d.%m.%Y")


_GOODS = {
    "dairy": "молочную продукцию",
    "meat": "мясную продукцию",
    "bakery": "хлебобулочные изделия",
    "veg": "овощи и фрукты",
    "drinks": "напитки",
    "grocery": "продукты питания",
    "fish": "рыбную продукцию",
    "frozen": "замороженную продукцию",
    "sweets": "кондитерские изделия",
    "raw": "сырьё для производства",
    "pack": "упаковку",
    "household": "хозяйственные товары",
}
_SUPPLIER_WORDS = (
    "Молочный край",
    "Мясной двор",
    "Хлебный дом",
    "Агрокомплекс Восток",
    "Фрукт Импорт",
    "Напитки Плюс",
    "Бакалея Опт",
    "Рыбный мир",
    "Холод-Продукт",
    "Сладкая жизнь",
    "Фермер Центр",
    "Зелёная долина",
    "Домашний сыр",
    "Птицефабрика Северная",
    "Колбасный цех № 1",
    "Торговый дом Восход",
    "Каравай",
    "Мелькомбинат",
    "Овощебаза Южная",
    "Сок-Трейд",
    "Водный мир",
    "Чайная компания",
    "Кофе Опт",
    "Яйцо Регион",
    "Специи и пряности",
    "Масложиркомбинат",
    "Макаронная фабрика",
    "Консервный завод",
    "ЭкоПродукт",
    "Деревенское молоко",
    "Мороженое Опт",
    "Пекарня Славянка",
    "Рыбпромснаб",
    "Грибная ферма",
    "Пакет-Пласт",
    "Упаковка Сервис",
    "Тара-Профи",
    "Ингредиент Плюс",
    "Мука и крупы",
    "Технопродукт",
)
_KINDS = (
    "dairy",
    "meat",
    "bakery",
    "veg",
    "veg",
    "drinks",
    "grocery",
    "fish",
    "frozen",
    "sweets",
    "veg",
    "veg",
    "dairy",
    "meat",
    "meat",
    "grocery",
    "bakery",
    "raw",
    "veg",
    "drinks",
    "drinks",
    "grocery",
    "grocery",
    "grocery",
    "raw",
    "raw",
    "grocery",
    "grocery",
    "grocery",
    "dairy",
    "frozen",
    "bakery",
    "fish",
    "veg",
    "pack",
    "pack",
    "pack",
    "raw",
    "raw",
    "household",
)
_FOOD_10 = {"dairy", "meat", "bakery", "veg", "fish", "grocery", "raw"}


class _Gen:
    def __init__(self, year: int, seed: int) -> None:
        self.year = year
        self.rng = random.Random(seed)
        self.demo = DemoYear(year)
        self.numbers = {ACC_SBER: 100, ACC_VTB: 5000, ACC_TBANK: 9000}
        self.own = {acc: Counterparty(OWN_NAME, OWN_INN, acc, OWN_KPP) for acc in BANKS}

    # --- document helpers ---------------------------------------------------------------

    def days(self) -> Iterator[dt.date]:
        day = dt.date(self.year, 1, 1)
        while day.year == self.year:
            yield day
            day += dt.timedelta(days=1)

    def workday(self, day: dt.date) -> dt.date:
        while day.weekday() >= 5:
            day += dt.timedelta(days=1)
        return day if day.year == self.year else dt.date(self.year, 12, 30)

    def pay(
        self,
        account: str,
        day: dt.date,
        to: Counterparty,
        amount: Decimal,
        purpose: str,
        label: Share,
        kind: str = "Платежное поручение",
        tax: bool = False,
    ) -> None:
        self.numbers[account] += 1
        doc = BankDocument(
            kind=kind,
            number=str(self.numbers[account]),
            date=day,
            amount=amount,
            payer=_party(self.own[account]),
            payee=_party(to),
            purpose=purpose,
            debited_on=day,
            operation_kind="01" if kind == "Платежное поручение" else "17",
            priority="5",
        )
        if tax:
            doc = replace(doc, tax=TaxFields("01", "18201061201010000510", "45382000", "0", "0", "0", "0"))
        self.demo.lines.append(TrueLine(account, Direction.OUTFLOW, doc, label))

    def receive(
        self,
        account: str,
        day: dt.date,
        source: Counterparty,
        amount: Decimal,
        purpose: str,
        label: Share,
        kind: str = "Платежное поручение",
    ) -> None:
        doc = BankDocument(
            kind=kind,
            number=str(self.rng.randint(1, 999999)),
            date=day,
            amount=amount,
            payer=_party(source),
            payee=_party(self.own[account]),
            purpose=purpose,
            credited_on=day,
            operation_kind="01",
            priority="5",
        )
        self.demo.lines.append(TrueLine(account, Direction.INFLOW, doc, label))

    def transfer(self, src: str, dst: str, day: dt.date, amount: Decimal, purpose: str) -> None:
        self.numbers[src] += 1
        doc = BankDocument(
            kind="Платежное поручение",
            number=str(self.numbers[src]),
            date=day,
            amount=amount,
            payer=_party(self.own[src]),
            payee=_party(self.own[dst]),
            purpose=purpose,
            debited_on=day,
            credited_on=day,
            operation_kind="01",
            priority="5",
        )
        label = Share("D.4.1")
        self.demo.lines.append(TrueLine(src, Direction.OUTFLOW, doc, label))
        self.demo.lines.append(TrueLine(dst, Direction.INFLOW, doc, label))

    def noise(self, text: str) -> str:
        r = self.rng.random()
        if r < 0.05:
            return text.upper()
        if r < 0.09:
            return text.replace("счету", "cчету").replace("Счет", "Cчет")  # Latin c
        if r < 0.14:
            return text.replace(" ", "  ", 2)
        if r < 0.18:
            return text.replace("счету", "счёту")
        return text

    # --- the year -----------------------------------------------------------------------

    def run(self) -> DemoYear:
        self.revenue()
        self.cash_collection()
        self.suppliers()
        self.rent_and_utilities()
        self.payroll_taxes_loan()
        self.services()
        self.bank_fees()
        self.transfers()
        self.one_offs()
        return self.demo

    def revenue(self) -> None:
        sber = Counterparty("ПАО СБЕРБАНК", BANKS[ACC_SBER][1], "30233810838000000001", "773601001")
        yoo = Counterparty('НКО "ЮМани" (ООО)', "7750005725", "40702810300000099001", "770501001")
        for day in self.days():
            gross = _money(self.rng, 8 * 62000, 0.15)
            fee = (gross * Decimal("0.018")).quantize(Decimal("0.01"))
            purpose = (
                f"Зачисление средств по операциям эквайринга. Мерчант № 781234500. Дата реестра {_date(day)}. "
                f"Комиссия {_fmt(fee)}. Возврат покупок 0.00. НДС не облагается"
            )
            self.receive(
                ACC_SBER,
                day + dt.timedelta(days=1) if day.month < 12 or day.day < 31 else day,
                sber,
                gross - fee,
                purpose,
                Share("D.1.1.2", cfo="RETAIL"),
            )
            online = _money(self.rng, 95000, 0.35)
            reward = (online * Decimal("0.028")).quantize(Decimal("0.01"))
            p2 = (
                f"Перечисление денежных средств по договору № 451290/19 за {_date(day)}. Сумма переводов "
                f"{_fmt(online)}, вознаграждение {_fmt(reward)}. Без налога (НДС)"
            )
            self.receive(
                ACC_TBANK,
                self.workday(day + dt.timedelta(days=1)) if day.day < 31 or day.month < 12 else day,
                yoo,
                online - reward,
                p2,
                Share("D.1.1.3", cfo="ONLINE"),
            )

    def cash_collection(self) -> None:
        for day in self.days():
            if day.weekday() not in (0, 2, 4):
                continue
            for store in range(1, STORES + 1):
                amount = _money(self.rng, 118000, 0.25)
                bag = self.rng.randint(10000, 99999)
                purpose = self.noise(
                    f"Взнос наличных. Инкассированная выручка магазина № {store}. Сумка № 00{bag}"
                )
                src = Counterparty(OWN_NAME, OWN_INN, "20202810838000000011", OWN_KPP)
                self.receive(
                    ACC_SBER,
                    day,
                    src,
                    amount,
                    purpose,
                    Share("D.1.1.1", cfo=store_cfo(store)),
                    kind="Мемориальный ордер",
                )

    def suppliers(self) -> None:
        rng = self.rng
        for i, (word, kind) in enumerate(zip(_SUPPLIER_WORDS, _KINDS, strict=True)):
            form = rng.choice(['ООО "{}"', "ООО «{}»", 'АО "{}"', "ИП {}"] if i % 7 else ['ООО "{}"'])
            cp = Counterparty(
                form.format(word), _inn(rng, 12 if form.startswith("ИП") else 10), _account(rng)
            )
            per_month = rng.choice([1, 1, 2, 2, 4, 4, 8]) if kind != "household" else 1
            base = rng.choice([60000, 120000, 250000, 400000, 900000]) / max(1, per_month // 2)
            account = ACC_VTB if i % 9 == 4 else ACC_SBER
            article = (
                "D.1.2.2" if kind in ("raw", "pack") else ("D.1.2.11" if kind == "household" else "D.1.2.1")
            )
            cfo = "PRODUCTION" if kind in ("raw", "pack") else None
            rate = rng.choice(["10", "22"]) if kind in _FOOD_10 else "22"
            usn = rng.random() < 0.15
            contract = f"П-{rng.randint(1, 99)}/{rng.choice([2024, 2025])}"
            style = rng.randrange(6)
            starts = 1 if i < 37 else 7  # the last three suppliers appear only in the second half
            for month in range(starts, 13):
                for k in range(per_month):
                    if rng.random() < 0.08:
                        continue  # skipped delivery
                    day = self.workday(
                        dt.date(self.year, month, 1 + (k * 28 // per_month) + rng.randint(0, 2))
                    )
                    amount = _money(rng, base, 0.35)
                    inv = rng.randint(1, 9999)
                    inv_day = day - dt.timedelta(days=rng.randint(3, 20))
                    vat = (amount * Decimal(rate) / (100 + Decimal(rate))).quantize(Decimal("0.01"))
                    vat_text = "НДС не облагается" if usn else f"в т.ч. НДС {rate} % - {_fmt(vat)} руб."
                    purpose = [
                        f"Оплата по счету № {inv} от {_date(inv_day)} за {_GOODS[kind]}, {vat_text}",
                        f"Оплата по счету №{inv} от {_date(inv_day, True)} за товар. {vat_text}",
                        f"Оплата по УПД № {inv} от {_date(inv_day)} за {_GOODS[kind]}, {vat_text}",
                        f"Оплата за {_GOODS[kind]} по договору поставки № {contract}, сч. {inv}, {vat_text}",
                        f"опл. сч {inv} от {_date(inv_day)} {_GOODS[kind]} {vat_text}",
                        f"Оплата по дог. {contract} по счетам {inv}, {inv + 1} за {_GOODS[kind]}. {vat_text}",
                    ][style if rng.random() < 0.85 else rng.randrange(6)]
                    self.pay(account, day, cp, amount, self.noise(purpose), Share(article, cfo=cfo))
                if rng.random() < 0.03:  # a supplier refunds an overpayment
                    day = self.workday(dt.date(self.year, month, 20))
                    self.receive(
                        account,
                        day,
                        cp,
                        _money(rng, 8000),
                        f"Возврат излишне перечисленных денежных средств по п/п № {rng.randint(100, 999)}. "
                        f"{vat_text}",
                        Share("D.1.1.5"),
                    )

    def rent_and_utilities(self) -> None:
        rng = self.rng
        energy = Counterparty('АО "Мосэнергосбыт"', "7736520080", _account(rng))
        water = Counterparty('АО "Мосводоканал"', "7701984274", _account(rng))
        waste = Counterparty('ООО "МКМ-Логистика"', "7725773660", _account(rng))
        for store in range(1, STORES + 1):
            ip = store in (3, 6)
            landlord = Counterparty(
                f"ИП {rng.choice(['Петров С. И.', 'Алиева Н. Р.', 'Ким В. Г.'])}"
                if ip
                else f'ООО "{rng.choice(["Недвижимость", "ТЦ Радуга", "Арена-Инвест", "Городские площади"])}-{store}"',
                _inn(rng, 12 if ip else 10),
                _account(rng, "40802810" if ip else "40702810"),
            )
            rent = Decimal(rng.choice([180, 240, 310, 420, 560])) * 1000
            contract = f"А-{store}{rng.randint(10, 99)}"
            energy_contract = str(rng.randint(10**7, 10**8 - 1))
            water_contract = f"{rng.randint(100000, 999999)}-ХВС"
            for month in range(1, 13):
                nxt = month % 12
                day = self.workday(dt.date(self.year, month, 22 + rng.randint(0, 4)))
                purpose = (
                    f"Арендная плата за {MONTHS_RU[nxt]} {self.year + (month == 12)} г. по договору аренды "
                    f"№ {contract} от 01.02.2024. НДС не облагается"
                )
                self.pay(
                    ACC_SBER,
                    day,
                    landlord,
                    rent,
                    self.noise(purpose),
                    Share("D.1.2.3", cfo=store_cfo(store), month_shift=1),
                )
                if store % 2 == 0:
                    day = self.workday(dt.date(self.year, month, 12))
                    self.pay(
                        ACC_SBER,
                        day,
                        landlord,
                        _money(rng, 25000),
                        f"Возмещение коммунальных услуг за {MONTHS_RU[month - 1]} по договору аренды № {contract}",
                        Share("D.1.2.4", cfo=store_cfo(store)),
                    )
                if store <= 6:
                    day = self.workday(dt.date(self.year, month, 15))
                    self.pay(
                        ACC_SBER,
                        day,
                        energy,
                        _money(rng, 95000, 0.2),
                        f"Оплата по договору энергоснабжения № {energy_contract} за {MONTHS_RU[month - 1]} "
                        f"{self.year} г. В т.ч. НДС 22 %",
                        Share("D.1.2.4", cfo=store_cfo(store)),
                    )
                    self.pay(
                        ACC_SBER,
                        day,
                        water,
                        _money(rng, 9000, 0.2),
                        f"Оплата за холодное водоснабжение по договору № {water_contract} за {MONTHS_RU[month - 1]}. "
                        f"НДС 22 %",
                        Share("D.1.2.4", cfo=store_cfo(store)),
                    )
        for month in range(1, 13):
            self.pay(
                ACC_SBER,
                self.workday(dt.date(self.year, month, 18)),
                waste,
                _money(rng, 42000, 0.1),
                f"Оплата услуг по обращению с ТКО за {MONTHS_RU[month - 1]}, НДС 22 %",
                Share("D.1.2.4", cfo="HQ"),
            )

    def payroll_taxes_loan(self) -> None:
        rng = self.rng
        vtb = Counterparty("Банк ВТБ (ПАО)", BANKS[ACC_VTB][1], "30101810700000000187", "770201001")
        fns = Counterparty(
            "Казначейство России (ФНС России)", "7727406020", "03100643000000018500", "770801001"
        )
        for month in range(1, 13):
            prev = MONTHS_RU[month - 2]
            reg = month * 2
            d10 = self.workday(dt.date(self.year, month, 10))
            self.pay(
                ACC_VTB,
                d10,
                vtb,
                _money(rng, 2400000, 0.05),
                f"Перечисление заработной платы за {prev} по реестру № {reg} от {_date(d10)} согласно договору "
                f"№ 12/ЗП от 15.01.2024. НДФЛ удержан и перечислен полностью",
                Share("D.1.2.5", cfo="HQ"),
            )
            d25 = self.workday(dt.date(self.year, month, 25))
            self.pay(
                ACC_VTB,
                d25,
                vtb,
                _money(rng, 1100000, 0.05),
                f"Перечисление аванса за {MONTHS_RU[month - 1]} по реестру № {reg + 1} от {_date(d25)} согласно "
                f"договору № 12/ЗП от 15.01.2024",
                Share("D.1.2.5", cfo="HQ"),
            )
            d28 = self.workday(dt.date(self.year, month, 28))
            self.pay(
                ACC_SBER,
                d28,
                fns,
                _money(rng, 1300000, 0.2),
                "Единый налоговый платеж",
                Share("D.1.2.6", cfo="HQ"),
                tax=True,
            )
            d15 = self.workday(dt.date(self.year, month, 15))
            self.pay(
                ACC_VTB,
                d15,
                vtb,
                Decimal("850000.00"),
                "Погашение основного долга по кредитному договору № КД-77/2025 от 12.03.2025. НДС не облагается",
                Share("D.3.2.1"),
                kind="Банковский ордер",
            )
            self.pay(
                ACC_VTB,
                d15,
                vtb,
                _money(rng, 190000, 0.05),
                f"Уплата процентов по кредитному договору № КД-77/2025 от 12.03.2025 за {prev}. НДС не облагается",
                Share("D.3.2.2"),
                kind="Банковский ордер",
            )
            for _ in range(rng.randint(1, 4)):  # leavers and sick pay straight to personal cards
                person = Counterparty(
                    rng.choice(
                        [
                            "Иванов Иван Петрович",
                            "Смирнова Ольга Викторовна",
                            "Кузнецов Андрей Сергеевич",
                            "Попова Мария Алексеевна",
                            "Васильев Дмитрий Олегович",
                            "Новикова Анна Игоревна",
                        ]
                    ),
                    "",
                    _account(rng, "40817810"),
                )
                day = self.workday(dt.date(self.year, month, rng.randint(1, 27)))
                what = rng.choice(
                    [
                        "Выплата заработной платы при увольнении",
                        "Выплата отпускных",
                        "Выплата пособия по временной нетрудоспособности",
                        "Окончательный расчет при увольнении",
                    ]
                )
                self.pay(
                    ACC_VTB,
                    day,
                    person,
                    _money(rng, 42000, 0.4),
                    f"{what} {person.name}. НДФЛ удержан. Без НДС",
                    Share("D.1.2.5", cfo="HQ"),
                )
            if month in (3, 9):
                day = self.workday(dt.date(self.year, month, 5))
                self.pay(
                    ACC_SBER,
                    day,
                    fns,
                    Decimal("3500.00"),
                    "Государственная пошлина за государственную регистрацию изменений",
                    Share("D.1.2.13", cfo="HQ"),
                )
            if month in (2, 5):
                day = self.workday(dt.date(self.year, month, 7))
                self.pay(
                    ACC_SBER,
                    day,
                    fns,
                    Decimal("2000.00"),
                    "Государственная пошлина за выдачу выписки",
                    Share("D.1.2.13", cfo="HQ"),
                )

    def services(self) -> None:
        rng = self.rng
        monthly = [
            (
                'ООО ЧОП "Барс"',
                "D.1.2.12",
                "HQ",
                160000,
                "Оплата услуг охраны за {m} по договору № 14-О",
                ACC_SBER,
            ),
            (
                'ООО "Клининг Сервис"',
                "D.1.2.12",
                "HQ",
                90000,
                "Оплата по счету № {n} за уборку помещений за {m}",
                ACC_SBER,
            ),
            (
                'ПАО "Ростелеком"',
                "D.1.2.10",
                "HQ",
                28000,
                "Оплата услуг связи по лицевому счету 277000123456 за {m}",
                ACC_TBANK,
            ),
            ('ПАО "МТС"', "D.1.2.10", "HQ", 14000, "Оплата услуг связи, счет {n} за {m}", ACC_TBANK),
            ('ООО "Первый БИТ"', "D.1.2.10", "HQ", 35000, "Сопровождение 1С за {m}, счет № {n}", ACC_TBANK),
            (
                'АО "ПФ "СКБ Контур"',
                "D.1.2.10",
                "HQ",
                9000,
                "Оплата по счету {n} за Диадок, Экстерн",
                ACC_TBANK,
            ),
            ('ООО "Такском"', "D.1.2.10", "RETAIL", 22000, "Услуги ОФД для ККТ по счету {n}", ACC_TBANK),
            (
                'ООО "Газпромбанк Автолизинг"',
                "D.3.2.4",
                None,
                240000,
                "Лизинговый платеж по договору лизинга № ЛД-50-1234/25 за {m}, в т.ч. НДС 22 %",
                ACC_SBER,
            ),
        ]
        for name, article, cfo, base, text, account in monthly:
            cp = Counterparty(name, _inn(rng), _account(rng))
            for month in range(1, 13):
                day = self.workday(dt.date(self.year, month, rng.randint(3, 20)))
                purpose = text.format(m=MONTHS_RU[month - 1], n=rng.randint(100, 9999))
                self.pay(
                    account, day, cp, _money(rng, base, 0.1), self.noise(purpose), Share(article, cfo=cfo)
                )
        irregular = [
            (
                'ООО "Яндекс"',
                "D.1.2.9",
                "ONLINE",
                70000,
                3,
                "Пополнение рекламного кабинета Яндекс Директ, счет № {n}",
            ),
            (
                'ООО "ВК"',
                "D.1.2.9",
                "ONLINE",
                40000,
                1,
                "Оплата по счету № {n} за рекламные услуги VK Реклама",
            ),
            (
                'ООО "Достависта"',
                "D.1.2.8",
                "ONLINE",
                55000,
                4,
                "Оплата услуг курьерской доставки по счету {n}",
            ),
            (
                'ООО "Деловые Линии"',
                "D.1.2.8",
                "HQ",
                30000,
                2,
                "Оплата транспортно-экспедиционных услуг, счет {n}",
            ),
            (
                "ИП Сидоров П. А.",
                "D.1.2.11",
                "HQ",
                25000,
                1,
                "Ремонт холодильного оборудования по акту № {n}",
            ),
            ('ООО "Комус"', "D.1.2.11", "HQ", 18000, 1, "Оплата по счету № {n} за канцтовары и хозтовары"),
            (
                'ООО "Дезсервис"',
                "D.1.2.11",
                "HQ",
                12000,
                1,
                "Дезинсекция и дератизация по договору № 7-Д, счет {n}",
            ),
        ]
        for name, article, cfo, base, per_month, text in irregular:
            cp = Counterparty(name, _inn(rng, 12 if name.startswith("ИП") else 10), _account(rng))
            for month in range(1, 13):
                for _ in range(rng.randint(max(0, per_month - 1), per_month + 1)):
                    day = self.workday(dt.date(self.year, month, rng.randint(1, 27)))
                    self.pay(
                        ACC_TBANK,
                        day,
                        cp,
                        _money(rng, base, 0.4),
                        self.noise(text.format(n=rng.randint(100, 9999))),
                        Share(article, cfo=cfo),
                    )

    def bank_fees(self) -> None:
        rng = self.rng
        for account, (bank, inn, _, _) in BANKS.items():
            fee_cp = Counterparty(bank, inn, "70601810" + str(rng.randint(10**11, 10**12 - 1)))
            for month in range(1, 13):
                day = self.workday(dt.date(self.year, month, 1))
                self.pay(
                    account,
                    day,
                    fee_cp,
                    Decimal(rng.choice(["1490.00", "2990.00", "4900.00"])),
                    f"Комиссия за обслуживание счета за {MONTHS_RU[month - 2]} по тарифу. Без НДС",
                    Share("D.1.2.7", cfo="HQ"),
                    kind="Банковский ордер",
                )
        # ВТБ charges per outgoing third-party payment.
        vtb_fee = Counterparty("Банк ВТБ (ПАО)", BANKS[ACC_VTB][1], "70601810500002740257")
        for line in list(self.demo.lines):
            if (
                line.account == ACC_VTB
                and line.direction is Direction.OUTFLOW
                and line.document.payee.inn != OWN_INN
                and line.document.kind == "Платежное поручение"
            ):
                doc = line.document
                self.pay(
                    ACC_VTB,
                    doc.date,
                    vtb_fee,
                    Decimal("29.00"),
                    f"Комиссия за перевод по п/п № {doc.number} от {_date(doc.date)}. Без НДС",
                    Share("D.1.2.7", cfo="HQ"),
                    kind="Банковский ордер",
                )

    def transfers(self) -> None:
        for day in self.days():
            if day.weekday() == 1:
                text = (
                    "Перевод собственных средств. НДС не облагается"
                    if self.rng.random() < 0.9
                    else "Перевод денежных средств между своими счетами. Без НДС"
                )
                self.transfer(ACC_SBER, ACC_VTB, day, _money(self.rng, 1100000, 0.2), text)
            if day.day == 5:
                self.transfer(
                    ACC_SBER,
                    ACC_TBANK,
                    self.workday(day),
                    _money(self.rng, 400000, 0.2),
                    "Перевод собственных средств. НДС не облагается",
                )

    def one_offs(self) -> None:
        rng, y = self.rng, self.year
        vtb = Counterparty("Банк ВТБ (ПАО)", BANKS[ACC_VTB][1], "30101810700000000187", "770201001")
        eq = Counterparty('ООО "Холодильные системы"', _inn(rng), _account(rng))
        self.pay(
            ACC_SBER,
            dt.date(y, 2, 11),
            Counterparty('ООО "Кассовый центр"', _inn(rng), _account(rng)),
            Decimal("186000.00"),
            "Оплата по счету № 55 от 03.02.2026 за кассовое оборудование (POS-терминалы), в т.ч. НДС 22 %",
            Share("D.2.2.1", cfo="RETAIL"),
        )
        self.pay(
            ACC_SBER,
            dt.date(y, 9, 14),
            eq,
            Decimal("1245000.00"),
            f"Оплата по счету № 318 от 08.09.{y} за холодильные витрины (4 шт.), в т.ч. НДС 22 % 224508.20 руб.",
            Share("D.2.2.1", cfo=store_cfo(8)),
        )
        self.pay(
            ACC_SBER,
            dt.date(y, 10, 6),
            Counterparty('ООО "СтройМонтаж"', _inn(rng), _account(rng)),
            Decimal("780000.00"),
            "Оплата по договору подряда № 12/П от 01.10.2026 на ремонт торгового зала "
            "магазина № 5, в т.ч. НДС 22 %",
            Share("D.2.2.2", cfo=store_cfo(5)),
        )
        self.pay(
            ACC_TBANK,
            dt.date(y, 11, 12),
            Counterparty('ООО "Юридическое бюро Право"', _inn(rng), _account(rng)),
            Decimal("95000.00"),
            "Оплата юридических услуг по договору № 3-Ю, НДС не облагается",
            Share("D.1.2.19", cfo="HQ"),
        )
        gibdd = Counterparty(
            "УФК по г. Москве (ГУ МВД России по г. Москве)", "7707089101", "03100643000000017300"
        )
        self.pay(
            ACC_SBER,
            dt.date(y, 8, 3),
            gibdd,
            Decimal("2500.00"),
            "Штраф по постановлению № 18810177260803123456 за нарушение ПДД",
            Share("D.1.2.13", cfo="HQ"),
        )
        owner = Counterparty("Соколов Артём Викторович", "", _account(rng, "40817810"))
        self.pay(
            ACC_SBER,
            dt.date(y, 7, 20),
            owner,
            Decimal("1740000.00"),
            "Выплата дивидендов за 2025 год по решению единственного участника от 10.07.2026. НДФЛ удержан",
            Share("D.3.2.3"),
        )
        self.receive(
            ACC_VTB,
            dt.date(y, 8, 17),
            vtb,
            Decimal("6000000.00"),
            "Выдача кредита по кредитному договору № КД-15/2026 от 14.08.2026",
            Share("D.3.1.1"),
        )


def _party(cp: Counterparty) -> Party:
    return Party(
        account=cp.account,
        inn=cp.inn,
        kpp=cp.kpp,
        full_name=cp.name,
        name=cp.name,
        settlement_account=cp.account,
    )


def generate_year(year: int = 2026, seed: int = 20260101) -> DemoYear:
    """The same year for the same seed, always."""
    return _Gen(year, seed).run()
