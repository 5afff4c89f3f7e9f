"""The local HTTP + WebSocket API handhelds use, served by uvicorn in a thread of the gateway.

API (JSON; errors are ``{"detail": <Russian text for the handheld>, "code": <machine code>}``)::

    GET  /                          the mobile page (static files under /static/)
    GET  /api/info                  terminals, users (for the login form), store PIN mode
    POST /api/login                 {terminal, user, pin} → {token, user, name, terminal}
    POST /api/logout
    GET  /api/tasks                 open tasks this user/handheld may work on
    GET  /api/tasks/{id}            the task: expected lines with scanned quantities, recent lines
    POST /api/tasks/{id}/open       → task_opened (once per handheld)
    POST /api/tasks/{id}/lines      {line_id, barcode, qty?} → task_line; a resent line_id is answered as stored
    POST /api/tasks/{id}/complete   → task_completed (a repeat answers the completed task)
    WS   /api/ws?token=…            presence (the handheld is ``online`` while connected), battery
                                    reports from the page, ``{"type": "tasks"}`` pushes on changes

Requests carry ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Header, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from gateway.handheld.errors import HandheldRefused, HandheldServerError
from gateway.handheld.hub import Hub
from gateway.handheld.models import LoginIn, ScanIn
from gateway.handheld.store import SessionRow

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
_NO_CACHE = {"Cache-Control": "no-cache"}

AuthHeader = Annotated[str | None, Header(alias="Authorization")]


def _token(value: str | None) -> str | None:
    if value and value.lower().startswith("bearer "):
        return value[7:].strip()
    return None


def create_app(hub: Hub) -> FastAPI:
    """The handheld API over ``hub`` (no lifespan: the hub lives as long as the gateway)."""
    app = FastAPI(title="Vitrina handheld", docs_url=None, redoc_url=None, openapi_url=None)
    sockets: set[asyncio.Queue[dict[str, Any]]] = set()
    loop_box: dict[str, asyncio.AbstractEventLoop] = {}

    @app.exception_handler(HandheldRefused)
    async def _refused(_request: Request, exc: HandheldRefused) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "code": exc.code, **exc.extra}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = sorted({str(e.get("loc", ("",))[-1]) for e in exc.errors()})
        return JSONResponse(
            {"detail": f"Неверные данные запроса: {', '.join(fields)}", "code": "invalid_request"}, status_code=422
        )

    def session(authorization: str | None) -> SessionRow:
        return hub.session(_token(authorization))

    def push(message: dict[str, Any]) -> None:
        loop = loop_box.get("loop")
        if loop is None or loop.is_closed():
            return
        for queue in list(sockets):
            loop.call_soon_threadsafe(queue.put_nowait, message)

    hub.listeners.append(push)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=_NO_CACHE)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return hub.info()

    @app.post("/api/login")
    def login(body: LoginIn) -> dict[str, Any]:
        row = hub.login(body)
        return {"token": row.token, "user": row.user, "name": row.name, "terminal": row.terminal}

    @app.post("/api/logout")
    def logout(authorization: AuthHeader = None) -> dict[str, Any]:
        token = _token(authorization)
        if token:
            hub.logout(token)
        return {"ok": True}

    @app.get("/api/tasks")
    def tasks(authorization: AuthHeader = None) -> list[dict[str, Any]]:
        return hub.list_tasks(session(authorization))

    @app.get("/api/tasks/{task_id}")
    def task(task_id: str, authorization: AuthHeader = None) -> dict[str, Any]:
        return hub.task_view(session(authorization), task_id)

    @app.post("/api/tasks/{task_id}/open")
    def open_task(task_id: str, authorization: AuthHeader = None) -> dict[str, Any]:
        return hub.open_task(session(authorization), task_id)

    @app.post("/api/tasks/{task_id}/lines")
    def scan(task_id: str, body: ScanIn, authorization: AuthHeader = None) -> dict[str, Any]:
        return hub.scan(session(authorization), task_id, body)

    @app.post("/api/tasks/{task_id}/complete")
    def complete(task_id: str, authorization: AuthHeader = None) -> dict[str, Any]:
        return hub.complete(session(authorization), task_id)

    @app.websocket("/api/ws")
    async def ws(websocket: WebSocket) -> None:
        loop_box["loop"] = asyncio.get_running_loop()
        try:
            row = await asyncio.to_thread(hub.session, websocket.query_params.get("token"))
        except HandheldRefused as exc:
            await websocket.close(code=4401, reason=exc.code)
            return
        await websocket.accept()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        sockets.add(queue)
        await asyncio.to_thread(hub.connected, row.terminal, row)
        await websocket.send_json({"type": "hello", "terminal": row.terminal, "user": row.user})

        async def sender() -> None:
            while True:
                await websocket.send_json(await queue.get())

        send_task = asyncio.create_task(sender())
        try:
            while True:
                message = await websocket.receive_json()
                if not isinstance(message, dict):
                    continue
                if message.get("type") == "battery":
                    level, charging = message.get("level"), message.get("charging")
                    percent = round(float(level) * 100) if isinstance(level, int | float) and 0 <= level <= 1 else None
                    await asyncio.to_thread(
                        hub.report, row.terminal, percent, charging if isinstance(charging, bool) else None
                    )
                elif message.get("type") == "ping":
                    await websocket.send_json({"type": "pong"})
        except (WebSocketDisconnect, ValueError, RuntimeError):
            pass
        finally:
            send_task.cancel()
            sockets.discard(queue)
            await asyncio.to_thread(hub.disconnected, row.terminal)

    return app


class HandheldServer:
    """uvicorn on its own thread; ``start`` raises :class:`HandheldServerError` when it cannot listen."""

    def __init__(self, hub: Hub, host: str, port: int) -> None:
        self.hub = hub
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            why = "address already in use (another program or gateway holds it)" if exc.errno == errno.EADDRINUSE \
                else (exc.strerror or str(exc))
            raise HandheldServerError(
                f"handheld server cannot listen on {self.host}:{self.port}: {why}; change [handheld] port"
            ) from exc
        return sock

    def start(self, timeout: float = 10.0) -> None:
        sock = self.bind()
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.hub), log_level="warning", access_log=False, ws="websockets-sansio",
            timeout_graceful_shutdown=2, lifespan="off",
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="handheld-http",
                                        daemon=True)
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.02)):
            if server.started or not self._thread.is_alive():
                break
            deadline.wait(0.02)
        if not server.started:
            self.stop()
            raise HandheldServerError(f"handheld server on {self.host}:{self.port} did not start")
        log.info("handheld server listening on http://%s:%d/", self.host, self.port)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(5.0)
            if thread.is_alive():
                if server is not None:
                    server.force_exit = True
                with contextlib.suppress(Exception):
                    thread.join(2.0)
