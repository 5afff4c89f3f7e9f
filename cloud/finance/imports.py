"""Imports of bank statements (1C) and XLSX/CSV tables: checked in the request, run by a task.

**One transaction per import**: a statement is parsed and checked before anything is
written (a bad file is refused naming the line and field, and nothing is stored); its
operations, their parts and the totals are then inserted together (:func:`~cloud.finance.ingest.ingest`)
and committed once, so a failure leaves nothing behind. The file waits in its ``fin_imports``
row until :func:`run_import` runs it (from the Celery task in :mod:`cloud.finance.tasks`); the
row tells the progress and then the outcome.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import defer
from sqlmodel import Session

from cloud.base import utcnow
from cloud.errors import Invalid, NotFound
from cloud.finance.ingest import NewOp, ingest
from cloud.finance.models import FinImport, ImportPublic, ImportState, TableImportIn
from cloud.finance.operations import from_side
from cloud.finance.setup import Names, names
from cloud.finance.tables import table_ops
from protocols.onec import OneCError, check_balances, own_sides, parse_statement

IMPORTS = FinImport.__table__  # type: ignore[attr-defined]

# Progress of running imports in this process (the one-machine mode runs them in the request's
# process; with workers the row in fin_imports is updated too, from a connection of its own).
PROGRESS: dict[int, tuple[int, int]] = {}
# Operations already parsed by the request that queued the import, when the task runs in the
# same process (eager mode): saves parsing the file twice. A worker process parses it again.
_PARSED: dict[int, list[NewOp]] = {}


_GC_GUARD = threading.Lock()
_gc_holders = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (reference counting frees as usual).

    Parsing and allocating a big statement creates millions of small objects that live until
    the import ends; every few hundred allocations the collector walks all of them again, which
    cost a third of the parse (100k lines: 4.2 s → 3.1 s without it). They hold no cycles, so
    there is nothing for it to find. Process-wide, hence counted: with two imports at once the
    collector comes back when the last one leaves, and only if it was on before the first.
    """
    global _gc_holders, _gc_was_enabled
    with _GC_GUARD:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _GC_GUARD:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()


def _import_public(row: FinImport) -> ImportPublic:
    assert row.id is not None
    processed, total = PROGRESS.get(row.id, (row.processed, row.total))
    return ImportPublic(
        id=row.id, kind=row.kind, file_name=row.file_name, state=row.state, total=max(total, row.total),
        processed=max(processed, row.processed), created=row.created, duplicates=row.duplicates,
        allocated=row.allocated, errors=row.errors or [], balance_differences=row.balance_differences or [],
    )


def get_import(session: Session, tenant_id: int, import_id: int) -> ImportPublic:
    row = session.get(FinImport, import_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"загрузка {import_id} не найдена")
    session.refresh(row)
    return _import_public(row)


def _onec_error(exc: OneCError) -> Invalid:
    where = []
    if exc.line is not None:
        where.append(f"строка {exc.line}")
    if exc.field:
        where.append(f"поле {exc.field}")
    prefix = ", ".join(where)
    return Invalid(f"выписка не загружена: {prefix + ': ' if prefix else ''}{exc.message}", code=exc.code,
                   extra={"line": exc.line, "field": exc.field})


def _onec_ops(content: bytes, n: Names) -> tuple[list[NewOp], list[dict[str, Any]]]:
    try:
        statement = parse_statement(content)
    except OneCError as exc:
        raise _onec_error(exc) from exc
    out: list[NewOp] = []
    unknown: set[str] = set()
    sides = own_sides(statement)
    accounts = n.accounts
    for side in sides:
        account = accounts.get(side.account)
        if account is None or account.id is None:
            unknown.add(side.account)
            continue
        out.append(NewOp(from_side(side), account.id, side.document.number.strip()))
    if unknown:
        raise Invalid(
            f"выписка не загружена: счета {', '.join(sorted(unknown))} не заведены ни у одного юрлица",
            code="unknown_account", extra={"accounts": sorted(unknown)},
        )
    differences = [
        {"account": d.account, "code": d.code, "expected": str(d.expected), "actual": str(d.actual),
         "delta": str(d.delta), "detail": d.message}
        for d in check_balances(statement, sides)
    ]
    return out, differences


