"""Scanner simulator for testers: a serial / USB-CDC scanner on a pty (or TCP port) that scans
the codes of a script file and then the lines typed on stdin (same syntax: see
``simulators.scanner.script``; ``@quit`` or end of input stops). Mounted by the lead as
``vitrina sim scanner``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TextIO

import typer

from protocols.scanner import FramingConfigError, LineFraming
from simulators.scanner.device import ScannerConfig, ScannerSimulator
from simulators.scanner.script import (
    GarbageStep,
    PlugStep,
    ScanStep,
    ScriptError,
    Step,
    UnplugStep,
    WaitStep,
    parse_line,
    parse_script,
)

app = typer.Typer(
    help="Симулятор сканера штрихкодов (COM/USB-CDC) на pty или TCP-порту.", no_args_is_help=True
)

HELP = (
    "Строка — код для сканирования (GS как <GS> или \\x1d). Команды: @wait <с>, @split <код>, "
    "@garbage [hex], @unplug, @plug, @quit"
)


@app.callback()
def main() -> None:
    """Симулятор сканера штрихкодов."""


def _describe(step: Step, sent: bool | None) -> str:
    if isinstance(step, ScanStep):
        shown = step.code.replace("\x1d", "<GS>")
        how = " (в два приёма)" if step.split else ""
        return f"Отсканировано{how}: {shown}" if sent else f"Не отправлено (сканер отключён): {shown}"
    if isinstance(step, WaitStep):
        return f"Пауза {step.seconds} с"
    if isinstance(step, GarbageStep):
        return "В линию отправлен мусор" if sent else "Мусор не отправлен (сканер отключён)"
    if isinstance(step, UnplugStep):
        return "Сканер отключён"
    if isinstance(step, PlugStep):
        return "Сканер подключён"
    return str(step)  # pragma: no cover - every step kind is handled above


def run_steps(
    sim: ScannerSimulator, steps: list[Step], out: TextIO, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Play ``steps``, printing one line per step."""
    for step in steps:
        results = sim.play([step], sleep=sleep)
        print(_describe(step, results[0] if results else None), file=out)
        out.flush()


def run_console(
    sim: ScannerSimulator, lines: TextIO, out: TextIO, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Scan what the tester types until ``@quit`` or end of input."""
    for lineno, line in enumerate(lines, start=1):
        if line.strip().lower() in ("@quit", "@q"):
            break
        try:
            step = parse_line(line, lineno)
        except ScriptError as exc:
            print(f"{exc}. {HELP}", file=out)
            out.flush()
            continue
        if step is not None:
            run_steps(sim, [step], out, sleep)


@app.command("serve")
def serve(
    script: Annotated[
        Path | None, typer.Option(help="Файл со сценарием: код в строке, @wait, @split…")
    ] = None,
    prefix: Annotated[str, typer.Option(help="Префикс: STX, текст, \\x02… (пусто — нет)")] = "",
    suffix: Annotated[str, typer.Option(help="Суффикс: CR, LF, CRLF, TAB, NONE или \\xNN")] = "CR",
    aim: Annotated[bool, typer.Option(help="Передавать AIM-идентификатор (]E0, ]d2…)")] = False,
    gs_substitute: Annotated[
        str, typer.Option(help="Чем заменять GS (например ~ или <GS>); пусто — 0x1D")
    ] = "",
    split_delay: Annotated[float, typer.Option(help="Пауза внутри @split, с")] = 0.05,
    tcp: Annotated[int | None, typer.Option(help="Слушать TCP-порт (0 — любой свободный) вместо pty")] = None,
    host: Annotated[str, typer.Option(help="Адрес для TCP")] = "127.0.0.1",
    linger: Annotated[float, typer.Option(help="Секунд держать порт после конца ввода")] = 0.5,
) -> None:
    """Запустить сканер и сканировать коды из сценария и со стандартного ввода."""
    try:
        framing = LineFraming.from_names(
            prefix=prefix, suffix=suffix, aim=aim, gs_substitute=gs_substitute or None
        )
        config = ScannerConfig(framing=framing, split_delay=split_delay)
        steps = parse_script(script.read_text(encoding="utf-8")) if script is not None else []
    except (FramingConfigError, ScriptError, ValueError, OSError) as exc:
        raise typer.BadParameter(f"Неверные параметры сканера: {exc}") from exc
    sim = ScannerSimulator(config)
    try:
        if tcp is None:
            path = sim.serve_pty()
            print(f"Сканер на {path}  (URL для драйвера: {path})")
        else:
            bound_host, port = sim.serve_tcp(tcp, host)
            print(f"Сканер на tcp://{bound_host}:{port}")
            if steps and not sim.wait_connected(30.0):
                print("За 30 с никто не подключился: сценарий не отправлен")
                steps = []
        print(HELP)
        sys.stdout.flush()
        run_steps(sim, steps, sys.stdout)
        run_console(sim, sys.stdin, sys.stdout)
        time.sleep(max(linger, 0.0))
    finally:
        sim.stop()
