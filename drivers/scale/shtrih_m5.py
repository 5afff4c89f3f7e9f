"""Shtrih M5 scales (Shtrih-M POS scales and weighing modules): a ``Transport`` +
``protocols.shtrih_m5.HostConnection`` (the Shtrih-M ENQ/ACK/NAK link with M5 commands).

Serial (``/dev/ttyUSB0``, 8N1, 4800 baud by default as in the vendor's OPOS driver) and TCP
(``tcp://host:port`` through a serial-to-Ethernet converter).

Units: the scale reports weight and tare in channel units; the driver reads the current
channel (EAh, E8h) once per ``open`` and converts with its decimal point (``10**-dp`` kg).

Error mapping (the gateway acts on the class, a person reads the Russian message):

- status flags: OVERLOAD → ``ScaleOverload``; UNDERLOAD → ``ScaleUnderload``; NO_ADC,
  READ_ERROR or channel off → ``ShtrihM5HardwareFault``;
- no stable weight before ``timeout`` → ``ScaleUnstable`` with the last reading; error 152
  ("вес не фиксирован") on zero/tare → ``ScaleUnstable`` too;
- error bytes: 150 → ``ShtrihM5ZeroRefused``, 17/151 → ``ShtrihM5TareRefused``, 122/170 →
  ``ShtrihM5WrongPassword``, 120/121/124/18x → ``ShtrihM5Unsupported``, 166/186 →
  ``ShtrihM5HardwareFault``, others → ``ShtrihM5Rejected`` (all ``DeviceRejected``);
- a bad LRC is handled by the link (NAK, ENQ, the scale resends); an answer that does not
  parse → the request is repeated once (every command here is safe to repeat), twice →
  ``DeviceProtocolError``; silence through every retry → ``DeviceTimeout``; a lost port →
  ``DeviceUnavailable`` (from the transport).
"""

from __future__ import annotations

import logging
import time
from decimal import ROUND_HALF_UP, Decimal

from drivers.errors import (
    DeviceProtocolError,
    DeviceRejected,
    DeviceTimeout,
    DeviceUnavailable,
    DriverConfigError,
)
from drivers.scale.base import KG, ScaleInfo, ScaleOverload, ScaleUnderload, ScaleUnstable, WeightReading
from drivers.transport import SerialTransport, Transport
from protocols import shtrih_m5 as m5
from protocols.shtrih_m5 import errors as m5e

log = logging.getLogger(__name__)


class ShtrihM5Rejected(DeviceRejected):
    """The scale answered with a non-zero error byte; ``error`` is its code."""

    code = "shtrih_m5_error"

    def __init__(self, message: str, error: int | None = None) -> None:
        super().__init__(message)
        self.error = error


class ShtrihM5Unsupported(ShtrihM5Rejected):
    """Unknown command, bad parameter or not allowed in the scale's mode."""

    code = "shtrih_m5_unsupported"


class ShtrihM5WrongPassword(ShtrihM5Rejected):
    """The administrator password in the config is wrong."""

    code = "shtrih_m5_password"


class ShtrihM5ZeroRefused(ShtrihM5Rejected):
    """Error 150: the load is outside the zero-setting range."""

    code = "shtrih_m5_zero_refused"


class ShtrihM5TareRefused(ShtrihM5Rejected):
    """Errors 17/151: the tare is out of range."""

    code = "shtrih_m5_tare_refused"


class ShtrihM5HardwareFault(ShtrihM5Rejected):
    """The ADC or the scale's memory failed, or the weighing channel is off."""

    code = "shtrih_m5_hardware"


_REFUSALS: tuple[tuple[type[m5e.ScaleRefused], type[ShtrihM5Rejected]], ...] = (
    (m5e.ZeroRefused, ShtrihM5ZeroRefused),
    (m5e.TareRefused, ShtrihM5TareRefused),
    (m5e.WrongPassword, ShtrihM5WrongPassword),
    (m5e.BadRequest, ShtrihM5Unsupported),
    (m5e.NotAllowedNow, ShtrihM5Unsupported),
    (m5e.HardwareFault, ShtrihM5HardwareFault),
)

