"""ATOL driver 10 error codes (``errorCode`` in a task result) with their Russian texts.

Numbers and texts: ``LIBFPTR_ERROR_*`` as listed in ``KKTServiceLib`` ``KKTErrorType`` [V].
``INTERRUPTED`` (a task skipped after an earlier one failed) has a number we have not seen
documented [K]; nobody should branch on it.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    OK = 0
    NO_CONNECTION = 2
    NO_REQUIRED_PARAM = 8
    NOT_SUPPORTED = 11
    INVALID_MODE = 12
    INVALID_PARAM = 13
    INVALID_SUM = 16
    INVALID_QUANTITY = 17
    NO_PAPER = 44
    COVER_OPENED = 45
    NONCASH_PAYMENTS_TOO_MUCH = 52
    NOT_FULLY_PAID = 66
    SHIFT_EXPIRED = 68
    DENIED_IN_CLOSED_SHIFT = 73
    DENIED_IN_OPENED_RECEIPT = 82
    DENIED_IN_OPENED_SHIFT = 83
    FN_INVALID_STATE = 117
    FN_FAULT = 118
    FN_EXPIRED = 120
    FN_OVERFLOW = 121
    FN_NO_MORE_DATA = 123
    FN_RESOURCE_HAS_EXPIRED = 137
    FN_SHIFT_EXPIRED = 141
    INVALID_TAXATION_TYPE = 143
    INVALID_TAX_TYPE = 144
    INTERRUPTED = 999  # [K] LIBFPTR_ERROR_INTERRUPTED_BY_PREVIOUS_ERRORS, number unknown


TEXTS: dict[ErrorCode, str] = {
    ErrorCode.OK: "Ошибок нет",
    ErrorCode.NO_CONNECTION: "Нет связи",
    ErrorCode.NO_REQUIRED_PARAM: "Не найден обязательный параметр",
    ErrorCode.NOT_SUPPORTED: "Не поддерживается в данной версии",
    ErrorCode.INVALID_MODE: "Не поддерживается в данном режиме",
    ErrorCode.INVALID_PARAM: "Некорректное значение параметра",
    ErrorCode.INVALID_SUM: "Неверная цена (сумма)",
    ErrorCode.INVALID_QUANTITY: "Неверное количество",
    ErrorCode.NO_PAPER: "Нет бумаги",
    ErrorCode.COVER_OPENED: "Открыта крышка",
    ErrorCode.NONCASH_PAYMENTS_TOO_MUCH: "Сумма не наличных платежей превышает сумму чека",
    ErrorCode.NOT_FULLY_PAID: "Чек оплачен не полностью",
    ErrorCode.SHIFT_EXPIRED: "Смена превысила 24 часа",
    ErrorCode.DENIED_IN_CLOSED_SHIFT: "Смена закрыта - операция невозможна",
    ErrorCode.DENIED_IN_OPENED_RECEIPT: "Чек открыт – операция невозможна",
    ErrorCode.DENIED_IN_OPENED_SHIFT: "Смена открыта, операция невозможна",
    ErrorCode.FN_INVALID_STATE: "Неверное состояние ФН",
    ErrorCode.FN_FAULT: "Неисправимая ошибка ФН",
    ErrorCode.FN_EXPIRED: "Закончен срок эксплуатации ФН",
    ErrorCode.FN_OVERFLOW: "Архив ФН переполнен",
    ErrorCode.FN_NO_MORE_DATA: "В ФН нет запрошенных данных",
    ErrorCode.FN_RESOURCE_HAS_EXPIRED: "Ресурс хранения ФД исчерпан",
    ErrorCode.FN_SHIFT_EXPIRED: "Продолжительность смены ФН более 24 часов",
    ErrorCode.INVALID_TAXATION_TYPE: "Некорректная СНО",
    ErrorCode.INVALID_TAX_TYPE: "Недопустимый номер ставки налога",
    ErrorCode.INTERRUPTED: "Выполнение прервано из-за предыдущих ошибок",
}


def text(code: ErrorCode, detail: str = "") -> str:
    return f"{TEXTS[code]} ({detail})" if detail else TEXTS[code]
