"""Scale simulator for testers: serve a scale (MT-SICS, Massa-K Protocol 100 or Shtrih M5) on
a pty or TCP port and drive the weight from the keyboard. Mounted by the lead as
``vitrina sim scale``; one command per protocol (``mtsics``, ``massak``, ``shtrih_m5``).

Keyboard (one line each): ``1.250`` puts 1.250 kg on the platform, ``u`` makes the reading
unstable for 2 s, ``o`` overloads, ``z`` empties the platform, ``g`` injects garbage, ``s``
toggles silence, ``p`` unplugs/plugs, ``q`` quits.
"""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation
from typing import Annotated, Protocol, TextIO

import typer

from protocols.shtrih_m5 import DEFAULT_PASSWORD
from simulators.scale.massak import MassaKConfig, MassaKSimulator
from simulators.scale.mtsics import MtSicsConfig, MtSicsSimulator
from simulators.scale.shtrih_m5 import ShtrihM5Config, ShtrihM5Simulator

app = typer.Typer(
    help="Симулятор весов (MT-SICS, Масса-К, Штрих М5) на pty или TCP-порту.", no_args_is_help=True
)

TcpOption = Annotated[int | None, typer.Option(help="Слушать TCP-порт (0 — любой свободный) вместо pty")]
HostOption = Annotated[str, typer.Option(help="Адрес для TCP")]
CapacityOption = Annotated[str, typer.Option(help="НПВ, кг")]
WeightOption = Annotated[str, typer.Option(help="Начальный вес, кг")]
UnstableOption = Annotated[float, typer.Option(help="Секунд нестабильности после смены веса")]


class _Capacity(Protocol):
    @property
    def capacity(self) -> Decimal: ...


class ConsoleScale(Protocol):
    """What the keyboard console drives: every scale simulator has it."""

    @property
    def config(self) -> _Capacity: ...

    def set_weight(self, kg: Decimal) -> None: ...

    def set_unstable(self, seconds: float) -> None: ...

    def set_silent(self, silent: bool = True) -> None: ...

    def inject_garbage(self, data: bytes) -> None: ...

    def unplug(self) -> None: ...

    def plug(self) -> None: ...

    def serve_pty(self) -> str: ...

    def serve_tcp(self, port: int = 0, host: str = "127.0.0.1") -> tuple[str, int]: ...

    def stop(self) -> None: ...


HELP = (
    "Команды: <вес в кг> (например 1.250) — положить груз; u — нестабильно 2 с; o — перегрузка; "
    "z — снять груз; g — мусор в линию; s — молчать/отвечать; p — отключить/подключить; q — выход"
)


@app.callback()
def main() -> None:
    """Симуляторы весов."""


def run_console(sim: ConsoleScale, lines: TextIO, out: TextIO) -> None:
    """Apply tester commands from ``lines`` until ``q`` or end of input."""
    silent = False
    plugged = True
    for raw in lines:
        cmd = raw.strip().lower().replace(",", ".")
        if not cmd:
            continue
        if cmd == "q":
            break
        if cmd == "u":
            sim.set_unstable(2.0)
            print("Вес нестабилен 2 с", file=out)
        elif cmd == "o":
            over = sim.config.capacity + 1
            sim.set_weight(over)
            print(f"Перегрузка: на платформе {over} кг", file=out)
        elif cmd == "z":
            sim.set_weight(Decimal("0.000"))
            print("Платформа пуста", file=out)
        elif cmd == "g":
            sim.inject_garbage(b"\x00\xff#garbage")
            print("В линию отправлен мусор", file=out)
        elif cmd == "s":
            silent = not silent
            sim.set_silent(silent)
            print("Весы молчат" if silent else "Весы отвечают", file=out)
        elif cmd == "p":
            if plugged:
                sim.unplug()
            else:
                sim.plug()
            plugged = not plugged
            print("Весы подключены" if plugged else "Весы отключены", file=out)
        else:
            try:
                kg = Decimal(cmd)
            except InvalidOperation:
                print(f"Непонятная команда {cmd!r}. {HELP}", file=out)
                continue
            if not kg.is_finite():
                print(f"Непонятная команда {cmd!r}. {HELP}", file=out)
                continue
            sim.set_weight(kg)
            print(f"На платформе {kg} кг", file=out)
        out.flush()


