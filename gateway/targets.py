"""What the dispatcher sends commands to: a device worker, or the gateway itself.

Gateway commands (``ping``, ``rebirth``, ``rescan``) follow the same journal and expiry rules as
device commands and also run on a thread of their own, so a slow ``rescan`` never blocks the
intake of other commands.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel

from gateway.devices.base import NoArgs, Outcome
from gateway.devices.worker import CommandJob
from gateway.errors import CommandRejected, GatewayError, InvalidArgs, UnknownAction
from protocols.bus import ReplyCode, describe

log = logging.getLogger(__name__)


class CommandTarget(Protocol):
    """Anything that validates and runs commands on its own thread."""

    @property
    def id(self) -> str: ...

    def validate(self, action: str, args: dict[str, Any]) -> BaseModel: ...

    def submit(self, job: CommandJob) -> None:
        """Queue ``job`` and return: ``job.done`` runs later on the target's own thread."""


class GatewayTarget:
    """Runs gateway-level actions (functions of no arguments returning a result dict)."""

    id = "$gw"

    def __init__(self, actions: Mapping[str, Callable[[], dict[str, Any]]]) -> None:
        self._actions = dict(actions)
        self._queue: queue.Queue[CommandJob | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def known_actions(self) -> list[str]:
        return sorted(self._actions)

    def validate(self, action: str, args: dict[str, Any]) -> BaseModel:
        if action not in self._actions:
            known = self.known_actions()
            raise UnknownAction(
                f"у шлюза нет команды {action!r}; доступны: {', '.join(known)}", result={"known_actions": known}
            )
        try:
            return NoArgs.model_validate(args)
        except Exception as exc:
            message = describe(exc) if hasattr(exc, "errors") else str(exc)  # type: ignore[arg-type]
            raise InvalidArgs(f"{action}: {message}") from exc

    def submit(self, job: CommandJob) -> None:
        self._queue.put(job)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gateway-commands", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                outcome = Outcome.done(self._actions[job.action]())
            except CommandRejected as exc:
                outcome = Outcome.failed(exc.code, exc.message, exc.result)
            except GatewayError as exc:
                outcome = Outcome.failed(exc.code, exc.message)
            except Exception as exc:
                log.exception("gateway command %s failed", job.action)
                outcome = Outcome.failed(ReplyCode.INTERNAL, f"{type(exc).__name__}: {exc}")
            try:
                job.done(outcome)
            except Exception:
                log.exception("gateway command %s: reply delivery failed", job.action)
