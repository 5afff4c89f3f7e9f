"""Shtrih-M errors: one base, split into our fault, the peer's fault and the device's refusal.

- ``LocalProtocolError``: we built something the protocol cannot carry (a price over 5
  bytes, a name that is not cp1251) or drove the link machine out of order.
- ``RemoteProtocolError``: the peer sent bytes that are not the protocol (bad LRC, a body too
  short for its command, an answer to a command we did not send). The link resynchronises.
- ``DeviceRefused``: a well-formed answer whose ERR byte is not 0. The code table below is
  data (vendor messages in Russian, sources: Shtrih-M protocol tables as reproduced in
  ``oleg-golovanov/pyshtrih`` excepts.py and the FN-era codes 01–20 of the Shtrih/FN
  protocol); each code maps to a typed subclass so callers catch meanings, not numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final


class ShtrihError(Exception):
    """Base of every Shtrih-M protocol error."""


class LocalProtocolError(ShtrihError):
    """Our fault: a value that cannot be encoded, or a link call in the wrong state."""


class RemoteProtocolError(ShtrihError):
    """The peer's fault: bytes that do not parse. ``data`` is what was dropped."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class BadChecksum(RemoteProtocolError):
    """A frame whose LRC does not match (the frame was consumed)."""


class MalformedMessage(RemoteProtocolError):
    """A frame body that does not parse as the command it names."""


class UnexpectedAnswer(RemoteProtocolError):
    """A well-formed answer to a command other than the one pending."""


class LinkFailed(ShtrihError):
    """The link machine gave up: no answer after every retry (state is sticky until reset)."""


class DeviceRefused(ShtrihError):
    """The device answered with a non-zero ERR byte."""

    def __init__(self, code: int, command: int = 0) -> None:
        self.code = code
        self.command = command
        self.message = error_message(code)
        super().__init__(f"{self.message} (код {code:02X}h, команда {command:X}h)")


class FiscalStorageError(DeviceRefused):
    """Codes 01–20: the fiscal storage (ФН) refused or failed."""


class BadParameters(DeviceRefused):
    """The command's parameters are wrong for this device or setting."""


class NotSupportedInMode(DeviceRefused):
    """The command is not allowed in the current mode/submode (or not at all)."""


class ShiftNotOpen(DeviceRefused):
    """The shift is closed: open it first."""


class ShiftAlreadyOpen(DeviceRefused):
    """The shift is open: the operation needs it closed."""


class ShiftExpired(DeviceRefused):
    """The shift has lasted more than 24 hours: close it (Z report) first."""


class ReceiptOpen(DeviceRefused):
    """A receipt is open: close or cancel it first."""


class ReceiptClosed(DeviceRefused):
    """No receipt is open for this operation."""


class PaymentError(DeviceRefused):
    """Payments do not cover the total, or cash/electronic amounts are out of range."""


class PaperOut(DeviceRefused):
    """No paper (receipt or journal roll)."""


class PrinterBusy(DeviceRefused):
    """Still printing, or waiting for the continue-print command (B0)."""


class WrongPassword(DeviceRefused):
    """The operator/administrator password is wrong."""


class Overflow(DeviceRefused):
    """A register, counter or range overflowed."""


class HardwareFault(DeviceRefused):
    """A hardware, memory or power failure of the device."""


