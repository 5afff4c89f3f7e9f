"""What the gateway runtime starts and stops: the hub, the HTTP server, and a retry when the port is taken.

A taken port does not stop the gateway (the tills must keep selling): the error is logged,
shown as the pool device's status detail (``offline``) and the bind is retried every
``retry_s`` seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.config import HandheldConfig
from gateway.devices.supervisor import DeviceSupervisor
from gateway.devices.worker import DeviceWorker
from gateway.handheld.errors import HandheldServerError
from gateway.handheld.hub import EmitFn, Hub
from gateway.handheld.server import HandheldServer
from protocols.bus import DeviceKind

log = logging.getLogger(__name__)


class HandheldService:
    """Built before the device supervisor (its hub is the handheld family's driver factory)."""

    def __init__(self, config: HandheldConfig, data_dir: Path, emit: EmitFn, *, retry_s: float = 5.0) -> None:
        self.hub = Hub(config, data_dir, emit=emit)
        self.server = HandheldServer(self.hub, config.host, config.port)
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._retry: threading.Thread | None = None

    def factories(self, base: Mapping[DeviceKind, Any] | None) -> dict[DeviceKind, Any]:
        return {**(base or {}), DeviceKind.HANDHELD: self.hub}

    def start(self, devices: DeviceSupervisor) -> None:
        def kick(device_id: str) -> None:
            worker = devices.get(device_id)
            if isinstance(worker, DeviceWorker):
                worker.kick()

        self.hub.kick = kick
        self.hub.open()
        if not self._try_listen():
            self._retry = threading.Thread(target=self._retry_loop, name="handheld-bind", daemon=True)
            self._retry.start()

    def stop(self) -> None:
        self._stop.set()
        if self._retry is not None:
            self._retry.join(2.0)
        self.server.stop()
        self.hub.listening = None
        self.hub.problem = "the handheld server is stopped"
        self.hub.flush()
        self.hub.close()

    def _try_listen(self) -> bool:
        try:
            self.server.start()
        except HandheldServerError as exc:
            if self.hub.problem != exc.message:
                log.error("%s (retrying every %.0f s)", exc.message, self._retry_s)
            self.hub.problem = exc.message
            self.hub.server_changed()
            return False
        self.hub.problem = None
        self.hub.listening = f"{self.server.host}:{self.server.port}"
        self.hub.server_changed()
        return True

    def _retry_loop(self) -> None:
        while not self._stop.wait(self._retry_s):
            if self._try_listen():
                return
