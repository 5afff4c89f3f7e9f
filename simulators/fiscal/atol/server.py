"""The ATOL web server ("Web-сервер ДТО", ``/api/v2/requests``) over real HTTP, in a thread.

``POST /api/v2/requests`` queues ``{"uuid", "request"}`` and answers 201; a uuid it has seen
answers 409 and is never queued again (ATOL's own idempotency: a client that crashed after
posting asks for the same uuid and reads the first run's results). A worker thread executes
queued requests one at a time against ``AtolDevice``, as the real server's driver worker does;
``GET /api/v2/requests/{uuid}`` answers the per-task results (``wait`` until the worker gets
to it). Requests and results are journalled to ``journal`` (JSON, atomic replace) so a
restarted simulator still answers old uuids.

Web-server faults: ``delay`` (seconds a request waits in the queue: a slow or busy device),
``fault`` for the answers to GET: ``"garbage"`` (not JSON), ``"schema"`` (JSON without
``results``), ``"short"`` (fewer results than tasks), ``"http500"``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from protocols.atol import codec
from protocols.atol.errors import RemoteProtocolError
from protocols.atol.results import API_PATH, Status
from protocols.atol.tasks import FISCAL_TYPES
from simulators.fiscal.atol.device import AtolDevice

log = logging.getLogger(__name__)
_ONE = re.compile("^" + re.escape(API_PATH) + r"/([^/]+)$")


@dataclass
class _Request:
    uuid: str
    tasks: list[Any]
    queued_at: float
    results: list[dict[str, Any]]
    done: bool = False


class AtolWebServer:
    """``start()`` → base URL; ``stop()``. ``executions`` counts runs per uuid (always ≤ 1)."""

    def __init__(
        self, device: AtolDevice, host: str = "127.0.0.1", port: int = 0, *, delay: float = 0.0,
        journal: str | Path | None = None,
    ) -> None:  # fmt: skip
        self.device = device
        self.delay = delay
        self.fault: str | None = None
        self.executions: dict[str, int] = {}
        self.journal = Path(journal) if journal else None
        self._requests: dict[str, _Request] = {}
        self._queue: list[str] = []
        self._cond = threading.Condition()
        self._stop = False
        self._load()
        self._http = ThreadingHTTPServer((host, port), _handler(self))
        self._http.daemon_threads = True
        self._threads: list[threading.Thread] = []

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        serve = functools.partial(self._http.serve_forever, poll_interval=0.05)
        for target, name in ((serve, "atol-http"), (self._work, "atol-worker")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self.url

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._http.shutdown()
        self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    # --- queue -------------------------------------------------------------------------------

    def submit(self, uuid: str, tasks: list[Any]) -> bool:
        """Queue a request; ``False`` if the uuid is known (nothing is queued)."""
        with self._cond:
            if uuid in self._requests:
                return False
            waiting = {"status": Status.WAIT.value, "errorCode": 0, "errorDescription": "", "result": None}
            self._requests[uuid] = _Request(uuid, tasks, time.monotonic(), [dict(waiting) for _ in tasks])
            self._queue.append(uuid)
            self._cond.notify_all()
            return True

    def results(self, uuid: str) -> list[dict[str, Any]] | None:
        with self._cond:
            req = self._requests.get(uuid)
            return None if req is None else [dict(r) for r in req.results]

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stop:
                    if self._queue:
                        wait = self._requests[self._queue[0]].queued_at + self.delay - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(min(wait, 0.05))
                    else:
                        self._cond.wait(0.2)
                if self._stop:
                    return
                req = self._requests[self._queue.pop(0)]
                for r in req.results:
                    r["status"] = Status.IN_PROGRESS.value
            self.executions[req.uuid] = self.executions.get(req.uuid, 0) + 1
            results = self.device.run(req.tasks)
            with self._cond:
                req.results, req.done = results, True
                self._save()

    # --- journal -----------------------------------------------------------------------------

    def _save(self) -> None:
        if self.journal is None:
            return
        data = {u: {"request": r.tasks, "results": r.results} for u, r in self._requests.items() if r.done}
        tmp = self.journal.with_name(self.journal.name + ".tmp")
        tmp.write_text(codec.dumps(data), encoding="utf-8")
        os.replace(tmp, self.journal)

    def _load(self) -> None:
        if self.journal is None or not self.journal.exists():
            return
        for uuid, entry in codec.loads(self.journal.read_text(encoding="utf-8")).items():
            self._requests[uuid] = _Request(uuid, entry["request"], 0.0, entry["results"], done=True)

    # --- HTTP --------------------------------------------------------------------------------

    def handle_post(self, body: bytes) -> tuple[int, Any]:
        try:
            data = codec.loads(body)
        except RemoteProtocolError as exc:
            return 400, {"error": str(exc)}
        if not isinstance(data, dict) or not isinstance(data.get("uuid"), str) or "request" not in data:
            return 400, {"error": "'uuid' and / or 'request' not found"}
        tasks = data["request"] if isinstance(data["request"], list) else [data["request"]]
        fiscal = sum(1 for t in tasks if isinstance(t, dict) and t.get("type") in FISCAL_TYPES)
        if fiscal > 1:
            return 400, {"error": f"Too many fiscal sub-tasks - {fiscal}"}
        if not self.submit(data["uuid"], tasks):
            return 409, {"error": f"Задание с uuid {data['uuid']} уже существует"}
        return 201, {"number": 0, "uuid": data["uuid"], "isBlocked": False, "blockedUUID": ""}

    def handle_get(self, uuid: str) -> tuple[int, Any]:
        results = self.results(uuid)
        if results is None:
            return 404, {"error": f"Задание {uuid} не найдено"}
        if self.fault == "http500":
            return 500, {"error": "Internal Server Error"}
        if self.fault == "schema":
            return 200, {"result": results}
        if self.fault == "short":
            return 200, {"results": results[:-1]}
        return 200, {"results": results}


def _handler(server: AtolWebServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # headers and body go out as two writes: without this, Nagle + delayed ACK add ~40 ms
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("atol-sim: " + format, *args)

        def _send(self, status: int, payload: Any) -> None:
            body = codec.dumps(payload).encode("utf-8")
            if status == 200 and server.fault == "garbage" and self.command == "GET":
                body = b"<html>\x00\xff not json"
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path.rstrip("/") != API_PATH:
                self._send(404, {"error": "not found"})
                return
            self._send(*server.handle_post(body))

        def do_GET(self) -> None:
            match = _ONE.match(self.path)
            if not match:
                self._send(404, {"error": "not found"})
                return
            self._send(*server.handle_get(match.group(1)))

    return Handler
