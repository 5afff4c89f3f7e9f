"""Scan scripts for the scanner simulator: one code per line, plus a few directives.

::

    # a comment; blank lines are skipped
    4600439931256                      an EAN-13
    0104600439931256216Xb5Ys<GS>93Ab12 GS written as <GS> or \\x1d
    @wait 0.5                          pause (also @delay)
    @split 2200123012340               one scan in two writes (the simulator's split delay)
    @garbage                           line noise (or @garbage 00ff41: these hex bytes)
    @unplug / @plug                    the scanner goes away / comes back

A code line is taken as is after trimming spaces, tabs and line ends at both ends (a raw GS
byte is kept), with the GS spellings replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocols.scanner import Symbology

_BLANKS = " \t\r\n"
_GS_SPELLINGS = re.compile(r"<GS>|\\x1d", re.IGNORECASE)


class ScriptError(ValueError):
    """A script line that is not a code or a known directive; names the line."""


@dataclass(frozen=True, slots=True)
class ScanStep:
    code: str
    symbology: Symbology | None = None
    split: bool = False


@dataclass(frozen=True, slots=True)
class WaitStep:
    seconds: float


@dataclass(frozen=True, slots=True)
class GarbageStep:
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class UnplugStep:
    pass


@dataclass(frozen=True, slots=True)
class PlugStep:
    pass


Step = ScanStep | WaitStep | GarbageStep | UnplugStep | PlugStep


def unescape_code(text: str) -> str:
    """``<GS>`` and ``\\x1d`` (as typed in a text file) → the GS character."""
    return _GS_SPELLINGS.sub("\x1d", text)


def parse_line(line: str, lineno: int = 1) -> Step | None:
    """One script line → a step, ``None`` for blanks and comments; ``ScriptError`` if wrong."""
    text = line.strip(_BLANKS)  # not str.strip(): GS (0x1D) counts as whitespace there
    if not text or text.startswith("#"):
        return None
    if not text.startswith("@"):
        return ScanStep(unescape_code(text))
    word, _, arg = text[1:].partition(" ")
    word, arg = word.lower(), arg.strip(_BLANKS)
    if word in ("wait", "delay", "sleep"):
        try:
            seconds = float(arg)
        except ValueError:
            raise ScriptError(f"Строка {lineno}: после @{word} нужно число секунд, а не {arg!r}") from None
        if not 0 <= seconds <= 3600:
            raise ScriptError(f"Строка {lineno}: пауза {seconds} с вне 0..3600")
        return WaitStep(seconds)
    if word == "split":
        if not arg:
            raise ScriptError(f"Строка {lineno}: после @split нужен код")
        return ScanStep(unescape_code(arg), split=True)
    if word == "garbage":
        try:
            return GarbageStep(bytes.fromhex(arg))
        except ValueError:
            raise ScriptError(f"Строка {lineno}: после @garbage — байты в hex, а не {arg!r}") from None
    if word == "unplug" and not arg:
        return UnplugStep()
    if word == "plug" and not arg:
        return PlugStep()
    raise ScriptError(
        f"Строка {lineno}: неизвестная команда {text!r} (@wait, @split, @garbage, @unplug, @plug)"
    )


def parse_script(text: str) -> list[Step]:
    """Every step of a script, or ``ScriptError`` naming the first bad line."""
    steps: list[Step] = []
    # not str.splitlines(): it also splits at GS (0x1D), which a code line may contain
    for lineno, line in enumerate(text.split("\n"), start=1):
        step = parse_line(line, lineno)
        if step is not None:
            steps.append(step)
    return steps
