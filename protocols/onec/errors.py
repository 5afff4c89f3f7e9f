"""1C exchange errors: one base, split into "the file's fault" and "our fault".

A statement file comes from a bank or from 1C; when it is wrong the accountant has to know
*where*, so every file error carries the 1-based line number and the field (the key left of
``=``) and a Russian message they can act on. ``code`` is a stable English machine code for
the API and the logs; the message is for people and may be reworded.
"""

from __future__ import annotations


class OneCError(Exception):
    """Base of every 1C exchange error."""

    code: str = "onec_error"

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None) -> None:
        self.message = message
        self.line = line
        self.field = field
        where = []
        if line is not None:
            where.append(f"строка {line}")
        if field:
            where.append(f"поле {field}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class FileFormatError(OneCError):
    """The peer's fault: the bytes are not a valid 1CClientBankExchange file."""

    code = "bad_file"


class NotBankExchangeFile(FileFormatError):
    """The first line is not ``1CClientBankExchange`` (a PDF, an Excel export, another format)."""

    code = "not_client_bank_exchange"


class UnknownEncoding(FileFormatError):
    """``Кодировка=`` is missing, names an unknown code page, or the bytes do not decode."""

    code = "unknown_encoding"


class UnsupportedVersion(FileFormatError):
    """``ВерсияФормата`` is not one this parser was written against."""

    code = "unsupported_version"


class MalformedLine(FileFormatError):
    """A line that is neither ``Key=Value`` nor a section marker, or sits outside any section."""

    code = "malformed_line"


class BadValue(FileFormatError):
    """A field whose value does not parse (amount, date, time) or a required field left empty."""

    code = "bad_value"


class DuplicateField(FileFormatError):
    """The same single-valued field twice in one section: which one the bank meant is unknown."""

    code = "duplicate_field"


class UnterminatedSection(FileFormatError):
    """A section opened and never closed (``КонецДокумента``/``КонецРасчСчет``/``КонецФайла``)."""

    code = "unterminated_section"


class WriteError(OneCError):
    """Our fault: a value the writer cannot put in a file (line break, character outside the code page)."""

    code = "cannot_write"
