"""Find the code page of a 1CClientBankExchange file from its bytes.

The header declares ``Кодировка=Windows`` (cp1251) or ``Кодировка=DOS`` (cp866); banks also
emit UTF-8 (sometimes still declaring ``Windows``). The declaration cannot be read before the
code page is known, but the *key* ``Кодировка`` is Cyrillic, so its byte form differs in each
candidate code page. We look for the key's byte form in each candidate: the one that is found
is the code page the bytes are really in. The declared value is then decoded with it.

When the declaration and the bytes disagree, the bytes win (decoding with the declared code
page would produce mojibake in every name and purpose) and the disagreement is reported as a
warning, so the import log can tell the bank's support what is wrong with their export.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocols.onec.errors import NotBankExchangeFile, UnknownEncoding

MAGIC = "1CClientBankExchange"
_BOM = b"\xef\xbb\xbf"
_KEY = "Кодировка="
_SECTION = "Секция"


class Encoding(StrEnum):
    """Declared ``Кодировка`` values; ``codec`` is the Python code page behind each."""

    WINDOWS = "Windows"
    DOS = "DOS"
    UTF8 = "UTF-8"

    @property
    def codec(self) -> str:
        return _CODECS[self]


_CODECS = {Encoding.WINDOWS: "cp1251", Encoding.DOS: "cp866", Encoding.UTF8: "utf-8"}
# Spellings seen in the wild for the declared value, normalised by casefold and stripping.
_DECLARED = {
    "windows": Encoding.WINDOWS,
    "win": Encoding.WINDOWS,
    "cp1251": Encoding.WINDOWS,
    "windows-1251": Encoding.WINDOWS,
    "dos": Encoding.DOS,
    "cp866": Encoding.DOS,
    "utf-8": Encoding.UTF8,
    "utf8": Encoding.UTF8,
}
# The key's byte form is different in each of these, so at most one of them can match.
_CANDIDATES = (Encoding.UTF8, Encoding.WINDOWS, Encoding.DOS)
_CANDIDATE_BYTES = tuple((c, _SECTION.encode(c.codec), _KEY.encode(c.codec)) for c in _CANDIDATES)


@dataclass(frozen=True, slots=True)
class DetectedEncoding:
    """What the bytes are in (``actual``), what the header says, and the header line number."""

    actual: Encoding
    declared: Encoding
    line: int
    has_bom: bool

    @property
    def mismatch(self) -> bool:
        return self.actual is not self.declared


def parse_declared(value: str, line: int) -> Encoding:
    """Map a declared ``Кодировка`` value to an :class:`Encoding` or raise naming the line."""
    found = _DECLARED.get(value.strip().casefold())
    if found is None:
        raise UnknownEncoding(
            f"неизвестная кодировка «{value.strip()}»: ожидается Windows, DOS или UTF-8",
            line=line,
            field="Кодировка",
        )
    return found


def detect_encoding(data: bytes) -> DetectedEncoding:
    """Return the encoding of ``data``; raise if it is not a 1CClientBankExchange file at all."""
    has_bom = data.startswith(_BOM)
    body = data[len(_BOM) :] if has_bom else data
    newline = body.find(b"\n")
    first = (body if newline < 0 else body[:newline]).strip(b"\r\n\t ")
    if first != MAGIC.encode("ascii"):
        raise NotBankExchangeFile(
            f"это не файл обмена с клиент-банком: первая строка должна быть «{MAGIC}»", line=1
        )
    # The header is a few lines at the top: walk the lines lazily instead of splitting a
    # whole statement (tens of megabytes) into a list only to look at its first twenty.
    number, begin = 0, 0
    while True:
        number += 1
        end = body.find(b"\n", begin)
        stripped = (body[begin:] if end < 0 else body[begin:end]).strip(b"\r\t ")
        for candidate, section, key in _CANDIDATE_BYTES:
            if stripped.startswith(section):
                # The header ends at the first section: the key was never declared.
                return _undeclared(has_bom, number)
            if stripped.startswith(key):
                value_bytes = stripped[len(key) :]
                try:
                    value = value_bytes.decode(candidate.codec)
                except UnicodeDecodeError:
                    value = value_bytes.decode("latin-1")
                declared = parse_declared(value, number)
                actual = Encoding.UTF8 if has_bom else candidate
                return DetectedEncoding(actual=actual, declared=declared, line=number, has_bom=has_bom)
        if end < 0:
            return _undeclared(has_bom, number)
        begin = end + 1


def _undeclared(has_bom: bool, line: int) -> DetectedEncoding:
    if has_bom:
        # A byte-order mark is itself a declaration, and a stronger one than the header.
        return DetectedEncoding(actual=Encoding.UTF8, declared=Encoding.UTF8, line=line, has_bom=True)
    raise UnknownEncoding(
        "в заголовке файла нет строки «Кодировка=» (Windows или DOS): кодировку определить нельзя",
        line=line,
        field="Кодировка",
    )