_FAULT_FLAGS = m5.StatusFlag.NO_ADC | m5.StatusFlag.READ_ERROR


def _positive(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise DriverConfigError(f"{what} должен быть положительным числом, а не {value!r}")
    return float(value)


class ShtrihM5Scale:
    """A ``drivers.scale.base.Scale`` for Shtrih M5 scales.

    ``url_or_transport``: a pyserial URL (opened at ``baudrate`` 8N1) or a ``Transport``.
    ``timeout``: seconds for each link step (ENQ, ACK, answer); ``attempts`` link retries.
    ``password``: the scale's administrator password (factory 30).
    """

    def __init__(
        self,
        url_or_transport: Transport | str,
        *,
        timeout: float = 0.5,
        baudrate: int = 4800,
        password: int = m5.DEFAULT_PASSWORD,
        poll_interval: float = 0.1,
        attempts: int = 3,
    ) -> None:
        self.timeout = _positive(timeout, "Таймаут весов")
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float) or poll_interval < 0:
            raise DriverConfigError(f"Недопустимый интервал опроса весов {poll_interval!r}")
        self.poll_interval = float(poll_interval)
        if isinstance(password, bool) or not isinstance(password, int) or not 0 <= password <= 0xFFFFFFFF:
            raise DriverConfigError(f"Пароль весов — целое 0..4294967295, а не {password!r}")
        self.password = password
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise DriverConfigError(f"Число попыток должно быть целым ≥ 1, а не {attempts!r}")
        self.attempts = attempts
        if isinstance(url_or_transport, str):
            if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0:
                raise DriverConfigError(f"Недопустимая скорость порта {baudrate!r}")
            self._transport: Transport = SerialTransport(url_or_transport, baudrate=baudrate)
        else:
            self._transport = url_or_transport
        self._conn = self._new_connection()
        self._channel: m5.ChannelInfo | None = None

    def _new_connection(self) -> m5.HostConnection:
        t = self.timeout
        return m5.HostConnection(enq_timeout=t, ack_timeout=t, frame_timeout=t, attempts=self.attempts)

    # --- Scale API ------------------------------------------------------------------------

    def open(self) -> None:
        self._conn = self._new_connection()
        self._channel = None
        self._transport.open()
        self._transport.reset_input()

    def close(self) -> None:
        self._transport.close()

    def info(self) -> ScaleInfo:
        device = self._call(m5.ReadDeviceInfo())
        assert isinstance(device, m5.DeviceInfo)
        channel = self._channel_info()
        return ScaleInfo(
            model=device.name or "Штрих М5",
            firmware=f"{device.major_version}.{device.minor_version}",
            capacity=self._kg(channel.max_weight),
            extra={
                "device_type": f"{device.major_type}.{device.minor_type}",
                "model_code": str(device.model),
                "language": str(device.language),
                "decimal_point": str(channel.decimal_point),
                "max_tare": str(self._kg(channel.max_tare)),
                "min_weight": str(self._kg(channel.min_weight)),
            },
        )

    def weigh(self, *, stable: bool = True, timeout: float = 3.0) -> WeightReading:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            status = self.status()
            reading = self._reading(status)
            if reading.stable or not stable:
                return reading
            if time.monotonic() + self.poll_interval >= deadline:
                raise ScaleUnstable(f"Вес не успокоился за {timeout:g} с", reading)
            time.sleep(self.poll_interval)

    def zero(self) -> None:
        self._call(m5.Zero(self.password))

    def tare(self) -> WeightReading:
        self.weigh(timeout=3.0)
        self._call(m5.Tare(self.password))
        reading = self._reading(self.status())
        return WeightReading(net=reading.net, stable=reading.stable, tare=reading.tare)

    def set_tare(self, kg: Decimal) -> None:
        """Preset a known tare (a container's weight) in kg, without weighing it."""
        if not isinstance(kg, Decimal) or not kg.is_finite() or kg < 0:
            raise DriverConfigError(f"Тара должна быть неотрицательным Decimal в кг, а не {kg!r}")
        units = int((kg / self._unit()).to_integral_value(rounding=ROUND_HALF_UP))
        if units > 0xFFFF:
            raise DriverConfigError(f"Тара {kg} кг не помещается в команду весов (максимум 65535 делений)")
        self._call(m5.SetTare(units, self.password))

    def clear_tare(self) -> None:
        self._call(m5.SetTare(0, self.password))

    def status(self) -> m5.Status:
        """The raw 3Ah status, after checking the fault flags."""
        status = self._call(m5.ReadStatus(self.password))
        assert isinstance(status, m5.Status)
        flags = status.flags
        if m5.StatusFlag.OVERLOAD in flags:
            raise ScaleOverload("Перегрузка весов: груз больше наибольшего предела взвешивания")
        if m5.StatusFlag.UNDERLOAD in flags:
            raise ScaleUnderload("Весы недогружены: вес ниже нуля (платформа снята или сбит ноль)")
        if flags & _FAULT_FLAGS:
            what = "нет ответа от АЦП" if m5.StatusFlag.NO_ADC in flags else "ошибка при получении измерения"
            raise ShtrihM5HardwareFault(f"Неисправность весов: {what} (флаги {int(flags):04X}h)")
        if m5.StatusFlag.CHANNEL_ON not in flags:
            raise ShtrihM5HardwareFault("Весовой канал выключен")
        return status

    # --- helpers ---------------------------------------------------------------------------

    def _channel_info(self) -> m5.ChannelInfo:
        if self._channel is None:
            number = self._call(m5.ReadChannelNumber())
            assert isinstance(number, m5.ChannelNumber)
            channel = self._call(m5.ReadChannel(number.number))
            assert isinstance(channel, m5.ChannelInfo)
            self._channel = channel
        return self._channel

    def _unit(self) -> Decimal:
        return Decimal(1).scaleb(-self._channel_info().decimal_point)

    def _kg(self, units: int) -> Decimal:
        return (units * self._unit()).quantize(KG, rounding=ROUND_HALF_UP)

    def _reading(self, status: m5.Status) -> WeightReading:
        return WeightReading(net=self._kg(status.weight), stable=status.stable, tare=self._kg(status.tare))

    def _call(self, request: m5.Request) -> m5.Answer:
        for attempt in (1, 2):
            try:
                answer = self._exchange(request)
            except m5.RemoteProtocolError as exc:
                log.warning("Shtrih M5 %02Xh: bad answer (%s), resync", request.CODE, exc)
                self._resync()
                if attempt == 2:
                    raise DeviceProtocolError(
                        f"Весы дважды ответили на команду {request.CODE:02X}h непонятными данными: {exc}"
                    ) from exc
                continue
            if isinstance(answer, m5.Refused):
                raise self._refused(answer.error())
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(self, request: m5.Request) -> m5.Answer:
        conn = self._conn
        try:
            conn.send(request, time.monotonic(), answer_timeout=self.timeout)
            while True:
                out = conn.data_to_send()
                if out:
                    self._transport.write(out)
                event = conn.next_event()
                if isinstance(event, m5.Answered):
                    return event.answer
                if isinstance(event, m5.LinkLost):
                    done = "команда могла выполниться" if event.command_sent else "команда не дошла"
                    raise DeviceTimeout(f"Весы не ответили на команду {request.CODE:02X}h ({done})")
                deadline = conn.deadline if conn.deadline is not None else time.monotonic()
                data = self._transport.read(512, max(deadline - time.monotonic(), 0.0))
                now = time.monotonic()
                if data:
                    conn.receive_data(data, now)
                else:
                    conn.handle_timeout(now)
        except DeviceUnavailable:
            conn.abandon()
            raise

    def _resync(self) -> None:
        self._conn.abandon()
        self._transport.reset_input()

    @staticmethod
    def _refused(err: m5e.ScaleRefused) -> Exception:
        text = f"Весы отказали: {err.message} (код {err.code}, команда {err.command:02X}h)"
        if isinstance(err, m5e.WeightNotFixed):
            return ScaleUnstable(f"Весы отказали: {err.message} — вес не успокоился (код {err.code})")
        cls = next((d for p, d in _REFUSALS if isinstance(err, p)), ShtrihM5Rejected)
        return cls(text, err.code)
