"""All devices of one gateway: builds bindings from config, runs a worker for each, rescans.

A device whose kind has no family yet, or whose options the family refuses, does not stop the
gateway: it is listed in the inventory with status ``error`` and the reason, and commands to it
fail with that reason. That is what an installer needs to see from the back office.

Every binding is given the gateway's ``data_dir`` (``DeviceBinding.data_dir``) before its worker
starts: families that keep a table of their own put it there by default.

Local listeners (:meth:`DeviceSupervisor.listen`) see every device event right after it went to
the outbox, on the device's thread: a checkout lane takes its hardware scanner's scans this way,
without a round trip through the broker and the cloud (a store sells while both are down). A
listener must return quickly (queue the work) and its failures never reach the device.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.errors import DriverError
from gateway.config import DeviceConfig
from gateway.devices.base import StatusSnapshot
from gateway.devices.registry import DriverFactory, binding_for
from gateway.devices.worker import DeviceWorker
from protocols.bus import DeviceInfo, DeviceKind, DeviceState

log = logging.getLogger(__name__)

EmitFn = Callable[[str, str, dict[str, Any]], None]
"""``emit(device, event_type, data)``."""

LocalListener = Callable[[str, str, dict[str, Any]], None]
"""``listener(device, event_type, data)``: a consumer of device events inside the gateway process."""


@dataclass(frozen=True)
class BrokenDevice:
    """A configured device the gateway cannot drive (no family, bad options)."""

    config: DeviceConfig
    detail: str
    code: str = "driver_config"

    @property
    def id(self) -> str:
        return self.config.id

    def snapshot(self) -> StatusSnapshot:
        return StatusSnapshot(DeviceState.ERROR.value, self.detail)

    def info(self) -> DeviceInfo:
        return DeviceInfo(
            id=self.id, kind=self.config.kind, model=self.config.model, driver=self.config.driver, port=self.config.url
        )


class DeviceSupervisor:
    """Creates, starts, replaces and stops device workers. Thread-safe."""

    def __init__(
        self,
        *,
        emit: EmitFn,
        on_status: Callable[[str, StatusSnapshot], None],
        factories: Mapping[DeviceKind, DriverFactory] | None = None,
        backoff_min: float = 0.5,
        backoff_max: float = 15.0,
        data_dir: Path | None = None,
    ) -> None:
        self._emit = emit
        self._data_dir = data_dir
        self._on_status = on_status
        self._factories = dict(factories or {})
        self._backoff = (backoff_min, backoff_max)
        self._lock = threading.RLock()
        self._workers: dict[str, DeviceWorker] = {}
        self._broken: dict[str, BrokenDevice] = {}
        self._configs: dict[str, DeviceConfig] = {}
        self._listeners: list[LocalListener] = []
        self._started = False

    # Lookup -----------------------------------------------------------------------------
    def get(self, device_id: str) -> DeviceWorker | BrokenDevice | None:
        with self._lock:
            return self._workers.get(device_id) or self._broken.get(device_id)

    def workers(self) -> list[DeviceWorker]:
        with self._lock:
            return list(self._workers.values())

    def inventory(self) -> list[DeviceInfo]:
        with self._lock:
            infos = [w.binding.info() for w in self._workers.values()]
            infos += [b.info() for b in self._broken.values()]
        return sorted(infos, key=lambda i: i.id)

    def snapshots(self) -> dict[str, StatusSnapshot]:
        with self._lock:
            snaps = {w.id: w.snapshot() for w in self._workers.values()}
            snaps.update({b.id: b.snapshot() for b in self._broken.values()})
        return snaps

    def listen(self, listener: LocalListener) -> None:
        """Also hand every device event to ``listener`` (after the outbox; see the module doc)."""
        with self._lock:
            self._listeners = [*self._listeners, listener]

    # Lifecycle --------------------------------------------------------------------------
    def load(self, configs: list[DeviceConfig]) -> None:
        with self._lock:
            for config in configs:
                if config.enabled:
                    self._add(config)

    def start(self) -> None:
        with self._lock:
            self._started = True
            for worker in self._workers.values():
                worker.start()
            for broken in self._broken.values():
                self._report(broken.id, broken.snapshot())

    def stop(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
            self._started = False
        for worker in workers:
            worker.stop()

    def rescan(self, configs: list[DeviceConfig] | None) -> dict[str, list[str]]:
        """Apply a (re-read) device list and reopen offline devices now.

        Returns what changed: ``added``, ``removed``, ``restarted`` (config changed) and
        ``reopened`` (offline devices kicked).
        """
        changes: dict[str, list[str]] = {"added": [], "removed": [], "restarted": [], "reopened": []}
        with self._lock:
            if configs is not None:
                wanted = {c.id: c for c in configs if c.enabled}
                for device_id in list(self._configs):
                    if device_id not in wanted:
                        self._remove(device_id)
                        changes["removed"].append(device_id)
                    elif wanted[device_id] != self._configs[device_id]:
                        self._remove(device_id)
                        self._add(wanted[device_id], start=True)
                        changes["restarted"].append(device_id)
                for device_id, config in wanted.items():
                    if device_id not in self._configs:
                        self._add(config, start=True)
                        changes["added"].append(device_id)
            for worker in self._workers.values():
                if not worker.is_open and worker.id not in changes["restarted"] + changes["added"]:
                    worker.kick()
                    changes["reopened"].append(worker.id)
        return changes

    # Internals --------------------------------------------------------------------------
    def _add(self, config: DeviceConfig, *, start: bool = False) -> None:
        self._configs[config.id] = config
        family = binding_for(config.kind)
        if family is None:
            self._broken[config.id] = BrokenDevice(config, f"no device family for kind {config.kind.value!r} yet")
        else:
            try:
                binding = family(config, self._emitter(config.id), self._factories.get(config.kind))
            except DriverError as exc:
                self._broken[config.id] = BrokenDevice(config, f"configuration: {exc.message}")
            else:
                if self._data_dir is not None:
                    binding.data_dir = self._data_dir
                worker = DeviceWorker(
                    binding, on_status=self._report, backoff_min=self._backoff[0], backoff_max=self._backoff[1]
                )
                self._workers[config.id] = worker
                if start and self._started:
                    worker.start()
                return
        log.error("device %s: %s", config.id, self._broken[config.id].detail)
        if start and self._started:
            self._report(config.id, self._broken[config.id].snapshot())

    def _remove(self, device_id: str) -> None:
        self._configs.pop(device_id, None)
        self._broken.pop(device_id, None)
        worker = self._workers.pop(device_id, None)
        if worker is not None:
            worker.stop()

    def _emitter(self, device_id: str) -> Callable[[str, dict[str, Any]], None]:
        def emit(event_type: str, data: dict[str, Any]) -> None:
            self._emit(device_id, event_type, data)
            for listener in self._listeners:  # a copy-on-write list: no lock on the device thread
                try:
                    listener(device_id, event_type, data)
                except Exception:
                    log.exception("device %s: local listener of %r failed", device_id, event_type)

        return emit

    def _report(self, device_id: str, snapshot: StatusSnapshot) -> None:
        try:
            self._on_status(device_id, snapshot)
        except Exception:
            log.exception("device %s: status callback failed", device_id)
