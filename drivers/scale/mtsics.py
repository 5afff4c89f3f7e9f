"""Mettler Toledo scales over MT-SICS: a ``Transport`` + ``protocols.mtsics.HostConnection``.

Error mapping (the gateway acts on the class, a person reads the Russian message):

- ``S +`` / ``S -`` → ``ScaleOverload`` / ``ScaleUnderload``;
- no stable weight before ``timeout`` → ``ScaleUnstable`` with the last dynamic reading;
- ``ES`` / ``ET`` / ``EL`` and statuses ``I`` / ``L`` / ``+`` / ``-`` on zero and tare →
  ``MtSicsRejected`` subclasses (``DeviceRejected``);
- silence → ``DeviceTimeout``; a lost link → ``DeviceUnavailable`` (from the transport);
- garbage → logged, input flushed, the command sent once more; garbage twice →
  ``DeviceProtocolError``. Every MT-SICS command we send is safe to repeat except ``T``, and a
  repeated ``T`` on an unchanged load takes the same tare.

Stable weighing polls ``S``: a real balance answers ``S I`` when it cannot settle within its
own stability timeout, and we keep asking until ours runs out, reading ``SI`` in between so
``ScaleUnstable.last`` says what the platform showed.
"""

from __future__ import annotations

import logging
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import NoReturn

from drivers.errors import DeviceProtocolError, DeviceRejected, DeviceTimeout, DriverConfigError
from drivers.scale.base import KG, ScaleInfo, ScaleOverload, ScaleUnderload, ScaleUnstable, WeightReading
from drivers.transport import SerialTransport, Transport
from protocols import mtsics

log = logging.getLogger(__name__)

_TO_KG: dict[str, Decimal] = {"kg": Decimal(1), "g": Decimal("0.001"), "mg": Decimal("0.000001")}


class MtSicsRejected(DeviceRejected):
    """The scale understood the command and refused it."""

    code = "mtsics_rejected"


class MtSicsSyntaxError(MtSicsRejected):
    """``ES``: the scale does not know the command (or its parameters)."""

    code = "mtsics_syntax"


class MtSicsTransmissionError(MtSicsRejected):
    """``ET``: the scale received corrupted bytes (parity, baud rate, noise)."""

    code = "mtsics_transmission"


class MtSicsLogicalError(MtSicsRejected):
    """``EL``: the command is valid but cannot run in the scale's current mode."""

    code = "mtsics_logical"


class MtSicsNotExecutable(MtSicsRejected):
    """Status ``I``: busy, or the weight is not stable enough."""

    code = "mtsics_busy"


class MtSicsOutOfRange(MtSicsRejected):
    """Status ``+`` / ``-`` / ``L`` on zero or tare: outside the allowed range."""

    code = "mtsics_out_of_range"


_ERROR_REPLIES: dict[str, tuple[type[MtSicsRejected], str]] = {
    "ES": (MtSicsSyntaxError, "Весы не распознали команду {cmd} (ES, синтаксическая ошибка)"),
    "ET": (MtSicsTransmissionError, "Весы получили команду {cmd} с ошибкой передачи (ET)"),
    "EL": (MtSicsLogicalError, "Весы не могут выполнить команду {cmd} в текущем режиме (EL)"),
}


