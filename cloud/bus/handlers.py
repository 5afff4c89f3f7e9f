"""What one bus message does to the database, inside the caller's transaction.

Kept apart from the MQTT client so the rules are tested on a real database without a broker.
:func:`handle` returns an :class:`Outcome`; it raises only database errors (the consumer then
does not acknowledge, and the broker redelivers). Bad input is an outcome, not an exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session

from cloud.commands import service as commands
from cloud.registry import service as registry
from protocols.bus import (
    BusError,
    DeviceStatus,
    Event,
    GatewayState,
    Inventory,
    Reply,
    TopicKind,
    decode,
    parse_topic,
)

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    STORED = "stored"  # the message changed the database
    DUPLICATE = "duplicate"  # an event already stored (a replay): a no-op
    IGNORED = "ignored"  # valid but superseded (older session, reply to a final command)
    DROPPED = "dropped"  # invalid or not ours: logged and acknowledged


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retained: bool = False


def handle(session: Session, message: Message, root: str, now: datetime) -> Outcome:
    """Apply one message; the caller commits when the outcome is STORED/IGNORED/DUPLICATE."""
    try:
        parsed = parse_topic(message.topic, root)
    except BusError as exc:
        log.warning("dropped message on %r: %s", message.topic, exc.message)
        return Outcome.DROPPED
    if parsed.address is None or parsed.kind in (TopicKind.COMMAND, TopicKind.GATEWAY_COMMAND):
        return Outcome.DROPPED  # our own traffic (cloud state, commands) is not ingested
    address = parsed.address
    if not message.payload:
        # an empty retained payload is how a retained message is deleted: nothing to ingest
        log.debug("retained message cleared on %r", message.topic)
        return Outcome.DROPPED
    try:
        payload = _decode(parsed.kind, message.payload)
    except BusError as exc:
        log.warning("dropped message on %r: %s (%s)", message.topic, exc.message, exc.code)
        return Outcome.DROPPED
    tenant = registry.tenant_by_slug(session, address.tenant)
    if tenant is None or tenant.id is None:
        log.warning("dropped message on %r: unknown tenant %r", message.topic, address.tenant)
        return Outcome.DROPPED
    gateway = registry.ensure_gateway(session, tenant.id, address)
    registry.touch(gateway, now, retained=message.retained, ts=payload.ts)
    changed = True
    if isinstance(payload, GatewayState):
        changed = registry.apply_state(gateway, payload, now)
    elif isinstance(payload, Inventory):
        changed = registry.apply_inventory(session, gateway, payload, now)
    elif isinstance(payload, DeviceStatus):
        assert parsed.device is not None
        changed = registry.apply_device_status(session, gateway, parsed.device, payload, now)
    elif isinstance(payload, Event):
        assert parsed.device is not None and parsed.name is not None
        if not registry.record_event(session, gateway, parsed.device, parsed.name, payload, now):
            session.add(gateway)
            return Outcome.DUPLICATE
    elif isinstance(payload, Reply):
        if parsed.name != payload.command_id:
            log.warning("dropped reply on %r: payload is for command %r", message.topic, payload.command_id)
            return Outcome.DROPPED
        assert gateway.id is not None
        result = commands.apply_reply_for(session, tenant.id, gateway.id, payload, now)
        if result in ("unknown_command", "wrong_gateway"):
            log.warning("reply on %r: %s", message.topic, result.replace("_", " "))
        changed = result == "applied"
    session.add(gateway)
    return Outcome.STORED if changed else Outcome.IGNORED


_MODELS: dict[TopicKind, type[GatewayState | Inventory | DeviceStatus | Event | Reply]] = {
    TopicKind.STATE: GatewayState,
    TopicKind.INVENTORY: Inventory,
    TopicKind.DEVICE_STATUS: DeviceStatus,
    TopicKind.EVENT: Event,
    TopicKind.REPLY: Reply,
}


def _decode(kind: TopicKind, payload: bytes) -> GatewayState | Inventory | DeviceStatus | Event | Reply:
    model = _MODELS.get(kind)
    if model is None:
        raise BusError(f"topic kind {kind} is not ingested", code="bad_topic")
    return decode(model, payload)
