"""Field names of 1CClientBankExchange and the typed readers for their values.

Names follow the 1C standard "Обмен с системами Клиент банка" (format 1.02/1.03). Values are
text; amounts are plain decimals with a dot (some banks write a comma), dates ``dd.mm.yyyy``,
times ``hh:mm:ss``. Readers raise :class:`BadValue` naming the line and the field.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from protocols.onec.errors import BadValue, DuplicateField

HEADER_SINGLE = (
    "ВерсияФормата",
    "Кодировка",
    "Отправитель",
    "Получатель",
    "ДатаСоздания",
    "ВремяСоздания",
    "ДатаНачала",
    "ДатаКонца",
)
HEADER_MULTI = ("РасчСчет", "Документ")

ACCOUNT_FIELDS = (
    "ДатаНачала",
    "ДатаКонца",
    "РасчСчет",
    "НачальныйОстаток",
    "ВсегоПоступило",
    "ВсегоСписано",
    "КонечныйОстаток",
)

# Party attribute → field suffix after "Плательщик"/"Получатель", in the order 1C writes them.
PARTY_SUFFIXES = (
    ("account", "Счет"),
    ("full_name", ""),
    ("inn", "ИНН"),
    ("name", "1"),
    ("settlement_account", "РасчСчет"),
    ("bank_name", "Банк1"),
    ("bank_city", "Банк2"),
    ("bic", "БИК"),
    ("corr_account", "Корсчет"),
    ("kpp", "КПП"),
)
PAYER, PAYEE = "Плательщик", "Получатель"

TAX_FIELDS = (
    ("drafter_status", "СтатусСоставителя"),
    ("kbk", "ПоказательКБК"),
    ("oktmo", "ОКАТО"),
    ("basis", "ПоказательОснования"),
    ("period", "ПоказательПериода"),
    ("number", "ПоказательНомера"),
    ("date", "ПоказательДаты"),
    ("kind", "ПоказательТипа"),
)

DOCUMENT_SCALARS = (
    ("purpose", "НазначениеПлатежа"),
    ("payment_kind", "ВидПлатежа"),
    ("operation_kind", "ВидОплаты"),
    ("priority", "Очередность"),
    ("uin", "Код"),
    ("purpose_code", "КодНазПлатежа"),
)
DOCUMENT_DATES = (("debited_on", "ДатаСписано"), ("credited_on", "ДатаПоступило"))


def _document_fields() -> tuple[str, ...]:
    names = ["Номер", "Дата", "Сумма"]
    for prefix in (PAYER, PAYEE):
        names.extend(prefix + suffix for _, suffix in PARTY_SUFFIXES)
    names.extend(key for _, key in DOCUMENT_DATES)
    names.extend(key for _, key in DOCUMENT_SCALARS)
    names.extend(key for _, key in TAX_FIELDS)
    return tuple(names)


DOCUMENT_FIELDS = _document_fields()

KNOWN_VERSIONS = frozenset({"1.01", "1.02", "1.03"})

_AMOUNT = re.compile(r"(-?)(\d+)(?:[.,](\d+))?")
_DATE = re.compile(r"(\d{2})\.(\d{2})\.(\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
KOPECK = Decimal("0.01")


def read_amount(value: str, *, line: int, field: str, signed: bool = False) -> Decimal:
    """Parse ``12354.00`` (or ``12354,5``/``12354``) into kopeck-exact Decimal rubles."""
    text = value.strip()
    match = _AMOUNT.fullmatch(text)
    if match is None or (match.group(1) and not signed):
        raise BadValue(
            f"сумма «{value}» не число в рублях с копейками (пример: 1234.50)", line=line, field=field
        )
    whole, frac = match.group(2), match.group(3) or ""
    if len(frac) > 2 and frac[2:].strip("0"):
        raise BadValue(f"сумма «{value}» точнее копейки", line=line, field=field)
    amount = Decimal(f"{match.group(1)}{whole}.{(frac + '00')[:2]}")
    return amount


def read_date(value: str, *, line: int, field: str) -> dt.date:
    """Parse ``dd.mm.yyyy``; anything else (including 31.02.2026) names the line and field."""
    match = _DATE.fullmatch(value.strip())
    if match is None:
        raise BadValue(f"дата «{value}» не в формате ДД.ММ.ГГГГ", line=line, field=field)
    day, month, year = (int(g) for g in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise BadValue(f"даты «{value}» нет в календаре", line=line, field=field) from None


def read_time(value: str, *, line: int, field: str) -> dt.time:
    """Parse ``hh:mm:ss`` (seconds optional)."""
    match = _TIME.fullmatch(value.strip())
    if match is None:
        raise BadValue(f"время «{value}» не в формате ЧЧ:ММ:СС", line=line, field=field)
    hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    try:
        return dt.time(hour, minute, second)
    except ValueError:
        raise BadValue(f"времени «{value}» не бывает", line=line, field=field) from None


def format_amount(amount: Decimal) -> str:
    return format(amount.quantize(KOPECK), "f")


def format_date(value: dt.date) -> str:
    return value.strftime("%d.%m.%Y")


def format_time(value: dt.time) -> str:
    return value.strftime("%H:%M:%S")


class SectionFields:
    """The ``Key=Value`` lines of one section: typed keys once each, the rest kept in order."""

    def __init__(self, typed: tuple[str, ...], start_line: int, multi: tuple[str, ...] = ()) -> None:
        self._typed = frozenset(typed)
        self._multi = frozenset(multi)
        self.start_line = start_line
        self.values: dict[str, tuple[int, str]] = {}
        self.repeated: dict[str, list[str]] = {key: [] for key in multi}
        self.extra: list[tuple[str, str]] = []

    def add(self, line: int, key: str, value: str) -> None:
        if key in self._multi:
            self.repeated[key].append(value)
        elif key in self._typed:
            if key in self.values:
                first = self.values[key][0]
                raise DuplicateField(f"поле повторяется (первый раз в строке {first})", line=line, field=key)
            self.values[key] = (line, value)
        else:
            self.extra.append((key, value))

    def text(self, key: str) -> str:
        return self.values.get(key, (0, ""))[1]

    def line_of(self, key: str) -> int:
        return self.values.get(key, (self.start_line, ""))[0]

    def required(self, key: str) -> str:
        value = self.text(key)
        if not value.strip():
            raise BadValue("обязательное поле отсутствует или пусто", line=self.line_of(key), field=key)
        return value

    def date(self, key: str) -> dt.date | None:
        value = self.text(key)
        return read_date(value, line=self.line_of(key), field=key) if value.strip() else None

    def time(self, key: str) -> dt.time | None:
        value = self.text(key)
        return read_time(value, line=self.line_of(key), field=key) if value.strip() else None

    def amount(self, key: str, *, signed: bool = False) -> Decimal | None:
        value = self.text(key)
        if not value.strip():
            return None
        return read_amount(value, line=self.line_of(key), field=key, signed=signed)
