"""Background recompute of a (product, warehouse) after a big backdated posting.

The cursor is ``stock_balances.dirty_from``/``dirty_from_id``: each chunk runs in its own
transaction, locks the pair, recomputes ``chunk`` rows from the cursor and commits the rows
together with the moved cursor. A crash between chunks loses nothing: the next run (or the next
posting to that pair, which finishes the recompute inline) starts from the committed cursor.
"""

from __future__ import annotations

import logging

from celery import shared_task
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from cloud.config import get_settings
from cloud.db import session_factory, shared_engine, unit_of_work
from cloud.inventory import ledger

log = logging.getLogger(__name__)


def recompute_chunk(session: Session, product_id: int, warehouse_id: int, chunk: int) -> bool:
    """Recompute up to ``chunk`` dirty rows of the pair (caller commits); True when the pair is clean."""
    B = ledger.B
    row = session.execute(select(B).where(B.c.product_id == product_id, B.c.warehouse_id == warehouse_id)).first()
    if row is None or row.dirty_from is None:
        return True
    pair = ledger.Pair(row.tenant_id, row.store_id, product_id, warehouse_id)
    balance = ledger.lock_pair(session, pair)
    if balance.dirty_from is None:
        return True
    cfg = ledger.settings_of(session, pair.tenant_id)
    result = ledger.settle(session, pair, (balance.dirty_from, balance.dirty_from_id), cfg, frozenset(), chunk)
    return result.done


def run_recompute(factory: sessionmaker[Session], product_id: int, warehouse_id: int, chunk: int = 5000,
                  max_chunks: int | None = None) -> int:
    """Run chunks until the pair is clean (or ``max_chunks``); returns the number of chunks run."""
    chunks = 0
    while max_chunks is None or chunks < max_chunks:
        with unit_of_work(factory) as session:
            done = recompute_chunk(session, product_id, warehouse_id, chunk)
            session.commit()
        chunks += 1
        if done:
            break
    return chunks


@shared_task(name="cloud.inventory.recompute_pair", ignore_result=False)  # type: ignore[untyped-decorator]
def recompute_pair(product_id: int, warehouse_id: int, database_url: str | None = None, chunk: int = 5000) -> int:
    """Finish the pending recompute of one (product, warehouse); idempotent and resumable."""
    engine = shared_engine(database_url or get_settings().database_url)
    chunks = run_recompute(session_factory(engine), product_id, warehouse_id, chunk)
    log.info("recomputed product %s warehouse %s in %s chunks", product_id, warehouse_id, chunks)
    return chunks


@shared_task(name="cloud.inventory.recompute_dirty", ignore_result=False)  # type: ignore[untyped-decorator]
def recompute_dirty(database_url: str | None = None, chunk: int = 5000) -> int:
    """Finish every pending recompute (a periodic sweep picks up whatever a crash left behind)."""
    engine = shared_engine(database_url or get_settings().database_url)
    factory = session_factory(engine)
    B = ledger.B
    with factory() as session:
        pairs = session.execute(select(B.c.product_id, B.c.warehouse_id).where(B.c.dirty_from.is_not(None))).all()
    for product_id, warehouse_id in pairs:
        run_recompute(factory, product_id, warehouse_id, chunk)
    return len(pairs)


def enqueue_dirty(session: Session, database_url: str) -> int:
    """After commit: queue the background recompute of every pair this session left dirty."""
    pairs = session.info.pop(ledger.DIRTY_KEY, set())
    if pairs:
        import cloud.worker  # noqa: F401  (the configured Celery app: Redis, or eager in-process)
    for product_id, warehouse_id in sorted(pairs):
        recompute_pair.delay(product_id, warehouse_id, database_url)
    return len(pairs)
