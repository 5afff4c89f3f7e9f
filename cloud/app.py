"""The FastAPI application: routers, error mapping, and the lifespan that owns the MQTT client.

Service errors (:mod:`cloud.errors`) become ``{"detail": <human text>, "code": <machine code>}``
with their 4xx/503 status, and a database that cannot be reached a 503 ``database_unavailable``
(with ``Retry-After``); nothing else is translated, so a bug stays a visible 500.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from cloud.catalog.publish_router import router as catalog_publish_router
from cloud.catalog.router import router as catalog_router
from cloud.commands.bus import CommandBus
from cloud.commands.insert import PostgresInserter
from cloud.commands.router import router as commands_router
from cloud.config import CloudSettings, get_settings
from cloud.db import make_engine, ping, session_factory
from cloud.errors import CloudError, Unauthorized
from cloud.finance.router import router as finance_router
from cloud.handheld.router import router as handheld_router
from cloud.inventory.handheld_router import router as inventory_handheld_router
from cloud.inventory.router import router as inventory_router
from cloud.marking.router import router as marking_router
from cloud.registry.router import router as registry_router
from cloud.sales.router import router as sales_router

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def create_app(settings: CloudSettings | None = None, *, with_bus: bool = True) -> FastAPI:
    """Build the API. The database must already be migrated (``vitrina db upgrade``).

    ``with_bus=False`` skips the MQTT client (commands then answer 503); for tools that only read.
    """
    settings = settings or get_settings()
    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus = CommandBus(settings).start() if with_bus else None
        app.state.command_bus = bus
        # PostgreSQL: new commands are stored from the event loop (see cloud.commands.insert)
        inserter = PostgresInserter(settings.database_url) if bus is not None and engine.dialect.name == "postgresql" \
            else None
        if inserter is not None:
            await inserter.open()
        app.state.command_inserter = inserter
        try:
            yield
        finally:
            if inserter is not None:
                await inserter.close()
            if bus is not None:
                await bus.stop()
            engine.dispose()

    app = FastAPI(title="Vitrina cloud", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.command_bus = None
    app.state.command_inserter = None

    @app.exception_handler(CloudError)
    async def _cloud_error(_request: Request, exc: CloudError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        body = {"detail": exc.message, "code": exc.code, **exc.extra}
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(psycopg.OperationalError)
    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The database cannot be reached (down, restarting, a lost connection, SQLite's lock held
        # past busy_timeout): not a bug, and the request may be retried — 503, not a bare 500.
        log.warning("%s %s: database unavailable: %s", request.method, request.url.path, str(exc).partition("\n")[0])
        return JSONResponse({"detail": "база данных недоступна, повторите запрос позже", "code": "database_unavailable"},
                            status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return JSONResponse({"detail": errors, "code": "validation_error"}, status_code=422)

    api = APIRouter(prefix=API_PREFIX)
    api.include_router(registry_router)
    api.include_router(commands_router)
    api.include_router(catalog_router)
    api.include_router(inventory_router)
    api.include_router(marking_router)
    api.include_router(finance_router)
    api.include_router(handheld_router)
    api.include_router(catalog_publish_router)
    api.include_router(inventory_handheld_router)
    api.include_router(sales_router)
    app.include_router(api)

    @app.get("/healthz", tags=["health"])
    def healthz(request: Request) -> JSONResponse:
        """No auth. 200 while the database answers (``degraded`` without MQTT: reads still work)."""
        db_ok = ping(engine)
        bus: CommandBus | None = request.app.state.command_bus
        mqtt_ok = bus is not None and bus.connected
        status = "ok" if db_ok and mqtt_ok else ("degraded" if db_ok else "down")
        return JSONResponse({"status": status, "db": db_ok, "mqtt": mqtt_ok}, status_code=200 if db_ok else 503)

    return app
