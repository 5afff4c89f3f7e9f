"""Fiscal register simulator for testers: a Shtrih-M register with an FN on a pty or a TCP
port (7778 like a real networked register). Mounted by the lead as ``vitrina sim fiscal``.

Keyboard (one line each): ``paper`` toggles paper out/in, ``cover`` opens/closes the cover,
``power`` simulates a power loss, ``km <code> valid|invalid|no_connection`` sets the answer
for a marking code, ``status`` prints the mode, ``q`` quits. The printed tape goes to
``--tape`` as readable Russian text.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, TextIO

import typer

from simulators.fiscal.device import ShtrihDevice, SimConfig
from simulators.link import PtyEndpoint, TcpEndpoint

app = typer.Typer(help="Симулятор ККТ Штрих-М с ФН на pty или TCP-порту.", no_args_is_help=True)

HELP = (
    "Команды: paper — нет/есть бумага; cover — открыть/закрыть крышку; power — сбой питания; "
    "km <код> valid|invalid|no_connection — ответ на проверку КМ; status — состояние; q — выход"
)


@app.callback()
def main() -> None:
    """Симуляторы фискальных регистраторов."""


def run_console(dev: ShtrihDevice, lines: TextIO, out: TextIO) -> None:
    """Apply tester commands from ``lines`` until ``q`` or end of input."""
    for raw in lines:
        parts = raw.strip().split()
        if not parts:
            continue
        cmd = parts[0].lower()
        if cmd == "q":
            break
        with dev.lock:
            if cmd == "paper":
                (dev.paper_in if not dev.paper else dev.paper_out)()
                print("Бумага есть" if dev.paper else "Нет чековой ленты", file=out)
            elif cmd == "cover":
                (dev.close_cover if dev.cover_open else dev.open_cover)()
                print("Крышка открыта" if dev.cover_open else "Крышка закрыта", file=out)
            elif cmd == "power":
                dev.power_loss()
                print("Сбой питания: открытый чек аннулирован, ФН прочитан заново", file=out)
            elif cmd == "km" and len(parts) == 3 and parts[2] in ("valid", "invalid", "no_connection"):
                dev.marking[parts[1].encode("ascii", "replace")] = parts[2]
                print(f"КМ {parts[1]}: {parts[2]}", file=out)
            elif cmd == "status":
                print(
                    f"Режим {dev.mode()}, смена {dev.fn.shift_number} "
                    f"({'открыта' if dev.fn.shift_open else 'закрыта'}), последний ФД {dev.fn.last_fd}",
                    file=out,
                )
            else:
                print(HELP, file=out)


@app.command()
def serve(
    pty: Annotated[bool, typer.Option("--pty", help="Отдать устройство на псевдотерминале")] = False,
    tcp: Annotated[int | None, typer.Option("--tcp", help="Слушать TCP-порт (штатно 7778)")] = None,
    host: Annotated[str, typer.Option(help="Адрес для --tcp")] = "127.0.0.1",
    state: Annotated[Path | None, typer.Option("--state", help="Файл состояния ФН (JSON)")] = None,
    tape: Annotated[Path | None, typer.Option("--tape", help="Файл чековой ленты (текст)")] = None,
) -> None:
    """Запустить симулятор ККТ."""
    if pty == (tcp is not None):
        raise typer.BadParameter("Укажите ровно одно из --pty или --tcp PORT")
    dev = ShtrihDevice(SimConfig(state_file=state, tape_file=tape))
    endpoint: PtyEndpoint | TcpEndpoint
    if pty:
        endpoint = PtyEndpoint(dev)
        where = endpoint.start()
        typer.echo(f"ККТ Штрих-М на {where}")
    else:
        endpoint = TcpEndpoint(dev, host, tcp or 0)
        h, p = endpoint.start()
        typer.echo(f"ККТ Штрих-М на tcp://{h}:{p}")
    typer.echo(HELP)
    try:
        run_console(dev, sys.stdin, sys.stdout)
    except KeyboardInterrupt:
        pass
    finally:
        endpoint.stop()
