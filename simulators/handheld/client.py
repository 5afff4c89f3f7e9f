"""One handheld: logs in, keeps its WebSocket open (that is what makes it ``online``), scans.

It speaks the API the mobile page uses (``gateway.handheld.server``) without importing it:
paths and JSON shapes are the contract. ``scan`` retries a line with the same ``line_id`` on
a network error, like the page does, so a lost answer never becomes a second line.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


class HandheldRefused(Exception):
    """The gateway refused a request; ``detail`` is the Russian text the page would show."""

    def __init__(self, status: int, detail: str, code: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.detail, self.code = status, detail, code


@dataclass(frozen=True)
class Scan:
    barcode: str
    qty: str | None = None
    line_id: str | None = None


class HandheldClient:
    """A scripted handheld. ``battery`` (0..1) is reported over the WebSocket like the page does."""

    def __init__(self, base_url: str, terminal: str, *, timeout: float = 10.0, battery: float | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.terminal = terminal
        self.battery = battery
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self.token: str | None = None
        self._ws: ClientConnection | None = None
        self._ws_thread: threading.Thread | None = None
        self.pushes: list[dict[str, Any]] = []
        self.resent = 0

    # HTTP ----------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = self.http.request(method, path, json=body, headers=headers)
        data = response.json() if response.content else {}
        if response.status_code >= 400:
            raise HandheldRefused(response.status_code, str(data.get("detail")), str(data.get("code")))
        return data

    def login(self, user: str, pin: str) -> dict[str, Any]:
        data: dict[str, Any] = self._call("POST", "/api/login", {"terminal": self.terminal, "user": user, "pin": pin})
        self.token = data["token"]
        return data

    def tasks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/api/tasks")
        return result

    def task(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/api/tasks/{task_id}")
        return result

    def open(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/api/tasks/{task_id}/open")
        return result

    def scan(self, task_id: str, scan: Scan | str, *, attempts: int = 5) -> dict[str, Any]:
        """Send one line; on a network error resend the same ``line_id`` (never a new line)."""
        if isinstance(scan, str):
            scan = Scan(scan)
        body: dict[str, Any] = {"line_id": scan.line_id or uuid.uuid4().hex, "barcode": scan.barcode}
        if scan.qty is not None:
            body["qty"] = scan.qty
        for attempt in range(attempts):
            try:
                result: dict[str, Any] = self._call("POST", f"/api/tasks/{task_id}/lines", body)
                return result
            except httpx.TransportError:
                if attempt == attempts - 1:
                    raise
                self.resent += 1
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def complete(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/api/tasks/{task_id}/complete")
        return result

    # WebSocket -------------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the presence WebSocket (the handheld becomes ``online``) and report the battery."""
        assert self.token is not None, "log in first"
        url = self.base_url.replace("http://", "ws://", 1) + f"/api/ws?token={self.token}"
        self._ws = connect(url, open_timeout=5)
        hello = json.loads(self._ws.recv(timeout=5))
        assert hello.get("type") == "hello", hello
        if self.battery is not None:
            self._ws.send(json.dumps({"type": "battery", "level": self.battery, "charging": False}))
        self._ws_thread = threading.Thread(target=self._read, args=(self._ws,), daemon=True)
        self._ws_thread.start()

    def _read(self, ws: ClientConnection) -> None:
        try:
            for message in ws:
                self.pushes.append(json.loads(message))
        except (ConnectionClosed, OSError, ValueError):
            return

    def disconnect(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()
        if self._ws_thread is not None:
            self._ws_thread.join(2)

    def close(self) -> None:
        self.disconnect()
        self.http.close()
