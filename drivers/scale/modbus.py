"""Modbus scales and weight transmitters (RTU on a serial line, TCP, RTU over TCP) with pymodbus.

The register map comes from the device config (keyword options of ``ModbusScale``); the
default map, which a store overrides per model::

    table="holding"        weight, status and tare are holding registers (FC 3); "input" = FC 4
    weight_address=0       int32 over two registers, word_order="big" (high word first)
    decimals=3, factor=1   kg = raw × factor / 10**decimals (raw in grams by default)
    status_address=2       bits: stable_bit=0, overload_bit=1, underload_bit=2, zero_bit=3
                           (status_address=None: no status word, every reading is stable)
    tare_address=3         int32 tare in the weight's format (None: not readable)
    commands="register"    write command_address=10 with zero_command=1 / tare_command=2 /
                           clear_tare_command=3; commands="coils": write ON to zero_coil=0 /
                           tare_coil=1 / clear_tare_coil=2
    device_id=1            Modbus unit (slave) id

URLs: ``tcp://host:502`` (Modbus TCP), ``rtu+tcp://host:4001`` (RTU frames through a
serial-to-Ethernet converter), anything else is a serial port path for RTU (``baudrate``,
``parity``, ``stopbits``).

Errors: cannot connect → ``DeviceUnavailable``; no answer → ``DeviceTimeout``; a Modbus
exception response → ``ModbusScaleRejected`` (``exception_code``; 06 busy, 04 device failure
…); overload/underload bits → ``ScaleOverload`` / ``ScaleUnderload``. pymodbus is imported
lazily, in ``open``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from drivers.errors import (
    DeviceProtocolError,
    DeviceRejected,
    DeviceTimeout,
    DeviceUnavailable,
    DriverConfigError,
)
from drivers.scale.base import KG, ScaleInfo, ScaleOverload, ScaleUnderload, ScaleUnstable, WeightReading

EXCEPTION_TEXT: dict[int, str] = {
    1: "функция не поддерживается",
    2: "недопустимый адрес регистра",
    3: "недопустимое значение",
    4: "отказ устройства (команда невыполнима)",
    5: "команда принята, выполняется",
    6: "устройство занято (вес нестабилен)",
    10: "шлюз: нет пути",
    11: "шлюз: устройство не ответило",
}


class ModbusScaleRejected(DeviceRejected):
    """The device answered a Modbus exception response."""

    code = "modbus_exception"

    def __init__(self, message: str, exception_code: int) -> None:
        super().__init__(message)
        self.exception_code = exception_code


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """Where a transmitter keeps its weight, status and commands (see the module docstring)."""

    table: Literal["holding", "input"] = "holding"
    weight_address: int = 0
    word_order: Literal["big", "little"] = "big"
    decimals: int = 3
    factor: Decimal = Decimal(1)
    status_address: int | None = 2
    stable_bit: int | None = 0
    overload_bit: int | None = 1
    underload_bit: int | None = 2
    zero_bit: int | None = 3
    tare_address: int | None = 3
    commands: Literal["register", "coils"] = "register"
    command_address: int = 10
    zero_command: int = 1
    tare_command: int = 2
    clear_tare_command: int = 3
    zero_coil: int = 0
    tare_coil: int = 1
    clear_tare_coil: int = 2

    def __post_init__(self) -> None:
        if self.table not in ("holding", "input"):
            raise DriverConfigError(f"table: 'holding' или 'input', а не {self.table!r}")
        if self.word_order not in ("big", "little"):
            raise DriverConfigError(f"word_order: 'big' или 'little', а не {self.word_order!r}")
        if self.commands not in ("register", "coils"):
            raise DriverConfigError(f"commands: 'register' или 'coils', а не {self.commands!r}")
        if not 0 <= self.decimals <= 6:
            raise DriverConfigError(f"decimals: от 0 до 6, а не {self.decimals!r}")
        if not isinstance(self.factor, Decimal) or not self.factor.is_finite() or self.factor <= 0:
            raise DriverConfigError(f"factor должен быть положительным числом, а не {self.factor!r}")
        for name in ("stable_bit", "overload_bit", "underload_bit", "zero_bit"):
            bit = getattr(self, name)
            if bit is not None and not 0 <= bit <= 15:
                raise DriverConfigError(f"{name}: номер бита 0..15, а не {bit!r}")
        for addr in [*self._addresses(), self.command_address]:
            if not 0 <= addr <= 0xFFFF:
                raise DriverConfigError(f"Адрес регистра вне 0..65535: {addr}")
        if max(self._addresses()) - min(self._addresses()) >= 125:
            raise DriverConfigError("Вес, статус и тара должны лежать в пределах 125 регистров")

    def _addresses(self) -> list[int]:
        out = [self.weight_address, self.weight_address + 1]
        if self.status_address is not None:
            out.append(self.status_address)
        if self.tare_address is not None:
            out += [self.tare_address, self.tare_address + 1]
        return out

    @property
    def span(self) -> tuple[int, int]:
        """First address and count of the one read that covers weight, status and tare."""
        addresses = self._addresses()
        return min(addresses), max(addresses) - min(addresses) + 1

    def int32(self, words: list[int], address: int) -> int:
        first, _ = self.span
        a, b = words[address - first], words[address - first + 1]
        hi, lo = (a, b) if self.word_order == "big" else (b, a)
        raw = (hi << 16) | lo
        return raw - (1 << 32) if raw & 0x80000000 else raw

    def kg(self, raw: int) -> Decimal:
        return (Decimal(raw) * self.factor).scaleb(-self.decimals).quantize(KG, rounding=ROUND_HALF_UP)


def _bit(status: int | None, bit: int | None) -> bool | None:
    if status is None or bit is None:
        return None
    return bool(status >> bit & 1)


class ModbusScale:
    """A ``drivers.scale.base.Scale`` over Modbus; options = the register map + link settings."""

    def __init__(
        self,
        url: str,
        *,
        device_id: int = 1,
        timeout: float = 1.0,
        retries: int = 1,
        baudrate: int = 19200,
        parity: str = "N",
        stopbits: int = 1,
        poll_interval: float = 0.1,
        table: Literal["holding", "input"] = "holding",
        weight_address: int = 0,
        word_order: Literal["big", "little"] = "big",
        decimals: int = 3,
        factor: Decimal | str | int = 1,
        status_address: int | None = 2,
        stable_bit: int | None = 0,
        overload_bit: int | None = 1,
        underload_bit: int | None = 2,
        zero_bit: int | None = 3,
        tare_address: int | None = 3,
        commands: Literal["register", "coils"] = "register",
        command_address: int = 10,
        zero_command: int = 1,
        tare_command: int = 2,
        clear_tare_command: int = 3,
        zero_coil: int = 0,
        tare_coil: int = 1,
        clear_tare_coil: int = 2,
    ) -> None:
        if not url or not url.strip():
            raise DriverConfigError("Не задан адрес весов Modbus")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise DriverConfigError(f"Таймаут весов должен быть положительным числом секунд, а не {timeout!r}")
        if not isinstance(device_id, int) or not 0 <= device_id <= 247:
            raise DriverConfigError(f"Адрес устройства Modbus 0..247, а не {device_id!r}")
        try:
            factor_dec = Decimal(str(factor))
        except InvalidOperation as exc:
            raise DriverConfigError(f"factor: не число {factor!r}") from exc
        self.map = RegisterMap(
            table=table,
            weight_address=weight_address,
            word_order=word_order,
            decimals=decimals,
            factor=factor_dec,
            status_address=status_address,
            stable_bit=stable_bit,
            overload_bit=overload_bit,
            underload_bit=underload_bit,
            zero_bit=zero_bit,
            tare_address=tare_address,
            commands=commands,
            command_address=command_address,
            zero_command=zero_command,
            tare_command=tare_command,
            clear_tare_command=clear_tare_command,
            zero_coil=zero_coil,
            tare_coil=tare_coil,
            clear_tare_coil=clear_tare_coil,
        )
        self.url = url.strip()
        self.device_id = device_id
        self.timeout = float(timeout)
        self.retries = retries
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self.poll_interval = float(poll_interval)
        self._client: Any = None

    # --- link ------------------------------------------------------------------------------

    def _make_client(self) -> Any:
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient
        from pymodbus.framer import FramerType

        lower = self.url.lower()
        for scheme, framer in (("tcp://", FramerType.SOCKET), ("socket://", FramerType.SOCKET), ("rtu+tcp://", FramerType.RTU)):
            if lower.startswith(scheme):
                host, _, port = self.url[len(scheme) :].rpartition(":")
                if not host or not port.isdigit():
                    raise DriverConfigError(f"Адрес весов Modbus TCP должен быть вида {scheme}host:port: {self.url!r}")
                return ModbusTcpClient(
                    host, port=int(port), framer=framer, timeout=self.timeout, retries=self.retries
                )
        return ModbusSerialClient(
            self.url,
            framer=FramerType.RTU,
            baudrate=self.baudrate,
            parity=self.parity,
            stopbits=self.stopbits,
            timeout=self.timeout,
            retries=self.retries,
        )

    def open(self) -> None:
        if self._client is None:
            self._client = self._make_client()
        if not self._client.connect():
            raise DeviceUnavailable(f"Не удалось подключиться к весам Modbus {self.url}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

        if self._client is None:
            raise DeviceUnavailable(f"Весы Modbus {self.url} не открыты")
        try:
            response = getattr(self._client, method)(*args, device_id=self.device_id, **kwargs)
        except ConnectionException as exc:
            raise DeviceUnavailable(f"Связь с весами Modbus {self.url} потеряна: {exc}") from exc
        except ModbusIOException as exc:
            raise DeviceTimeout(f"Весы Modbus не ответили ({what}) за {self.timeout:g} с") from exc
        except ModbusException as exc:
            raise DeviceProtocolError(f"Ошибка Modbus ({what}): {exc}") from exc
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            text = EXCEPTION_TEXT.get(code, f"исключение {code}")
            raise ModbusScaleRejected(f"Весы отказали ({what}): {text} (код Modbus {code:02X})", code)
        return response

    # --- Scale API ---------------------------------------------------------------------------

    def info(self) -> ScaleInfo:
        return ScaleInfo(model="Modbus", extra={"url": self.url, "device_id": str(self.device_id)})

    def read(self) -> tuple[WeightReading, dict[str, bool | None]]:
        """One snapshot: the reading and the status flags (``None`` where the map has no bit)."""
        first, count = self.map.span
        method = "read_holding_registers" if self.map.table == "holding" else "read_input_registers"
        response = self._call("чтение веса", method, first, count=count)
        words = list(response.registers)
        if len(words) != count:
            raise DeviceProtocolError(f"Весы Modbus вернули {len(words)} регистров вместо {count}")
        m = self.map
        status = words[m.status_address - first] if m.status_address is not None else None
        flags = {
            "stable": _bit(status, m.stable_bit),
            "overload": _bit(status, m.overload_bit),
            "underload": _bit(status, m.underload_bit),
            "zero": _bit(status, m.zero_bit),
        }
        tare = m.kg(m.int32(words, m.tare_address)) if m.tare_address is not None else None
        reading = WeightReading(
            net=m.kg(m.int32(words, m.weight_address)), stable=flags["stable"] is not False, tare=tare
        )
        return reading, flags

    def weigh(self, *, stable: bool = True, timeout: float = 3.0) -> WeightReading:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            reading, flags = self.read()
            if flags["overload"]:
                raise ScaleOverload("Перегрузка весов: груз больше наибольшего предела взвешивания")
            if flags["underload"]:
                raise ScaleUnderload("Недогрузка весов: платформа снята или ноль сбит")
            if reading.stable or not stable:
                return reading
            if time.monotonic() + self.poll_interval >= deadline:
                raise ScaleUnstable(f"Вес не успокоился за {timeout:g} с", reading)
            time.sleep(self.poll_interval)

    def _command(self, what: str, register_value: int, coil: int) -> None:
        if self.map.commands == "register":
            self._call(what, "write_register", self.map.command_address, register_value)
        else:
            self._call(what, "write_coil", coil, True)

    def zero(self) -> None:
        self._command("обнуление", self.map.zero_command, self.map.zero_coil)

    def tare(self) -> WeightReading:
        before = self.weigh(timeout=3.0)
        self._command("тарирование", self.map.tare_command, self.map.tare_coil)
        after, _ = self.read()
        tare = after.tare if after.tare is not None else before.net + (before.tare or Decimal("0.000"))
        return WeightReading(net=Decimal("0.000"), stable=True, tare=tare)

    def clear_tare(self) -> None:
        self._command("сброс тары", self.map.clear_tare_command, self.map.clear_tare_coil)
