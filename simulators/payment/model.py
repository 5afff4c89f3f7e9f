"""The simulated card terminal and its bank, shared by the UPOS executable and the nexo server.

State lives in one SQLite file (``state``) so the UPOS simulator, a new process per operation,
remembers batches and balances, and tests can read the ledger from outside. Writes run inside
``BEGIN IMMEDIATE``: SQLite's lock is the lock between processes.

The **ledger** (table ``ops``) holds every approved financial operation — what the bank really
charged or returned. ``charges(order)`` is how a test proves money moved once. The control tape
(UPOS op 9) and nexo TransactionStatus are read from the same table: an operation is on the
tape if and only if money moved.

Rules (``Rules``, stored as JSON): balances per card, a default balance, an amount limit,
declined card ranges (BIN prefix → result code), reconciliation required after N operations
or at day change, bank link down, a latency model.

Customer behaviour is a **script**: one item popped per card operation, ``action[@PAN]``:

    approve        the customer presents the card (``@PAN`` picks it) and enters the PIN
    cancel         the customer presses Cancel on the PIN pad          → 2000
    pin_timeout    the customer never enters the PIN                   → 2002
    wrong_pin      three wrong PINs                                    → 4117
    hang           the terminal goes silent for ``rules.hang`` s *before* authorising
    lose_answer    the bank authorises (money moves), then the answer is lost: the UPOS
                   process dies without writing ``e``/``p``, the nexo server drops the socket
    hang_after     the bank authorises, then the terminal goes silent for ``rules.hang`` s
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from protocols.upos import codes

PURCHASE = "purchase"
REFUND = "refund"
VOID = "void"
ACTIONS = ("approve", "cancel", "pin_timeout", "wrong_pin", "hang", "lose_answer", "hang_after")

WAITING_CARD = "waiting_card"
PIN_ENTRY = "pin_entry"
AUTHORISING = "authorising"


@dataclass
class Rules:
    terminal_id: str = "00123456"
    merchant: str = "ООО ВИТРИНА МАГАЗИН 1"
    default_card: str = "4276380012345678"
    default_balance_kop: int = 100_000_000
    balances: dict[str, int] = field(default_factory=dict)
    max_amount_kop: int | None = None
    declined_bins: dict[str, int] = field(default_factory=dict)
    reconcile_every: int | None = None
    bank_link_down: bool = False
    latency: float = 0.0
    hang: float = 30.0


@dataclass(frozen=True)
class Entry:
    """One approved financial operation: a ledger row and a control tape line."""

    n: int
    batch: int
    kind: str
    order: str
    amount_kop: int
    pan: str
    rrn: str
    auth_code: str
    ts: datetime
    voided: bool = False
    original_rrn: str = ""

    @property
    def card_mask(self) -> str:
        return "*" * (len(self.pan) - 4) + self.pan[-4:]

    @property
    def op_number(self) -> str:
        return f"{self.n:04d}"


@dataclass(frozen=True)
class Decision:
    code: int
    entry: Entry | None = None
    pan: str = ""
    lost: bool = False
    """The bank answered but the terminal must not: the front-end dies or drops the link."""

    @property
    def approved(self) -> bool:
        return self.code == codes.APPROVED and self.entry is not None


@dataclass(frozen=True)
class BatchTotals:
    batch: int
    purchases: tuple[int, int]
    refunds: tuple[int, int]
    voids: tuple[int, int]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ops (
    n INTEGER PRIMARY KEY AUTOINCREMENT, batch INTEGER NOT NULL, kind TEXT NOT NULL,
    order_ref TEXT NOT NULL, amount_kop INTEGER NOT NULL, pan TEXT NOT NULL, rrn TEXT NOT NULL UNIQUE,
    auth_code TEXT NOT NULL, ts TEXT NOT NULL, voided INTEGER NOT NULL DEFAULT 0,
    original_rrn TEXT NOT NULL DEFAULT ''
);
"""


