"""Database access: engines, sessions, the unit of work, and migrations.

One transaction per unit of work: :func:`unit_of_work` commits only when the caller says so and
rolls back everything else, so an exception half-way never leaves half a change behind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from cloud.writer_lock import WriterLock

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 10_000

RELAXED_DURABILITY = "vitrina_relaxed_durability"
"""Execution option set by :func:`relaxed_durability` (read by the SQLite ``begin`` hook)."""

_WRITER_LOCKS: dict[str, WriterLock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()
_HOLDS_LOCK = "vitrina_writer_lock"


def _writer_lock(path: str) -> WriterLock:
    """One lock per SQLite file per process, shared by every engine on that file."""
    if not path or path == ":memory:":
        return WriterLock(None)  # each in-memory database is its own
    key = str(Path(path).resolve())
    with _WRITER_LOCKS_GUARD:
        lock = _WRITER_LOCKS.get(key)
        if lock is None:
            lock = _WRITER_LOCKS[key] = WriterLock(Path(key))
        return lock


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever the URL says (``postgresql://``, ``postgres://``)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout, foreign keys and real transactions."""
    url = normalize_url(url)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, **kwargs)
    path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
    writer = _writer_lock(path)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # pysqlite's own transaction handling starts transactions late and never for reads;
        # turn it off and begin explicitly (SQLAlchemy's documented recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")  # SQLite's default, said explicitly: see relaxed_durability
        cursor.close()
        record.info["synchronous"] = "FULL"

    held: set[int] = set()  # id() of the DBAPI connections whose transaction holds ``writer``
    held_guard = threading.Lock()

    def _release(connection: Any) -> None:
        key = id(getattr(connection, "dbapi_connection", connection))  # a pool proxy or the raw one
        with held_guard:
            if key not in held:
                return
            held.discard(key)
        writer.release()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: two read-then-write transactions (the bus
        # consumer and an API process) then wait on busy_timeout instead of failing with
        # SQLITE_BUSY on lock upgrade, which busy_timeout cannot help.
        #
        # Every transaction on this file first takes the writer lock (one writer at a time,
        # across threads and processes: cloud.writer_lock), released right after its
        # COMMIT/ROLLBACK returned: a waiter then gets in within a millisecond of the other's
        # commit, instead of in SQLite's busy-handler sleeps (1, 2, 5, 10 … ms), which cost the
        # command path whole milliseconds whenever the bus consumer wrote a reply at the same
        # moment. If the lock is not free within busy_timeout (a stuck holder) the transaction
        # goes on without it: SQLite's own lock stays the real guard, this one only orders the
        # waiters.
        dbapi_connection = conn.connection.dbapi_connection
        with held_guard:
            mine = id(dbapi_connection) in held
        if not mine and writer.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            with held_guard:
                held.add(id(dbapi_connection))
        try:
            info = conn.connection.info
            want = "NORMAL" if conn.get_execution_options().get(RELAXED_DURABILITY) else "FULL"
            if info.get("synchronous") != want:  # a pragma, so it must be set outside a transaction
                conn.exec_driver_sql(f"PRAGMA synchronous={want}")
                info["synchronous"] = want
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(dbapi_connection)
            raise

    # Released after the DBAPI commit/rollback returned (the ``commit``/``rollback`` events run
    # before it, which would let the next writer in while this one still holds SQLite's lock).
    dialect: Any = engine.dialect
    base_commit, base_rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            base_commit(dbapi_connection)
        finally:
            _release(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            base_rollback(dbapi_connection)
        finally:
            _release(dbapi_connection)

    dialect.do_commit, dialect.do_rollback = do_commit, do_rollback

    # Safety nets: a connection that is checked in, invalidated or closed never keeps the lock.
    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        _release(dbapi_connection)

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(dbapi_connection: Any, _record: Any, _exc: Any) -> None:
        _release(dbapi_connection)

    @event.listens_for(engine, "close")
    def _on_close(dbapi_connection: Any, _record: Any) -> None:
        _release(dbapi_connection)

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (so results can be returned)."""
    return sessionmaker(bind=engine, class_=Session, expire_on_commit=False)


def relaxed_durability(session: Session) -> None:
    """Call first in a unit of work: its commit returns before it is flushed to disk.

    For bookkeeping rows whose loss in a power cut or OS crash (not a process crash) is
    harmless, e.g. a command row: the gateway's journal, not this row, guards the command's side
    effect, and a retry with the same key re-creates it with the same ``command_id``, which the
    journal answers with the stored result. Constraints (uniqueness) are enforced as usual.

    PostgreSQL: ``SET LOCAL synchronous_commit = off`` (this transaction only; the WAL writer
    flushes it within ``wal_writer_delay``). SQLite (WAL): ``synchronous=NORMAL`` for this
    transaction (set before its ``BEGIN``; the next ordinary transaction sets ``FULL`` back).
    """
    conn = session.connection(execution_options={RELAXED_DURABILITY: True})
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: the block calls ``session.commit()``; anything else is rolled back."""
    session = factory()
    try:
        yield session
    finally:
        # close() rolls back whatever was not committed; unlike rollback() it does not expire
        # the objects, so what the block returns stays readable after it.
        session.close()


def ping(engine: Engine) -> bool:
    """True when the database answers a trivial query."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def alembic_config(database_url: str) -> Any:
    """Alembic configuration pointing at the migrations inside the installed package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", normalize_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at ``database_url`` to ``revision`` (the only way tables are created)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


_ENGINES: dict[str, Engine] = {}


def shared_engine(url: str) -> Engine:
    """One engine (and pool) per URL per process, for tasks that run many times."""
    engine = _ENGINES.get(url)
    if engine is None:
        engine = _ENGINES[url] = make_engine(url)
    return engine
