"""Binds handhelds to the bus: the task pool device and one device per handheld.

``driver = "pool"``: the device the cloud sends ``assign_task`` / ``cancel_task`` / ``get_task``
to; ``online`` while the handheld server listens (its status detail says why not, e.g. the
port is taken). ``driver = "web"``: one handheld; ``online`` while its page holds a WebSocket
to the gateway, ``offline`` otherwise; status data carries the user, the current task and the
battery the page reported (``battery = "unknown"`` when the browser does not expose it). Its
events (``task_opened``, ``task_line``, ``task_completed``) are written by the hub.

The "driver" of this family is the :class:`~gateway.handheld.hub.Hub`, passed as the factory by
``gateway.handheld.service``; without a ``[handheld]`` table there is none and the device is
reported as misconfigured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.errors import DeviceUnavailable, DriverConfigError
from gateway.config import DeviceConfig
from gateway.devices.base import Action, DeviceBinding, EmitFn, NoArgs
from gateway.devices.handheld import const
from gateway.handheld.hub import Hub
from gateway.handheld.models import TaskRef, TaskSpec
from protocols.bus import DeviceKind


class HandheldBinding(DeviceBinding):
    kind = DeviceKind.HANDHELD

    def __init__(self, config: DeviceConfig, emit: EmitFn, factory: Any = None) -> None:
        super().__init__(config, emit, factory)
        if config.driver not in const.DRIVERS:
            raise DriverConfigError(
                f"handheld driver must be one of {', '.join(const.DRIVERS)}, got {config.driver!r}"
            )
        if not isinstance(factory, Hub):
            raise DriverConfigError("handhelds need the [handheld] table in the gateway config")
        self.hub: Hub = factory
        self.pool = config.driver == const.DRIVER_POOL
        self.events = () if self.pool else const.TERMINAL_EVENTS  # type: ignore[misc]
        self._actions: dict[str, Action] = {const.ACTION_STATUS: Action(const.ACTION_STATUS, NoArgs, self._status)}
        if self.pool:
            self.hub.register_pool(self.id)
            self._actions.update({
                const.ACTION_ASSIGN_TASK: Action(
                    const.ACTION_ASSIGN_TASK, TaskSpec, self._assign, side_effect=True,
                    doc="store a task for the store's handhelds (idempotent by task_id)",
                ),
                const.ACTION_CANCEL_TASK: Action(const.ACTION_CANCEL_TASK, TaskRef, self._cancel, side_effect=True),
                const.ACTION_GET_TASK: Action(const.ACTION_GET_TASK, TaskRef, self._get),
            })
        else:
            self.hub.register_terminal(self.id)

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    # Lifecycle -----------------------------------------------------------------------------
    @property
    def poll_interval(self) -> float | None:
        return const.POOL_POLL_S if self.pool else const.TERMINAL_POLL_S

    def open(self) -> None:
        self._check()

    def close(self) -> None:
        return None

    def poll(self) -> None:
        self._check()

    def status_data(self) -> dict[str, Any]:
        return self.hub.pool_status() if self.pool else self.hub.terminal_status(self.id)

    def _check(self) -> None:
        if self.pool:
            if self.hub.problem is not None:
                raise DeviceUnavailable(self.hub.problem)
        elif not self.hub.is_connected(self.id):
            raise DeviceUnavailable("the handheld is not connected to the gateway")

    # Actions -------------------------------------------------------------------------------
    def _assign(self, args: TaskSpec) -> dict[str, Any]:
        return self.hub.assign(args)

    def _cancel(self, args: TaskRef) -> dict[str, Any]:
        return self.hub.cancel(args.task_id)

    def _get(self, args: TaskRef) -> dict[str, Any]:
        return self.hub.task_summary(args.task_id)

    def _status(self, args: NoArgs) -> dict[str, Any]:
        return self.status_data()