def serve(sim: ConsoleScale, title: str, tcp: int | None, host: str) -> None:
    """Serve ``sim`` on a pty (or TCP), print where, run the keyboard console, stop."""
    try:
        if tcp is None:
            path = sim.serve_pty()
            print(f"{title} на {path}  (URL для драйвера: {path})")
        else:
            bound_host, port = sim.serve_tcp(tcp, host)
            print(f"{title} на tcp://{bound_host}:{port}")
        print(HELP)
        sys.stdout.flush()
        run_console(sim, sys.stdin, sys.stdout)
    finally:
        sim.stop()


def _kg(value: str, what: str) -> Decimal:
    try:
        kg = Decimal(value.replace(",", "."))
    except InvalidOperation as exc:
        raise typer.BadParameter(f"{what}: ожидается число килограммов, а не {value!r}") from exc
    if not kg.is_finite():
        raise typer.BadParameter(f"{what}: ожидается число килограммов, а не {value!r}")
    return kg


@app.command("mtsics")
def serve_mtsics(
    tcp: TcpOption = None,
    host: HostOption = "127.0.0.1",
    capacity: CapacityOption = "15.000",
    division: Annotated[str, typer.Option(help="Дискретность, кг")] = "0.005",
    weight: WeightOption = "0.000",
    serial: Annotated[str, typer.Option(help="Заводской номер")] = "B123456789",
    unstable: UnstableOption = 0.5,
) -> None:
    """Запустить весы MT-SICS и управлять весом с клавиатуры."""
    try:
        config = MtSicsConfig(
            capacity=_kg(capacity, "НПВ"),
            division=_kg(division, "Дискретность"),
            initial_weight=_kg(weight, "Начальный вес"),
            serial_number=serial,
            unstable_after_change=unstable,
        )
    except ValueError as exc:
        raise typer.BadParameter(f"Неверные параметры весов: {exc}") from exc
    serve(MtSicsSimulator(config), "Весы MT-SICS", tcp, host)


@app.command("massak")
def serve_massak(
    tcp: TcpOption = None,
    host: HostOption = "127.0.0.1",
    capacity: CapacityOption = "15.000",
    step: Annotated[str, typer.Option(help="Шаг показаний, кг (целое число граммов)")] = "0.005",
    weight: WeightOption = "0.000",
    unstable: UnstableOption = 0.5,
) -> None:
    """Запустить весы Масса-К (протокол 100) и управлять весом с клавиатуры."""
    try:
        config = MassaKConfig(
            capacity=_kg(capacity, "НПВ"),
            step=_kg(step, "Шаг"),
            initial_weight=_kg(weight, "Начальный вес"),
            unstable_after_change=unstable,
        )
    except ValueError as exc:
        raise typer.BadParameter(f"Неверные параметры весов: {exc}") from exc
    serve(MassaKSimulator(config), "Весы Масса-К (протокол 100)", tcp, host)


@app.command("shtrih_m5")
def serve_shtrih_m5(
    tcp: TcpOption = None,
    host: HostOption = "127.0.0.1",
    capacity: CapacityOption = "15.000",
    step: Annotated[str, typer.Option(help="Шаг показаний, кг")] = "0.005",
    weight: WeightOption = "0.000",
    unstable: UnstableOption = 0.5,
    password: Annotated[
        int, typer.Option(help="Пароль весов (команды с паролем проверяют его)")
    ] = DEFAULT_PASSWORD,
) -> None:
    """Запустить весы Штрих М5 и управлять весом с клавиатуры."""
    try:
        config = ShtrihM5Config(
            capacity=_kg(capacity, "НПВ"),
            step=_kg(step, "Шаг"),
            initial_weight=_kg(weight, "Начальный вес"),
            unstable_after_change=unstable,
            password=password,
        )
    except ValueError as exc:
        raise typer.BadParameter(f"Неверные параметры весов: {exc}") from exc
    serve(ShtrihM5Simulator(config), "Весы Штрих М5", tcp, host)
