"""1C exchange formats, sans-I/O: bytes in, typed frozen values out, and back.

``bank_exchange`` reads and writes 1CClientBankExchange (bank statements, payment orders);
``statement`` turns a statement into per-account operations with dedupe keys and checks
its balances; ``errors`` has the one exception base every failure derives from.
"""

from protocols.onec.bank_exchange import parse_statement, write_statement
from protocols.onec.bank_models import (
    AccountSection,
    BankDocument,
    FileHeader,
    Party,
    StatementFile,
    TaxFields,
)
from protocols.onec.encoding import DetectedEncoding, Encoding, detect_encoding
from protocols.onec.errors import (
    BadValue,
    DuplicateField,
    FileFormatError,
    MalformedLine,
    NotBankExchangeFile,
    OneCError,
    UnknownEncoding,
    UnsupportedVersion,
    UnterminatedSection,
    WriteError,
)
from protocols.onec.statement import (
    AccountOperation,
    BalanceDifference,
    Direction,
    OwnSide,
    booked_date,
    check_balances,
    dedupe_key,
    merge_operations,
    operations,
    own_sides,
    unassigned_documents,
)

__all__ = [
    "AccountOperation",
    "AccountSection",
    "BadValue",
    "BalanceDifference",
    "BankDocument",
    "DetectedEncoding",
    "Direction",
    "DuplicateField",
    "Encoding",
    "FileFormatError",
    "FileHeader",
    "MalformedLine",
    "NotBankExchangeFile",
    "OneCError",
    "OwnSide",
    "Party",
    "StatementFile",
    "TaxFields",
    "UnknownEncoding",
    "UnsupportedVersion",
    "UnterminatedSection",
    "WriteError",
    "booked_date",
    "check_balances",
    "dedupe_key",
    "detect_encoding",
    "merge_operations",
    "operations",
    "own_sides",
    "parse_statement",
    "unassigned_documents",
    "write_statement",
]
