"""Rules of handheld tasks: which device is a store's pool, what the command is, what the events say."""

from __future__ import annotations

from sqlmodel import Session, col, select

from cloud.commands import service as commands
from cloud.errors import Conflict, NotFound
from cloud.handheld.models import HandheldLine, HandheldTaskPublic
from cloud.registry.models import Device, Event, Gateway, Store

POOL_DRIVER = "pool"
HANDHELD_KIND = "handheld"
ASSIGN_ACTION = "assign_task"
TASK_EVENTS = ("task_opened", "task_line", "task_completed")


def command_id(task_id: str) -> str:
    """The ``assign_task`` command of a task: one per task id, so a retried POST is the same command."""
    return f"hht-{task_id}"


def get_store(session: Session, tenant_id: int, store_id: int) -> Store:
    store = session.exec(select(Store).where(Store.id == store_id, Store.tenant_id == tenant_id)).first()
    if store is None:
        raise NotFound(f"магазин {store_id} не найден", code="store_not_found")
    return store


def pool_device(session: Session, tenant_id: int, store_id: int) -> Device:
    """The store's handheld pool (``kind = handheld``, ``driver = pool``, present in the inventory)."""
    get_store(session, tenant_id, store_id)
    device = session.exec(
        select(Device)
        .join(Gateway, Gateway.id == Device.gateway_id)  # type: ignore[arg-type]
        .where(Device.tenant_id == tenant_id, Gateway.store_id == store_id, Device.kind == HANDHELD_KIND,
               Device.driver == POOL_DRIVER, col(Device.present).is_(True))
        .order_by(col(Device.id))
    ).first()
    if device is None:
        raise Conflict("в магазине нет пула ТСД (устройство kind=handheld, driver=pool)", code="no_handheld_pool")
    return device


def get_task(session: Session, tenant_id: int, store_id: int, task_id: str) -> HandheldTaskPublic:
    """The task as the assign command and the handhelds' events describe it (lines deduplicated by ``line_id``)."""
    get_store(session, tenant_id, store_id)
    command = commands.find(session, tenant_id, command_id(task_id))
    if command is None or command.action != ASSIGN_ACTION or command.device_id is None:
        raise NotFound(f"задание ТСД {task_id!r} не найдено", code="handheld_task_not_found")
    gateway = session.get_one(Gateway, command.gateway_id)
    if gateway.store_id != store_id:
        raise NotFound(f"задание ТСД {task_id!r} не найдено", code="handheld_task_not_found")
    rows = session.exec(
        select(Event)
        .where(Event.tenant_id == tenant_id, Event.gateway_id == command.gateway_id,
               col(Event.type).in_(TASK_EVENTS), Event.data["task_id"].as_string() == task_id)
        .order_by(col(Event.seq), col(Event.id))
    ).all()
    lines: dict[str, HandheldLine] = {}
    opened: list[str] = []
    completed = None
    for event in rows:
        data = event.data
        if event.type == "task_line" and data.get("line_id") and data["line_id"] not in lines:
            lines[data["line_id"]] = HandheldLine.model_validate({**data, "device_id": event.device_id})
        elif event.type == "task_opened" and data.get("terminal") not in opened:
            opened.append(str(data.get("terminal")))
        elif event.type == "task_completed" and completed is None:
            completed = data
    status = "completed" if completed else ("in_progress" if lines or opened else "assigned")
    return HandheldTaskPublic(
        task_id=task_id, store_id=store_id, device_id=command.device_id, kind=str(command.args.get("kind")),
        title=str(command.args.get("title")), assigned=command.status, assign_code=command.code,
        assign_message=command.message, status=status, opened_by=opened, lines=list(lines.values()),
        completed=completed, created_at=command.created_at,
    )
