"""Topic builders and parsers of the store bus, contract v1.

Layout (``{prefix}`` = ``vitrina/v1/{tenant}/{store}/{gateway}``)::

    {prefix}/state                         gw→cloud  retained, the gateway's Will
    {prefix}/inventory                     gw→cloud  retained
    {prefix}/dev/{device}/status           gw→cloud  retained
    {prefix}/dev/{device}/evt/{type}       gw→cloud  via the outbox
    {prefix}/dev/{device}/cmd/{action}     cloud→gw  never retained
    {prefix}/reply/{command_id}            gw→cloud  (or the command's reply_to)
    {prefix}/gw/cmd/{action}               cloud→gw
    vitrina/v1/cloud/state                 cloud→all retained + Will

Identifiers are restricted to ``[A-Za-z0-9_.-]`` so that a tenant, store or device name can
never inject MQTT wildcards or extra levels.

The root (``vitrina``) is a parameter so that a staging cloud, or one test run, can share a broker
with others without seeing their retained messages; production keeps the default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from protocols.bus.errors import TopicError

ROOT = "vitrina"
VERSION = "v1"
CLOUD_STATE = f"{ROOT}/{VERSION}/cloud/state"

_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class TopicKind(StrEnum):
    STATE = "state"
    INVENTORY = "inventory"
    DEVICE_STATUS = "device_status"
    EVENT = "event"
    COMMAND = "command"
    REPLY = "reply"
    GATEWAY_COMMAND = "gateway_command"
    CLOUD_STATE = "cloud_state"


def check_id(value: str, what: str = "identifier") -> str:
    """Validate one topic level; raise :class:`TopicError` naming what was wrong."""
    if not isinstance(value, str) or not _ID.match(value):
        raise TopicError(f"{what} {value!r} must be 1-64 characters of A-Z a-z 0-9 _ . -")
    return value


@dataclass(frozen=True, slots=True)
class GatewayAddress:
    """Who a gateway is: the first three levels after ``vitrina/v1``."""

    tenant: str
    store: str
    gateway: str
    root: str = ROOT

    def __post_init__(self) -> None:
        check_id(self.root, "topic root")
        check_id(self.tenant, "tenant")
        check_id(self.store, "store")
        check_id(self.gateway, "gateway")

    @property
    def prefix(self) -> str:
        return f"{self.root}/{VERSION}/{self.tenant}/{self.store}/{self.gateway}"

    def state(self) -> str:
        return f"{self.prefix}/state"

    def inventory(self) -> str:
        return f"{self.prefix}/inventory"

    def device_status(self, device: str) -> str:
        return f"{self.prefix}/dev/{check_id(device, 'device')}/status"

    def event(self, device: str, event_type: str) -> str:
        return f"{self.prefix}/dev/{check_id(device, 'device')}/evt/{check_id(event_type, 'event type')}"

    def command(self, device: str, action: str) -> str:
        return f"{self.prefix}/dev/{check_id(device, 'device')}/cmd/{check_id(action, 'action')}"

    def reply(self, command_id: str) -> str:
        return f"{self.prefix}/reply/{check_id(command_id, 'command id')}"

    def gateway_command(self, action: str) -> str:
        return f"{self.prefix}/gw/cmd/{check_id(action, 'action')}"

    # Subscription filters -------------------------------------------------------------
    def command_filters(self) -> list[str]:
        """What a gateway subscribes to for its own commands."""
        return [f"{self.prefix}/dev/+/cmd/+", f"{self.prefix}/gw/cmd/+"]


def cloud_state_topic(root: str = ROOT) -> str:
    """The cloud's retained online/offline topic under ``root``."""
    return f"{check_id(root, 'topic root')}/{VERSION}/cloud/state"


def cloud_filters(tenant: str = "+", root: str = ROOT) -> list[str]:
    """What the cloud's bus consumer subscribes to (all gateways of one or all tenants)."""
    base = f"{check_id(root, 'topic root')}/{VERSION}/{tenant}/+/+"
    return [
        f"{base}/state",
        f"{base}/inventory",
        f"{base}/dev/+/status",
        f"{base}/dev/+/evt/+",
        f"{base}/reply/+",
    ]


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """A topic split into its parts; fields that do not apply are ``None``."""

    kind: TopicKind
    address: GatewayAddress | None = None
    device: str | None = None
    name: str | None = None  # event type, action, or command id depending on kind


def parse_topic(topic: str, root: str = ROOT) -> ParsedTopic:
    """Parse a concrete (wildcard-free) topic of contract v1 under ``root``."""
    if topic == cloud_state_topic(root):
        return ParsedTopic(TopicKind.CLOUD_STATE)
    parts = topic.split("/")
    if len(parts) < 6 or parts[0] != root:
        raise TopicError(f"not a {root} topic: {topic!r}")
    if parts[1] != VERSION:
        raise TopicError(f"unsupported contract version {parts[1]!r} in {topic!r}", code="unsupported_version")
    address = GatewayAddress(parts[2], parts[3], parts[4], root)
    rest = parts[5:]
    match rest:
        case ["state"]:
            return ParsedTopic(TopicKind.STATE, address)
        case ["inventory"]:
            return ParsedTopic(TopicKind.INVENTORY, address)
        case ["dev", device, "status"]:
            return ParsedTopic(TopicKind.DEVICE_STATUS, address, check_id(device, "device"))
        case ["dev", device, "evt", event_type]:
            return ParsedTopic(
                TopicKind.EVENT, address, check_id(device, "device"), check_id(event_type, "event type")
            )
        case ["dev", device, "cmd", action]:
            return ParsedTopic(TopicKind.COMMAND, address, check_id(device, "device"), check_id(action, "action"))
        case ["reply", command_id]:
            return ParsedTopic(TopicKind.REPLY, address, None, check_id(command_id, "command id"))
        case ["gw", "cmd", action]:
            return ParsedTopic(TopicKind.GATEWAY_COMMAND, address, None, check_id(action, "action"))
    raise TopicError(f"unknown topic {topic!r}")
