"""Barcode errors: one base, split into our fault and the scanned input's fault.

``InvalidBarcode`` (and its subclasses) means the *string* is wrong: a scanner, a label or a
person produced something that is not a valid code. ``BarcodeEncodeError`` means *we* asked
for something impossible (an item code too long for the store's layout, a negative weight).
Both are ``ValueError``s so callers that only want "bad value" can catch that.
"""

from __future__ import annotations


class BarcodeError(ValueError):
    """Base of every barcode/marking-code error."""


class BarcodeEncodeError(BarcodeError):
    """Our fault: values that cannot be encoded in the requested layout."""


class InvalidBarcode(BarcodeError):
    """The input's fault: the scanned/printed string is not a valid code. ``raw`` is it."""

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class BadCheckDigit(InvalidBarcode):
    """The last digit does not match the GS1 mod-10 check digit of the others."""


class BadLength(InvalidBarcode):
    """Wrong number of characters for the symbology or field."""


class BadCharacters(InvalidBarcode):
    """Characters the symbology or field cannot carry (letters in an EAN, control bytes)."""


class MissingElement(InvalidBarcode):
    """A required GS1 element is absent (a marking code without AI 21, without a crypto tail)."""


class UnknownPrefix(InvalidBarcode):
    """A weight barcode whose prefix is not one the store configured."""
