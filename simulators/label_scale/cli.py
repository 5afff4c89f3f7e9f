"""Label-scale simulator for testers: a CAS CL scale on a pty or a TCP port (real scales listen
on 20304) that keeps the PLU table the gateway uploads and prints labels from the keyboard.
Mounted by the lead as ``vitrina sim label-scale``.

Keyboard (one line each): ``7 0.500`` weighs 0.500 kg of PLU 7 and prints its label (name,
weight, price, sum, dates and the EAN-13 weight barcode), ``l`` lists the PLU table, ``g``
injects garbage, ``s`` toggles silence, ``p`` unplugs/plugs, ``q`` quits.
"""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation
from typing import Annotated, TextIO

import typer

from protocols import cas
from protocols.barcodes.weight import WeightBarcodeFormat
from simulators.label_scale.cas import CasLabelScaleConfig, CasLabelScaleSimulator

app = typer.Typer(
    help="Симулятор весов с печатью этикеток (CAS CL) на pty или TCP-порту.", no_args_is_help=True
)

HELP = (
    "Команды: <ПЛУ> <вес в кг> (например 7 0.500) — взвесить и напечатать этикетку; l — таблица ПЛУ; "
    "g — мусор в линию; s — молчать/отвечать; p — отключить/подключить; q — выход"
)

DEMO_PLUS = (
    cas.Plu(1, "Сыр Российский", 54_990, shelf_life_days=30, item_code=1001),
    cas.Plu(2, "Колбаса докторская", 69_900, shelf_life_days=10, item_code=1002),
    cas.Plu(3, "Яблоки Голден", 15_990, shelf_life_days=14, item_code=1003),
)


@app.callback()
def main() -> None:
    """Симуляторы весов с печатью этикеток."""


def run_console(sim: CasLabelScaleSimulator, lines: TextIO, out: TextIO) -> None:
    """Apply tester commands from ``lines`` until ``q`` or end of input."""
    silent = False
    plugged = True
    for raw in lines:
        cmd = raw.strip().lower()
        if not cmd:
            continue
        if cmd == "q":
            break
        if cmd == "l":
            _print_table(sim, out)
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
            _print_label(sim, cmd, out)
        out.flush()


def _print_label(sim: CasLabelScaleSimulator, cmd: str, out: TextIO) -> None:
    parts = cmd.replace(",", ".").split()
    if len(parts) != 2 or not parts[0].isdigit():
        print(f"Непонятная команда {cmd!r}. {HELP}", file=out)
        return
    try:
        kg = Decimal(parts[1])
    except InvalidOperation:
        kg = Decimal("NaN")
    if not kg.is_finite() or kg <= 0:
        print(f"Вес должен быть положительным числом килограммов, а не {parts[1]!r}", file=out)
        return
    try:
        label = sim.print_label(int(parts[0]), kg)
    except KeyError:
        print(f"ПЛУ {int(parts[0])} нет в весах: загрузите его или посмотрите таблицу (l)", file=out)
        return
    except ValueError as exc:
        print(f"Этикетка не напечатана: {exc}", file=out)
        return
    print("----- этикетка -----", file=out)
    print(label.text(), file=out)
    print("--------------------", file=out)


def _print_table(sim: CasLabelScaleSimulator, out: TextIO) -> None:
    plus = sorted(sim.plus.values(), key=lambda p: (p.department, p.number))
    if not plus:
        print("Таблица ПЛУ пуста", file=out)
        return
    print(f"ПЛУ в весах: {len(plus)}", file=out)
    for plu in plus:
        shelf = f", годен {plu.shelf_life_days} сут." if plu.shelf_life_days else ""
        print(
            f"  {plu.number:>6}  {plu.name}  {plu.price // 100}.{plu.price % 100:02d} ₽/кг, "
            f"код {plu.item_code}{shelf}",
            file=out,
        )


@app.command("cas")
def serve_cas(
    tcp: Annotated[
        int | None,
        typer.Option(help="Слушать TCP-порт (0 — любой свободный; у весов CAS это 20304) вместо pty"),
    ] = None,
    host: Annotated[str, typer.Option(help="Адрес для TCP")] = "127.0.0.1",
    capacity: Annotated[int, typer.Option(help="Сколько ПЛУ помещается в память", min=1)] = 3000,
    max_price: Annotated[int, typer.Option(help="Наибольшая цена за кг, коп.", min=0)] = 99_999_999,
    prefix: Annotated[str, typer.Option(help="Префикс весового штрихкода (20–29)")] = "22",
    demo: Annotated[bool, typer.Option(help="Начать с тремя ПЛУ (1–3) в памяти")] = False,
) -> None:
    """Запустить весы CAS CL и печатать этикетки с клавиатуры."""
    try:
        fmt = WeightBarcodeFormat((prefix,))
    except ValueError as exc:
        raise typer.BadParameter(f"Неверный префикс штрихкода {prefix!r}: {exc}") from exc
    sim = CasLabelScaleSimulator(
        CasLabelScaleConfig(capacity=capacity, max_price=max_price, barcode_prefix=prefix, barcode_format=fmt)
    )
    if demo:
        for plu in DEMO_PLUS:
            sim.plus[(plu.department, plu.number)] = plu
    try:
        if tcp is None:
            path = sim.serve_pty()
            print(f"Весы CAS CL на {path}  (URL для драйвера: {path})")
        else:
            bound_host, port = sim.serve_tcp(tcp, host)
            print(f"Весы CAS CL на tcp://{bound_host}:{port}")
        print(HELP)
        sys.stdout.flush()
        run_console(sim, sys.stdin, sys.stdout)
    finally:
        sim.stop()