class TerminalModel:
    """The terminal + bank behind both simulators. Every method is one SQLite transaction."""

    def __init__(self, state: str | Path, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = Path(state)
        self.sleep = sleep
        with self._tx() as db:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute("INSERT OR IGNORE INTO kv VALUES ('rules', ?)", (json.dumps(asdict(Rules())),))
            db.execute("INSERT OR IGNORE INTO kv VALUES ('script', '[]')")
            db.execute("INSERT OR IGNORE INTO kv VALUES ('batch', '1')")
            db.execute("INSERT OR IGNORE INTO kv VALUES ('batch_date', ?)", (date.today().isoformat(),))

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    @staticmethod
    def _get(db: sqlite3.Connection, key: str) -> str:
        row = db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return str(row[0])

    @staticmethod
    def _set(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    # --- configuration (tests, the CLI) ------------------------------------------------

    def rules(self) -> Rules:
        with self._tx() as db:
            return Rules(**json.loads(self._get(db, "rules")))

    def configure(self, **changes: Any) -> Rules:
        with self._tx() as db:
            rules = replace(Rules(**json.loads(self._get(db, "rules"))), **changes)
            self._set(db, "rules", json.dumps(asdict(rules)))
            return rules

    def push_script(self, *items: str) -> None:
        for item in items:
            if item.partition("@")[0] not in ACTIONS:
                raise ValueError(f"unknown script action {item!r}; known: {', '.join(ACTIONS)}")
        with self._tx() as db:
            self._set(db, "script", json.dumps([*json.loads(self._get(db, "script")), *items]))

    def force_day_change(self) -> None:
        """Pretend the open batch was opened yesterday (reconciliation becomes required)."""
        with self._tx() as db:
            self._set(db, "batch_date", (date.today() - timedelta(days=1)).isoformat())

    # --- reads -------------------------------------------------------------------------

    def ledger(self) -> list[Entry]:
        with self._tx() as db:
            return [self._entry(r) for r in db.execute("SELECT * FROM ops ORDER BY n")]

    def charges(self, order: str) -> list[Entry]:
        """Purchases recorded under ``order`` (voided ones included: they did move money once)."""
        return [e for e in self.ledger() if e.kind == PURCHASE and e.order == order]

    def tape(self) -> tuple[int, list[Entry]]:
        with self._tx() as db:
            batch = int(self._get(db, "batch"))
            rows = db.execute("SELECT * FROM ops WHERE batch = ? ORDER BY n", (batch,))
            return batch, [self._entry(r) for r in rows]

    def last_entry(self) -> Entry | None:
        entries = self.ledger()
        return entries[-1] if entries else None

    def find(self, order: str, kinds: tuple[str, ...] = (PURCHASE, REFUND)) -> Entry | None:
        found = [e for e in self.ledger() if e.order == order and e.kind in kinds]
        return found[-1] if found else None

    def balance(self, pan: str) -> int:
        rules = self.rules()
        start = rules.balances.get(pan, rules.default_balance_kop)
        moved = sum(
            (-e.amount_kop if e.kind == PURCHASE and not e.voided else e.amount_kop if e.kind == REFUND else 0)
            for e in self.ledger()
            if e.pan == pan
        )
        return start + moved

    @staticmethod
    def _entry(row: tuple[Any, ...]) -> Entry:
        n, batch, kind, order, amount, pan, rrn, auth, ts, voided, orig = row
        return Entry(n, batch, kind, order, amount, pan, rrn, auth, datetime.fromisoformat(ts), bool(voided), orig)

    # --- operations --------------------------------------------------------------------

    def reconcile_required(self) -> bool:
        with self._tx() as db:
            return self._reconcile_required(db)

    def _reconcile_required(self, db: sqlite3.Connection) -> bool:
        rules = Rules(**json.loads(self._get(db, "rules")))
        if date.fromisoformat(self._get(db, "batch_date")) < date.today():
            return True
        if rules.reconcile_every is not None:
            batch = int(self._get(db, "batch"))
            (count,) = db.execute("SELECT COUNT(*) FROM ops WHERE batch = ?", (batch,)).fetchone()
            return bool(count >= rules.reconcile_every)
        return False

    def run(
        self,
        kind: str,
        amount_kop: int,
        order: str,
        *,
        original_rrn: str = "",
        auto_void: bool = False,
        on_stage: Callable[[str], None] = lambda stage: None,
    ) -> Decision:
        """One card operation as the customer and the bank play it, with the latency model.

        ``kind`` is PURCHASE, REFUND or VOID; ``auto_void`` makes a refund of a whole purchase
        of the open batch a void, as UPOS does for its operation 3.
        """
        rules = self.rules()
        if self.reconcile_required():
            return Decision(codes.RECONCILE_REQUIRED)
        with self._tx() as db:
            script = json.loads(self._get(db, "script"))
            item = script.pop(0) if script else "approve"
            self._set(db, "script", json.dumps(script))
        action, _, pan = item.partition("@")
        pan = pan or rules.default_card
        step = rules.latency / 3
        on_stage(WAITING_CARD)
        self.sleep(step)
        if action == "cancel":
            return Decision(codes.CUSTOMER_CANCELLED, pan=pan)
        on_stage(PIN_ENTRY)
        self.sleep(step)
        if action == "pin_timeout":
            return Decision(codes.PIN_TIMEOUT, pan=pan)
        if action == "wrong_pin":
            return Decision(codes.WRONG_PIN, pan=pan)
        if action == "hang":
            self.sleep(rules.hang)
        on_stage(AUTHORISING)
        self.sleep(step)
        decision = self._authorise(kind, amount_kop, order, pan, original_rrn, auto_void)
        if decision.approved and action == "lose_answer":
            return replace(decision, lost=True)
        if decision.approved and action == "hang_after":
            self.sleep(rules.hang)
        return decision

    def _authorise(
        self, kind: str, amount_kop: int, order: str, pan: str, original_rrn: str, auto_void: bool
    ) -> Decision:
        rules = self.rules()
        if rules.bank_link_down:
            return Decision(codes.NO_BANK_LINK, pan=pan)
        for prefix, code in rules.declined_bins.items():
            if pan.startswith(prefix):
                return Decision(int(code), pan=pan)
        if kind == PURCHASE:
            if rules.max_amount_kop is not None and amount_kop > rules.max_amount_kop:
                return Decision(codes.LIMIT_EXCEEDED, pan=pan)
            if self.balance(pan) < amount_kop:
                return Decision(codes.INSUFFICIENT_FUNDS, pan=pan)
        with self._tx() as db:
            batch = int(self._get(db, "batch"))
            if kind in (REFUND, VOID):
                row = db.execute(
                    "SELECT * FROM ops WHERE rrn = ? AND kind = ?", (original_rrn, PURCHASE)
                ).fetchone()
                if row is None:
                    return Decision(codes.AMOUNT_MISMATCH, pan=pan)
                original = self._entry(row)
                pan = original.pan
                (returned,) = db.execute(
                    "SELECT COALESCE(SUM(amount_kop), 0) FROM ops WHERE original_rrn = ? AND kind = ?",
                    (original_rrn, REFUND),
                ).fetchone()
                whole_in_batch = (
                    original.batch == batch and not original.voided and returned == 0
                    and amount_kop == original.amount_kop
                )
                if kind == VOID or (auto_void and whole_in_batch):
                    if not whole_in_batch:
                        return Decision(codes.AMOUNT_MISMATCH, pan=pan)
                    kind = VOID
                    db.execute("UPDATE ops SET voided = 1 WHERE rrn = ?", (original_rrn,))
                elif original.voided or amount_kop > original.amount_kop - returned:
                    return Decision(codes.AMOUNT_MISMATCH, pan=pan)
            (last,) = db.execute("SELECT COALESCE(MAX(n), 0) FROM ops").fetchone()
            n = int(last) + 1
            rrn = f"{int(time.time()) % 10**6:06d}{n:06d}"
            auth = hashlib.sha256(f"{rrn}{pan}{amount_kop}".encode()).hexdigest()[:6].upper()
            ts = datetime.now().replace(microsecond=0)
            db.execute(
                "INSERT INTO ops (n, batch, kind, order_ref, amount_kop, pan, rrn, auth_code, ts, original_rrn)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (n, batch, kind, order, amount_kop, pan, rrn, auth, ts.isoformat(), original_rrn),
            )
        return Decision(codes.APPROVED, Entry(n, batch, kind, order, amount_kop, pan, rrn, auth, ts, False,
                                              original_rrn), pan=pan)

    def reconcile(self) -> tuple[int, BatchTotals | None]:
        """Close the open batch (сверка итогов): its totals, and a new batch opened today."""
        if self.rules().bank_link_down:
            return codes.NO_BANK_LINK, None
        with self._tx() as db:
            batch = int(self._get(db, "batch"))

            def total(where: str) -> tuple[int, int]:
                count, amount = db.execute(
                    f"SELECT COUNT(*), COALESCE(SUM(amount_kop), 0) FROM ops WHERE batch = ? AND {where}", (batch,)
                ).fetchone()
                return int(count), int(amount)

            totals = BatchTotals(batch, total(f"kind = '{PURCHASE}'"), total(f"kind = '{REFUND}'"),
                                 total(f"kind = '{VOID}'"))
            self._set(db, "batch", str(batch + 1))
            self._set(db, "batch_date", date.today().isoformat())
        return codes.APPROVED, totals
