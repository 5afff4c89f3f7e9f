"""The gateway process: wires config, storage, devices, dispatcher, outbox sender and MQTT.

Threads: paho's network loop (+ the link watchdog), ``command-intake`` (decode, journal, route),
``gateway-commands``, ``outbox-sender``, and one ``device-{id}`` per device. paho's thread only
queues work and flips flags, so a slow SQLite commit or a slow device never delays PUBACKs or
keepalives.

``Gateway(config).start()`` returns at once (the broker may be down; everything retries);
``stop()`` answers the commands in progress, closes the devices, publishes the offline state
and closes the databases. ``run_forever()`` does both around SIGINT/SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway import __version__
from gateway.checkout.service import CheckoutService
from gateway.config import GatewayConfig, load_config
from gateway.devices.base import Outcome, StatusSnapshot
from gateway.devices.label_scale.sync import PluSync
from gateway.devices.registry import DriverFactory
from gateway.devices.supervisor import DeviceSupervisor
from gateway.devices.worker import DeviceWorker, RecoveryJob
from gateway.dispatcher import Dispatcher, Incoming
from gateway.errors import CommandRejected, ConfigError, StorageError
from gateway.handheld.service import HandheldService
from gateway.journal import Journal
from gateway.mqtt import MqttLink
from gateway.outbox import Outbox
from gateway.sender import OutboxSender
from gateway.session import SessionCounter
from gateway.targets import GatewayTarget
from protocols.bus import (
    CloudState,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    GatewayState,
    Inventory,
    PayloadError,
    ReplyCode,
    cloud_state_topic,
    decode,
    encode,
)

log = logging.getLogger(__name__)


class Gateway:
    """One store gateway. Construct with a :class:`GatewayConfig` (``load_config`` or in code)."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        config_path: Path | None = None,
        factories: Mapping[DeviceKind, DriverFactory] | None = None,
        device_backoff: tuple[float, float] = (0.5, 15.0),
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.address = config.address
        self.data_dir = config.resolved_data_dir
        self._factories = factories
        self._device_backoff = device_backoff
        self._cloud_topic = cloud_state_topic(config.bus_root)
        self._cloud_online = False
        self._started_at = 0.0
        self._running = False
        self._stop_requested = threading.Event()
        self.events_lost = 0

    # Lifecycle ---------------------------------------------------------------------------
    def start(self) -> Gateway:
        """Open storage, start devices and connect (in the background). Raises ``StorageError``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._started_at = time.monotonic()
        self.journal = Journal(self.data_dir / "journal.db")
        self.journal.prune(self.config.journal_keep_days)
        ob = self.config.outbox
        self.outbox = Outbox(
            self.data_dir / "outbox.db", max_events=ob.max_events, max_age_days=ob.max_age_days,
            synchronous=ob.synchronous,
        )
        self.session = SessionCounter(self.data_dir / "session")
        hh = self.config.handheld
        self.handheld = HandheldService(hh, self.data_dir, self._emit) if hh is not None else None
        co = self.config.checkout
        self.checkout = CheckoutService(co, self.data_dir, self.journal, self.address) if co is not None else None
        factories = self.handheld.factories(self._factories) if self.handheld else self._factories
        self.devices = DeviceSupervisor(
            emit=self._emit, on_status=self._publish_status,
            factories=self.checkout.factories(factories) if self.checkout else factories,
            backoff_min=self._device_backoff[0], backoff_max=self._device_backoff[1], data_dir=self.data_dir,
        )
        self.devices.load(self.config.enabled_devices())
        self.label_scales = PluSync(self.data_dir, self.address, self.devices)  # the cloud's PLU list → scales
        self.commands = GatewayTarget({"ping": self.ping, "rebirth": self.rebirth, "rescan": self.rescan})
        self.dispatcher = Dispatcher(
            self.address, self.journal,
            devices=self.devices.get, gateway=self.commands,
            known_devices=lambda: [i.id for i in self.devices.inventory()],
            publish_reply=self._publish_reply, clear_retained=self._clear_retained,
            session=lambda: self.link.session,
        )
        self.sender = OutboxSender(
            self.outbox, self._publish_event, session=lambda: self.link.session,
            may_send=self._may_send, window=ob.window,
        )
        self.link = MqttLink(
            self.config.broker, self.config.client_id, self.session,
            will=self._will, subscriptions=self._subscriptions,
            on_connected=self._on_connected, on_disconnected=self._on_disconnected,
            on_message=self._on_message, on_publish=self.sender.on_publish,
            on_limits=self.sender.broker_limits,
            inflight_limit=ob.window + 256,
        )
        self._recover_interrupted()
        self.commands.start()
        self.dispatcher.start()
        self.devices.start()
        self.sender.start()
        self.link.start()
        if self.handheld is not None:
            self.handheld.start(self.devices)
        if self.checkout is not None:
            self.checkout.start(self.devices)
        if self.config.heartbeat_s > 0:
            threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        self._running = True
        log.info("gateway %s started (data in %s)", self.address.prefix, self.data_dir)
        return self

    def stop(self) -> None:
        """Clean stop: no new commands, running ones answered, devices closed, offline state."""
        if not self._running:
            return
        self._running = False
        self._stop_requested.set()  # ends the heartbeat
        self.dispatcher.stop()
        self.commands.stop()
        if self.handheld is not None:
            self.handheld.stop()
        self.devices.stop()
        self.label_scales.stop()
        if self.checkout is not None:
            self.checkout.stop()
        self.sender.stop()
        offline = GatewayState(online=False, session=self.link.session, version=__version__, reason="shutdown")
        self.link.stop(final=(self.address.state(), encode(offline)))
        self.outbox.close()
        self.journal.close()
        log.info("gateway %s stopped", self.address.prefix)

    def run_forever(self) -> None:
        """Start, run until SIGINT/SIGTERM, stop cleanly."""
        def request_stop(signum: int, frame: Any) -> None:
            log.info("signal %d: stopping", signum)
            self._stop_requested.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        self.start()
        try:
            while not self._stop_requested.wait(1.0):
                pass
        finally:
            self.stop()

    def request_stop(self) -> None:
        self._stop_requested.set()

    # Gateway commands ------------------------------------------------------------------------
    def ping(self) -> dict[str, Any]:
        """Everything an operator asks first: alive, which session, backlog, devices."""
        stats = self.outbox.stats()
        return {
            "version": __version__,
            "session": self.link.session,
            "uptime_s": round(time.monotonic() - self._started_at, 3),
            "mqtt": {"protocol": self.link.protocol_name, "connects": self.link.connects,
                     "loop_restarts": self.link.loop_restarts},
            "cloud_online": self._cloud_online,
            "outbox": {**stats.as_dict(), "inflight": self.sender.inflight, "sent": self.sender.sent,
                       "acked": self.sender.acked_total, "lost_on_append": self.events_lost},
            "commands": {"rejected_unaddressable": self.dispatcher.rejected_unaddressable,
                         "last_rejection": self.dispatcher.last_rejection,
                         "replies_held": self.dispatcher.replies_held,
                         "replies_dropped": self.dispatcher.replies_dropped},
            "devices": {d: {"state": s.state, "detail": s.detail} for d, s in self.devices.snapshots().items()},
        }

    def rebirth(self) -> dict[str, Any]:
        """Republish state, inventory and every status (the cloud lost track)."""
        return {"published": self._publish_births()}

    def rescan(self) -> dict[str, Any]:
        """Reopen offline devices now; re-read the device list from the config file if any."""
        devices = None
        if self.config_path is not None:
            try:
                fresh = load_config(self.config_path)
            except ConfigError as exc:
                raise CommandRejected(exc.message, code=exc.code) from exc
            if fresh.address != self.address:
                raise CommandRejected("the config names another gateway; restart to change identity",
                                      code="config_error")
            devices = fresh.devices
        changes = self.devices.rescan(devices)
        changes["plu_sync"] = self.label_scales.sync_all("rescan")  # scales that came back are synced when online
        if changes["added"] or changes["removed"] or changes["restarted"]:
            self._publish_births()
        return changes

    def _heartbeat(self) -> None:
        """Republish the online state every ``heartbeat_s`` so the cloud sees a quiet store alive."""
        while not self._stop_requested.wait(self.config.heartbeat_s):
            if not self._running:
                return
            if self.link.is_connected:
                state = GatewayState(online=True, session=self.link.session, version=__version__)
                self._publish_retained(self.address.state(), encode(state))

    # Bus plumbing ------------------------------------------------------------------------------
    def _subscriptions(self) -> list[str]:
        extra = [self.checkout.pricelist_topic] if self.checkout is not None else []
        return [*self.address.command_filters(), self._cloud_topic, self.label_scales.topic, *extra]

    def _will(self, session: int) -> tuple[str, bytes]:
        state = GatewayState(online=False, session=session, version=__version__, reason="connection lost")
        return self.address.state(), encode(state)

    def _on_connected(self, session: int) -> None:
        self.dispatcher.connected()  # replies held while the link was down (recoveries at startup)
        self._publish_births()
        self.sender.wake()

    def _on_disconnected(self) -> None:
        # The broker may have lost the cloud's retained state (a restart without persistence):
        # assume offline until the subscription delivers it again.
        self._cloud_online = False
        self.sender.connection_lost()

    def _publish_births(self) -> int:
        session = self.link.session
        count = 0
        state = GatewayState(online=True, session=session, version=__version__)
        count += self._publish_retained(self.address.state(), encode(state))
        inventory = Inventory(session=session, devices=tuple(self.devices.inventory()))
        count += self._publish_retained(self.address.inventory(), encode(inventory))
        for device_id, snap in self.devices.snapshots().items():
            count += self._publish_retained(self.address.device_status(device_id), self._status_payload(snap))
        return count

    def _publish_status(self, device_id: str, snap: StatusSnapshot) -> None:
        self._publish_retained(self.address.device_status(device_id), self._status_payload(snap))
        self.label_scales.on_status(device_id, snap)  # a label scale that came online gets the PLU list

    def _status_payload(self, snap: StatusSnapshot) -> bytes:
        return encode(DeviceStatus(
            session=self.link.session, state=DeviceState(snap.state), detail=snap.detail, data=snap.data
        ))

    def _publish_retained(self, topic: str, payload: bytes) -> int:
        return 0 if self.link.publish(topic, payload, qos=1, retain=True) is None else 1

    def _publish_reply(self, topic: str, payload: bytes, correlation: bytes | None) -> bool:
        properties = None
        if self.link.mqtt5 and correlation:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.CorrelationData = correlation
        return self.link.publish(topic, payload, qos=1, properties=properties) is not None

    def _clear_retained(self, topic: str) -> None:
        self.link.publish(topic, b"", qos=1, retain=True)

    def _publish_event(self, topic: str, payload: bytes) -> int | None:
        info = self.link.publish(topic, payload, qos=1)
        return None if info is None else info.mid

    def _may_send(self) -> bool:
        if not self.link.is_connected:
            return False
        return self._cloud_online or not self.config.outbox.require_cloud_online

    def _on_message(self, message: mqtt.MQTTMessage) -> None:
        """paho's thread: the cloud state is handled here (a flag), commands are queued."""
        if message.topic == self._cloud_topic:
            self._on_cloud_state(bytes(message.payload))
            return
        if self.checkout is not None and message.topic == self.checkout.pricelist_topic:
            self.checkout.on_pricelist(bytes(message.payload))  # retained, full replace, newer wins
            return
        if message.topic == self.label_scales.topic:
            self.label_scales.on_plulist(bytes(message.payload))  # retained, full replace, newer wins
            return
        props = getattr(message, "properties", None)
        self.dispatcher.submit(Incoming(
            topic=message.topic, payload=bytes(message.payload), retain=bool(message.retain),
            response_topic=getattr(props, "ResponseTopic", None),
            correlation=getattr(props, "CorrelationData", None),
        ))

    def _on_cloud_state(self, payload: bytes) -> None:
        if not payload:
            online = False
        else:
            try:
                online = decode(CloudState, payload).online
            except PayloadError as exc:
                log.warning("ignoring bad cloud state: %s", exc.message)
                return
        was, self._cloud_online = self._cloud_online, online
        if online and not was:
            log.info("cloud is online: replaying the outbox (%d events)", self.outbox.depth)
            self._publish_births()  # the cloud may have restarted without our retained state
            self.sender.wake()
        elif was and not online:
            log.warning("cloud is offline: holding events in the outbox")

    def _emit(self, device_id: str, event_type: str, data: dict[str, Any]) -> None:
        """A device produced an event: durable first, then wake the sender."""
        try:
            self.outbox.append(self.address.event(device_id, event_type), data, session=self.link.session)
        except StorageError:
            self.events_lost += 1
            log.exception("event %s/%s could not be stored", device_id, event_type)
            return
        self.sender.wake()

    def _recover_interrupted(self) -> None:
        """Commands the journal found running: the previous process died while they ran.

        Runs at startup, before the first connect, on purpose: a register left with an open receipt
        is cleared at once, recoveries are queued ahead of any new command to their device, and
        they never wait for the broker (the store keeps selling while it is down). Their replies
        cannot be published yet: the dispatcher holds them and publishes them on connect.
        """
        for entry in self.journal.running():
            target = self.devices.get(entry.device)
            log.warning("command %s (%s/%s) was interrupted by a restart", entry.command_id, entry.device, entry.action)
            if isinstance(target, DeviceWorker):
                target.submit(RecoveryJob(entry, partial(self.dispatcher.finish_recovered, entry)))
            else:
                self.dispatcher.finish_recovered(entry, Outcome.failed(
                    ReplyCode.INTERRUPTED, f"шлюз остановился во время команды {entry.action!r}; её исход неизвестен"
                ))
