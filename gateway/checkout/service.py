"""What the runtime starts and stops for checkout: stores, lanes, their recovery, the cashier page.

Built before the device supervisor (it is the lane family's "driver" factory: ``make_lane``);
``start`` gets the supervisor, runs each lane's recovery on a thread of its own (a lane refuses
the cashier until its unfinished sales are resolved; the other lanes are not held up), listens to
the supervisor's local device events so a lane's hardware scanner rings items up
(:mod:`gateway.checkout.scans`) and starts the cashier page server. A taken port does not stop
the gateway: the error is logged and the bind retried, like the handheld server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gateway.checkout.calls import DeviceCalls
from gateway.checkout.lane import EmitFn, Lane, LaneSettings
from gateway.checkout.prices import PriceStore
from gateway.checkout.scans import ScanRouter
from gateway.checkout.store import CheckoutStore
from gateway.config import CheckoutConfig, DeviceConfig
from gateway.errors import ConfigError, GatewayError
from gateway.journal import Journal
from protocols.barcodes import WeightBarcodeFormat
from protocols.bus import DeviceKind, GatewayAddress, describe
from protocols.bus.sales import pricelist_topic

if TYPE_CHECKING:
    from gateway.devices.supervisor import DeviceSupervisor

log = logging.getLogger(__name__)


class CheckoutService:
    def __init__(self, config: CheckoutConfig, data_dir: Path, journal: Journal, address: GatewayAddress,
                 *, retry_s: float = 5.0) -> None:
        self.config = config
        self.store = CheckoutStore(data_dir / "checkout.db")
        self.prices = PriceStore(data_dir / "prices.db")
        self.calls = DeviceCalls(journal)
        self.lanes: dict[str, Lane] = {}
        self.scans = ScanRouter(lambda: list(self.lanes.values()))
        self.pricelist_topic = pricelist_topic(address)
        try:
            self.weight_formats = (WeightBarcodeFormat(tuple(config.weight_prefixes), config.weight_item_digits),)
        except Exception as exc:
            raise ConfigError(f"checkout.weight_prefixes: {exc}") from exc
        from gateway.checkout.server import CheckoutServer

        self.server = CheckoutServer(self, config.host, config.port)
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # Lane family factory ------------------------------------------------------------------------
    def factories(self, base: Mapping[DeviceKind, Any] | None) -> dict[DeviceKind, Any]:
        return {**(base or {}), DeviceKind.LANE: self}

    def make_lane(self, config: DeviceConfig, emit: EmitFn) -> Lane:
        try:
            settings = LaneSettings.model_validate(config.options)
        except ValidationError as exc:
            raise GatewayError(f"lane options: {describe(exc)}") from exc
        lane = Lane(config.id, settings, self.store, self.prices, self.calls, emit,
                    weight_formats=self.weight_formats)
        old = self.lanes.get(config.id)
        if old is not None:
            lane.listeners = old.listeners
            if old.recovered.is_set():
                lane.recovered.set()
        self.lanes[config.id] = lane
        return lane

    # Lifecycle --------------------------------------------------------------------------------
    def start(self, devices: DeviceSupervisor) -> None:
        self.calls.devices = devices
        devices.listen(self.scans.on_device_event)
        for lane in self.lanes.values():
            thread = threading.Thread(target=self._recover, args=(lane,), name=f"lane-recovery-{lane.id}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        if not self._try_listen():
            thread = threading.Thread(target=self._retry_loop, name="checkout-bind", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()
        self.scans.stop()
        for thread in self._threads:
            thread.join(1.0)
        self.store.close()
        self.prices.close()

    def on_pricelist(self, payload: bytes) -> None:
        """A (retained) price list from the cloud (paho's thread: stored on a thread of its own)."""
        threading.Thread(target=self.apply_pricelist, args=(payload,), name="pricelist", daemon=True).start()

    def apply_pricelist(self, payload: bytes) -> str:
        """Store a price list payload: ``applied``, ``ignored`` (not newer), ``invalid`` or ``failed``."""
        try:
            outcome = self.prices.apply_payload(payload)
        except GatewayError as exc:
            log.error("price list not stored: %s", exc.message)
            return "failed"
        if outcome == "applied":
            for lane in self.lanes.values():
                lane.changed()
        return outcome

    def _recover(self, lane: Lane) -> None:
        try:
            touched = lane.recover()
        except Exception:
            log.exception("lane %s: recovery failed", lane.id)
            lane.problem = "восстановление после сбоя не удалось: см. журнал шлюза"
            lane.recovered.set()
            return
        if touched:
            log.warning("lane %s: recovered %d operation(s)", lane.id, len(touched))

    def _try_listen(self) -> bool:
        try:
            self.server.start()
        except GatewayError as exc:
            log.error("%s (retrying every %.0f s)", exc.message, self._retry_s)
            return False
        return True

    def _retry_loop(self) -> None:
        while not self._stop.wait(self._retry_s):
            if self._try_listen():
                return
