"""The handheld hub: users, sessions, tasks and scans, between the HTTP server and the bus.

One lock serialises every change (a handful of handhelds scan a few lines a second; SQLite
commits take milliseconds), so lines of one task reach the outbox in the order they were
accepted, and a line resent by a handheld that lost the answer is found by its ``line_id``
and answered from the store instead of being counted again.

The hub knows the device ids of the handheld family (bindings register themselves), tells a
device worker to reopen when its handheld connects (``kick``), and pushes task changes to the
connected pages through ``listeners``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.config import HandheldConfig
from gateway.handheld.errors import refused
from gateway.handheld.models import KIND_TITLES, QTY, LoginIn, ScanIn, TaskSpec, TaskStatus
from gateway.handheld.scanning import TaskIndex, resolve
from gateway.handheld.store import SessionRow, TaskRow, TaskStore
from protocols.barcodes import BarcodeError, WeightBarcodeFormat

log = logging.getLogger(__name__)

EmitFn = Callable[[str, str, dict[str, Any]], None]
"""``emit(device_id, event_type, data)``: the gateway's outbox."""

EVENT_OPENED = "task_opened"
EVENT_LINE = "task_line"
EVENT_COMPLETED = "task_completed"

MAX_PIN_FAILURES = 5
PIN_LOCK_S = 30.0
OPEN_STATUSES = (TaskStatus.NEW, TaskStatus.IN_PROGRESS)


@dataclass
class TerminalState:
    """What the bus status of one handheld shows."""

    connections: int = 0
    user: str | None = None
    user_name: str | None = None
    task_id: str | None = None
    battery_percent: int | None = None
    charging: bool | None = None
    connected_at: float | None = None
    last_seen: float | None = None

    def as_status(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "user_name": self.user_name,
            "task_id": self.task_id,
            "battery_percent": self.battery_percent,
            "charging": self.charging,
            "battery": "unknown" if self.battery_percent is None else "known",
            "connected_at": _iso(self.connected_at),
        }


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


