"""The scanner simulator: exact bytes per configuration, scripts, faults, and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import serial
from typer.testing import CliRunner

from protocols.scanner import LineFraming, Symbology
from simulators.scanner import ScannerConfig, ScannerSimulator, ScriptError, parse_script
from simulators.scanner.cli import app
from simulators.scanner.script import GarbageStep, PlugStep, ScanStep, UnplugStep, WaitStep

MILK = "0104600439931256215bTxQ!\x1d93dGVz"


@pytest.mark.parametrize(
    ("framing", "code", "symbology", "wire"),
    [
        (LineFraming(), "4600439931256", None, b"4600439931256\r"),
        (LineFraming(suffix=b"\r\n", aim=True), "4600439931256", None, b"]E04600439931256\r\n"),
        (LineFraming(suffix=b"\t", aim=True), "46004390", None, b"]E446004390\t"),
        (LineFraming(aim=True, gs_substitute=b"~"), MILK, None, b"]d20104600439931256215bTxQ!~93dGVz\r"),
        (LineFraming(aim=True), "\x1d" + MILK, None, b"]d2" + MILK.encode() + b"\r"),  # FNC1 first is implied
        (LineFraming(suffix=b"", prefix=b"\x02"), MILK, None, b"\x02" + MILK.encode()),
        (LineFraming(aim=True), "04600439931256-BQ4Wc:AAAAbcde", None, b"]d104600439931256-BQ4Wc:AAAAbcde\r"),
        (LineFraming(aim=True), "HELLO", None, b"]C0HELLO\r"),
        (LineFraming(aim=True), "HELLO", Symbology.QR, b"]Q1HELLO\r"),
    ],
)
def test_frames_per_configuration(
    framing: LineFraming, code: str, symbology: Symbology | None, wire: bytes
) -> None:
    assert ScannerSimulator(ScannerConfig(framing=framing)).frame(code, symbology) == wire


def test_script_syntax() -> None:
    steps = parse_script(
        "# store 42\n\n4600439931256\n0104600439931256215bTxQ!<GS>93dGVz\n"
        "0104600439931256215bTxQ!\\x1d93dGVz\n"
        + MILK
        + "\r\n@wait 0.25\n@split 2200123012340\n@garbage\n@garbage 00ff\n"
        "@unplug\n@plug\n"
    )
    assert steps == [
        ScanStep("4600439931256"),
        ScanStep(MILK),
        ScanStep(MILK),
        ScanStep(MILK),
        WaitStep(0.25),
        ScanStep("2200123012340", split=True),
        GarbageStep(b""),
        GarbageStep(b"\x00\xff"),
        UnplugStep(),
        PlugStep(),
    ]
    for bad, where in (
        ("@wait soon", "Строка 2"),
        ("@garbage zz", "Строка 2"),
        ("@dance", "Строка 2"),
        ("@split", "нужен код"),
    ):
        with pytest.raises(ScriptError, match=where):
            parse_script("4600439931256\n" + bad)


def test_script_over_a_pty_with_faults() -> None:
    sim = ScannerSimulator(ScannerConfig(framing=LineFraming(suffix=b"\r\n", gs_substitute=b"<GS>")))
    assert not sim.scan("4600439931256")  # not served yet
    path = sim.serve_pty()
    port = serial.serial_for_url(path, timeout=1.0)
    try:
        waits: list[float] = []
        sent = sim.play(
            parse_script(f"4600439931256\n@split {MILK}\n@garbage 00ff\n@wait 0.1"), sleep=waits.append
        )
        assert sent == [True, True, True]
        assert waits == [0.05, 0.1]  # the split delay, then the script's pause
        expected = b"4600439931256\r\n" + MILK.replace("\x1d", "<GS>").encode() + b"\r\n\x00\xff"
        assert port.read(len(expected)) == expected
        assert len(sim.sent) == 4  # the split scan went in two writes
        port.write(b"\x16T\r")  # a trigger command from the host is recorded, not answered
        for _ in range(50):
            if sim.received:
                break
            port.read(1)
        assert bytes(sim.received) == b"\x16T\r"
        sim.unplug()
        assert not sim.plugged and not sim.scan("4600439931256")
        sim.plug()
        assert sim.plugged
    finally:
        port.close()
        sim.stop()


def test_split_fault_checks_its_cut() -> None:
    with pytest.raises(ValueError, match="split point"):
        ScannerSimulator().scan_split("46004390", at=0)


def test_cli_serves_a_script_and_stdin(tmp_path: Path) -> None:
    script = tmp_path / "codes.txt"
    script.write_text("4600439931256\n@split 0104600439931256215bTxQ!<GS>93dGVz\n", encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["serve", "--script", str(script), "--suffix", "CRLF", "--aim", "--linger", "0"],
        input="2200123012340\n@bogus\n@unplug\n46004390\n@quit\n4600439931256\n",
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Сканер на " in out
    assert "Отсканировано: 4600439931256" in out
    assert "Отсканировано (в два приёма): 0104600439931256215bTxQ!<GS>93dGVz" in out
    assert "Отсканировано: 2200123012340" in out
    assert "неизвестная команда '@bogus'" in out
    assert "Не отправлено (сканер отключён): 46004390" in out
    assert out.count("Отсканировано") == 3  # nothing after @quit


def test_cli_rejects_bad_settings(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("@wait forever\n", encoding="utf-8")
    assert CliRunner().invoke(app, ["serve", "--script", str(bad)]).exit_code == 2
    assert CliRunner().invoke(app, ["serve", "--gs-substitute", "CR"]).exit_code == 2