class MtSicsScale:
    """A ``drivers.scale.base.Scale`` for MT-SICS balances and weighing terminals.

    ``transport_or_url``: a ``Transport`` (tests, shared links) or a pyserial URL
    (``/dev/ttyUSB0``, ``tcp://10.0.0.5:4001``) opened at ``baudrate`` 8N1.
    ``timeout``: seconds to wait for one reply line.
    """

    def __init__(
        self,
        transport_or_url: Transport | str,
        *,
        timeout: float = 1.0,
        baudrate: int = 9600,
        poll_interval: float = 0.1,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise DriverConfigError(
                f"Таймаут весов должен быть положительным числом секунд, а не {timeout!r}"
            )
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float) or poll_interval < 0:
            raise DriverConfigError(f"Недопустимый интервал опроса весов {poll_interval!r}")
        if isinstance(transport_or_url, str):
            if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0:
                raise DriverConfigError(f"Недопустимая скорость порта {baudrate!r}")
            self._transport: Transport = SerialTransport(transport_or_url, baudrate=baudrate)
        else:
            self._transport = transport_or_url
        self.timeout = float(timeout)
        self.poll_interval = float(poll_interval)
        self._conn = mtsics.HostConnection()
        self._tare: Decimal | None = None
        self._info: ScaleInfo | None = None

    # --- Scale API ------------------------------------------------------------------------

    def open(self) -> None:
        self._conn = mtsics.HostConnection()
        self._transport.open()
        self._transport.reset_input()

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> MtSicsScale:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self) -> ScaleInfo:
        if self._info is None:
            balance = self._text(mtsics.QueryBalanceData())
            firmware = self._text(mtsics.QuerySoftwareVersion())
            serial = self._text(mtsics.QuerySerialNumber())
            self._info = _parse_balance_data(balance, firmware=firmware, serial=serial)
        return self._info

    def weigh(self, *, stable: bool = True, timeout: float = 3.0) -> WeightReading:
        if not stable:
            return self._reading(self._expect_weight(mtsics.SendImmediateWeight()))
        deadline = time.monotonic() + timeout
        last: WeightReading | None = None
        while True:
            left = deadline - time.monotonic()
            reply = self._transact(mtsics.SendStableWeight(), max(self.timeout, left))
            if isinstance(reply, mtsics.WeightReply):
                return self._reading(reply)
            self._raise_weight_status(reply, "S")
            # "S I": not stable within the scale's own timeout; see what it shows meanwhile.
            last = self._reading(self._expect_weight(mtsics.SendImmediateWeight()))
            if last.stable:
                return last
            if time.monotonic() + self.poll_interval >= deadline:
                raise ScaleUnstable(f"Вес не успокоился за {timeout:g} с", last)
            time.sleep(self.poll_interval)

    def zero(self) -> None:
        reply = self._transact(mtsics.Zero())
        self._expect_executed(reply, "Z", "обнуление")

    def tare(self) -> WeightReading:
        reply = self._transact(mtsics.Tare())
        if isinstance(reply, mtsics.WeightReply) and reply.status is mtsics.Status.STABLE:
            self._tare = self._to_kg(reply.value, reply.unit)
            return WeightReading(net=Decimal("0.000"), stable=True, tare=self._tare)
        self._raise_status(reply, "T", "тарирование")

    def set_tare(self, kg: Decimal) -> None:
        """Preset a known tare (a container's weight) in kg, without weighing it."""
        if not isinstance(kg, Decimal) or not kg.is_finite() or kg < 0:
            raise DriverConfigError(f"Тара должна быть неотрицательным Decimal в кг, а не {kg!r}")
        reply = self._transact(mtsics.PresetTare(kg.quantize(KG), "kg"))
        if isinstance(reply, mtsics.WeightReply) and reply.status is mtsics.Status.EXECUTED:
            self._tare = self._to_kg(reply.value, reply.unit)
            return
        self._raise_status(reply, "TA", "установка тары")

    def query_tare(self) -> Decimal:
        """The tare the scale holds now, in kg."""
        reply = self._transact(mtsics.QueryTare())
        if isinstance(reply, mtsics.WeightReply):
            self._tare = self._to_kg(reply.value, reply.unit)
            return self._tare
        self._raise_status(reply, "TA", "запрос тары")

    def clear_tare(self) -> None:
        reply = self._transact(mtsics.ClearTare())
        self._expect_executed(reply, "TAC", "сброс тары")
        self._tare = Decimal("0.000")

    def reset(self) -> str:
        """``@``: power-on state (tare cleared); returns the serial number."""
        reply = self._transact(mtsics.Reset())
        if isinstance(reply, mtsics.TextReply):
            self._tare = Decimal("0.000")
            return reply.text
        self._raise_status(reply, "@", "сброс")

    # --- one command, one reply ----------------------------------------------------------

    def _transact(self, command: mtsics.Command, timeout: float | None = None) -> mtsics.Reply:
        """Send ``command`` and return its final reply; resync and resend once on garbage
        or ``ET``; raise ``DeviceTimeout`` on silence and ``MtSicsRejected`` on ``ES``/``EL``."""
        wait = self.timeout if timeout is None else timeout
        for attempt in (1, 2):
            try:
                reply = self._exchange(command, wait)
            except mtsics.RemoteProtocolError as exc:
                log.warning("MT-SICS %s: garbage from the scale (%s), resync", command.ident, exc)
                self._resync()
                if attempt == 2:
                    raise DeviceProtocolError(
                        f"Весы дважды ответили на команду {command.ident} непонятными данными"
                    ) from exc
                continue
            if isinstance(reply, mtsics.ErrorReply):
                cls, text = _ERROR_REPLIES[reply.code]
                if reply.code == "ET" and attempt == 1:
                    log.warning("MT-SICS %s: the scale reports a transmission error, resend", command.ident)
                    self._resync()
                    continue
                raise cls(text.format(cmd=command.ident))
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(self, command: mtsics.Command, wait: float) -> mtsics.Reply:
        # Half-duplex: nothing the scale sent before this command can answer it. Dropping it
        # keeps a stale line (a late reply, a key press printout) from passing for the reply.
        self._transport.reset_input()
        self._transport.write(self._conn.send(command))
        deadline = time.monotonic() + wait
        while True:
            event = self._conn.next_event()
            if event is not mtsics.NEED_DATA:
                if isinstance(event, mtsics.ErrorReply) or event.status is not mtsics.Status.MORE:
                    return event
                continue  # "B": an interim line of a multi-line reply
            left = deadline - time.monotonic()
            data = self._transport.read(256, left) if left > 0 else b""
            if not data:
                self._resync()
                raise DeviceTimeout(f"Весы не ответили на команду {command.ident} за {wait:g} с")
            self._conn.receive_data(data)

    def _resync(self) -> None:
        self._conn.abandon()
        self._transport.reset_input()

    # --- reply helpers ---------------------------------------------------------------------

    def _expect_weight(self, command: mtsics.Command) -> mtsics.WeightReply:
        reply = self._transact(command)
        if isinstance(reply, mtsics.WeightReply):
            return reply
        self._raise_weight_status(reply, command.ident)
        raise MtSicsNotExecutable(f"Весы сейчас не могут выдать вес (команда {command.ident})")

    def _raise_weight_status(self, reply: mtsics.Reply, ident: str) -> None:
        status = getattr(reply, "status", None)
        if status is mtsics.Status.ABOVE:
            raise ScaleOverload("Перегрузка весов: груз больше наибольшего предела взвешивания")
        if status is mtsics.Status.BELOW:
            raise ScaleUnderload("Недогрузка весов: платформа снята или ноль сбит")
        if status is mtsics.Status.NOT_EXECUTABLE:
            return
        raise DeviceProtocolError(f"Неожиданный ответ весов на команду {ident}: {reply!r}")

    def _expect_executed(self, reply: mtsics.Reply, ident: str, what: str) -> None:
        if isinstance(reply, mtsics.StatusReply) and reply.status is mtsics.Status.EXECUTED:
            return
        self._raise_status(reply, ident, what)

    def _raise_status(self, reply: mtsics.Reply, ident: str, what: str) -> NoReturn:
        status = getattr(reply, "status", None)
        if status is mtsics.Status.NOT_EXECUTABLE:
            raise MtSicsNotExecutable(
                f"Весы не могут выполнить {what} сейчас: вес нестабилен или весы заняты"
            )
        if status is mtsics.Status.ABOVE:
            raise MtSicsOutOfRange(f"{what.capitalize()} невозможно: превышен верхний предел диапазона")
        if status is mtsics.Status.BELOW:
            raise MtSicsOutOfRange(f"{what.capitalize()} невозможно: вес ниже нижнего предела диапазона")
        if status is mtsics.Status.PARAMETER_ERROR:
            raise MtSicsOutOfRange(f"{what.capitalize()} невозможно: недопустимое значение")
        raise DeviceProtocolError(f"Неожиданный ответ весов на команду {ident}: {reply!r}")

    def _to_kg(self, value: Decimal, unit: str) -> Decimal:
        factor = _TO_KG.get(unit)
        if factor is None:
            raise DeviceProtocolError(f"Весы передают вес в единицах «{unit}»; настройте весы на кг или г")
        kg = (value * factor).quantize(KG, rounding=ROUND_HALF_UP)
        return abs(kg) if kg == 0 else kg  # never hand out -0.000

    def _reading(self, reply: mtsics.WeightReply) -> WeightReading:
        return WeightReading(net=self._to_kg(reply.value, reply.unit), stable=reply.stable, tare=self._tare)

    def _text(self, command: mtsics.Command) -> str:
        reply = self._transact(command)
        if isinstance(reply, mtsics.TextReply):
            return " ".join(reply.fields)
        self._raise_status(reply, command.ident, "запрос сведений о весах")


def _parse_balance_data(balance: str, *, firmware: str, serial: str) -> ScaleInfo:
    """``I2`` packs "<type> <capacity> <unit>" into one string; the type may contain spaces,
    so parse from the right."""
    parts = balance.split()
    capacity: Decimal | None = None
    model = balance
    if len(parts) >= 3 and parts[-1] in _TO_KG:
        try:
            capacity = (Decimal(parts[-2]) * _TO_KG[parts[-1]]).quantize(KG, rounding=ROUND_HALF_UP)
            model = " ".join(parts[:-2])
        except ArithmeticError:
            capacity = None
    return ScaleInfo(model=model, serial=serial, firmware=firmware, capacity=capacity, extra={"i2": balance})
