"""Sberbank UPOS (``sb_pilot`` / ``loadparm``) command-line contract, sans-I/O.

``messages``: typed operations ⇄ command-line words. ``files``: the ``e`` result file and the
``p`` slip / reconciliation report / control tape (CP866). ``codes``: result codes → category
and a Russian message for the cashier. ``errors``: one base split into our / the peer's fault.
"""

from protocols.upos.codes import Category, ResultCode, lookup, stage_of
from protocols.upos.errors import (
    LocalProtocolError,
    MalformedFile,
    MissingFile,
    RemoteProtocolError,
    TruncatedFile,
    UposError,
    WrongEncoding,
)
from protocols.upos.files import (
    ReconciliationReport,
    ResultFile,
    Slip,
    Tape,
    TapeEntry,
    Totals,
    encode_reconciliation,
    encode_slip,
    encode_tape,
    parse_reconciliation,
    parse_result,
    parse_slip,
    parse_tape,
)
from protocols.upos.messages import (
    BadArguments,
    ControlTape,
    Operation,
    Purchase,
    Reconcile,
    Refund,
    Request,
    SlipCopy,
    parse_argv,
)

__all__ = [
    "BadArguments",
    "Category",
    "ControlTape",
    "LocalProtocolError",
    "MalformedFile",
    "MissingFile",
    "Operation",
    "Purchase",
    "Reconcile",
    "ReconciliationReport",
    "Refund",
    "RemoteProtocolError",
    "Request",
    "ResultCode",
    "ResultFile",
    "Slip",
    "SlipCopy",
    "Tape",
    "TapeEntry",
    "Totals",
    "TruncatedFile",
    "UposError",
    "WrongEncoding",
    "encode_reconciliation",
    "encode_slip",
    "encode_tape",
    "lookup",
    "parse_argv",
    "parse_reconciliation",
    "parse_result",
    "parse_slip",
    "parse_tape",
    "stage_of",
]
