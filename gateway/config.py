"""Gateway configuration: one TOML file parsed into pydantic models.

Why pydantic and ``extra="forbid"``: a typo in a store's config (``keep_alive`` for
``keepalive``) must stop the gateway at start with the field named, not silently fall back to
a default and misbehave at 3 a.m. ``load_config`` turns every problem into one
:class:`~gateway.errors.ConfigError` line (``gateway.toml: devices[0].kind: …``); the same
models are built directly in code by tests and by ``vitrina up``.

Example::

    tenant = "acme"
    store = "s001"
    gateway = "gw1"
    # bus_root = "vitrina"          # topic root; tests use a unique one
    # data_dir = "./var/gateway-gw1" # journal, outbox, session counter

    [broker]
    url = "mqtt://127.0.0.1:1883"    # or mqtts://host:8883
    keepalive = 30

    [outbox]
    max_events = 100000
    max_age_days = 7

    [[devices]]
    id = "scale1"
    kind = "scale"
    driver = "mtsics"
    url = "/dev/ttyUSB0"             # /dev/pts/N, socket://host:port, rfc2217://…
    options = { baudrate = 9600, poll_interval_s = 0.5, deadband_kg = 0.005 }

    [handheld]                       # the local HTTP/WebSocket server for handhelds (ТСД)
    port = 8081                      # host = "0.0.0.0" by default
    store_pin = "2580"               # a shared store PIN (the user types a name) …
    # users = [{ login = "ivanova", name = "Иванова А.", pin = "1234" }]   # … or per-user PINs

    [[devices]]                      # the task pool the cloud assigns to (driver "pool")
    id = "handhelds"
    kind = "handheld"
    driver = "pool"
    url = "local"

    [[devices]]                      # one per handheld (driver "web"): online while its page is connected
    id = "tsd1"
    kind = "handheld"
    driver = "web"
    url = "wifi"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.errors import ConfigError
from protocols.bus import DeviceKind, GatewayAddress, TopicError, check_id


def _identifier(value: str, what: str) -> str:
    try:
        return check_id(value, what)
    except TopicError as exc:
        raise ValueError(exc.message) from exc


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerConfig(_Strict):
    """Where the store bus is. ``protocol="auto"`` tries MQTT 5 and falls back to 3.1.1."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    keepalive: int = Field(default=30, ge=1, le=3600)
    client_id: str | None = None
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    reconnect_min_s: float = Field(default=0.5, gt=0, le=60)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)
    ca_file: str | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"must start with mqtt:// or mqtts://, got {value!r}")
        if not parts.hostname:
            raise ValueError(f"has no host: {value!r}")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"has a bad port: {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _check_delays(self) -> BrokerConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


class OutboxConfig(_Strict):
    """Bounds and pacing of the durable event outbox (see ``gateway.outbox``)."""

    max_events: int = Field(default=100_000, ge=1)
    max_age_days: float = Field(default=7.0, gt=0)
    window: int = Field(default=256, ge=1, le=10_000)
    require_cloud_online: bool = True
    synchronous: Literal["normal", "full"] = "normal"


class DeviceConfig(_Strict):
    """One device: which family binding (``kind``), which driver, where it is plugged."""

    id: str
    kind: DeviceKind
    driver: str = Field(min_length=1)
    url: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    model: str = ""

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        return _identifier(value, "device id")


class HandheldUser(_Strict):
    """A handheld user who logs in with a personal PIN."""

    login: str
    name: str = Field(default="", max_length=60)
    pin: str = Field(pattern=r"^[0-9]{4,8}$")

    @field_validator("login")
    @classmethod
    def _check_login(cls, value: str) -> str:
        return _identifier(value, "login")


class HandheldConfig(_Strict):
    """``[handheld]``: the local server handhelds (ТСД) use (see ``gateway.handheld``).

    Either ``users`` (personal PINs) or ``store_pin`` (one PIN for the store, the user types a
    name) or both. PINs sit in the store's config file as plain text: the gateway's disk is the
    trust boundary, as for the broker password.
    """

    host: str = "0.0.0.0"
    port: int = Field(default=8081, ge=0, le=65535)
    users: list[HandheldUser] = Field(default_factory=list)
    store_pin: str | None = Field(default=None, pattern=r"^[0-9]{4,8}$")
    session_hours: float = Field(default=12.0, gt=0, le=24 * 7)
    weight_prefixes: list[str] = Field(default_factory=lambda: [str(p) for p in range(20, 30)])
    weight_item_digits: int = Field(default=5, ge=1, le=9)
    keep_days: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _check_auth(self) -> HandheldConfig:
        if not self.users and self.store_pin is None:
            raise ValueError("set users (personal PINs) or store_pin")
        logins = [u.login for u in self.users]
        if len(set(logins)) != len(logins):
            raise ValueError("handheld user logins must be unique")
        return self


