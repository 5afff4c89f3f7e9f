"""What every simulated scale shares, whatever its protocol: the weighing platform and the link.

A platform holds ``gross`` kg, a ``zero_offset`` and a ``tare``, and reads dynamic for a while
after every change; the link side serves the device on a pty or TCP and injects the faults a
tester wants (silence, garbage, unplugging). Each protocol's simulator adds its own codec and
its own rules for zero, tare and ranges on top.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Protocol

from simulators.link import PtyEndpoint, TcpEndpoint


class PlatformConfig(Protocol):
    @property
    def initial_weight(self) -> Decimal: ...

    @property
    def unstable_after_change(self) -> float: ...

    @property
    def latency(self) -> float: ...

    @property
    def baudrate(self) -> int | None: ...


class SimulatedScale:
    """Platform state, tester controls and serving, shared by the scale simulators."""

    def __init__(self, config: PlatformConfig, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._link_config = config
        self.gross = config.initial_weight
        self.zero_offset = Decimal(0)
        self.tare = Decimal(0)
        self._unstable_until = 0.0
        self._unstable_after_change = config.unstable_after_change
        self._silent = False
        self._pending_garbage = b""
        self._endpoint: PtyEndpoint | TcpEndpoint | None = None

    # --- tester controls --------------------------------------------------------------------

    def set_weight(self, kg: Decimal) -> None:
        """Put ``kg`` on the platform (gross); the reading is dynamic for a while."""
        with self._lock:
            self.gross = Decimal(kg)
            self._unstable_until = self._clock() + self._unstable_after_change

    def set_unstable(self, seconds: float) -> None:
        """Keep the reading dynamic for ``seconds`` from now (a draught, a shaking load)."""
        with self._lock:
            self._unstable_until = self._clock() + seconds

    def set_silent(self, silent: bool = True) -> None:
        """Stop (or resume) answering while the link stays up (a hung scale)."""
        with self._lock:
            self._silent = silent

    def inject_garbage(self, data: bytes) -> None:
        """Send ``data`` to the host now if served, else before the next answer."""
        with self._lock:
            if self._endpoint is not None and self._endpoint.inject(data):
                return
            self._pending_garbage += data

    def _take_pending_garbage(self) -> bytes:
        """Garbage queued while nobody was connected; call with the lock held."""
        data, self._pending_garbage = self._pending_garbage, b""
        return data

    def _stable(self, now: float) -> bool:
        return now >= self._unstable_until

    # --- link -------------------------------------------------------------------------------

    def unplug(self) -> None:
        if self._endpoint is not None:
            self._endpoint.unplug()

    def plug(self) -> None:
        if self._endpoint is not None:
            self._endpoint.plug()

    def serve_pty(self) -> str:
        """Serve on a pty; returns the stable path a driver opens (see ``simulators.link``)."""
        cfg = self._link_config
        endpoint = PtyEndpoint(self, latency=cfg.latency, baudrate=cfg.baudrate)  # type: ignore[arg-type]
        self._endpoint = endpoint
        return endpoint.start()

    def serve_tcp(self, port: int = 0, host: str = "127.0.0.1") -> tuple[str, int]:
        cfg = self._link_config
        endpoint = TcpEndpoint(self, host, port, latency=cfg.latency, baudrate=cfg.baudrate)  # type: ignore[arg-type]
        self._endpoint = endpoint
        return endpoint.start()

    def stop(self) -> None:
        if self._endpoint is not None:
            self._endpoint.stop()
            self._endpoint = None
