"""What a device family binding is: actions as data, a poll, status data and a recovery hook.

A binding owns one driver object and is only ever called from its device's worker thread
(``gateway.devices.worker``), so a poll and a command can never interleave on the wire
(ThingsBoard #1841). Families live in their own folder (``gateway/devices/scale/``) and are
registered by :class:`~protocols.bus.DeviceKind` in ``gateway.devices.registry``.

``recover`` is the hook for commands the journal found ``running`` at startup (the gateway died
mid-command). The default answers ``failed``/``interrupted`` without touching the device, which
is right for a scale. A fiscal register or payment terminal overrides it to ask the device for
its last document or transaction (and sets ``recover_needs_device``), so the outcome is read
from the device instead of being guessed or re-run. While such a recovery waits for an
unreachable device, a repeat of the command is answered ``failed``/``unknown_outcome`` with
:meth:`DeviceBinding.unresolved_message` (the journal row stays ``running``).

What the supervisor gives every binding besides its config (attributes, set before the worker
starts, so the constructor signature ``(config, emit, factory)`` stays the same for every family):

* ``data_dir`` — the gateway's data directory; a family that keeps its own table puts it at
  :meth:`DeviceBinding.state_path` (``{data_dir}/{family}-{id}.db`` unless the ``state_file``
  option names another file).
* a status listener — :meth:`DeviceBinding.report_status` lets a binding say the device is
  ``error`` (paper out, cover open) or ``busy`` (a payment runs) with a Russian detail, and back
  to ``online``; the worker publishes the retained status when it changes, at once.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.config import DeviceConfig
from gateway.errors import InvalidArgs, UnknownAction
from gateway.journal import StoredReply
from protocols.bus import DeviceInfo, DeviceKind, DeviceState, Reply, ReplyCode, ReplyStatus, describe

log = logging.getLogger(__name__)

LEGACY_STATE_DIR = Path("var")
"""Where family tables went before bindings knew the data dir (relative to the working directory)."""

EmitFn = Callable[[str, dict[str, Any]], None]
"""``emit(event_type, data)``: store an event of this device in the outbox."""


ProgressFn = Callable[[str, str], None]
"""``progress(stage, message)``: publish a ``progress`` reply for the running command."""


def _no_progress(stage: str, message: str) -> None:
    return None


@dataclass(frozen=True)
class CommandContext:
    """What a ``context=True`` handler gets besides its args (see the module doc)."""

    command_id: str
    progress: ProgressFn = _no_progress
    previous: Reply | None = None
    """The stored ``failed`` reply when a repeat re-runs a command under ``rerun_on``."""
    journaled: list[Callable[[], None]] = field(default_factory=list)
    """Called after the final reply is journaled and before it is published."""


class Invocation(BaseModel):
    """Validated args plus their :class:`CommandContext`, as the dispatcher queues them."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    args: BaseModel
    context: CommandContext


