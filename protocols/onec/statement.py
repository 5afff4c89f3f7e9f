"""What a statement means for our accounts: direction, a stable dedupe key, balance checks.

A document in a statement is not tied to an account section by the format; it belongs to the
own account that appears as its payer (money went out) or payee (money came in). A transfer
between two own accounts listed in the same file is therefore *two* operations: an outflow
from one and an inflow to the other, which is what each account's balance needs.

Dedupe key. Banks re-export overlapping periods (a statement for March 1–15 and another for
March 10–31), and the same payment comes again with the same fields but perhaps a different
line position, receipt time or ``ДатаСписано``. The key uses only what the payment itself
fixes: own account, direction, document date, document number (leading zeros dropped,
since some banks pad it), amount in kopecks, and the counterparty's account (its INN when
the account is empty, as in some bank orders). Two genuinely different payments colliding
would need the same number, date, amount and counterparty on the same account — a
duplicate by any accountant's definition too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from protocols.onec.bank_models import BankDocument, Party, StatementFile


class Direction(StrEnum):
    """Money relative to the own account: in (поступление) or out (списание)."""

    INFLOW = "inflow"
    OUTFLOW = "outflow"


@dataclass(frozen=True, slots=True)
class AccountOperation:
    """One document seen from one own account."""

    account: str
    direction: Direction
    document: BankDocument

    @property
    def counterparty(self) -> Party:
        return self.document.payee if self.direction is Direction.OUTFLOW else self.document.payer

    @property
    def booked_on(self) -> dt.date:
        """The date money moved on our side; the document date when the bank left it blank."""
        return booked_date(self.direction, self.document)

    @property
    def dedupe_key(self) -> str:
        return dedupe_key(self)


class OwnSide(NamedTuple):
    """An :class:`AccountOperation`'s fields with its dedupe key and counterparty, as a plain
    tuple: what a caller that reads every operation of a big statement once needs."""

    key: str
    account: str
    direction: Direction
    document: BankDocument
    counterparty: Party


def booked_date(direction: Direction, d: BankDocument) -> dt.date:
    """The date money moved on the own account's side; the document date when the bank left it blank."""
    moved = d.debited_on if direction is Direction.OUTFLOW else d.credited_on
    return moved or d.date


def dedupe_key(op: AccountOperation) -> str:
    """Stable identity of an operation across re-exports (see the module docstring)."""
    return _key(op.account, op.direction, op.document, op.counterparty)


def _key(account: str, direction: Direction, d: BankDocument, other: Party) -> str:
    kopecks = int((d.amount * 100).to_integral_value())
    number = d.number.strip().lstrip("0") or "0"
    parts = (
        account,
        direction.value,
        d.date.isoformat(),
        number,
        str(kopecks),
        other.account or other.inn,
    )
    digest = hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:32]
    return f"1c:{digest}"


def _account_of(party: Party) -> str:
    return party.account or party.settlement_account


def operations(statement: StatementFile) -> Iterator[AccountOperation]:
    """Every (own account, direction, document), each dedupe key once, in file order."""
    for side in own_sides(statement):
        yield AccountOperation(side.account, side.direction, side.document)


def own_sides(statement: StatementFile) -> list[OwnSide]:
    """:func:`operations` as :class:`OwnSide` tuples, for a caller that needs the keys and the
    counterparties of a big statement: each key computed once, no AccountOperation built."""
    own = statement.own_accounts
    seen: set[str] = set()
    out: list[OwnSide] = []
    for document in statement.documents:
        payer, payee = document.payer, document.payee
        for direction, party, other in ((Direction.OUTFLOW, payer, payee), (Direction.INFLOW, payee, payer)):
            account = party.account or party.settlement_account
            if account in own:
                key = _key(account, direction, document, other)
                if key not in seen:
                    seen.add(key)
                    out.append(OwnSide(key, account, direction, document, other))
    return out


def unassigned_documents(statement: StatementFile) -> list[BankDocument]:
    """Documents naming none of the file's own accounts: a sign of a wrong or merged export."""
    own = statement.own_accounts
    return [
        d for d in statement.documents if _account_of(d.payer) not in own and _account_of(d.payee) not in own
    ]


@dataclass(frozen=True, slots=True)
class BalanceDifference:
    """One failed check: ``code`` for machines, ``message`` in Russian for the accountant."""

    account: str
    code: str
    expected: Decimal
    actual: Decimal
    message: str

    @property
    def delta(self) -> Decimal:
        return self.actual - self.expected


def check_balances(
    statement: StatementFile, ops: Iterable[AccountOperation | OwnSide] | None = None
) -> list[BalanceDifference]:
    """Check every account section against itself and against the documents.

    - ``closing_mismatch``: НачальныйОстаток + ВсегоПоступило − ВсегоСписано ≠ КонечныйОстаток;
    - ``inflow_total_mismatch`` / ``outflow_total_mismatch``: the section's turnover ≠ the sum
      of the documents on that account (a statement with documents missing or extra);
    - ``documents_closing_mismatch``: opening + documents' inflow − outflow ≠ closing.
    Checks whose inputs the bank left out are skipped. Returns an empty list when all agree.
    ``ops``: the statement's :func:`operations` (or :func:`own_sides`), when the caller has them.
    """
    inflow: dict[str, Decimal] = {}
    outflow: dict[str, Decimal] = {}
    for op in operations(statement) if ops is None else ops:
        bucket = inflow if op.direction is Direction.INFLOW else outflow
        bucket[op.account] = bucket.get(op.account, Decimal("0.00")) + op.document.amount
    out: list[BalanceDifference] = []
    for s in statement.accounts:
        docs_in = inflow.get(s.account, Decimal("0.00"))
        docs_out = outflow.get(s.account, Decimal("0.00"))
        if s.opening_balance is not None and s.closing_balance is not None:
            if s.total_inflow is not None and s.total_outflow is not None:
                expected = s.opening_balance + s.total_inflow - s.total_outflow
                _add(
                    out,
                    s.account,
                    "closing_mismatch",
                    expected,
                    s.closing_balance,
                    "остаток на начало + поступило − списано не равен остатку на конец",
                )
            expected = s.opening_balance + docs_in - docs_out
            _add(
                out,
                s.account,
                "documents_closing_mismatch",
                expected,
                s.closing_balance,
                "остаток на начало + документы выписки не равен остатку на конец",
            )
        if s.total_inflow is not None:
            _add(
                out,
                s.account,
                "inflow_total_mismatch",
                docs_in,
                s.total_inflow,
                "ВсегоПоступило не равно сумме документов поступления",
            )
        if s.total_outflow is not None:
            _add(
                out,
                s.account,
                "outflow_total_mismatch",
                docs_out,
                s.total_outflow,
                "ВсегоСписано не равно сумме документов списания",
            )
    return out


def _add(
    out: list[BalanceDifference], account: str, code: str, expected: Decimal, actual: Decimal, text: str
) -> None:
    if expected != actual:
        out.append(
            BalanceDifference(
                account,
                code,
                expected,
                actual,
                f"счёт {account}: {text} (ожидалось {expected}, в файле {actual})",
            )
        )


def merge_operations(batches: Iterable[Iterable[AccountOperation]]) -> list[AccountOperation]:
    """Operations of several (overlapping) statements, each dedupe key once, first seen wins."""
    seen: set[str] = set()
    merged: list[AccountOperation] = []
    for batch in batches:
        for op in batch:
            key = op.dedupe_key
            if key not in seen:
                seen.add(key)
                merged.append(op)
    return merged
