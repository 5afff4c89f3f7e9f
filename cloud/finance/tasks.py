"""Celery tasks of management finance: statement and table imports.

A big file is checked in the request (a malformed one is refused there, naming the line and
field) and imported by :func:`import_operations` in one transaction. With Redis the request
answers at once and ``GET /finance/imports/{id}`` reports progress; in the one-machine mode the
task runs eagerly in the request's process.
"""

from __future__ import annotations

import logging

from celery import shared_task
from sqlalchemy import update

from cloud.config import get_settings
from cloud.db import session_factory, shared_engine
from cloud.finance import imports
from cloud.finance.models import FinImport

log = logging.getLogger(__name__)
PROGRESS_EVERY = 5000


def _sink(database_url: str):  # type: ignore[no-untyped-def]
    engine = shared_engine(database_url)
    if engine.dialect.name == "sqlite":
        return None  # one writer at a time: progress stays in this process (imports.PROGRESS)

    def write(import_id: int, done: int, total: int) -> None:
        if done % PROGRESS_EVERY and done != total:
            return
        with engine.begin() as conn:  # its own transaction, visible while the import's is open
            conn.execute(update(FinImport.__table__).where(FinImport.__table__.c.id == import_id).values(processed=done))  # type: ignore[attr-defined]

    return write


@shared_task(name="cloud.finance.import_operations", ignore_result=False)  # type: ignore[untyped-decorator]
def import_operations(import_id: int, database_url: str | None = None) -> dict[str, object]:
    url = database_url or get_settings().database_url
    result = imports.run_import(session_factory(shared_engine(url)), import_id, _sink(url))
    log.info("finance import %s: %s", import_id, result.state)
    return result.model_dump(mode="json")