class NoArgs(BaseModel):
    """Args model of actions that take none (unknown keys are refused: a typo is an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Action:
    """One command a device family accepts: name, args schema, handler, whether it has effects."""

    name: str
    args: type[BaseModel]
    handler: Callable[..., dict[str, Any]]
    side_effect: bool = False
    doc: str = ""
    context: bool = False
    when_busy: Literal["queue", "refuse"] = "queue"
    rerun_on: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Outcome:
    """A final outcome before it becomes a :class:`Reply` (bindings do not know the session)."""

    status: ReplyStatus
    result: dict[str, Any] | None = None
    code: str | None = None
    message: str | None = None

    def to_reply(self, command_id: str, session: int) -> Reply:
        return Reply(
            session=session,
            command_id=command_id,
            status=self.status,
            result=self.result,
            code=self.code,
            message=self.message,
        )

    @classmethod
    def done(cls, result: dict[str, Any] | None = None) -> Outcome:
        return cls(ReplyStatus.DONE, result=result or {})

    @classmethod
    def failed(cls, code: str, message: str, result: dict[str, Any] | None = None) -> Outcome:
        return cls(ReplyStatus.FAILED, result=result, code=code, message=message)


@dataclass
class StatusSnapshot:
    """What goes into ``…/dev/{device}/status`` (compared to publish on change only)."""

    state: str
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class DeviceBinding(ABC):
    """Base of every family binding. Subclasses set the class attributes and the abstract methods."""

    kind: ClassVar[DeviceKind]
    capabilities: ClassVar[tuple[str, ...]] = ()
    events: ClassVar[tuple[str, ...]] = ()
    recover_needs_device: ClassVar[bool] = False

    def __init__(self, config: DeviceConfig, emit: EmitFn, factory: Any = None) -> None:
        self.config = config
        self.emit = emit
        self.factory = factory
        self.data_dir: Path = LEGACY_STATE_DIR
        """The gateway's data directory (set by the supervisor; ``var`` for a binding built alone)."""
        self._reported: tuple[DeviceState, str] | None = None
        self._status_listener: Callable[[], None] | None = None

    @property
    def id(self) -> str:
        return self.config.id

    # Commands ----------------------------------------------------------------------------
    @abstractmethod
    def actions(self) -> Mapping[str, Action]:
        """Every action of this family, by name."""

    def known_actions(self) -> list[str]:
        return sorted(self.actions())

    def validate(self, action: str, args: dict[str, Any]) -> BaseModel:
        """Parse ``args`` for ``action``; raise :class:`UnknownAction` / :class:`InvalidArgs`."""
        spec = self.actions().get(action)
        if spec is None:
            known = self.known_actions()
            raise UnknownAction(
                f"у устройства {self.id!r} нет команды {action!r}; доступны: {', '.join(known)}",
                result={"known_actions": known},
            )
        try:
            return spec.args.model_validate(args)
        except ValidationError as exc:
            raise InvalidArgs(f"{action}: {describe(exc)}") from exc

    def execute(self, action: str, args: BaseModel) -> dict[str, Any]:
        """Run an already validated action on the device (worker thread only).

        ``args`` is the action's args model or an :class:`Invocation` wrapping it.
        """
        spec = self.actions()[action]
        context = CommandContext("")
        if isinstance(args, Invocation):
            context = args.context
            args = args.args
        if spec.context:
            return spec.handler(args, context)
        return spec.handler(args)

    def busy_message(self, action: str, running_action: str, running_id: str) -> str:
        """Why ``action`` is refused while ``running_action`` (``running_id``) is in flight."""
        return (f"устройство {self.id!r} занято: выполняется {running_action!r} ({running_id}); "
                "повторите, когда она завершится")

    def recover(self, entry: StoredReply) -> Outcome:
        """Decide the outcome of a command interrupted by a gateway crash (see module doc)."""
        return Outcome.failed(
            ReplyCode.INTERRUPTED,
            f"шлюз остановился во время команды {entry.action!r}; её исход неизвестен",
        )

    def unresolved_message(self, entry: StoredReply) -> str:
        """The answer to a repeat of ``entry`` while its recovery waits for the unreachable device."""
        return (
            f"исход команды {entry.action} неизвестен: устройство {self.id!r} не отвечает после перезапуска шлюза; "
            "окончательный ответ придёт, когда оно ответит"
        )

    # Gateway context -------------------------------------------------------------------------
    def state_path(self, family: str, option: str = "state_file") -> Path:
        """The family's own SQLite file: the ``option`` if set, else ``{data_dir}/{family}-{id}.db``.

        A file left at the old default (``var/{family}-{id}.db`` under the working directory) by a
        gateway that did not pass the data dir is kept while the new one does not exist: it may
        hold the only record of a document or a label batch in progress.
        """
        explicit = self.config.options.get(option)
        if explicit:
            return Path(str(explicit))
        name = f"{family}-{self.id}.db"
        path = self.data_dir / name
        legacy = LEGACY_STATE_DIR / name
        if not path.exists() and legacy.exists() and legacy.resolve() != path.resolve():
            log.warning("device %s: keeping its table at the old default %s (move it to %s)", self.id, legacy, path)
            return legacy
        return path

    def report_status(self, state: DeviceState | None, detail: str = "") -> None:
        """Say the device is ``error`` or ``busy`` (``detail`` in Russian), or ``None``/``online`` again.

        Worker thread (poll, open, a command). Applies while the worker has the device online (an
        ``offline`` device stays ``offline``); ``error``/``busy`` are published at once, the return
        to ``online`` after the job at hand (its reply first).
        """
        if state is None or state is DeviceState.ONLINE:
            reported = None
        elif state in (DeviceState.ERROR, DeviceState.BUSY):
            reported = (state, detail)
        else:
            raise ValueError(f"a binding reports error or busy, not {state}")
        if reported == self._reported:
            return
        self._reported = reported
        listener = self._status_listener
        if listener is not None:
            listener()

    @property
    def reported_status(self) -> tuple[DeviceState, str] | None:
        """What :meth:`report_status` last said (``None``: nothing to add to ``online``)."""
        return self._reported

    def attach_status_listener(self, listener: Callable[[], None] | None) -> None:
        """The worker's "publish now" callback (called after :meth:`report_status` changed something)."""
        self._status_listener = listener

    def clear_reported_status(self) -> None:
        """Forget the reported status (the worker calls this when the device goes down)."""
        self._reported = None

    # Lifecycle (worker thread only) ----------------------------------------------------------
    @abstractmethod
    def open(self) -> None:
        """Build and open the driver; raise a ``DriverError`` when the device is not there."""

    @abstractmethod
    def close(self) -> None:
        """Close the driver; never raises."""

    @property
    def poll_interval(self) -> float | None:
        """Seconds between polls, or ``None`` for a device that is never polled."""
        return None

    def poll(self) -> None:
        """One periodic read (may ``emit`` events); raises driver errors like any call."""
        return None

    def status_data(self) -> dict[str, Any]:
        """Family-specific part of the status (published when it changes)."""
        return {}

    def info(self) -> DeviceInfo:
        return DeviceInfo(
            id=self.id,
            kind=self.config.kind,
            model=self.config.model,
            driver=self.config.driver,
            port=self.config.url,
            capabilities=tuple(sorted(self.actions())) or self.capabilities,
            events=self.events,
        )
