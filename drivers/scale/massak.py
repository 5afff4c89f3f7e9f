"""Massa-K scales over Protocol 100: a ``Transport`` + ``protocols.massak.HostConnection``.

Serial (``/dev/ttyUSB0``, 8N1, ``baudrate`` from the config) and TCP (``tcp://host:5001`` or
``socket://…``: Massa-K terminals with Ethernet speak the same frames).

Error mapping (the gateway acts on the class, a person reads the Russian message):

- ``CMD_ERROR 08`` → ``ScaleOverload``; other ``CMD_ERROR`` codes → ``MassaKRejected`` with the
  scale's code and text; ``CMD_NACK`` → ``MassaKUnsupported``; ``CMD_NACK_TARE`` →
  ``MassaKTareRefused``; ``CMD_ERROR 15`` on zero → ``MassaKZeroRefused``;
- no stable weight before ``timeout`` → ``ScaleUnstable`` with the last reading;
- silence → ``DeviceTimeout``; a lost link → ``DeviceUnavailable`` (from the transport);
- garbage or a bad CRC → logged, input flushed, the request sent once more (every Protocol 100
  request is safe to repeat: the tare is an absolute value), twice → ``DeviceProtocolError``.

``tare()`` reads a stable weight and sets the tare to the gross it shows (Protocol 100 sets a
tare *value*); ``clear_tare()`` sets it to 0.
"""

from __future__ import annotations

import logging
import time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from drivers.errors import DeviceProtocolError, DeviceRejected, DeviceTimeout, DriverConfigError
from drivers.scale.base import KG, ScaleInfo, ScaleOverload, ScaleUnstable, WeightReading
from drivers.transport import SerialTransport, Transport
from protocols import massak

log = logging.getLogger(__name__)


class MassaKRejected(DeviceRejected):
    """The scale answered ``CMD_ERROR``; ``error`` is its code."""

    code = "massak_error"

    def __init__(self, message: str, error: int | None = None) -> None:
        super().__init__(message)
        self.error = error


class MassaKUnsupported(MassaKRejected):
    """``CMD_NACK``: this model does not support the command."""

    code = "massak_unsupported"


class MassaKTareRefused(MassaKRejected):
    """``CMD_NACK_TARE``: tare out of range or the load is not stable."""

    code = "massak_tare_refused"


class MassaKZeroRefused(MassaKRejected):
    """``CMD_ERROR 15``: not stable or outside the zero-setting range."""

    code = "massak_zero_refused"


