"""Periodic registry tasks (Celery): ``mark_stale_gateways``, every 30 s."""

from __future__ import annotations

import logging

from celery import shared_task

from cloud.base import utcnow
from cloud.config import get_settings
from cloud.db import session_factory, shared_engine, unit_of_work
from cloud.registry import service

log = logging.getLogger(__name__)


@shared_task(name="cloud.registry.mark_stale_gateways", ignore_result=False)  # type: ignore[untyped-decorator]
def mark_stale_gateways(database_url: str | None = None, stale_after_s: float | None = None) -> list[int]:
    """Mark silent online gateways ``stale`` (rule in :mod:`cloud.registry.service`); returns their ids.

    Arguments default to the settings; they exist so one worker (or a test) can target a database.
    """
    settings = get_settings()
    engine = shared_engine(database_url or settings.database_url)
    with unit_of_work(session_factory(engine)) as session:
        ids = service.mark_stale_gateways(
            session, utcnow(), stale_after_s if stale_after_s is not None else settings.gateway_stale_after_s
        )
        session.commit()
    if ids:
        log.info("gateways marked stale: %s", ids)
    return ids
