"""The cashier page and its local API, served by uvicorn in a thread of the gateway.

API (JSON; errors are ``{"detail": <Russian text for the cashier>, "code": <machine code>}``)::

    GET  /                                  the cashier page (static files under /static/)
    GET  /api/info                          lanes, cashiers (for the login form)
    POST /api/login                         {lane, login, pin} → {token, lane, cashier}
    GET  /api/lanes/{lane}                  shift, cashier, the current sale
    POST /api/lanes/{lane}/shift/open | shift/close | x_report
    POST /api/lanes/{lane}/cash             {direction: in|out, amount, reason?}
    POST /api/lanes/{lane}/scan             {code}         a keyboard-wedge read (the lane's serial scanner
                                                           goes straight in: gateway.checkout.scans)
    POST /api/lanes/{lane}/weigh            {plu}          the weight from the lane's scale
    POST /api/lanes/{lane}/lines/{n}/remove
    POST /api/lanes/{lane}/cancel | new
    POST /api/lanes/{lane}/pay              {cash, card}   kopecks; blocks until the receipt
    POST /api/lanes/{lane}/retry | give_up  a receipt that could not be printed
    GET  /api/lanes/{lane}/sales            recent completed sales (for returns)
    POST /api/lanes/{lane}/return           {sale_id, lines?: [{line_no, quantity}]}
    POST /api/lanes/{lane}/sales/{id}/slip  the card slip again on the lane's receipt printer (a new print)
    POST /api/lanes/{lane}/sales/{id}/copy  a non-fiscal copy of the receipt on the lane's receipt printer
    WS   /api/ws?token=…                    ``lane`` snapshots, ``progress`` (waiting for the card…) and
                                            ``scan`` (a hardware scanner's read: ``ok`` + ``line``, or ``message``)

Requests carry ``Authorization: Bearer <token>`` (a cashier's login on one lane).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import secrets
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import uvicorn
from fastapi import FastAPI, Header, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from gateway.checkout.lane import Lane
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.checkout.service import CheckoutService

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
_NO_CACHE = {"Cache-Control": "no-cache"}
AuthHeader = Annotated[str | None, Header(alias="Authorization")]


class Refused(GatewayError):
    code = "unauthorized"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    lane: str
    login: str
    pin: str


class ScanIn(_In):
    code: str = Field(min_length=1, max_length=300)


class WeighIn(_In):
    plu: int = Field(ge=1, le=99999)


class PayIn(_In):
    cash: int = Field(default=0, ge=0, le=10**11)
    card: int = Field(default=0, ge=0, le=10**11)


class CashIn(_In):
    direction: Literal["in", "out"]
    amount: int = Field(gt=0, le=10**11)
    reason: str = Field(default="", max_length=200)


class ReturnLine(_In):
    line_no: int = Field(ge=1)
    quantity: str | None = Field(default=None, pattern=r"^[0-9]{1,7}(\.[0-9]{1,3})?$")


class ReturnIn(_In):
    sale_id: str = Field(min_length=1, max_length=64)
    lines: list[ReturnLine] | None = None
    return_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]{1,32}$")


def create_app(service: CheckoutService) -> FastAPI:
    app = FastAPI(title="Vitrina checkout", docs_url=None, redoc_url=None, openapi_url=None)
    tokens: dict[str, tuple[str, dict[str, Any]]] = {}
    sockets: dict[asyncio.Queue[dict[str, Any]], str] = {}
    loop_box: dict[str, asyncio.AbstractEventLoop] = {}

    @app.exception_handler(GatewayError)
    async def _refused(_request: Request, exc: GatewayError) -> JSONResponse:
        status = 401 if isinstance(exc, Refused) else 409
        return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = sorted({str(e.get("loc", ("",))[-1]) for e in exc.errors()})
        return JSONResponse({"detail": f"Неверные данные запроса: {', '.join(fields)}", "code": "invalid_request"},
                            status_code=422)

    def push(lane_id: str, message: dict[str, Any]) -> None:
        loop = loop_box.get("loop")
        if loop is None or loop.is_closed():
            return
        for queue, lane in list(sockets.items()):
            if lane == lane_id:
                loop.call_soon_threadsafe(queue.put_nowait, message)

    for lane in service.lanes.values():
        lane.listeners.append(push)

    def lane_of(lane_id: str, authorization: str | None) -> Lane:
        token = authorization[7:].strip() if authorization and authorization.lower().startswith("bearer ") else ""
        found = tokens.get(token)
        if found is None or found[0] != lane_id:
            raise Refused("Войдите в систему: сеанс кассира не найден")
        lane = service.lanes.get(lane_id)
        if lane is None:
            raise Refused(f"Нет кассы {lane_id!r}")
        return lane

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=_NO_CACHE)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return {"lanes": sorted(service.lanes),
                "cashiers": [{"login": c.login, "name": c.name} for c in service.config.cashiers],
                "prices_version": service.prices.version}

    @app.post("/api/login")
    def login(body: LoginIn) -> dict[str, Any]:
        lane = service.lanes.get(body.lane)
        if lane is None:
            raise Refused(f"Нет кассы {body.lane!r}")
        for c in service.config.cashiers:
            if c.login == body.login and secrets.compare_digest(c.pin, body.pin):
                cashier = {"login": c.login, "name": c.name, "inn": c.inn}
                token = secrets.token_urlsafe(24)
                tokens[token] = (body.lane, cashier)
                lane.login(cashier)
                return {"token": token, "lane": body.lane, "cashier": cashier}
        raise Refused("Неверный ПИН-код")

    @app.get("/api/lanes/{lane_id}")
    def view(lane_id: str, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).view()

    @app.post("/api/lanes/{lane_id}/shift/open")
    def open_shift(lane_id: str, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).open_shift()

    @app.post("/api/lanes/{lane_id}/shift/close")
    def close_shift(lane_id: str, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).close_shift()

    @app.post("/api/lanes/{lane_id}/x_report")
    def x_report(lane_id: str, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).x_report()

    @app.post("/api/lanes/{lane_id}/cash")
    def cash(lane_id: str, body: CashIn, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).cash_move(body.direction, body.amount, body.reason)

    @app.post("/api/lanes/{lane_id}/scan")
    def scan(lane_id: str, body: ScanIn, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).scan(body.code)

    @app.post("/api/lanes/{lane_id}/weigh")
    def weigh(lane_id: str, body: WeighIn, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).weigh(body.plu)

    @app.post("/api/lanes/{lane_id}/lines/{line_no}/remove")
    def remove(lane_id: str, line_no: int, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).remove_line(line_no)

    @app.post("/api/lanes/{lane_id}/cancel")
    def cancel(lane_id: str, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).cancel_sale()

    @app.post("/api/lanes/{lane_id}/new")
    def new(lane_id: str, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).new_sale()

    @app.post("/api/lanes/{lane_id}/pay")
    def pay(lane_id: str, body: PayIn, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).pay(body.cash, body.card)

    @app.post("/api/lanes/{lane_id}/retry")
    def retry(lane_id: str, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).retry_receipt()

    @app.post("/api/lanes/{lane_id}/give_up")
    def give_up(lane_id: str, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).give_up()

    @app.get("/api/lanes/{lane_id}/sales")
    def sales(lane_id: str, authorization: AuthHeader = None) -> list[dict[str, Any]]:
        return lane_of(lane_id, authorization).sales()

    @app.post("/api/lanes/{lane_id}/return")
    def return_sale(lane_id: str, body: ReturnIn, authorization: AuthHeader = None) -> dict[str, Any]:
        lines = [x.model_dump() for x in body.lines] if body.lines else None
        return lane_of(lane_id, authorization).return_sale(body.sale_id, lines, body.return_id)

    @app.post("/api/lanes/{lane_id}/sales/{sale_id}/slip")
    def reprint_slip(lane_id: str, sale_id: str, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).reprint_slip(sale_id)

    @app.post("/api/lanes/{lane_id}/sales/{sale_id}/copy")
    def print_copy(lane_id: str, sale_id: str, authorization: AuthHeader = None) -> dict[str, Any]:
        return lane_of(lane_id, authorization).print_copy(sale_id)

    @app.websocket("/api/ws")
    async def ws(websocket: WebSocket) -> None:
        loop_box["loop"] = asyncio.get_running_loop()
        found = tokens.get(websocket.query_params.get("token") or "")
        if found is None:
            await websocket.close(code=4401, reason="unauthorized")
            return
        await websocket.accept()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        sockets[queue] = found[0]
        lane = service.lanes[found[0]]
        await websocket.send_json({"type": "lane", **await asyncio.to_thread(lane.view)})

        async def sender() -> None:
            while True:
                await websocket.send_json(await queue.get())

        send_task = asyncio.create_task(sender())
        try:
            while True:
                message = await websocket.receive_json()
                if isinstance(message, dict) and message.get("type") == "ping":
                    await websocket.send_json({"type": "pong"})
        except (WebSocketDisconnect, ValueError, RuntimeError):
            pass
        finally:
            send_task.cancel()
            sockets.pop(queue, None)

    return app


class CheckoutServer:
    """uvicorn on its own thread; ``start`` raises :class:`GatewayError` when it cannot listen."""

    def __init__(self, service: CheckoutService, host: str, port: int) -> None:
        self.service = service
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            why = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise GatewayError(f"checkout server cannot listen on {self.host}:{self.port}: {why}") from exc
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(self.service), log_level="warning", access_log=False,
                                ws="websockets-sansio", timeout_graceful_shutdown=2, lifespan="off")
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="checkout-http",
                                        daemon=True)
        self._thread.start()
        waiter = threading.Event()
        for _ in range(int(timeout / 0.02)):
            if server.started or not self._thread.is_alive():
                break
            waiter.wait(0.02)
        if not server.started:
            self.stop()
            raise GatewayError(f"checkout server on {self.host}:{self.port} did not start")
        log.info("checkout page on http://%s:%d/", self.host, self.port)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(5.0)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                with contextlib.suppress(Exception):
                    thread.join(2.0)
