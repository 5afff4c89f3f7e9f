"""A bank operation as the finance module sees it: one line of one own account's statement.

Built from a parsed 1C statement (:func:`from_onec`) or, later, from a bank API; the key is
the statement's dedupe key, so re-imports of an overlapping period land on the same row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from protocols.onec import AccountOperation, Direction


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


def from_onec(op: AccountOperation) -> BankOperation:
    other = op.counterparty
    return BankOperation(
        key=op.dedupe_key,
        booked_on=op.booked_on,
        own_account=op.account,
        direction=op.direction,
        amount=op.document.amount,
        counterparty_inn=other.inn.strip(),
        counterparty_name=other.display_name.strip(),
        counterparty_account=(other.account or other.settlement_account).strip(),
        purpose=op.document.purpose_text,
    )
