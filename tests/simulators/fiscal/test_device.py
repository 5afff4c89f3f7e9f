"""Simulated Shtrih-M register: modes, FN limits, power loss, persistence, console."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from protocols.shtrih import messages as M
from simulators.fiscal import ShtrihDevice, SimConfig
from simulators.fiscal.cli import run_console


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 2, 9, 0)

    def __call__(self) -> dt.datetime:
        return self.now


def run(dev: ShtrihDevice, req: M.Request) -> M.Answered | M.Refused:
    return M.decode_answer(dev.execute(req.encode()))


def sale_line(name: str = "Батон") -> M.OperationV2:
    return M.OperationV2(1, 1_000_000, 5000, 0xFFFFFFFFFF, 0xFFFFFFFFFF, 0x08, 1, 4, 1, name)


def test_modes_and_shift_over_24h(tmp_path: Path) -> None:
    clock = Clock()
    dev = ShtrihDevice(SimConfig(state_file=tmp_path / "fn.json", clock=clock))
    assert dev.mode() == M.Mode.SHIFT_CLOSED
    assert run(dev, sale_line()) == M.Refused(0xFF46, 0x3D)
    assert isinstance(run(dev, M.OpenShift()), M.Answered)
    assert dev.mode() == M.Mode.SHIFT_OPEN
    run(dev, sale_line())
    assert dev.mode() == M.Mode.DOCUMENT_OPEN
    run(dev, M.CancelReceipt())
    clock.now += dt.timedelta(hours=25)
    assert dev.mode() == M.Mode.SHIFT_EXPIRED
    refused = run(dev, sale_line())
    assert refused == M.Refused(0xFF46, 0x4E)
    assert isinstance(run(dev, M.ZReport()), M.Answered)
    assert run(dev, M.WriteTlv(b"\x01\x02")) == M.Refused(0xFF0C, 0x33)
    assert run(dev, M.ShortStatus(password=77)) == M.Refused(0x10, 0x4F)


def test_fn_fills_up_and_power_loss_drops_open_receipt(tmp_path: Path) -> None:
    dev = ShtrihDevice(SimConfig(state_file=tmp_path / "fn.json", clock=Clock()))
    dev.fn.capacity = 2
    run(dev, M.OpenShift())
    run(dev, sale_line())
    paid = (5000,) + (0,) * 15
    closed = run(dev, M.CloseReceiptV2(payments=paid))
    assert isinstance(closed, M.Answered) and isinstance(closed.answer, M.CloseReceiptV2Answer)
    assert closed.answer.fd_number == 2
    status = run(dev, M.FnStatus())
    assert isinstance(status, M.Answered) and isinstance(status.answer, M.FnStatusAnswer)
    assert status.answer.warnings & M.FnWarning.MEMORY_90
    assert run(dev, sale_line()) == M.Refused(0xFF46, 0x14)  # "ФН: Исчерпан ресурс хранения"
    dev.fn.capacity = 10
    run(dev, sale_line())
    assert dev.receipt is not None
    dev.power_loss()
    assert dev.receipt is None and dev.fn.last_fd == 2 and dev.fn.shift_open
    assert not (tmp_path / "fn.json.tmp").exists()
    found = run(dev, M.FindDocument(2))
    assert isinstance(found, M.Answered) and isinstance(found.answer, M.FindDocumentAnswer)
    assert found.answer.receipt_total == 5000
    assert run(dev, M.FindDocument(3)) == M.Refused(0xFF0A, 0x08)


def test_garbage_and_unknown_commands_get_answers(tmp_path: Path) -> None:
    dev = ShtrihDevice(SimConfig(clock=Clock()))
    assert run(dev, M.OpenShift()) is not None
    assert M.decode_answer(dev.execute(bytes.fromhex("FF 99 1E 00 00 00"))) == M.Refused(0xFF99, 0x37)
    assert M.decode_answer(dev.execute(bytes.fromhex("FF 46 1E 00"))) == M.Refused(0xFF46, 0x33)
    out = dev.feed(b"\x00\xff\x05", 0.0)
    assert out == b"\x15"  # garbage dropped, ENQ answered NAK (idle)


def test_console_commands() -> None:
    dev = ShtrihDevice(SimConfig(clock=Clock()))
    out = io.StringIO()
    run_console(dev, io.StringIO("paper\ncover\nkm ABC invalid\nstatus\npower\nq\nstatus\n"), out)
    text = out.getvalue()
    assert "Нет чековой ленты" in text and "Крышка открыта" in text and "Сбой питания" in text
    assert dev.marking == {b"ABC": "invalid"} and not dev.paper and dev.cover_open
    assert text.count("Режим") == 1
