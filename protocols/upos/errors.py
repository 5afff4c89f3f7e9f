"""UPOS errors: one base, split into our fault and the peer's fault (as h11 does).

``LocalProtocolError``: we asked for something the contract cannot express (a negative
amount, an operation id with a separator in it). ``RemoteProtocolError``: what the terminal
program left behind (result file, slip, control tape) does not parse. Drivers translate both
to ``drivers.errors`` at their boundary.
"""

from __future__ import annotations


class UposError(Exception):
    """Base of every UPOS protocol error."""


class LocalProtocolError(UposError):
    """Our fault: a request that cannot be encoded as ``sb_pilot`` arguments."""


class RemoteProtocolError(UposError):
    """The peer's fault: a result file, slip or tape that does not parse."""


class MissingFile(RemoteProtocolError):
    """The program exited but did not write a file it must write."""


class TruncatedFile(RemoteProtocolError):
    """The file ends before every mandatory line was written (crash mid-write)."""


class WrongEncoding(RemoteProtocolError):
    """The file is text in another encoding (UTF-8, CP1251) instead of CP866."""


class MalformedFile(RemoteProtocolError):
    """The file is complete but a line does not parse (garbage, binary, bad number)."""