@dataclass
class Hub:
    """See the module doc. ``emit`` may be set after construction (the runtime wires it)."""

    config: HandheldConfig
    data_dir: Path
    emit: EmitFn | None = None
    clock: Callable[[], float] = time.time
    terminals: dict[str, TerminalState] = field(default_factory=dict)
    pools: set[str] = field(default_factory=set)
    kick: Callable[[str], None] | None = None
    listeners: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)
    problem: str | None = "the handheld server is not started"
    listening: str | None = None

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._store: TaskStore | None = None
        self._indexes: dict[str, tuple[str, TaskIndex]] = {}
        self._failures: dict[str, _Failures] = {}
        try:
            self.formats: tuple[WeightBarcodeFormat, ...] = (
                WeightBarcodeFormat(tuple(self.config.weight_prefixes), self.config.weight_item_digits),
            )
        except BarcodeError as exc:
            from gateway.errors import ConfigError

            raise ConfigError(f"[handheld] weight barcode layout: {exc}") from exc

    # Lifecycle -------------------------------------------------------------------------------
    @property
    def store(self) -> TaskStore:
        if self._store is None:
            self._store = TaskStore(self.data_dir / "handheld.db")
        return self._store

    def open(self) -> None:
        """Open the task store, prune old tasks and move events left pending by a crash."""
        with self._lock:
            now = self.clock()
            self.store.prune(now - self.config.keep_days * 86400)
            self.store.prune_sessions(now)
            self.flush()

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def register_terminal(self, device_id: str) -> None:
        with self._lock:
            self.terminals.setdefault(device_id, TerminalState())

    def register_pool(self, device_id: str) -> None:
        with self._lock:
            self.pools.add(device_id)

    def flush(self) -> int:
        """Move pending events to the outbox (after every commit; at start for a crash's leftovers)."""
        if self.emit is None:
            return 0
        moved = 0
        with self._lock:
            for event in self.store.pending():
                self.emit(event.device, event.type, event.data)
                self.store.drop_pending(event.id)
                moved += 1
        return moved

    # Terminals ---------------------------------------------------------------------------------
    def connected(self, terminal: str, session: SessionRow) -> None:
        with self._lock:
            state = self.terminals.setdefault(terminal, TerminalState())
            state.connections += 1
            state.user, state.user_name = session.user, session.name
            state.last_seen = self.clock()
            if state.connections == 1:
                state.connected_at = state.last_seen
        self._kick(terminal)

    def disconnected(self, terminal: str) -> None:
        with self._lock:
            state = self.terminals.get(terminal)
            if state is not None:
                state.connections = max(0, state.connections - 1)

    def report(self, terminal: str, battery_percent: int | None, charging: bool | None) -> None:
        with self._lock:
            state = self.terminals.setdefault(terminal, TerminalState())
            state.battery_percent, state.charging = battery_percent, charging
            state.last_seen = self.clock()

    def is_connected(self, terminal: str) -> bool:
        with self._lock:
            state = self.terminals.get(terminal)
            return state is not None and state.connections > 0

    def terminal_status(self, terminal: str) -> dict[str, Any]:
        with self._lock:
            return self.terminals.setdefault(terminal, TerminalState()).as_status()

    def _kick(self, device_id: str) -> None:
        if self.kick is not None:
            try:
                self.kick(device_id)
            except Exception:
                log.exception("handheld %s: could not wake its device worker", device_id)

    def server_changed(self) -> None:
        """The server started or stopped listening: let the pool devices re-check."""
        for pool in list(self.pools):
            self._kick(pool)

    # Users ---------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        with self._lock:
            terminals = sorted(self.terminals)
        return {
            "terminals": terminals,
            "users": [{"login": u.login, "name": u.name or u.login} for u in self.config.users],
            "store_pin": self.config.store_pin is not None,
        }

    def login(self, body: LoginIn) -> SessionRow:
        now = self.clock()
        with self._lock:
            if body.terminal not in self.terminals:
                raise refused(f"Терминал {body.terminal!r} не зарегистрирован на шлюзе", "unknown_terminal", 400)
            failures = self._failures.setdefault(body.terminal, _Failures())
            if failures.locked_until > now:
                wait = int(failures.locked_until - now) + 1
                raise refused(f"Слишком много неверных PIN. Подождите {wait} с", "pin_locked", 429)
            user = next((u for u in self.config.users if u.login == body.user), None)
            name = body.user.strip()
            ok = False
            if user is not None:
                ok = hmac.compare_digest(user.pin, body.pin)
                login, name = user.login, user.name or user.login
            elif self.config.store_pin is not None and name:
                ok = hmac.compare_digest(self.config.store_pin, body.pin)
                login = name
            else:
                raise refused("Пользователь не найден", "unknown_user", 401)
            if not ok:
                failures.count += 1
                if failures.count >= MAX_PIN_FAILURES:
                    failures.count, failures.locked_until = 0, now + PIN_LOCK_S
                raise refused("Неверный PIN", "wrong_pin", 401)
            failures.count = 0
            session = SessionRow(secrets.token_urlsafe(24), body.terminal, login, name,
                                 now + self.config.session_hours * 3600)
            self.store.save_session(session)
            return session

    def session(self, token: str | None) -> SessionRow:
        if not token:
            raise refused("Войдите в систему", "not_logged_in", 401)
        with self._lock:
            row = self.store.session(token)
        if row is None or row.expires_at < self.clock():
            raise refused("Сеанс истёк — войдите снова", "not_logged_in", 401)
        return row

    def logout(self, token: str) -> None:
        with self._lock:
            self.store.drop_session(token)

    # Tasks: pool side ----------------------------------------------------------------------------
    def assign(self, spec: TaskSpec) -> dict[str, Any]:
        """Store a task (idempotent by ``task_id``; other content under the same id is refused)."""
        with self._lock:
            digest = self.store.digest(spec.task_id)
            if digest is not None:
                if digest != spec.digest():
                    raise refused(
                        f"task {spec.task_id!r} already exists with other content; use a new task_id",
                        "task_conflict", 409,
                    )
                row = self.store.task(spec.task_id)
                assert row is not None
                return {"task_id": spec.task_id, "created": False, "status": row.status.value}
            with self.store.transaction() as conn:
                self.store.insert_task(conn, spec, self.clock())
        self._notify({"type": "tasks"})
        return {"task_id": spec.task_id, "created": True, "status": TaskStatus.NEW.value}

    def cancel(self, task_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._task(task_id)
            if row.status is TaskStatus.COMPLETED:
                raise refused(f"task {task_id!r} is already completed", "task_completed", 409)
            if row.status is not TaskStatus.CANCELLED:
                with self.store.transaction() as conn:
                    self.store.set_status(conn, task_id, TaskStatus.CANCELLED)
        self._notify({"type": "tasks", "cancelled": task_id})
        return {"task_id": task_id, "status": TaskStatus.CANCELLED.value}

    def task_summary(self, task_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._task(task_id)
            return {**self._summary(row), "lines": self.store.lines(task_id)}

    def pool_status(self) -> dict[str, Any]:
        with self._lock:
            counts = self.store.counts()
            online = sum(1 for t in self.terminals.values() if t.connections > 0)
        return {"listening": self.listening, "tasks": counts, "handhelds_online": online}

    # Tasks: handheld side -----------------------------------------------------------------------
    def list_tasks(self, session: SessionRow) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.store.tasks(OPEN_STATUSES)
            return [self._summary(r) for r in rows if self._visible(r, session)]

    def task_view(self, session: SessionRow, task_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._visible_task(session, task_id)
            per, extra, count = self.store.totals(task_id)
            lines = [
                {
                    "line_no": line.line_no, "product_id": line.product_id, "name": line.name,
                    "unit": line.unit.value, "marked": line.marked, "price": line.price,
                    "expected_qty": _qty(line.expected_qty), "scanned_qty": _qty(per.get(line.line_no, Decimal(0))),
                }
                for line in row.spec.lines
            ]
            recent = self.store.lines(task_id)[-20:]
            return {**self._summary(row), "expected": lines, "unexpected_qty": _qty(extra),
                    "lines_scanned": count, "recent": list(reversed(recent))}

    def open_task(self, session: SessionRow, task_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._visible_task(session, task_id)
            self._require_open(row)
            if row.status is TaskStatus.NEW or not self.store.opened_on(task_id, session.terminal):
                now = self.clock()
                with self.store.transaction() as conn:
                    if row.status is TaskStatus.NEW:
                        self.store.set_status(conn, task_id, TaskStatus.IN_PROGRESS)
                    if not self.store.opened_on(task_id, session.terminal):
                        self.store.mark_opened(conn, task_id, session.terminal, session.user, now)
                        self.store.add_pending(conn, session.terminal, EVENT_OPENED, {
                            "task_id": task_id, "kind": row.spec.kind.value, "user": session.user,
                            "user_name": session.name, "terminal": session.terminal, "opened_at": _iso(now),
                        })
                self.flush()
            self.terminals.setdefault(session.terminal, TerminalState()).task_id = task_id
            return self.task_view(session, task_id)

    def scan(self, session: SessionRow, task_id: str, scan: ScanIn) -> dict[str, Any]:
        """Accept one scanned line, or refuse it with a message; a resent ``line_id`` is answered as stored."""
        with self._lock:
            stored = self.store.line(scan.line_id)
            if stored is not None:
                stored_task, data = stored
                if stored_task != task_id or data["barcode_raw"] != scan.barcode:
                    raise refused("Повтор строки с другим содержимым — строка не принята", "line_id_reused", 409)
                return self._scan_answer(task_id, data, duplicate=True)
            row = self._visible_task(session, task_id)
            self._require_open(row)
            match = resolve(self._index(row.spec), scan, self.formats)
            if match.marking is not None and self.store.has_marking(task_id, match.marking):
                name = match.line.name if match.line is not None else ""
                raise refused(f"Этот код маркировки уже отсканирован в задании ({name})", "duplicate_marking", 409)
            now = self.clock()
            line = match.line
            data = {
                "task_id": task_id, "kind": row.spec.kind.value, "line_id": scan.line_id,
                "line_no": line.line_no if line else None, "product_id": line.product_id if line else None,
                "name": line.name if line else None, "barcode": match.barcode, "barcode_raw": scan.barcode,
                "code_type": match.code_type, "qty": _qty(match.qty), "unit": match.unit.value,
                "marking": match.marking, "marking_code": match.marking_code,
                "user": session.user, "user_name": session.name, "terminal": session.terminal,
                "scanned_at": _iso(now),
            }
            with self.store.transaction() as conn:
                if row.status is TaskStatus.NEW:
                    self.store.set_status(conn, task_id, TaskStatus.IN_PROGRESS)
                self.store.insert_line(conn, task_id, data, data["line_no"], data["qty"], match.marking, now)
                self.store.add_pending(conn, session.terminal, EVENT_LINE, data)
            self.flush()
            self.terminals.setdefault(session.terminal, TerminalState()).task_id = task_id
            return self._scan_answer(task_id, data, duplicate=False)

    def complete(self, session: SessionRow, task_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._visible_task(session, task_id)
            if row.status is TaskStatus.COMPLETED:
                return {**self._summary(row), "already": True}
            self._require_open(row)
            per, extra, count = self.store.totals(task_id)
            now = self.clock()
            data = {
                "task_id": task_id, "kind": row.spec.kind.value, "user": session.user, "user_name": session.name,
                "terminal": session.terminal, "completed_at": _iso(now), "lines": count,
                "totals": [
                    {"line_no": line.line_no, "product_id": line.product_id, "unit": line.unit.value,
                     "expected_qty": _qty(line.expected_qty), "scanned_qty": _qty(per.get(line.line_no, Decimal(0)))}
                    for line in row.spec.lines
                ],
                "unexpected_qty": _qty(extra),
            }
            with self.store.transaction() as conn:
                self.store.set_status(conn, task_id, TaskStatus.COMPLETED, now, session.user, session.terminal)
                self.store.add_pending(conn, session.terminal, EVENT_COMPLETED, data)
            self.flush()
            state = self.terminals.setdefault(session.terminal, TerminalState())
            if state.task_id == task_id:
                state.task_id = None
            done = self._task(task_id)
        self._notify({"type": "tasks", "completed": task_id})
        return {**self._summary(done), "already": False}

    # Internals ------------------------------------------------------------------------------------
    def _task(self, task_id: str) -> TaskRow:
        row = self.store.task(task_id)
        if row is None:
            raise refused(f"Задание {task_id} не найдено", "task_not_found", 404)
        return row

    def _visible(self, row: TaskRow, session: SessionRow) -> bool:
        assignee = row.spec.assignee
        return assignee is None or assignee in (session.terminal, session.user)

    def _visible_task(self, session: SessionRow, task_id: str) -> TaskRow:
        row = self._task(task_id)
        if not self._visible(row, session):
            raise refused(f"Задание {task_id} назначено другому сотруднику", "task_not_yours", 403)
        return row

    @staticmethod
    def _require_open(row: TaskRow) -> None:
        if row.status is TaskStatus.COMPLETED:
            raise refused("Задание уже завершено — сканирование невозможно", "task_completed", 409)
        if row.status is TaskStatus.CANCELLED:
            raise refused("Задание отменено", "task_cancelled", 409)

    def _index(self, spec: TaskSpec) -> TaskIndex:
        digest = spec.digest()
        cached = self._indexes.get(spec.task_id)
        if cached is None or cached[0] != digest:
            if len(self._indexes) > 64:
                self._indexes.clear()
            cached = (digest, TaskIndex(spec))
            self._indexes[spec.task_id] = cached
        return cached[1]

    def _summary(self, row: TaskRow) -> dict[str, Any]:
        spec = row.spec
        return {
            "task_id": spec.task_id, "kind": spec.kind.value, "kind_title": KIND_TITLES[spec.kind],
            "title": spec.title, "status": row.status.value, "lines_expected": len(spec.lines),
            "assignee": spec.assignee, "assigned_at": _iso(row.assigned_at),
            "completed_at": _iso(row.completed_at), "completed_by": row.completed_by,
        }

    def _scan_answer(self, task_id: str, data: dict[str, Any], *, duplicate: bool) -> dict[str, Any]:
        per, extra, count = self.store.totals(task_id)
        line_no = data.get("line_no")
        row = self._task(task_id)
        expected = None
        price = None
        if line_no is not None:
            line = self._index(row.spec).by_no.get(int(line_no))
            if line is not None:
                expected, price = _qty(line.expected_qty), line.price
        total = per.get(int(line_no), Decimal(0)) if line_no is not None else extra
        return {"line": data, "duplicate": duplicate, "scanned_qty": _qty(total), "expected_qty": expected,
                "price": price, "lines_scanned": count}

    def _notify(self, message: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                listener(message)
            except Exception:
                log.exception("handheld listener failed")


def _qty(value: Decimal | None) -> str | None:
    return None if value is None else str(Decimal(value).quantize(QTY))


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

