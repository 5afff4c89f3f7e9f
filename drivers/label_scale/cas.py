"""CAS CL label scales: upload, read and delete PLUs over ``protocols.cas``.

``upload_plu(items)`` is idempotent by read-compare-write: each PLU is read back first and
written only when the scale holds something else, so uploading the same table twice writes
nothing the second time. Results are per PLU (``written`` / ``unchanged`` / ``failed`` with
the reason): a PLU we cannot encode (name over 40 bytes of cp1251) or the scale refuses
(price above its limit, memory full) fails alone. Link failures (timeout, lost port) stop
the upload and raise, because every PLU after them would fail the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from drivers.errors import DeviceProtocolError, DeviceRejected, DeviceTimeout, DriverConfigError
from drivers.transport import SerialTransport, Transport
from protocols import cas


class LabelScaleRejected(DeviceRejected):
    """The scale answered ``E<code>``."""

    code = "label_scale_rejected"

    def __init__(self, message: str, error: int | None = None) -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True, slots=True)
class PluResult:
    number: int | None
    status: Literal["written", "unchanged", "failed"]
    error: str | None = None
    error_code: str | None = None


class LabelScale:
    """A CAS CL label scale on ``url_or_transport`` (``tcp://scale:20304`` or a serial port)."""

    def __init__(
        self, url_or_transport: Transport | str, *, timeout: float = 2.0, baudrate: int = 9600
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise DriverConfigError(f"Таймаут весов должен быть положительным числом, а не {timeout!r}")
        self.timeout = float(timeout)
        if isinstance(url_or_transport, str):
            self._transport: Transport = SerialTransport(url_or_transport, baudrate=baudrate)
        else:
            self._transport = url_or_transport
        self._decoder = cas.Decoder()

    def open(self) -> None:
        self._decoder = cas.Decoder()
        self._transport.open()
        self._transport.reset_input()

    def close(self) -> None:
        self._transport.close()

    # --- PLU API ----------------------------------------------------------------------------

    def read_plu(self, number: int, department: int = 1) -> cas.Plu | None:
        """The PLU the scale holds, or ``None`` when it has none under that number."""
        event = self._exchange(cas.encode_read_plu(number, department), f"чтение ПЛУ {number}")
        if isinstance(event, cas.WritePlu):
            if event.plu.number != number:
                raise DeviceProtocolError(f"Весы прислали ПЛУ {event.plu.number} вместо {number}")
            return event.plu
        if isinstance(event, cas.Reply) and not event.ok and event.code == 0x82:
            return None
        raise self._unexpected(event, f"чтение ПЛУ {number}")

    def write_plu(self, plu: cas.Plu) -> None:
        event = self._exchange(cas.encode_write_plu(plu), f"запись ПЛУ {plu.number}")
        if not (isinstance(event, cas.Reply) and event.ok):
            raise self._unexpected(event, f"запись ПЛУ {plu.number}")

    def delete_plu(self, number: int, department: int = 1) -> bool:
        """``True`` if deleted, ``False`` if the scale had no such PLU."""
        event = self._exchange(cas.encode_delete_plu(number, department), f"удаление ПЛУ {number}")
        if isinstance(event, cas.Reply):
            if event.ok:
                return True
            if event.code == 0x82:
                return False
        raise self._unexpected(event, f"удаление ПЛУ {number}")

    def upload_plu(self, items: Iterable[cas.Plu | Mapping[str, object]]) -> list[PluResult]:
        results: list[PluResult] = []
        for item in items:
            number = item.number if isinstance(item, cas.Plu) else _number_of(item)
            try:
                plu = item if isinstance(item, cas.Plu) else cas.Plu(**item)  # type: ignore[arg-type]
            except (cas.LocalProtocolError, TypeError) as exc:
                results.append(PluResult(number, "failed", str(exc), "plu_invalid"))
                continue
            try:
                if self.read_plu(plu.number, plu.department) == plu:
                    results.append(PluResult(plu.number, "unchanged"))
                    continue
                self.write_plu(plu)
            except LabelScaleRejected as exc:
                results.append(PluResult(plu.number, "failed", exc.message, exc.code))
                continue
            results.append(PluResult(plu.number, "written"))
        return results

    # --- link ---------------------------------------------------------------------------------

    def _exchange(self, request: bytes, what: str) -> cas.codec.Event:
        self._transport.write(request)
        deadline = time.monotonic() + self.timeout
        while True:
            event = self._decoder.next_event()
            if event is not None:
                return event
            left = deadline - time.monotonic()
            data = self._transport.read(4096, left) if left > 0 else b""
            if not data:
                self._decoder = cas.Decoder()
                raise DeviceTimeout(f"Весы не ответили ({what}) за {self.timeout:g} с")
            self._decoder.feed(data)

    @staticmethod
    def _unexpected(event: cas.codec.Event, what: str) -> Exception:
        if isinstance(event, cas.Reply) and not event.ok:
            err = event.error()
            return LabelScaleRejected(
                f"Весы отказали ({what}): {err.message} (код {err.code:02X}h)", err.code
            )
        if isinstance(event, cas.codec.BadMessage):
            return DeviceProtocolError(f"Весы прислали непонятный ответ ({what}): {event.reason}")
        return DeviceProtocolError(f"Неожиданный ответ весов ({what}): {event!r}")


def _number_of(item: Mapping[str, object]) -> int | None:
    value = item.get("number")
    return value if isinstance(value, int) and not isinstance(value, bool) else None