def _positive(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise DriverConfigError(f"{what} должен быть положительным числом, а не {value!r}")
    return float(value)


class MassaKScale:
    """A ``drivers.scale.base.Scale`` for Massa-K scales and terminals (Protocol 100).

    ``transport_or_url``: a ``Transport`` or a pyserial URL opened at ``baudrate`` 8N1.
    ``timeout``: seconds to wait for one answer.
    """

    def __init__(
        self,
        transport_or_url: Transport | str,
        *,
        timeout: float = 1.0,
        baudrate: int = 4800,
        poll_interval: float = 0.1,
    ) -> None:
        self.timeout = _positive(timeout, "Таймаут весов")
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float) or poll_interval < 0:
            raise DriverConfigError(f"Недопустимый интервал опроса весов {poll_interval!r}")
        self.poll_interval = float(poll_interval)
        if isinstance(transport_or_url, str):
            if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0:
                raise DriverConfigError(f"Недопустимая скорость порта {baudrate!r}")
            self._transport: Transport = SerialTransport(transport_or_url, baudrate=baudrate)
        else:
            self._transport = transport_or_url
        self._conn = massak.HostConnection()

    # --- Scale API ------------------------------------------------------------------------

    def open(self) -> None:
        self._conn = massak.HostConnection()
        self._transport.open()
        self._transport.reset_input()

    def close(self) -> None:
        self._transport.close()

    def info(self) -> ScaleInfo:
        params = self._transact(massak.GetScalePar())
        if not isinstance(params, massak.ScaleParameters):
            raise self._unexpected(params, "параметры весов")
        named = params.as_dict()
        extra = {f"line{i}": line for i, line in enumerate(params.lines)}
        extra.update(named)
        return ScaleInfo(
            model="Massa-K",
            firmware=named.get("firmware", ""),
            capacity=_parse_kg(named.get("max", "")),
            extra=extra,
        )

    def weigh(self, *, stable: bool = True, timeout: float = 3.0) -> WeightReading:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            reading = self._reading(self._massa())
            if reading.stable or not stable:
                return reading
            if time.monotonic() + self.poll_interval >= deadline:
                raise ScaleUnstable(f"Вес не успокоился за {timeout:g} с", reading)
            time.sleep(self.poll_interval)

    def zero(self) -> None:
        reply = self._transact(massak.SetZero())
        if isinstance(reply, massak.ZeroSet):
            return
        raise self._unexpected(reply, "обнуление")

    def tare(self) -> WeightReading:
        massa = self._stable_massa(3.0)
        gross = massa.weight + massa.tare
        reply = self._transact(massak.SetTare(gross))
        if isinstance(reply, massak.TareSet):
            tare = (Decimal(gross) * massa.division.kg).quantize(KG, rounding=ROUND_HALF_UP)
            return WeightReading(net=Decimal("0.000"), stable=True, tare=tare)
        raise self._unexpected(reply, "тарирование")

    def set_tare(self, kg: Decimal) -> None:
        """Preset a known tare (a container's weight) in kg, without weighing it."""
        if not isinstance(kg, Decimal) or not kg.is_finite() or kg < 0:
            raise DriverConfigError(f"Тара должна быть неотрицательным Decimal в кг, а не {kg!r}")
        division = self._massa().division
        units = (kg / division.kg).to_integral_value(rounding=ROUND_HALF_UP)
        reply = self._transact(massak.SetTare(int(units)))
        if not isinstance(reply, massak.TareSet):
            raise self._unexpected(reply, "установка тары")

    def clear_tare(self) -> None:
        reply = self._transact(massak.SetTare(0))
        if not isinstance(reply, massak.TareSet):
            raise self._unexpected(reply, "сброс тары")

    # --- helpers ---------------------------------------------------------------------------

    def _massa(self) -> massak.Massa:
        reply = self._transact(massak.GetMassa())
        if isinstance(reply, massak.Massa):
            return reply
        raise self._unexpected(reply, "взвешивание")

    def _stable_massa(self, timeout: float) -> massak.Massa:
        deadline = time.monotonic() + timeout
        while True:
            massa = self._massa()
            if massa.stable:
                return massa
            if time.monotonic() + self.poll_interval >= deadline:
                raise ScaleUnstable(f"Вес не успокоился за {timeout:g} с", self._reading(massa))
            time.sleep(self.poll_interval)

    @staticmethod
    def _reading(massa: massak.Massa) -> WeightReading:
        return WeightReading(
            net=massa.weight_kg.quantize(KG, rounding=ROUND_HALF_UP),
            stable=massa.stable,
            tare=massa.tare_kg.quantize(KG, rounding=ROUND_HALF_UP),
        )

    @staticmethod
    def _unexpected(reply: massak.Reply, what: str) -> Exception:
        if isinstance(reply, massak.ErrorReply):
            if reply.error == massak.ErrorCode.OVERLOAD:
                return ScaleOverload("Перегрузка весов: груз больше наибольшего предела взвешивания")
            if reply.error == massak.ErrorCode.ZERO_IMPOSSIBLE:
                return MassaKZeroRefused(f"Весы отказали: {reply.text} (код 0x15)", reply.error)
            return MassaKRejected(f"Весы отказали ({what}): {reply.text} (код 0x{reply.error:02X})", reply.error)
        if isinstance(reply, massak.Nack):
            return MassaKUnsupported(f"Весы не поддерживают команду ({what})")
        if isinstance(reply, massak.TareRefused):
            return MassaKTareRefused("Весы не могут установить тару: вес нестабилен или тара вне диапазона")
        return DeviceProtocolError(f"Неожиданный ответ весов ({what}): {reply!r}")

    def _transact(self, request: massak.Request) -> massak.Reply:
        for attempt in (1, 2):
            try:
                return self._exchange(request)
            except massak.RemoteProtocolError as exc:
                log.warning("Massa-K %s: bad bytes from the scale (%s), resync", request.code.name, exc)
                self._resync()
                if attempt == 2:
                    raise DeviceProtocolError(
                        f"Весы дважды ответили на команду {request.code.name} повреждёнными данными"
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(self, request: massak.Request) -> massak.Reply:
        self._transport.write(self._conn.send(request))
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                event = self._conn.next_event()
            except massak.Garbage as exc:  # bytes before a frame: the answer may still follow
                log.warning("Massa-K %s: %s", request.code.name, exc)
                continue
            if event is not massak.NEED_DATA:
                return event
            left = deadline - time.monotonic()
            data = self._transport.read(512, left) if left > 0 else b""
            if not data:
                self._resync()
                raise DeviceTimeout(f"Весы не ответили на команду {request.code.name} за {self.timeout:g} с")
            self._conn.receive_data(data)

    def _resync(self) -> None:
        self._conn.abandon()
        self._transport.reset_input()


def _parse_kg(text: str) -> Decimal | None:
    parts = text.split()
    if len(parts) != 2:
        return None
    factor = {"kg": Decimal(1), "g": Decimal("0.001")}.get(parts[1])
    if factor is None:
        return None
    try:
        return (Decimal(parts[0]) * factor).quantize(KG)
    except (InvalidOperation, ArithmeticError):
        return None
