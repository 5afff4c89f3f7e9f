"""Label printer simulator for testers: a ZPL printer on TCP 9100 (or a pty) that writes a
PNG preview of every printed label. Mounted by the lead as ``vitrina sim label``.

Keyboard (one line each): ``p`` paper out / load 500 labels, ``h`` open/close the head,
``s`` pause/resume, ``r`` ribbon out/in, ``i`` show the state, ``q`` quits.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, TextIO

import typer

from simulators.label.printer import LabelPrinterConfig, LabelPrinterSimulator
from simulators.label.render import find_font

app = typer.Typer(help="Симулятор принтера этикеток (ZPL II) на TCP-порту или pty.")

HELP = (
    "Команды: p — нет бумаги / вставить рулон; h — открыть/закрыть головку; s — пауза/продолжить; "
    "r — нет риббона / вставить; i — состояние; q — выход"
)


def run_console(sim: LabelPrinterSimulator, lines: TextIO, out: TextIO) -> None:
    """Apply tester commands from ``lines`` until ``q`` or end of input."""
    for raw in lines:
        cmd = raw.strip().lower()
        if not cmd:
            continue
        if cmd == "q":
            break
        if cmd == "p":
            sim.set_paper(500 if sim.paper_out else 0)
            print("Бумага закончилась" if sim.paper_out else "Вставлен рулон на 500 этикеток", file=out)
        elif cmd == "h":
            sim.set_head_open(not sim.head_open)
            print("Головка открыта" if sim.head_open else "Головка закрыта", file=out)
        elif cmd == "s":
            sim.set_paused(not sim.paused)
            print("Пауза" if sim.paused else "Печать продолжается", file=out)
        elif cmd == "r":
            sim.set_ribbon_out(not sim.ribbon_out)
            print("Риббон закончился" if sim.ribbon_out else "Риббон вставлен", file=out)
        elif cmd == "i":
            st = sim.status()
            print(
                f"неисправности: {', '.join(st.faults) or 'нет'}; в буфере {st.formats_in_buffer}; "
                f"осталось {st.labels_remaining}; напечатано заданий {len(sim.printed)}",
                file=out,
            )
        else:
            print(f"Непонятная команда {cmd!r}. {HELP}", file=out)
        out.flush()


@app.callback(invoke_without_command=True)
def serve(
    out: Annotated[Path, typer.Option(help="Каталог для PNG-превью этикеток")] = Path("labels"),
    tcp: Annotated[int | None, typer.Option(help="TCP-порт (0 — любой свободный)")] = 9100,
    pty: Annotated[bool, typer.Option(help="Слушать pty вместо TCP")] = False,
    host: Annotated[str, typer.Option(help="Адрес для TCP")] = "127.0.0.1",
    dpi: Annotated[int, typer.Option(help="Разрешение: 203 или 300")] = 203,
    width: Annotated[int, typer.Option(help="Ширина этикетки, мм")] = 58,
    height: Annotated[int, typer.Option(help="Высота этикетки, мм")] = 40,
    paper: Annotated[int | None, typer.Option(help="Этикеток в рулоне (по умолчанию бесконечно)")] = None,
) -> None:
    """Запустить принтер этикеток; превью каждой этикетки пишется в --out."""
    try:
        config = LabelPrinterConfig(
            dpi=dpi, width_mm=width, height_mm=height, paper_labels=paper, out_dir=out
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    sim = LabelPrinterSimulator(config)
    font = find_font()
    try:
        if pty:
            print(f"Принтер этикеток (ZPL) на {sim.serve_pty()}")
        else:
            bound, port = sim.serve_tcp(tcp or 0, host)
            print(f"Принтер этикеток (ZPL) на tcp://{bound}:{port}")
        print(f"Превью: {out.resolve()}; шрифт: {font or 'встроенный Pillow (без кириллицы)'}")
        print(HELP)
        sys.stdout.flush()
        run_console(sim, sys.stdin, sys.stdout)
    finally:
        sim.stop()
