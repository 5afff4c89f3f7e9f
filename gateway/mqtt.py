"""The gateway's MQTT link: one supervised paho-mqtt 2.x client.

What it guarantees, and which known failure each point answers:

* **Sessions.** Right before every (re)connect paho calls ``on_pre_connect``: the session
  counter is advanced on disk and the Will is set to ``GatewayState(online=false, session=N)``
  for exactly that connection, so a Will can never carry a session older than the birth it kills
  (the NBIRTH-after-NDEATH ordering bug of Sparkplug implementations).
* **Births.** ``on_connect`` subscribes (commands, cloud state) and calls ``on_connected`` which
  publishes state/inventory/statuses; paho has no auto-resubscribe (paho.mqtt.c #221).
* **No stale resends.** paho keeps unacknowledged QoS 1 messages in memory and resends them
  after the *next* CONNACK — after our fresh births. A stale retained status could then win.
  ``on_pre_connect`` therefore empties paho's queue: the outbox is the only durable queue and
  replays on its own; births are rebuilt from current state. This touches paho internals
  (``_out_messages``), isolated in :func:`_forget_unacked`.
* **Publishing while disconnected** returns ``None`` instead of queueing in paho's memory
  (TB #2157: "publish succeeded" on a dead socket, then lost).
* **Supervision.** paho reconnects by itself (``reconnect_delay_set`` + ``loop_start``); a
  watchdog restarts the loop thread if it ever dies (TB #2086 / PR #2140), and every callback is
  wrapped so an exception is logged, never re-raised into paho's thread.
* **Protocol.** ``auto`` tries MQTT 5; a broker answering "unsupported protocol version", or
  leaving a v5 CONNECT unanswered (amqtt parses it as 3.1.1, fails on the Will and never sends
  a CONNACK) for ``CONNACK_TIMEOUT_S`` or closing the socket twice before any CONNACK, makes the watchdog rebuild the client for 3.1.1. Once a connection succeeded the
  protocol is kept for the life of the process.
* **Latency.** TCP_NODELAY on the socket as soon as it is open (Nagle + delayed ACK cost
  44–88 ms per QoS 1 round trip here).
* **Flow control.** An MQTT 5 broker may advertise a Receive Maximum in its CONNACK (Mosquitto:
  ``max_inflight_messages``, 20 by default): how many QoS 1/2 publishes it accepts unacknowledged
  from us. paho does not enforce it (its own limit is off, see :meth:`MqttLink._build`), so the
  link records it (:attr:`MqttLink.receive_maximum`, ``None`` on 3.1.1 or when not advertised)
  and tells ``on_limits`` on every connect; the outbox sender sizes its window by it.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties

from gateway.config import BrokerConfig
from gateway.session import SessionCounter

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

CONNACK_TIMEOUT_S = 3.0
_UNSUPPORTED_PROTOCOL = 132  # v5 reason code; paho maps a 3.1.1 CONNACK rc=1 to it as well


def _safe(func: F) -> F:
    """Log and swallow any exception: paho re-raises callback errors and its thread dies."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception:
            log.exception("MQTT callback %s failed", func.__name__)
            return None

    return wrapper  # type: ignore[return-value]


def _forget_unacked(client: mqtt.Client) -> int:
    """Drop every message paho still holds from the previous connection (see module doc).

    Marks their ``MQTTMessageInfo`` as done with ``MQTT_ERR_CONN_LOST`` so no waiter hangs.
    """
    dropped = 0
    lock = getattr(client, "_out_message_mutex", None)
    messages = getattr(client, "_out_messages", None)
    if lock is None or messages is None:  # a paho without these internals: nothing to purge
        return 0
    with lock:
        for message in list(messages.values()):
            message.info.rc = mqtt.MQTT_ERR_CONN_LOST
            message.info._set_as_published()
            dropped += 1
        messages.clear()
        client._inflight_messages = 0
    return dropped


