"""The Massa-K and Shtrih M5 scale CLIs and the CAS label-scale CLI, driven like a tester does:
a real process, keyboard lines on stdin, and the real driver talking to what it serves."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from drivers.label_scale import open_label_scale
from drivers.scale import open_scale
from protocols.barcodes.weight import WeightBarcodeFormat, decode_weight_barcode
from simulators.label_scale.cli import app as label_scale_app
from simulators.scale.cli import app as scale_app

ROOT = Path(__file__).resolve().parents[3]


class Console:
    """A simulator CLI in its own process: type lines, wait for what it prints."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=ROOT,
            env=env,
            text=True,
            encoding="utf-8",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; seen: {self.seen[-10:]}") from None
            self.seen.append(line)
            if m := re.search(pattern, line):
                return m

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def quit(self) -> int:
        self.type("q")
        return self.proc.wait(10)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@contextmanager
def console(*args: str) -> Iterator[Console]:
    c = Console(*args)
    try:
        yield c
    finally:
        c.kill()


def test_massak_cli_serves_tcp_and_the_keyboard_sets_the_weight() -> None:
    with console("simulators.scale", "massak", "--tcp", "0", "--unstable", "0") as c:
        url = c.expect(r"Масса-К.* на (tcp://\S+)").group(1)
        scale = open_scale("massak", url, {"timeout": 1.0})
        try:
            assert scale.weigh(timeout=2).net == Decimal("0.000")
            c.type("1,250")
            c.expect(r"На платформе 1\.250 кг")
            assert scale.weigh(timeout=2).net == Decimal("1.250")
            c.type("z")
            c.expect("Платформа пуста")
            assert scale.weigh(timeout=2).net == Decimal("0.000")
        finally:
            scale.close()
        assert c.quit() == 0


def test_shtrih_m5_cli_serves_a_pty_and_the_keyboard_sets_the_weight() -> None:
    with console("simulators.scale", "shtrih_m5", "--unstable", "0") as c:
        path = c.expect(r"Штрих М5 на (\S+)").group(1)
        assert not path.startswith("tcp://")
        scale = open_scale("shtrih_m5", path, {"timeout": 1.0})
        try:
            c.type("2.345")
            c.expect(r"На платформе 2\.345 кг")
            assert scale.weigh(timeout=2).net == Decimal("2.345")
            c.type("bogus")
            c.expect("Непонятная команда 'bogus'")
        finally:
            scale.close()
        assert c.quit() == 0


def test_scale_cli_refuses_bad_parameters_in_russian() -> None:
    result = CliRunner().invoke(scale_app, ["massak", "--tcp", "0", "--capacity", "много"])
    assert result.exit_code != 0
    assert "НПВ: ожидается число килограммов" in result.output


def test_cas_cli_prints_a_label_for_a_plu_the_driver_uploaded() -> None:
    with console("simulators.label_scale", "cas", "--tcp", "0", "--prefix", "23") as c:
        url = c.expect(r"CAS CL на (tcp://\S+)").group(1)
        scale = open_label_scale("cas", url, {"timeout": 1.0})
        try:
            fields = {"name": "Сыр Российский", "price": 54_990, "shelf_life_days": 30, "item_code": 1001}
            results = scale.upload_plu([{"number": 7, **fields}])
            assert [r.status for r in results] == ["written"]
        finally:
            scale.close()
        c.type("7 0.500")
        c.expect("----- этикетка -----")
        assert c.expect(r"^Сыр Российский$")
        c.expect(r"Вес: 0\.500 кг")
        c.expect(r"Сумма: 274\.95")
        barcode = c.expect(r"^(\d{13})$").group(1)
        decoded = decode_weight_barcode(barcode, WeightBarcodeFormat(("23",)))
        assert (decoded.item_code, decoded.grams) == (1001, 500)
        c.type("8 1")
        c.expect("ПЛУ 8 нет в весах")
        c.type("l")
        c.expect("ПЛУ в весах: 1")
        c.expect(r"7\s+Сыр Российский\s+549\.90 ₽/кг, код 1001, годен 30 сут\.")
        assert c.quit() == 0


def test_cas_cli_console_with_demo_table() -> None:
    result = CliRunner().invoke(
        label_scale_app, ["cas", "--tcp", "0", "--demo"], input="2 1,2\n3 -1\n2 abc\nчто-то\ns\nq\n1 1\n"
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Колбаса докторская" in out and "Сумма: 838.80" in out
    assert "Вес должен быть положительным числом килограммов, а не '-1'" in out
    assert "Вес должен быть положительным числом килограммов, а не 'abc'" in out
    assert "Непонятная команда 'что-то'" in out and "Весы молчат" in out
    assert "Сыр Российский" not in out, "a line after q was executed"
    assert re.search(r"^22\d{11}$", out, re.M), "no EAN-13 weight barcode printed"


def test_cas_cli_refuses_a_bad_barcode_prefix() -> None:
    result = CliRunner().invoke(label_scale_app, ["cas", "--tcp", "0", "--prefix", "46"])
    assert result.exit_code != 0 and "Неверный префикс штрихкода '46'" in result.output
