"""One cashier at one lane, speaking the API the cashier page uses (``gateway.checkout.server``).

It never imports the gateway: the paths and JSON shapes are the contract. Money is kopecks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


class CheckoutRefused(Exception):
    """The gateway refused a request; ``detail`` is the Russian text the page would show."""

    def __init__(self, status: int, detail: str, code: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.detail, self.code = status, detail, code


class CashierClient:
    def __init__(self, base_url: str, lane: str, *, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.lane = lane
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self.token: str | None = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = self.http.request(method, path, json=body, headers=headers)
        data = response.json() if response.content else {}
        if response.status_code >= 400:
            raise CheckoutRefused(response.status_code, str(data.get("detail")), str(data.get("code")))
        return data

    def _lane(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call(method, f"/api/lanes/{self.lane}{path}", body)

    def wait_up(self, timeout: float = 30.0, alive: Callable[[], bool] | None = None) -> None:
        """Wait until the page server answers (the gateway is starting); ``alive`` says it still runs."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.http.get("/api/info", timeout=1.0)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or (alive is not None and not alive()):
                    raise
                time.sleep(0.1)

    def login(self, login: str, pin: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("POST", "/api/login", {"lane": self.lane, "login": login, "pin": pin})
        self.token = out["token"]
        return out

    def view(self) -> dict[str, Any]:
        result: dict[str, Any] = self._lane("GET", "")
        return result

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the lane finished its recovery after a start."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.view()
            if not v["recovering"]:
                return v
            if time.monotonic() > deadline:
                raise TimeoutError(f"lane {self.lane} still recovering after {timeout} s")
            time.sleep(0.05)

    def open_shift(self) -> dict[str, Any]:
        result: dict[str, Any] = self._lane("POST", "/shift/open")
        return result

    def close_shift(self) -> dict[str, Any]:
        result: dict[str, Any] = self._lane("POST", "/shift/close")
        return result

    def scan(self, code: str) -> dict[str, Any]:
        result: dict[str, Any] = self._lane("POST", "/scan", {"code": code})
        return result

    def weigh(self, plu: int) -> dict[str, Any]:
        result: dict[str, Any] = self._lane("POST", "/weigh", {"plu": plu})
        return result

    def pay(self, *, cash: int = 0, card: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = self._lane("POST", "/pay", {"cash": cash, "card": card})
        return result

    def retry(self) -> dict[str, Any]:
        result: dict[str, Any] = self._lane("POST", "/retry")
        return result

    def give_up(self) -> dict[str, Any]:
        result: dict[str, Any] = self._lane("POST", "/give_up")
        return result

    def cancel(self) -> dict[str, Any]:
        result: dict[str, Any] = self._lane("POST", "/cancel")
        return result

    def cash(self, direction: str, amount: int, reason: str = "") -> dict[str, Any]:
        result: dict[str, Any] = self._lane("POST", "/cash", {"direction": direction, "amount": amount,
                                                             "reason": reason})
        return result

    def sales(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._lane("GET", "/sales")
        return result

    def return_sale(self, sale_id: str, lines: list[dict[str, Any]] | None = None,
                    return_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"sale_id": sale_id}
        if lines is not None:
            body["lines"] = lines
        if return_id is not None:
            body["return_id"] = return_id
        result: dict[str, Any] = self._lane("POST", "/return", body)
        return result

    def close(self) -> None:
        self.http.close()
