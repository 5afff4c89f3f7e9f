"""Text normalisation and fuzzy matching for counterparties and payment purposes.

Bank statements spell the same company many ways: ``ООО "Молочный край"``, ``ООО «МОЛОЧНЫЙ
КРАЙ»``, ``Общество с ограниченной ответственностью Молочный Край``, ``ИНН 5024112233 ООО
Молочный край``. Names are compared after dropping the legal form, quotes, the INN prefix
and case, with rapidfuzz's ``token_set_ratio`` (word order and extra words do not matter)
and a cutoff: below it there is no match rather than a guess.

Purposes are compared case-insensitively with ``ё`` read as ``е`` (banks and 1C disagree on
the letter).
"""

from __future__ import annotations

import re

from rapidfuzz import fuzz

_LEGAL_FORMS = (
    "общество с ограниченной ответственностью",
    "публичное акционерное общество",
    "непубличное акционерное общество",
    "закрытое акционерное общество",
    "открытое акционерное общество",
    "акционерное общество",
    "индивидуальный предприниматель",
    "ооо",
    "пао",
    "нао",
    "зао",
    "оао",
    "ао",
    "ип",
    "нко",
    "ано",
    "фгуп",
    "гуп",
    "муп",
)
_LEGAL_RE = re.compile(r"\b(?:" + "|".join(re.escape(f) for f in _LEGAL_FORMS) + r")\b")
_INN_PREFIX = re.compile(r"\bинн\s*\d{10,12}\b")
_QUOTES = re.compile(r"[\"'«»“”„‘’`]")
_NON_WORD = re.compile(r"[^\w]+")
_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Casefold, ``ё``→``е``, collapse whitespace: the form purposes are compared in."""
    return _SPACES.sub(" ", text.casefold().replace("ё", "е")).strip()


def normalise_company(name: str) -> str:
    """Drop INN prefix, legal form and quotes; keep the distinctive words."""
    text = normalise_text(name)
    text = _INN_PREFIX.sub(" ", text)
    text = _QUOTES.sub(" ", text)
    text = _LEGAL_RE.sub(" ", text)
    text = _NON_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def name_similarity(a: str, b: str) -> float:
    """0–100: how alike two company names are once normalised."""
    na, nb = normalise_company(a), normalise_company(b)
    if not na or not nb:
        return 0.0
    return float(fuzz.token_set_ratio(na, nb))


def purpose_tokens(text: str) -> frozenset[str]:
    """Words of a purpose (3+ characters, digits kept: contract numbers tell stores apart)."""
    return frozenset(t for t in _NON_WORD.split(normalise_text(text)) if len(t) >= 3 and not _is_volatile(t))


def _is_volatile(token: str) -> bool:
    # Amounts and dates split on the dots/commas leave pure-digit runs that change every
    # payment; they are never a good rule keyword. Long identifiers (contracts) stay.
    return token.isdigit() and len(token) <= 4
