"""Scale simulator for testers: serve an MT-SICS scale on a pty or TCP port and drive the
weight from the keyboard. Mounted by the lead as ``vitrina sim scale``.

Keyboard (one line each): ``1.250`` puts 1.250 kg on the platform, ``u`` makes the reading
unstable for 2 s, ``o`` overloads, ``z`` empties the platform, ``g`` injects garbage, ``s``
toggles silence, ``p`` unplugs/plugs, ``q`` quits.
"""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation
from typing import Annotated, TextIO

import typer

from simulators.scale.mtsics import MtSicsConfig, MtSicsSimulator

app = typer.Typer(help="Симулятор весов (MT-SICS) на pty или TCP-порту.", no_args_is_help=True)

HELP = (
    "Команды: <вес в кг> (например 1.250) — положить груз; u — нестабильно 2 с; o — перегрузка; "
    "z — снять груз; g — мусор в линию; s — молчать/отвечать; p — отключить/подключить; q — выход"
)


@app.callback()
def main() -> None:
    """Симуляторы весов."""


def run_console(sim: MtSicsSimulator, lines: TextIO, out: TextIO) -> None:
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


@app.command("mtsics")
def serve_mtsics(
    tcp: Annotated[int | None, typer.Option(help="Слушать TCP-порт (0 — любой свободный) вместо pty")] = None,
    host: Annotated[str, typer.Option(help="Адрес для TCP")] = "127.0.0.1",
    capacity: Annotated[str, typer.Option(help="НПВ, кг")] = "15.000",
    division: Annotated[str, typer.Option(help="Дискретность, кг")] = "0.005",
    weight: Annotated[str, typer.Option(help="Начальный вес, кг")] = "0.000",
    serial: Annotated[str, typer.Option(help="Заводской номер")] = "B123456789",
    unstable: Annotated[float, typer.Option(help="Секунд нестабильности после смены веса")] = 0.5,
) -> None:
    """Запустить весы MT-SICS и управлять весом с клавиатуры."""
    try:
        config = MtSicsConfig(
            capacity=Decimal(capacity),
            division=Decimal(division),
            initial_weight=Decimal(weight),
            serial_number=serial,
            unstable_after_change=unstable,
        )
    except (InvalidOperation, ValueError) as exc:
        raise typer.BadParameter(f"Неверные параметры весов: {exc}") from exc
    sim = MtSicsSimulator(config)
    try:
        if tcp is None:
            path = sim.serve_pty()
            print(f"Весы MT-SICS на {path}  (URL для драйвера: {path})")
        else:
            bound_host, port = sim.serve_tcp(tcp, host)
            print(f"Весы MT-SICS на tcp://{bound_host}:{port}")
        print(HELP)
        sys.stdout.flush()
        run_console(sim, sys.stdin, sys.stdout)
    finally:
        sim.stop()
