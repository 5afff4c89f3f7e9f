"""A Modbus weight transmitter / scale: a real pymodbus server (TCP, or RTU over a pty)
whose registers follow a weighing model you can set.

Register map (``ModbusScaleSimConfig``; defaults = the driver's documented default map, kept
as separate data on purpose — a simulator that imports the driver's map hides its bugs)::

    holding 0-1   weight, int32, high word first, 3 decimals (grams for a kg scale)
    holding 2     status bits: b0 stable, b1 overload, b2 underload, b3 centre of zero, b4 net
    holding 3-4   tare, int32, same format
    holding 10    command: write 1 = zero, 2 = tare, 3 = clear tare (reads back the last one)
    coils 0/1/2   zero / tare / clear tare (write ON), when ``commands="coils"``

Every read refreshes the weight, status and tare words from the model (a pymodbus ``SimDevice``
``action``). Zero while unstable → exception 06 (device busy), outside ``±zero_range`` →
exception 04 (device failure); tare while unstable → 06, outside ``0..capacity`` → 04.
Faults: ``set_unstable``, ``set_failure(code)`` (every request answers that Modbus exception),
``set_delay(seconds)`` (answers late: the host times out).

RTU over a pty: pymodbus's serial server opens a serial *path*, and a pty has only one, so
``serve_rtu_pty`` runs a null-modem: two ptys whose masters a thread cross-connects; the server
opens one slave, the host the other (returned path).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import termios
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

CMD_ZERO, CMD_TARE, CMD_CLEAR_TARE = 1, 2, 3
_FC_READ_HOLDING, _FC_READ_INPUT = 3, 4
_FC_WRITE_COIL, _FC_WRITE_REGISTER, _FC_WRITE_COILS, _FC_WRITE_REGISTERS = 5, 6, 15, 16


@dataclass(frozen=True, slots=True)
class ModbusScaleSimConfig:
    """Weighing model and register map of the simulated transmitter."""

    capacity: Decimal = Decimal("30.000")
    step: Decimal = Decimal("0.005")
    zero_range: Decimal = Decimal("0.600")
    initial_weight: Decimal = Decimal("0.000")
    unstable_after_change: float = 0.5
    device_id: int = 1
    table: Literal["holding", "input"] = "holding"
    weight_address: int = 0
    status_address: int = 2
    tare_address: int | None = 3
    word_order: Literal["big", "little"] = "big"
    decimals: int = 3
    stable_bit: int = 0
    overload_bit: int = 1
    underload_bit: int = 2
    zero_bit: int = 3
    net_bit: int = 4
    commands: Literal["register", "coils"] = "register"
    command_address: int = 10
    zero_coil: int = 0
    tare_coil: int = 1
    clear_tare_coil: int = 2
    registers: int = 32

    def __post_init__(self) -> None:
        for name in ("capacity", "step", "zero_range", "initial_weight"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise ValueError(f"ModbusScaleSimConfig.{name} must be a finite Decimal")
        if self.capacity <= 0 or self.step <= 0 or not 0 <= self.decimals <= 6:
            raise ValueError("capacity and step must be > 0, decimals 0..6")
        used = [self.weight_address, self.weight_address + 1, self.status_address, self.command_address]
        if self.tare_address is not None:
            used += [self.tare_address, self.tare_address + 1]
        if max(used) >= self.registers or min(used) < 0:
            raise ValueError("register map outside the simulated register range")


def _words(value: int, word_order: str) -> list[int]:
    raw = value & 0xFFFFFFFF
    hi, lo = raw >> 16, raw & 0xFFFF
    return [hi, lo] if word_order == "big" else [lo, hi]


class ModbusScaleSimulator:
    """The weighing model plus a pymodbus server running on its own event-loop thread."""

    def __init__(
        self, config: ModbusScaleSimConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or ModbusScaleSimConfig()
        self._clock = clock
        self._lock = threading.RLock()
        self.gross = self.config.initial_weight
        self.zero_offset = Decimal(0)
        self.tare = Decimal(0)
        self._unstable_until = 0.0
        self._failure: ExcCodes | None = None
        self._delay = 0.0
        self.commands: list[str] = []
        """Commands executed, in order (``zero``, ``tare``, ``clear_tare``)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._bridge: _NullModem | None = None

    # --- control ---------------------------------------------------------------------------

    def set_weight(self, kg: Decimal) -> None:
        with self._lock:
            self.gross = Decimal(kg)
            self._unstable_until = self._clock() + self.config.unstable_after_change

    def set_unstable(self, seconds: float) -> None:
        with self._lock:
            self._unstable_until = self._clock() + seconds

    def set_failure(self, code: ExcCodes | None) -> None:
        """Answer every request with Modbus exception ``code`` (``None`` heals)."""
        with self._lock:
            self._failure = code

    def set_delay(self, seconds: float) -> None:
        with self._lock:
            self._delay = seconds

    # --- model -----------------------------------------------------------------------------

    def _stable(self) -> bool:
        return self._clock() >= self._unstable_until

    def _round(self, kg: Decimal) -> Decimal:
        step = self.config.step
        return (kg / step).to_integral_value(rounding=ROUND_HALF_UP) * step

    def _raw(self, kg: Decimal) -> int:
        return int((self._round(kg) * (10**self.config.decimals)).to_integral_value(rounding=ROUND_HALF_UP))

    def snapshot(self) -> dict[int, int]:
        """Register address → value for the weight, status and tare words, as a read sees them."""
        c = self.config
        with self._lock:
            shown = self.gross - self.zero_offset
            net = shown - self.tare
            stable = self._stable()
            if not stable:
                net += c.step if int(self._clock() * 10) % 2 else -c.step
            status = 0
            if stable:
                status |= 1 << c.stable_bit
            if shown > c.capacity + 9 * c.step:
                status |= 1 << c.overload_bit
            if shown < -c.zero_range:
                status |= 1 << c.underload_bit
            if self._raw(shown) == 0:
                status |= 1 << c.zero_bit
            if self.tare:
                status |= 1 << c.net_bit
            out = dict(enumerate(_words(self._raw(net), c.word_order), start=c.weight_address))
            out[c.status_address] = status
            if c.tare_address is not None:
                out.update(enumerate(_words(self._raw(self.tare), c.word_order), start=c.tare_address))
            return out

    def execute(self, command: int) -> ExcCodes | None:
        """Run a zero/tare/clear-tare command as the device would; an exception code if refused."""
        c = self.config
        with self._lock:
            if command == CMD_CLEAR_TARE:
                self.tare = Decimal(0)
                self.commands.append("clear_tare")
                return None
            if command not in (CMD_ZERO, CMD_TARE):
                return ExcCodes.ILLEGAL_VALUE
            if not self._stable():
                return ExcCodes.DEVICE_BUSY
            if command == CMD_ZERO:
                if abs(self.gross) > c.zero_range:
                    return ExcCodes.DEVICE_FAILURE
                self.zero_offset = self.gross
                self.tare = Decimal(0)
                self.commands.append("zero")
                return None
            shown = self.gross - self.zero_offset
            if shown < 0 or shown > c.capacity:
                return ExcCodes.DEVICE_FAILURE
            self.tare = self._round(shown)
            self.commands.append("tare")
            return None

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        with self._lock:
            failure, delay = self._failure, self._delay
        if delay:
            await asyncio.sleep(delay)
        if failure is not None:
            return failure
        c = self.config
        read_fc = _FC_READ_HOLDING if c.table == "holding" else _FC_READ_INPUT
        if function_code == read_fc:
            for reg, value in self.snapshot().items():
                registers[reg - start_address] = value
            return None
        written: list[Any] = set_values if set_values is not None else []
        if (
            c.commands == "register"
            and function_code in (_FC_WRITE_REGISTER, _FC_WRITE_REGISTERS)
            and address <= c.command_address < address + len(written)
        ):
            return self.execute(int(written[c.command_address - address]))
        if c.commands == "coils" and function_code in (_FC_WRITE_COIL, _FC_WRITE_COILS) and written:
            coil_commands = {c.zero_coil: CMD_ZERO, c.tare_coil: CMD_TARE, c.clear_tare_coil: CMD_CLEAR_TARE}
            for i, value in enumerate(written):
                command = coil_commands.get(address + i)
                if value and command is not None and (result := self.execute(command)) is not None:
                    return result
        return None

    def _device(self) -> SimDevice:
        n = self.config.registers
        bits = [SimData(0, count=n, values=False, datatype=DataType.BITS)]
        return SimDevice(
            self.config.device_id,
            simdata=(
                bits,
                [SimData(0, count=n, values=False, datatype=DataType.BITS)],
                [SimData(0, count=n, values=0, datatype=DataType.REGISTERS)],
                [SimData(0, count=n, values=0, datatype=DataType.REGISTERS)],
            ),
            action=self._action,
        )

    # --- serving ---------------------------------------------------------------------------

    def serve_tcp(self, port: int = 0, host: str = "127.0.0.1") -> tuple[str, int]:
        """Start a Modbus TCP server; returns the bound address."""
        server = self._start(lambda: ModbusTcpServer(self._device(), address=(host, port)))
        transport: Any = server.transport
        sockname = transport.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    def serve_rtu_pty(self, baudrate: int = 19200) -> str:
        """Start a Modbus RTU server behind a pty null-modem; returns the path the host opens."""
        bridge = _NullModem()
        server_path, host_path = bridge.start()
        self._bridge = bridge
        self._start(
            lambda: ModbusSerialServer(
                self._device(), framer=FramerType.RTU, port=server_path, baudrate=baudrate, timeout=1
            )
        )
        return host_path

    def _start(self, factory: Callable[[], ModbusTcpServer | ModbusSerialServer]) -> ModbusTcpServer | ModbusSerialServer:
        """Build the server inside its own loop (pymodbus needs a running loop) and listen."""
        if self._thread is not None:
            raise RuntimeError("simulator already serving")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        async def listen() -> None:
            self._server = factory()
            await self._server.serve_forever(background=True)

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(listen())
            except BaseException as exc:  # reported to the caller below
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="modbus-scale-sim", daemon=True)
        self._thread.start()
        if not ready.wait(10) or errors or self._server is None:
            self.stop()
            raise RuntimeError(f"Modbus simulator did not start: {errors[0] if errors else 'timeout'}")
        return self._server

    def stop(self) -> None:
        loop, server, thread = self._loop, self._server, self._thread
        if loop is not None and thread is not None:
            if loop.is_running() and server is not None:
                with contextlib.suppress(Exception):
                    asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(5)  # type: ignore[no-untyped-call]
                loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            if not loop.is_running():
                pending = asyncio.all_tasks(loop)
                for task in pending:  # requests still waiting on an injected delay
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()
        self._loop = self._server = self._thread = None
        if self._bridge is not None:
            self._bridge.stop()
            self._bridge = None


class _NullModem:
    """Two ptys whose masters are cross-connected by a thread: a virtual serial cable."""

    def __init__(self) -> None:
        self._fds: list[int] = []
        self._stop_r, self._stop_w = -1, -1
        self._thread: threading.Thread | None = None

    def start(self) -> tuple[str, str]:
        paths = []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave, termios.TCSANOW)
            os.set_blocking(master, False)
            self._fds += [master, slave]
            paths.append(os.ttyname(slave))
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="modbus-null-modem", daemon=True)
        self._thread.start()
        return paths[0], paths[1]

    def _run(self) -> None:
        a, b = self._fds[0], self._fds[2]
        peer = {a: b, b: a}
        while True:
            ready, _, _ = select.select([a, b, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except (BlockingIOError, OSError):
                    continue
                if data:
                    with contextlib.suppress(OSError):
                        os.write(peer[fd], data)

    def stop(self) -> None:
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(5)
            self._thread = None
        for fd in [*self._fds, self._stop_r, self._stop_w]:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