class CashierConfig(_Strict):
    """A cashier who logs in to the checkout page with a PIN (1021 name, 1203 INN on receipts)."""

    login: str
    name: str = Field(min_length=1, max_length=64)
    inn: str | None = Field(default=None, pattern=r"^([0-9]{10}|[0-9]{12})$")
    pin: str = Field(pattern=r"^[0-9]{4,8}$")

    @field_validator("login")
    @classmethod
    def _check_login(cls, value: str) -> str:
        return _identifier(value, "login")


class CheckoutConfig(_Strict):
    """``[checkout]``: the cashier page server and the cashiers (lanes are ``kind = "lane"`` devices).

    A lane names the devices it drives in its options::

        [[devices]]
        id = "lane1"
        kind = "lane"
        driver = "checkout"
        url = "local"
        options = { fiscal = "kkt1", payment = "pos1", scanner = "scan1", scale = "scale1", printer = "prn1" }
    """

    host: str = "0.0.0.0"
    port: int = Field(default=8082, ge=0, le=65535)
    cashiers: list[CashierConfig] = Field(min_length=1)
    weight_prefixes: list[str] = Field(default_factory=lambda: [str(p) for p in range(20, 30)])
    weight_item_digits: int = Field(default=5, ge=1, le=9)


class GatewayConfig(_Strict):
    """The whole gateway: identity on the bus, broker, local storage, devices."""

    tenant: str
    store: str
    gateway: str
    bus_root: str = "vitrina"
    data_dir: Path | None = None
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    journal_keep_days: float = Field(default=30.0, gt=0)
    # Republish the retained online state this often: the cloud marks a gateway it has not
    # heard from for a while "stale", and a quiet store (no weights, no sales) is not a dead one.
    heartbeat_s: float = Field(default=30.0, ge=0)
    devices: list[DeviceConfig] = Field(default_factory=list)
    handheld: HandheldConfig | None = None
    checkout: CheckoutConfig | None = None

    @field_validator("tenant", "store", "gateway", "bus_root")
    @classmethod
    def _check_ids(cls, value: str, info: Any) -> str:
        return _identifier(value, info.field_name)

    @model_validator(mode="after")
    def _unique_devices(self) -> GatewayConfig:
        seen: set[str] = set()
        for device in self.devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} is used twice")
            seen.add(device.id)
        return self

    @property
    def address(self) -> GatewayAddress:
        return GatewayAddress(self.tenant, self.store, self.gateway, self.bus_root)

    @property
    def resolved_data_dir(self) -> Path:
        """``data_dir`` or ``./var/gateway-{gateway}`` (relative paths are relative to the cwd)."""
        return self.data_dir if self.data_dir is not None else Path("var") / f"gateway-{self.gateway}"

    @property
    def client_id(self) -> str:
        return self.broker.client_id or f"vitrina-gw-{self.tenant}-{self.store}-{self.gateway}"[:64]

    def enabled_devices(self) -> list[DeviceConfig]:
        return [d for d in self.devices if d.enabled]


def parse_config(data: dict[str, Any], source: str = "config") -> GatewayConfig:
    """Validate an already-parsed mapping; raise :class:`ConfigError` naming the bad field."""
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from exc


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate a TOML config file; raise :class:`ConfigError` on any problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    return parse_config(data, str(path))


def _describe(exc: ValidationError) -> str:
    """``devices[0].kind: Input should be …`` instead of pydantic's multi-line dump."""
    parts = []
    for err in exc.errors()[:3]:
        where = ""
        for loc in err["loc"]:
            where += f"[{loc}]" if isinstance(loc, int) else (f".{loc}" if where else str(loc))
        message = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where or 'config'}: {message}")
    if len(exc.errors()) > 3:
        parts.append(f"and {len(exc.errors()) - 3} more")
    return "; ".join(parts)


__all__ = [
    "BrokerConfig",
    "CashierConfig",
    "CheckoutConfig",
    "DeviceConfig",
    "GatewayConfig",
    "HandheldConfig",
    "HandheldUser",
    "OutboxConfig",
    "load_config",
    "parse_config",
]
