"""Receipt printer simulator for testers: an ESC/POS printer on TCP 9100 (or a pty) that
writes every printed document as UTF-8 text. Mounted by the lead as ``vitrina sim printer``.

Keyboard (one line each): ``p`` paper out / load a roll, ``n`` paper near end, ``c``
open/close the cover, ``x`` cutter error on/off, ``i`` show the state, ``q`` quits.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, TextIO

import typer

from simulators.printer.device import ReceiptPrinterConfig, ReceiptPrinterSimulator

app = typer.Typer(help="Симулятор принтера чеков (ESC/POS) на TCP-порту или pty.")

HELP = (
    "Команды: p — нет бумаги / вставить рулон; n — бумага на исходе; c — открыть/закрыть крышку; "
    "x — ошибка отрезчика вкл/выкл; i — состояние; q — выход"
)


def run_console(sim: ReceiptPrinterSimulator, lines: TextIO, out: TextIO) -> None:
    """Apply tester commands from ``lines`` until ``q`` or end of input."""
    for raw in lines:
        cmd = raw.strip().lower()
        if not cmd:
            continue
        if cmd == "q":
            break
        if cmd == "p":
            sim.set_paper(None if sim.paper_out else 0)
            print("Бумага закончилась" if sim.paper_out else "Вставлен новый рулон", file=out)
        elif cmd == "n":
            sim.set_paper(sim.config.near_end_lines)
            print(f"Бумага на исходе: осталось {sim.config.near_end_lines} строк", file=out)
        elif cmd == "c":
            sim.set_cover_open(not sim.cover_open)
            print("Крышка открыта" if sim.cover_open else "Крышка закрыта", file=out)
        elif cmd == "x":
            sim.set_cutter_error(not sim.cutter_error)
            print("Ошибка отрезчика" if sim.cutter_error else "Отрезчик в порядке", file=out)
        elif cmd == "i":
            st = sim.status()
            print(
                f"неисправности: {', '.join(st.faults) or 'нет'}; бумага на исходе: "
                f"{'да' if st.paper_near_end else 'нет'}; документов: {len(sim.documents)}",
                file=out,
            )
        else:
            print(f"Непонятная команда {cmd!r}. {HELP}", file=out)
        out.flush()


@app.callback(invoke_without_command=True)
def serve(
    out: Annotated[Path, typer.Option(help="Каталог для напечатанных документов (UTF-8)")] = Path("receipts"),
    tcp: Annotated[int | None, typer.Option(help="TCP-порт (0 — любой свободный)")] = 9100,
    pty: Annotated[bool, typer.Option(help="Слушать pty вместо TCP")] = False,
    host: Annotated[str, typer.Option(help="Адрес для TCP")] = "127.0.0.1",
    width: Annotated[int, typer.Option(help="Ширина бумаги в символах: 32, 42 или 48")] = 48,
    paper: Annotated[int | None, typer.Option(help="Строк бумаги в рулоне (по умолчанию бесконечно)")] = None,
) -> None:
    """Запустить принтер чеков; каждый документ пишется в --out как текст."""
    try:
        config = ReceiptPrinterConfig(width=width, paper_lines=paper, out_dir=out)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    sim = ReceiptPrinterSimulator(config)
    try:
        if pty:
            print(f"Принтер чеков (ESC/POS) на {sim.serve_pty()}")
        else:
            bound, port = sim.serve_tcp(tcp or 0, host)
            print(f"Принтер чеков (ESC/POS) на tcp://{bound}:{port}")
        print(f"Документы: {out.resolve()}")
        print(HELP)
        sys.stdout.flush()
        run_console(sim, sys.stdin, sys.stdout)
    finally:
        sim.stop()
