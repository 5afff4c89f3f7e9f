"""CAS CL label-scale protocol errors: our fault, the peer's fault, the scale's refusal."""

from __future__ import annotations


class CasError(Exception):
    """Base of every CAS protocol error."""


class LocalProtocolError(CasError):
    """Our fault: a PLU the protocol cannot carry (name too long for 40 bytes of cp1251,
    a price over 32 bits, a PLU number out of range)."""


class RemoteProtocolError(CasError):
    """The peer's fault: bytes that do not parse (bad BCC, bad header, bad field)."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class ScaleRefused(CasError):
    """The scale answered ``E`` with an error code."""

    MESSAGES = {
        0x82: "Неверный номер ПЛУ или отдела",
        0x84: "Неверные данные или длина",
        0x97: "Слишком длинная посылка",
        0x99: "Память ПЛУ заполнена",
        0xFE: "Ошибка контрольной суммы",
    }

    def __init__(self, code: int, command: int = 2) -> None:
        self.code = code
        self.command = command
        self.message = self.MESSAGES.get(code, f"Неизвестная ошибка весов {code:02X}h")
        super().__init__(f"{self.message} (код {code:02X}h, команда W{command:02X})")
