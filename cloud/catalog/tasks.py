"""Catalog Celery tasks: publish the price lists whose effective prices changed (every minute), or one store's."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import shared_task

from cloud.catalog import publish
from cloud.config import CloudSettings, get_settings
from cloud.db import session_factory, shared_engine

log = logging.getLogger(__name__)


def _settings(database_url: str | None, mqtt_url: str | None, bus_root: str | None) -> CloudSettings:
    settings = get_settings()
    update: dict[str, Any] = {}
    if database_url:
        update["database_url"] = database_url
    if mqtt_url:
        update["mqtt_url"] = mqtt_url
    if bus_root:
        update["bus_root"] = bus_root
    return settings.model_copy(update=update) if update else settings


@shared_task(name="cloud.catalog.publish_due_price_lists", ignore_result=False)  # type: ignore[untyped-decorator]
def publish_due_price_lists(database_url: str | None = None, mqtt_url: str | None = None,
                            bus_root: str | None = None, now: str | None = None) -> list[dict[str, Any]]:
    """Publish every store whose effective prices changed since its last list; returns what was published.

    ``now`` (ISO 8601 with a zone) replaces the clock; arguments default to the settings.
    """
    settings = _settings(database_url, mqtt_url, bus_root)
    factory = session_factory(shared_engine(settings.database_url))
    at = datetime.fromisoformat(now) if now else None
    results = publish.publish_due(factory, settings, at)
    done = [r.model_dump(mode="json") for r in results if r.published]
    if done:
        log.info("price lists published: %s", [(r["store_id"], r["version"]) for r in done])
    return done


@shared_task(name="cloud.catalog.publish_store_price_list", ignore_result=False)  # type: ignore[untyped-decorator]
def publish_store_price_list(tenant_id: int, store_id: int, database_url: str | None = None,
                             mqtt_url: str | None = None, bus_root: str | None = None) -> dict[str, Any]:
    """Publish a new version of one store's list (what the API endpoint does, for scripts and 1C imports)."""
    settings = _settings(database_url, mqtt_url, bus_root)
    factory = session_factory(shared_engine(settings.database_url))
    return publish.publish_now(factory, settings, tenant_id, store_id).model_dump(mode="json")