_FN = FiscalStorageError
_E: dict[int, tuple[str, type[DeviceRefused]]] = {
    0x01: ("ФН: Неизвестная команда, неверный формат посылки или неизвестные параметры", _FN),
    0x02: ("ФН: Неверное состояние ФН", _FN),
    0x03: ("ФН: Ошибка ФН", _FN),
    0x04: ("ФН: Ошибка КС", _FN),
    0x05: ("ФН: Закончен срок эксплуатации ФН", _FN),
    0x06: ("ФН: Архив ФН переполнен", _FN),
    0x07: ("ФН: Неверные дата и/или время", _FN),
    0x08: ("ФН: Нет запрошенных данных", _FN),
    0x09: ("ФН: Некорректное значение параметров команды", _FN),
    0x10: ("ФН: Превышение размеров TLV данных", _FN),
    0x11: ("ФН: Нет транспортного соединения", _FN),
    0x12: ("ФН: Исчерпан ресурс КС (криптографического сопроцессора)", _FN),
    0x14: ("ФН: Исчерпан ресурс хранения", _FN),
    0x15: ("ФН: Исчерпан ресурс ожидания передачи сообщения", _FN),
    0x16: ("ФН: Продолжительность смены более 24 часов", ShiftExpired),
    0x17: ("ФН: Неверная разница во времени между 2 операциями", _FN),
    0x20: ("ФН: Сообщение от ОФД не может быть принято", _FN),
    0x26: ("Вносимая клиентом сумма меньше суммы чека", PaymentError),
    0x2B: ("Невозможно отменить предыдущую команду", NotSupportedInMode),
    0x2C: ("Обнулённая касса (повторное гашение невозможно)", NotSupportedInMode),
    0x2D: ("Сумма чека по секции меньше суммы сторно", PaymentError),
    0x2E: ("В ФР нет денег для выплаты", PaymentError),
    0x2F: ("Переполнение накопления по скидкам в смене", Overflow),
    0x30: ("ФР заблокирован, ждет ввода пароля налогового инспектора", NotSupportedInMode),
    0x32: ("Требуется выполнение общего гашения", NotSupportedInMode),
    0x33: ("Некорректные параметры в команде", BadParameters),
    0x34: ("Нет данных", BadParameters),
    0x35: ("Некорректный параметр при данных настройках", BadParameters),
    0x36: ("Некорректные параметры в команде для данной реализации ФР", BadParameters),
    0x37: ("Команда не поддерживается в данной реализации ФР", NotSupportedInMode),
    0x38: ("Ошибка в ПЗУ", HardwareFault),
    0x39: ("Внутренняя ошибка ПО ФР", HardwareFault),
    0x3A: ("Переполнение накопления по надбавкам в смене", Overflow),
    0x3B: ("Переполнение накопления в смене", Overflow),
    0x3C: ("Смена открыта – операция невозможна", ShiftAlreadyOpen),
    0x3D: ("Смена не открыта – операция невозможна", ShiftNotOpen),
    0x3E: ("Переполнение накопления по секциям в смене", Overflow),
    0x40: ("Переполнение диапазона скидок", Overflow),
    0x41: ("Переполнение диапазона оплаты наличными", PaymentError),
    0x42: ("Переполнение диапазона оплаты типом 2", PaymentError),
    0x43: ("Переполнение диапазона оплаты типом 3", PaymentError),
    0x44: ("Переполнение диапазона оплаты типом 4", PaymentError),
    0x45: ("Сумма всех типов оплаты меньше итога чека", PaymentError),
    0x46: ("Не хватает наличности в кассе", PaymentError),
    0x47: ("Переполнение накопления по налогам в смене", Overflow),
    0x48: ("Переполнение итога чека", Overflow),
    0x49: ("Операция невозможна в открытом чеке данного типа", ReceiptOpen),
    0x4A: ("Открыт чек – операция невозможна", ReceiptOpen),
    0x4B: ("Буфер чека переполнен", Overflow),
    0x4C: ("Переполнение накопления по обороту налогов в смене", Overflow),
    0x4D: ("Вносимая безналичной оплатой сумма больше суммы чека", PaymentError),
    0x4E: ("Смена превысила 24 часа", ShiftExpired),
    0x4F: ("Неверный пароль", WrongPassword),
    0x50: ("Идет печать предыдущей команды", PrinterBusy),
    0x51: ("Переполнение накоплений наличными в смене", Overflow),
    0x52: ("Переполнение накоплений по типу оплаты 2 в смене", Overflow),
    0x53: ("Переполнение накоплений по типу оплаты 3 в смене", Overflow),
    0x54: ("Переполнение накоплений по типу оплаты 4 в смене", Overflow),
    0x55: ("Чек закрыт – операция невозможна", ReceiptClosed),
    0x56: ("Нет документа для повтора", NotSupportedInMode),
    0x58: ("Ожидание команды продолжения печати", PrinterBusy),
    0x59: ("Документ открыт другим оператором", ReceiptOpen),
    0x5A: ("Скидка превышает накопления в чеке", PaymentError),
    0x5B: ("Переполнение диапазона надбавок", Overflow),
    0x5C: ("Понижено напряжение 24В", HardwareFault),
    0x5D: ("Таблица не определена", BadParameters),
    0x5E: ("Некорректная операция", BadParameters),
    0x5F: ("Отрицательный итог чека", PaymentError),
    0x60: ("Переполнение при умножении", Overflow),
    0x61: ("Переполнение диапазона цены", Overflow),
    0x62: ("Переполнение диапазона количества", Overflow),
    0x63: ("Переполнение диапазона отдела", Overflow),
    0x65: ("Не хватает денег в секции", PaymentError),
    0x66: ("Переполнение денег в секции", Overflow),
    0x68: ("Не хватает денег по обороту налогов", PaymentError),
    0x69: ("Переполнение денег по обороту налогов", Overflow),
    0x6A: ("Ошибка питания в момент ответа по I2C", HardwareFault),
    0x6B: ("Нет чековой ленты", PaperOut),
    0x6C: ("Нет контрольной ленты", PaperOut),
    0x6D: ("Не хватает денег по налогу", PaymentError),
    0x6E: ("Переполнение денег по налогу", Overflow),
    0x6F: ("Переполнение по выплате в смене", Overflow),
    0x71: ("Ошибка отрезчика", HardwareFault),
    0x72: ("Команда не поддерживается в данном подрежиме", NotSupportedInMode),
    0x73: ("Команда не поддерживается в данном режиме", NotSupportedInMode),
    0x74: ("Ошибка ОЗУ", HardwareFault),
    0x75: ("Ошибка питания", HardwareFault),
    0x76: ("Ошибка принтера: нет импульсов с тахогенератора", HardwareFault),
    0x77: ("Ошибка принтера: нет сигнала с датчиков", HardwareFault),
    0x78: ("Замена ПО", HardwareFault),
    0x7A: ("Поле не редактируется", BadParameters),
    0x7B: ("Ошибка оборудования", HardwareFault),
    0x7C: ("Не совпадает дата", BadParameters),
    0x7D: ("Неверный формат даты", BadParameters),
    0x7E: ("Неверное значение в поле длины", BadParameters),
    0x7F: ("Переполнение диапазона итога чека", Overflow),
    0x84: ("Переполнение наличности", Overflow),
    0x85: ("Переполнение по продажам в смене", Overflow),
    0x86: ("Переполнение по покупкам в смене", Overflow),
    0x87: ("Переполнение по возвратам продаж в смене", Overflow),
    0x88: ("Переполнение по возвратам покупок в смене", Overflow),
    0x89: ("Переполнение по внесению в смене", Overflow),
    0x8A: ("Переполнение по надбавкам в чеке", Overflow),
    0x8B: ("Переполнение по скидкам в чеке", Overflow),
    0x8C: ("Отрицательный итог надбавки в чеке", PaymentError),
    0x8D: ("Отрицательный итог скидки в чеке", PaymentError),
    0x8E: ("Нулевой итог чека", PaymentError),
    0x8F: ("Касса не фискализирована", NotSupportedInMode),
    0x90: ("Поле превышает размер, установленный в настройках", BadParameters),
    0x91: ("Выход за границу поля печати при данных настройках шрифта", BadParameters),
    0x92: ("Наложение полей", BadParameters),
    0x93: ("Восстановление ОЗУ прошло успешно", HardwareFault),
    0x94: ("Исчерпан лимит операций в чеке", Overflow),
    0xC0: ("Контроль даты и времени (подтвердите дату и время)", NotSupportedInMode),
    0xC2: ("Превышение напряжения в блоке питания", HardwareFault),
    0xC4: ("Несовпадение номеров смен", HardwareFault),
    0xC7: ("Поле не редактируется в данном режиме", NotSupportedInMode),
    0xC8: ("Отсутствуют импульсы от таходатчика", HardwareFault),
}

ERROR_TABLE: Final[Mapping[int, tuple[str, type[DeviceRefused]]]] = MappingProxyType(_E)
"""Device error code → (the vendor's Russian message, the typed error raised for it)."""

OK: Final = 0x00


def error_message(code: int) -> str:
    entry = ERROR_TABLE.get(code)
    return entry[0] if entry else f"Неизвестная ошибка ККТ {code:02X}h"


def refusal(code: int, command: int = 0) -> DeviceRefused:
    """The typed error for a non-zero ERR byte (``DeviceRefused`` itself for unknown codes)."""
    if code == OK:
        raise ValueError("code 0 is not an error")
    entry = ERROR_TABLE.get(code)
    cls = entry[1] if entry else DeviceRefused
    return cls(code, command)
