"""Command rules: idempotent creation, forward-only replies, and what is sent on the bus.

Decisions (documented here because the API contract follows them):

* ``command_id`` = the idempotency key, unique per tenant. Posting the same key again returns the
  stored command; it is re-published with the same id only while it is not final and not
  expired (the gateway's journal answers a repeat with the stored reply, so this is safe).
* One transaction before the publish: the row is created (or, for a retry, re-marked) already
  marked as published (``published_at`` = the latest publish *attempt*, ``publish_count`` the
  attempts), so the publish follows its row's commit and nothing is written after it. A publish
  that then fails answers 503 and the client retries with the same key. That commit is a
  bookkeeping one (:func:`cloud.db.relaxed_durability`): the gateway's journal guards the side
  effect, and a row lost to a power cut is re-created by the retry with the same ``command_id``.
* Of two concurrent POSTs with the same key in one API process, the second follows the first and
  never publishes (:meth:`cloud.commands.bus.CommandBus.register`). In two processes, the one
  whose new-key insert (:mod:`cloud.commands.insert`) meets the other's row is a retry like any
  other: it re-publishes under the same ``command_id`` while the command is not final, and the
  gateway's journal answers the repeat ("already running" or ``duplicate``) — a second publish at
  most, never a second execution. (The full path's insert, when it loses a race it did not see
  coming, still publishes nothing.)
* The same key with a different target, action or args is a 409: a key names one intent.
* Gateway ``offline`` → 409 (``gateway_offline``): the broker holds no queue for it and the
  command would expire unseen. A ``stale`` gateway is still sent to (it may only be quiet).
* Device not present in the latest inventory → 409 (``device_not_present``): the gateway would
  answer ``unknown_device``. Device ``offline``/``error`` → still sent, with a warning in the
  response: the gateway decides (it may be reconnecting the device) and answers with a code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from cloud.commands.models import Command, CommandPublic, CommandStatus
from cloud.errors import Conflict, Invalid, NotFound
from cloud.registry.models import Device, Gateway, GatewayStatus
from protocols.bus import Command as BusCommand
from protocols.bus import Reply, ReplyStatus, TopicError, check_id

GATEWAY_ACTIONS = frozenset({"rebirth", "rescan", "config", "ping"})


def check_key(key: str) -> str:
    """An idempotency key must be usable as a topic level (it becomes ``…/reply/{key}``)."""
    try:
        return check_id(key, "idempotency key")
    except TopicError as exc:
        raise Invalid(exc.message, code="invalid_idempotency_key") from exc


def check_action(action: str, *, gateway_level: bool) -> str:
    try:
        check_id(action, "action")
    except TopicError as exc:
        raise Invalid(exc.message, code="invalid_action") from exc
    if gateway_level and action not in GATEWAY_ACTIONS:
        allowed = ", ".join(sorted(GATEWAY_ACTIONS))
        raise Invalid(f"неизвестная команда шлюза {action!r}; допустимы: {allowed}", code="unknown_action")
    return action


def check_target(gateway: Gateway, device: Device | None) -> list[str]:
    """Refuse what cannot run (see the module docstring); return warnings for what may not."""
    if gateway.status == GatewayStatus.OFFLINE:
        raise Conflict("шлюз не в сети", code="gateway_offline", extra={"gateway_id": gateway.id})
    if device is not None and not device.present:
        raise Conflict(
            "устройство отсутствует в конфигурации шлюза", code="device_not_present",
            extra={"device_id": device.id},
        )
    return target_warnings(
        gateway.status, None if device is None else device.state, device is not None and device.status_at is not None
    )


def target_warnings(gateway_status: str, device_state: str | None, device_reported: bool) -> list[str]:
    """The warnings of a target that may take a command: a stale gateway, a device that reported
    itself offline or in error (never a device that has not reported yet)."""
    warnings = ["gateway_stale"] if gateway_status == GatewayStatus.STALE else []
    if device_reported and device_state in ("offline", "error"):
        warnings.append(f"device_{device_state}")
    return warnings


def find(session: Session, tenant_id: int, command_id: str, *, lock: bool = False) -> Command | None:
    query = select(Command).where(Command.tenant_id == tenant_id, Command.command_id == command_id)
    if lock:
        query = query.with_for_update()
    return session.exec(query).first()


def get(session: Session, tenant_id: int, command_id: str) -> Command:
    command = find(session, tenant_id, command_id)
    if command is None:
        raise NotFound(f"команда {command_id!r} не найдена", code="command_not_found")
    return command


def _same_intent(command: Command, gateway_id: int, device_id: int | None, action: str, args: dict[str, Any]) -> bool:
    return (
        command.gateway_id == gateway_id
        and command.device_id == device_id
        and command.action == action
        and command.args == args
    )


def create_for_publish(
    session: Session,
    *,
    tenant_id: int,
    gateway: Gateway,
    device: Device | None,
    action: str,
    args: dict[str, Any],
    key: str,
    ttl_s: float,
    now: datetime,
    publish: bool,
    existing: Command | bool | None = False,
) -> tuple[Command, bool, bool]:
    """The stored command for ``key`` or a new one, committed; whether it was created; and whether
    the caller must publish it.

    With ``publish`` a new row is created already marked published, and an existing row that
    :func:`needs_publish` is re-marked (under its row lock) in the same transaction. The loser of
    a concurrent insert of the same key never publishes: the winner does. ``existing``: the row
    the caller already read in this transaction (locked when ``publish``), or ``None`` when it
    found none; by default it is read here.
    """
    assert gateway.id is not None
    device_id = device.id if device is not None else None
    lost_race = False
    for attempt in range(2):
        if attempt > 0 or existing is False:
            existing = find(session, tenant_id, key, lock=publish and not lost_race)
        assert existing is not True
        if existing is not None:
            if not _same_intent(existing, gateway.id, device_id, action, args):
                raise Conflict(
                    f"ключ идемпотентности {key!r} уже использован для другой команды "
                    f"({existing.action!r} с другими параметрами или другим устройством)",
                    code="idempotency_key_reused",
                    extra={"command_id": key},
                )
            if publish and not lost_race and needs_publish(existing, now):
                existing.published_at = now
                existing.publish_count += 1
                session.add(existing)
                session.commit()
                return existing, False, True
            return existing, False, False
        command = Command(
            tenant_id=tenant_id,
            command_id=key,
            gateway_id=gateway.id,
            device_id=device_id,
            action=action,
            args=args,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
            published_at=now if publish else None,
            publish_count=1 if publish else 0,
        )
        session.add(command)
        try:
            session.commit()
        except IntegrityError:  # the same key posted concurrently: read the winner's row
            session.rollback()
            lost_race = True
            continue
        return command, True, publish
    raise Conflict(f"ключ идемпотентности {key!r} занят параллельным запросом", code="idempotency_key_busy")


def needs_publish(command: Command, now: datetime) -> bool:
    return not CommandStatus(command.status).is_final and command.expires_at > now


def to_message(command: Command, reply_to: str) -> BusCommand:
    """The bus payload: the same ``command_id`` and ``expires_at`` on every (re)publish."""
    return BusCommand(command_id=command.command_id, args=command.args, expires_at=command.expires_at, reply_to=reply_to)


def mark_published(session: Session, tenant_id: int, command_id: str, now: datetime) -> None:
    command = find(session, tenant_id, command_id, lock=True)
    if command is not None:
        command.published_at = now
        command.publish_count += 1
        session.add(command)


def reply_status(reply: Reply) -> CommandStatus:
    """A ``duplicate`` reply carries the first run's outcome: that outcome is the command's status."""
    if reply.status == ReplyStatus.DUPLICATE and reply.original is not None and reply.original.is_final:
        return CommandStatus(reply.original.value)
    return CommandStatus(reply.status.value)


def apply_reply(session: Session, command: Command, reply: Reply, now: datetime) -> bool:
    """Move the command forward (never back, never past a final status); True when it changed."""
    if not advance(command, reply, now):
        return False
    session.add(command)
    return True


def moves_forward(old: CommandStatus, new: CommandStatus) -> bool:
    """The one ordering rule: never back, never past a final status, ``progress`` may repeat."""
    if old.is_final:
        return False
    return not (new.rank < old.rank or (new.rank == old.rank and new != CommandStatus.PROGRESS))


def advance(command: Command, reply: Reply, now: datetime) -> bool:
    """:func:`apply_reply` on the object alone (no session): for a detached copy in a response."""
    new = reply_status(reply)
    if not moves_forward(CommandStatus(command.status), new):
        return False
    command.status = new.value
    command.stage = reply.stage
    if reply.code is not None or new.is_final:
        command.code = reply.code
    if reply.message is not None or new.is_final:
        command.message = (reply.message or "")[:500] or None
    if reply.result is not None:
        command.result = dict(reply.result)
    command.updated_at = now
    return True


def apply_reply_for(session: Session, tenant_id: int, gateway_id: int, reply: Reply, now: datetime) -> str:
    """Apply a reply that arrived on ``gateway_id``'s topics; returns what happened."""
    command = find(session, tenant_id, reply.command_id, lock=True)
    if command is None:
        return "unknown_command"
    if command.gateway_id != gateway_id:
        return "wrong_gateway"  # another gateway of the tenant cannot complete this command
    return "applied" if apply_reply(session, command, reply, now) else "ignored"


def to_public(command: Command, warnings: list[str] | None = None) -> CommandPublic:
    return CommandPublic.model_validate({**command.model_dump(), "warnings": warnings or []})


def is_final(status: str) -> bool:
    return CommandStatus(status).is_final
