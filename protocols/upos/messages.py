"""UPOS ``sb_pilot`` / ``loadparm`` requests: typed operations ⇄ command-line arguments.

The contract (reference notes §6, ``MarcusStill/PyMASL``; Sberbank's UPOS tool passes the same
first two arguments to ``loadparm.exe`` and ``sb_pilot.exe``)::

    sb_pilot 1 <amount in kopecks> [ORDER=<ref>]              purchase
    sb_pilot 3 <amount in kopecks> RRN=<rrn> [ORDER=<ref>]    refund; a void when the original
                                                               is in the open batch, same amount
    sb_pilot 7                                                 reconciliation (сверка итогов)
    sb_pilot 9 1                                               control tape of the open batch
    sb_pilot 12                                                copy of the last slip

The first two positions are verified; ``RRN=`` and ``ORDER=`` are **our** extension [K]: real
UPOS installations take the original RRN and the cash register's receipt number ("номер чека")
through ``pinpad.ini`` / the DLL's ``auth_answer`` structure, not documented CLI flags. Keeping
them as ``KEY=value`` words after the positional arguments means a real ``sb_pilot`` ignores
what it does not know, and an adapter script can translate them.

``ORDER`` carries the caller's operation id: the terminal prints it on the slip and on the
control tape, which is how ``find(operation_id)`` learns the outcome of an operation whose
answer was lost. It is restricted to ``[A-Za-z0-9._:-]{1,36}`` so it survives every line format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from protocols.upos.errors import LocalProtocolError, RemoteProtocolError

ORDER_RE: Final = re.compile(r"[A-Za-z0-9._:-]{1,36}")
RRN_RE: Final = re.compile(r"[0-9]{12}")
MAX_AMOUNT_KOP: Final = 4_200_000_000
"""Amounts travel as a u32 of kopecks in ``auth_answer``; UPOS rejects more than 42 million roubles."""


class Operation(IntEnum):
    """UPOS operation codes (``TType`` in ``auth_answer``)."""

    PURCHASE = 1
    REFUND = 3
    RECONCILE = 7
    CONTROL_TAPE = 9
    SLIP_COPY = 12


def check_order(order: str) -> str:
    if not ORDER_RE.fullmatch(order):
        raise LocalProtocolError(f"operation id {order!r} must match {ORDER_RE.pattern}")
    return order


def check_amount(amount_kop: int) -> int:
    if isinstance(amount_kop, bool) or not isinstance(amount_kop, int):
        raise LocalProtocolError(f"amount must be an int of kopecks, got {type(amount_kop).__name__}")
    if not 0 < amount_kop <= MAX_AMOUNT_KOP:
        raise LocalProtocolError(f"amount {amount_kop} kopecks out of range 1..{MAX_AMOUNT_KOP}")
    return amount_kop


@dataclass(frozen=True, slots=True)
class Purchase:
    amount_kop: int
    order: str

    def __post_init__(self) -> None:
        check_amount(self.amount_kop)
        check_order(self.order)

    def argv(self) -> list[str]:
        return [str(int(Operation.PURCHASE)), str(self.amount_kop), f"ORDER={self.order}"]


@dataclass(frozen=True, slots=True)
class Refund:
    amount_kop: int
    rrn: str
    order: str

    def __post_init__(self) -> None:
        check_amount(self.amount_kop)
        check_order(self.order)
        if not RRN_RE.fullmatch(self.rrn):
            raise LocalProtocolError(f"RRN {self.rrn!r} must be 12 digits")

    def argv(self) -> list[str]:
        return [str(int(Operation.REFUND)), str(self.amount_kop), f"RRN={self.rrn}", f"ORDER={self.order}"]


@dataclass(frozen=True, slots=True)
class Reconcile:
    def argv(self) -> list[str]:
        return [str(int(Operation.RECONCILE))]


@dataclass(frozen=True, slots=True)
class ControlTape:
    def argv(self) -> list[str]:
        return [str(int(Operation.CONTROL_TAPE)), "1"]


@dataclass(frozen=True, slots=True)
class SlipCopy:
    def argv(self) -> list[str]:
        return [str(int(Operation.SLIP_COPY))]


Request = Purchase | Refund | Reconcile | ControlTape | SlipCopy


class BadArguments(RemoteProtocolError):
    """The terminal side got a command line that is not a UPOS request (the host's fault)."""


def parse_argv(argv: list[str]) -> Request:
    """The terminal side: command-line words (without the program name) → a request."""
    if not argv:
        raise BadArguments("no operation code")
    positional = [a for a in argv if "=" not in a]
    named: dict[str, str] = {}
    for word in argv:
        if "=" in word:
            key, _, value = word.partition("=")
            named[key.upper()] = value
    try:
        op = Operation(int(positional[0]))
    except ValueError as exc:
        raise BadArguments(f"unknown operation {positional[0]!r}") from exc
    try:
        if op is Operation.PURCHASE:
            return Purchase(_amount(positional), named.get("ORDER", "-"))
        if op is Operation.REFUND:
            return Refund(_amount(positional), named.get("RRN", ""), named.get("ORDER", "-"))
    except LocalProtocolError as exc:
        raise BadArguments(str(exc)) from exc
    if op is Operation.RECONCILE:
        return Reconcile()
    if op is Operation.CONTROL_TAPE:
        return ControlTape()
    return SlipCopy()


def _amount(positional: list[str]) -> int:
    if len(positional) < 2 or not positional[1].isdigit():
        raise BadArguments("amount in kopecks expected after the operation code")
    return int(positional[1])