class MqttLink:
    """A supervised MQTT connection with per-connect session, Will and births."""

    def __init__(
        self,
        broker: BrokerConfig,
        client_id: str,
        session: SessionCounter,
        *,
        will: Callable[[int], tuple[str, bytes]],
        subscriptions: Callable[[], list[str]],
        on_connected: Callable[[int], None],
        on_disconnected: Callable[[], None],
        on_message: Callable[[mqtt.MQTTMessage], None],
        on_publish: Callable[[int, bool], None],
        inflight_limit: int = 512,
        watchdog_interval: float = 0.5,
        on_limits: Callable[[int | None], None] | None = None,
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.session_counter = session
        self._will = will
        self._subscriptions = subscriptions
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_message = on_message
        self._on_publish = on_publish
        self._inflight_limit = inflight_limit
        self._watchdog_interval = watchdog_interval
        self.on_limits = on_limits
        self.receive_maximum: int | None = None
        self._protocol = mqtt.MQTTv311 if broker.protocol == "3.1.1" else mqtt.MQTTv5
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._downgrade = threading.Event()
        self._client_lock = threading.RLock()
        self._client: mqtt.Client | None = None
        self._watchdog: threading.Thread | None = None
        self.session = session.current
        self._awaiting_connack = False
        self._socket_opened_at = 0.0
        self._silent_refusals = 0
        self._pinned = broker.protocol != "auto"
        self.loop_restarts = 0
        self.connects = 0

    # Public API --------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    @property
    def mqtt5(self) -> bool:
        return self._protocol == mqtt.MQTTv5

    @property
    def protocol_name(self) -> str:
        return "5" if self.mqtt5 else "3.1.1"

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def start(self) -> None:
        """Connect in the background; returns at once (the broker may be down at boot)."""
        self._stopping.clear()
        self._start_client()
        self._watchdog = threading.Thread(target=self._watch, name="mqtt-watchdog", daemon=True)
        self._watchdog.start()

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, properties: Properties | None = None
    ) -> mqtt.MQTTMessageInfo | None:
        """Hand a message to paho if connected; ``None`` (nothing queued) when not."""
        client = self._client
        if client is None or not self._connected.is_set():
            return None
        try:
            info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        except (ValueError, RuntimeError, OSError) as exc:
            log.warning("publish to %s failed: %s", topic, exc)
            return None
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return info

    def stop(self, final: tuple[str, bytes] | None = None, timeout: float = 2.0) -> None:
        """Publish ``final`` (the offline state, retained) if connected, then disconnect."""
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=self._watchdog_interval * 4)
        with self._client_lock:
            client = self._client
            if client is None:
                return
            if final is not None and self.is_connected:
                info = self.publish(final[0], final[1], qos=1, retain=True)
                if info is not None:
                    try:
                        info.wait_for_publish(timeout)  # bounded: paho #549/#550 hang without one
                    except (RuntimeError, ValueError) as exc:
                        log.warning("offline state not confirmed: %s", exc)
            try:
                client.disconnect()
            except Exception as exc:  # disconnect on a dead socket must not stop shutdown
                log.debug("disconnect: %s", exc)
            client.loop_stop()
            self._connected.clear()
            self._client = None

    # Client construction -------------------------------------------------------------------
    def _build(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=self._protocol,
            clean_session=None if self._protocol == mqtt.MQTTv5 else True,
        )
        client.suppress_exceptions = True
        if self.broker.username is not None:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set(ca_certs=self.broker.ca_file)
        client.reconnect_delay_set(self.broker.reconnect_min_s, self.broker.reconnect_max_s)  # type: ignore[arg-type]
        # paho's own in-flight limit is off (0): the outbox sender bounds what is in flight with
        # its window, and with a limit set paho rescans every unacknowledged message on *each*
        # PUBACK (``_update_inflight``, O(window) per ack: ~90 µs at a window of 256, the largest
        # single cost of draining the outbox). ``inflight_limit`` is kept for callers' sake.
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        client.on_pre_connect = self._handle_pre_connect
        client.on_socket_open = self._handle_socket_open
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        client.on_connect_fail = self._handle_connect_fail
        return client

    def _start_client(self) -> None:
        with self._client_lock:
            client = self._build()
            self._client = client
            kwargs: dict[str, Any] = {}
            if self._protocol == mqtt.MQTTv5:
                kwargs["clean_start"] = True
            client.connect_async(self.broker.host, self.broker.port, self.broker.keepalive, **kwargs)
            client.loop_start()

    def _watch(self) -> None:
        """Restart paho's loop thread if it died; rebuild the client to downgrade to 3.1.1."""
        while not self._stopping.wait(self._watchdog_interval):
            try:
                with self._client_lock:
                    if self._stopping.is_set():
                        return
                    client = self._client
                    if client is None:
                        continue
                    if (
                        self._awaiting_connack
                        and self._may_downgrade()
                        and time.monotonic() - self._socket_opened_at > CONNACK_TIMEOUT_S
                    ):
                        self._downgrade.set()
                    if self._downgrade.is_set():
                        self._downgrade.clear()
                        log.warning("broker %s does not speak MQTT 5: using 3.1.1", self.broker.url)
                        client.loop_stop()
                        self._connected.clear()
                        self._protocol = mqtt.MQTTv311
                        self._awaiting_connack = False
                        self._start_client()
                        continue
                    thread = getattr(client, "_thread", None)
                    if thread is None or not thread.is_alive():
                        log.error("paho's network thread died: reconnecting and restarting it")
                        self.loop_restarts += 1
                        self._connected.clear()
                        client.loop_stop()
                        # The socket may still be up, but whatever the dead thread was doing is
                        # unknown: start a fresh connection (new session, Will, births, replay).
                        try:
                            client.reconnect()
                        except (OSError, ValueError) as exc:
                            log.warning("reconnect after loop restart failed (%s); paho retries", exc)
                        client.loop_start()
            except Exception:
                log.exception("MQTT watchdog iteration failed")

    def _may_downgrade(self) -> bool:
        return not self._pinned and self._protocol == mqtt.MQTTv5

    # paho callbacks (paho's thread; never raise) ---------------------------------------------
    @_safe
    def _handle_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        dropped = _forget_unacked(client)
        if dropped:
            log.info("forgot %d unacknowledged messages of the previous connection", dropped)
        try:
            self.session = self.session_counter.advance()
        except Exception:
            log.exception("cannot persist the session counter; reusing %d", self.session)
        topic, payload = self._will(self.session)
        client.will_set(topic, payload, qos=1, retain=True)
        self._on_disconnected()

    @_safe
    def _handle_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._awaiting_connack = True
        self._socket_opened_at = time.monotonic()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError) as exc:  # e.g. a unix socket or websocket wrapper
            log.debug("TCP_NODELAY not set: %s", exc)

    @_safe
    def _handle_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._awaiting_connack = False
        if reason.is_failure:
            if reason.value == _UNSUPPORTED_PROTOCOL and self._may_downgrade():
                self._downgrade.set()
            log.warning("broker %s refused the connection: %s", self.broker.url, reason)
            return
        self.connects += 1
        self._pinned = True
        value = getattr(properties, "ReceiveMaximum", None) if self._protocol == mqtt.MQTTv5 else None
        self.receive_maximum = int(value) if isinstance(value, int) and value > 0 else None
        if self.on_limits is not None:
            self.on_limits(self.receive_maximum)
        client.subscribe([(topic, 1) for topic in self._subscriptions()])
        self._connected.set()
        log.info("connected to %s (MQTT %s, session %d)", self.broker.url, self.protocol_name, self.session)
        self._on_connected(self.session)

    @_safe
    def _handle_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if self._awaiting_connack and self._may_downgrade():
            self._silent_refusals += 1
            if self._silent_refusals >= 2:
                self._downgrade.set()
        self._awaiting_connack = False
        if was:
            log.warning("disconnected from %s: %s", self.broker.url, reason)
        self._on_disconnected()

    @_safe
    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        log.debug("connection to %s failed; paho retries with backoff", self.broker.url)

    @_safe
    def _handle_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._on_message(message)

    @_safe
    def _handle_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        refused = bool(getattr(reason, "is_failure", False))
        if refused:
            log.warning("broker refused publish mid=%d: %s", mid, reason)
        self._on_publish(mid, not refused)
