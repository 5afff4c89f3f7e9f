"""paho-mqtt plumbing shared by the bus consumer and the API's command client.

* MQTT 5 first, 3.1.1 when the broker refuses it (the embedded amqtt broker does): decided by a
  short probe connection, because a paho client's protocol is fixed when it is built.
* ``TCP_NODELAY`` on the client socket after every connect: paho does not set it, and without it
  Nagle + delayed ACK turn a 0.6 ms round trip into 44–88 ms.
* Every callback body goes through :func:`guarded`: paho re-raises callback exceptions and that
  kills its network thread (thingsboard-gateway #2086), so nothing may escape.
"""

from __future__ import annotations

import functools
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
KEEPALIVE_S = 30


@dataclass(frozen=True)
class BrokerEndpoint:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None


def parse_mqtt_url(url: str, username: str | None = None, password: str | None = None) -> BrokerEndpoint:
    """``mqtt://[user:pass@]host[:port]`` or ``mqtts://…``; explicit credentials win over the URL's."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r} in {url!r}: use mqtt:// or mqtts://")
    tls = parts.scheme in ("mqtts", "ssl")
    if not parts.hostname:
        raise ValueError(f"MQTT URL {url!r} has no host")
    return BrokerEndpoint(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=username if username is not None else (unquote(parts.username) if parts.username else None),
        password=password if password is not None else (unquote(parts.password) if parts.password else None),
    )


def guarded(name: str) -> Callable[[F], F]:
    """Log and swallow any exception of a paho callback (see the module docstring)."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception:
                log.exception("MQTT callback %s failed; the client keeps running", name)
                return None

        return inner  # type: ignore[return-value]

    return wrap


def set_nodelay(client: mqtt.Client) -> bool:
    """Disable Nagle on the client's socket; True when it is set."""
    sock = client.socket()
    if sock is None or not hasattr(sock, "setsockopt"):
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        log.warning("could not set TCP_NODELAY on the MQTT socket: %s", exc)
        return False
    return True


def nodelay_is_set(client: mqtt.Client) -> bool:
    sock: Any = client.socket()
    return bool(sock is not None and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def new_client(
    endpoint: BrokerEndpoint,
    client_id: str,
    protocol: MQTTProtocolVersion,
    *,
    persistent: bool = False,
    manual_ack: bool = False,
) -> mqtt.Client:
    """A configured (not yet connected) paho 2.x client."""
    clean_session: bool | None = None if protocol == MQTTProtocolVersion.MQTTv5 else not persistent
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=protocol,
        manual_ack=manual_ack,
    )
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    return client


def probe_protocol(endpoint: BrokerEndpoint, timeout: float = 5.0) -> MQTTProtocolVersion:
    """MQTT 5 when the broker accepts it, else 3.1.1 (also when the broker cannot be reached:
    the real client then keeps retrying, and 3.1.1 works with every broker)."""
    done = threading.Event()
    accepted: list[bool] = []

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        accepted.append(not reason_code.is_failure)
        done.set()

    def on_disconnect(*_args: Any) -> None:
        done.set()

    client = new_client(endpoint, f"probe-{threading.get_ident()}-{id(endpoint)}", MQTTProtocolVersion.MQTTv5)
    client.on_connect = guarded("probe.on_connect")(on_connect)
    client.on_disconnect = guarded("probe.on_disconnect")(on_disconnect)
    try:
        client.connect(endpoint.host, endpoint.port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        log.warning("MQTT broker %s:%s unreachable (%s); assuming MQTT 3.1.1", endpoint.host, endpoint.port, exc)
        return MQTTProtocolVersion.MQTTv311
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        if accepted and accepted[0]:
            client.disconnect()
        client.loop_stop()
    if accepted and accepted[0]:
        return MQTTProtocolVersion.MQTTv5
    log.info("MQTT broker %s:%s refused MQTT 5; using 3.1.1", endpoint.host, endpoint.port)
    return MQTTProtocolVersion.MQTTv311


def shared_subscriptions_available(properties: Any) -> bool:
    """CONNACK says so, or says nothing (the MQTT 5 default is "available")."""
    value = getattr(properties, "SharedSubscriptionAvailable", None) if properties is not None else None
    return value is None or value == 1