def start_import(session: Session, tenant_id: int, user_id: int | None, kind: str, file_name: str, content: bytes,
                 options: dict[str, Any] | None = None) -> FinImport:
    """Check the file (a bad one → 422 naming the line and field, nothing stored) and queue it.

    PostgreSQL: the row with the file is sent while the file is checked (the server compresses
    tens of megabytes meanwhile: 0.3 s for 60 MB), then completed with the check's figures, or
    rolled back with the check's error; committed only in the first case. The returned row
    does not hold the file (it is loaded if read).
    """
    n = names(session, tenant_id)
    draft = FinImport(tenant_id=tenant_id, kind=kind, file_name=file_name[:300], total=0, content=content,
                      options=options, balance_differences=[], errors=[], user_id=user_id)
    connection = session.connection()
    new_id: list[int] = []

    def store() -> None:  # Core on the connection: the ORM session stays this thread's alone
        if connection.dialect.name == "postgresql":
            _fast_toast(connection)
        values = {c.name: getattr(draft, c.name) for c in IMPORTS.columns if c.name != "id"}
        new_id.append(connection.execute(IMPORTS.insert().values(values).returning(IMPORTS.c.id)).scalar_one())

    try:
        with _meanwhile(store if connection.dialect.name == "postgresql" else None), gc_paused():
            new_ops, differences = parse_file(kind, content, options or {}, n)
        if not new_id:
            store()
    except BaseException:
        session.rollback()
        raise
    row = session.get(FinImport, new_id[0], options=[defer(FinImport.content)])  # type: ignore[arg-type]
    assert row is not None and row.id is not None
    row.total, row.balance_differences = len(new_ops), differences
    session.commit()
    _PARSED[row.id] = new_ops
    return row


@contextmanager
def _meanwhile(work: Callable[[], None] | None) -> Iterator[None]:
    """Run ``work`` in a thread of its own while the block runs; its error, if any, is raised
    after the block (the block's own error first). The block must not use what ``work`` does
    (here: the session, while ``work`` sends a statement on it and waits with the GIL released)."""
    if work is None:
        yield
        return
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # raised in the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=run, name="finance-meanwhile", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
    if failure:
        raise failure[0]


def _fast_toast(connection: Connection) -> None:
    """PostgreSQL 14+ built with LZ4: this transaction compresses big values with it.

    The stored file (tens of megabytes, kept until the import ran) is compressed on insert;
    pglz, the default, took 0.6 s for a 60 MB statement, LZ4 0.3 s. ``SET LOCAL`` through
    ``set_config(…, true)``, only where the server offers the value: elsewhere a no-op."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(
            "SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings"
            " WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"))


def parse_file(kind: str, content: bytes, options: dict[str, Any], n: Names) -> tuple[list[NewOp], list[dict[str, Any]]]:
    if kind == "onec":
        return _onec_ops(content, n)
    return table_ops(kind, content, TableImportIn.model_validate({**options, "content_b64": "", "format": kind}), n), []


def run_import(factory: Any, import_id: int, progress_sink: Callable[[int, int, int], None] | None = None) -> ImportPublic:
    """Run a queued import: one transaction for all its operations; the row tells the outcome."""
    from cloud.db import unit_of_work

    cached = _PARSED.pop(import_id, None)
    with unit_of_work(factory) as session:
        # The file itself (tens of megabytes) is loaded only when this process did not parse it.
        row = session.get(FinImport, import_id, options=[defer(FinImport.content)])  # type: ignore[arg-type]
        if row is None:
            raise NotFound(f"загрузка {import_id} не найдена")
        if row.state in (ImportState.DONE, ImportState.RUNNING):
            return _import_public(row)
        row.state = ImportState.RUNNING.value
        session.add(row)
        session.commit()
        tenant_id, kind, options, total = row.tenant_id, row.kind, row.options or {}, row.total
        content = b"" if cached is not None else row.content or b""

    def progress(done: int) -> None:
        PROGRESS[import_id] = (done, total)
        if progress_sink is not None:
            progress_sink(import_id, done, total)

    try:
        with unit_of_work(factory) as session, gc_paused():
            n = names(session, tenant_id)
            new_ops = cached if cached is not None else parse_file(kind, content, options, n)[0]
            result = ingest(session, tenant_id, new_ops, import_id=import_id, n=n, progress=progress)
            row = session.get(FinImport, import_id, options=[defer(FinImport.content)])  # type: ignore[arg-type]
            assert row is not None
            row.state, row.processed, row.created = ImportState.DONE.value, result.total, result.created
            row.duplicates, row.allocated, row.finished_at = result.duplicates, result.allocated, utcnow()
            row.content = None  # the operations are the record now
            session.add(row)
            session.commit()
            return _import_public(row)
    except Exception as exc:
        detail = exc.message if isinstance(exc, Invalid) else f"{type(exc).__name__}: {exc}"
        code = exc.code if isinstance(exc, Invalid) else "import_failed"
        with unit_of_work(factory) as session:
            row = session.get(FinImport, import_id)
            assert row is not None
            row.state, row.errors, row.finished_at = ImportState.FAILED.value, [{"code": code, "detail": detail}], utcnow()
            session.add(row)
            session.commit()
            if not isinstance(exc, Invalid):
                raise
            return _import_public(row)
    finally:
        PROGRESS.pop(import_id, None)
