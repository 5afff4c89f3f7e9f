"""Hardware scans into the lane: a lane's bound scanner rings up items exactly as the cashier page's wedge does.

A serial / USB-CDC scanner is a device of its own (``gateway.devices.scanner``): its worker reads
the line and emits ``scan`` events into the outbox for the cloud. The lane named by a lane's
``scanner`` option must also *sell* what it reads, and without a round trip through the broker
(the store sells while the broker or the internet is down). So the checkout service listens to
the device supervisor's local events (:meth:`DeviceSupervisor.listen`): a ``scan`` of a bound
scanner is queued for its lane and applied by :meth:`Lane.scan` — the very method behind
``POST /api/lanes/{lane}/scan`` — on a thread of the lane's own (``lane-scans-{lane}``), in the
order read. The scanner's thread only queues: a lane busy with a card payment never stops the
scanner from reading (nor its events from reaching the cloud).

The cashier sees the outcome on the page: the line through the lane's usual ``lane`` snapshot,
plus a ``scan`` message (``ok`` and the line, or the Russian refusal) over the page's WebSocket.
A refused scan (shift closed, receipt being paid or printed, unknown barcode, nobody logged in)
is logged and shown; it changes nothing and never stops the scanner or the lane. A scan that
arrives while the lane is busy for longer than :data:`BUSY_WAIT_S` (a payment waits for the card)
is refused rather than rung up into the *next* sale minutes later.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

from gateway.checkout.lane import Lane
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

EVENT_SCAN = "scan"  # the scanner family's event type (gateway.devices.scanner.const)
BUSY_WAIT_S = 3.0
"""How long a scan waits for a lane busy with another operation before it is refused."""
QUEUE_MAX = 200
"""Scans waiting for one lane; past it they are refused (a scanner gone mad, a stuck lane)."""


class ScanRefused(GatewayError):
    """A hardware scan the lane cannot take now (the message is Russian, shown to the cashier)."""

    code = "scan_refused"


class ScanRouter:
    """Routes scans of bound scanners to their lanes (thread-safe; one worker thread per lane)."""

    def __init__(self, lanes: Callable[[], Iterable[Lane]], *, busy_wait_s: float = BUSY_WAIT_S) -> None:
        self._lanes = lanes
        self._busy_wait_s = busy_wait_s
        self._lock = threading.Lock()
        self._queues: dict[str, queue.Queue[tuple[str, str] | None]] = {}
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def on_device_event(self, device_id: str, event_type: str, data: dict[str, Any]) -> None:
        """The supervisor's local listener (the scanner's thread): queue the scan, return at once."""
        if event_type != EVENT_SCAN:
            return
        code = data.get("data")
        for lane in self._lanes():
            if lane.settings.scanner != device_id:
                continue
            if not isinstance(code, str) or not code:
                self._refused(lane, device_id, "", ScanRefused("Сканер прислал пустой код: отсканируйте ещё раз"))
                continue
            try:
                self._queue(lane.id).put_nowait((device_id, code))
            except queue.Full:
                self._refused(lane, device_id, code, ScanRefused("Касса не успевает за сканером: "
                                                                 "отсканируйте товар ещё раз"))

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            queues = list(self._queues.values())
        for q in queues:
            q.put(None)
        for thread in self._threads:
            thread.join(1.0)

    # Internals ----------------------------------------------------------------------------
    def _queue(self, lane_id: str) -> queue.Queue[tuple[str, str] | None]:
        with self._lock:
            found = self._queues.get(lane_id)
            if found is None:
                found = self._queues[lane_id] = queue.Queue(QUEUE_MAX)
                if not self._stopped:
                    thread = threading.Thread(target=self._run, args=(lane_id, found), name=f"lane-scans-{lane_id}",
                                              daemon=True)
                    thread.start()
                    self._threads.append(thread)
            return found

    def _lane(self, lane_id: str) -> Lane | None:
        """The lane now (a rescan may have rebuilt it under the same id)."""
        return next((lane for lane in self._lanes() if lane.id == lane_id), None)

    def _run(self, lane_id: str, q: queue.Queue[tuple[str, str] | None]) -> None:
        while (item := q.get()) is not None:
            device_id, code = item
            lane = self._lane(lane_id)
            if lane is None or lane.settings.scanner != device_id:
                log.warning("lane %s: scan from %s dropped: the lane no longer uses this scanner", lane_id, device_id)
                continue
            try:
                self.apply(lane, device_id, code)
            except Exception:  # a lane bug must not kill the scan thread
                log.exception("lane %s: scan from %s failed unexpectedly", lane_id, device_id)
                lane.announce({"type": "scan", "ok": False, "source": device_id,
                               "message": "Скан не принят: внутренняя ошибка кассы, см. журнал шлюза"})

    def apply(self, lane: Lane, device_id: str, code: str) -> dict[str, Any] | None:
        """Ring ``code`` up at ``lane`` as the wedge does; a refusal is logged and shown, never raised."""
        if not lane.lock.acquire(timeout=self._busy_wait_s):
            sale = lane.view()["sale"]
            busy = f" ({sale['state_text']})" if sale else ""
            self._refused(lane, device_id, code, ScanRefused(
                f"Касса занята{busy}: скан не принят. Отсканируйте товар ещё раз после окончания операции"))
            return None
        try:
            sale = lane.scan(code)
        except GatewayError as exc:
            self._refused(lane, device_id, code, exc)
            return None
        finally:
            lane.lock.release()
        line = sale["lines"][-1] if sale.get("lines") else None
        lane.announce({"type": "scan", "ok": True, "source": device_id, "line": line})
        return sale

    def _refused(self, lane: Lane, device_id: str, code: str, exc: GatewayError) -> None:
        log.warning("lane %s: scan %r from %s refused: %s", lane.id, _short(code), device_id, exc.message)
        lane.announce({"type": "scan", "ok": False, "source": device_id, "message": exc.message})


def _short(code: str) -> str:
    """A code for the log: marking codes carry a crypto tail that has no business in a log file."""
    return code if len(code) <= 40 else code[:31] + "…"
