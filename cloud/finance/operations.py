"""A bank operation as the finance module sees it: one line of one own account's statement.

Built from a parsed 1C statement (:func:`from_onec`) or, later, from a bank API; the key is
the statement's dedupe key, so re-imports of an overlapping period land on the same row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from protocols.onec import AccountOperation, BankDocument, Direction, OwnSide, Party, booked_date


@dataclass(frozen=True, slots=True)
class BankOperation:
    key: str
    booked_on: dt.date
    own_account: str
    direction: Direction
    amount: Decimal
    counterparty_inn: str = ""
    counterparty_name: str = ""
    counterparty_account: str = ""
    purpose: str = ""


def from_onec(op: AccountOperation, key: str | None = None) -> BankOperation:
    """``key``: the operation's dedupe key when the caller has it already (it is a SHA-256)."""
    return _operation(op.dedupe_key if key is None else key, op.account, op.direction, op.document, op.counterparty)


def from_side(side: OwnSide) -> BankOperation:
    """:func:`from_onec` of a :func:`protocols.onec.own_sides` item."""
    return _operation(*side)


def _operation(key: str, account: str, direction: Direction, document: BankDocument, other: Party) -> BankOperation:
    return BankOperation(
        key=key,
        booked_on=booked_date(direction, document),
        own_account=account,
        direction=direction,
        amount=document.amount,
        counterparty_inn=other.inn.strip(),
        counterparty_name=other.display_name.strip(),
        counterparty_account=(other.account or other.settlement_account).strip(),
        purpose=document.purpose_text,
    )
