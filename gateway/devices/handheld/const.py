"""The handheld family described as data: drivers, actions, events, poll intervals."""

from __future__ import annotations

DRIVER_POOL = "pool"
"""The store's task pool: the cloud assigns tasks to it; any handheld (or the assignee) works them."""
DRIVER_WEB = "web"
"""One handheld using the mobile page over the store Wi-Fi."""
DRIVERS = (DRIVER_POOL, DRIVER_WEB)

ACTION_ASSIGN_TASK = "assign_task"
ACTION_CANCEL_TASK = "cancel_task"
ACTION_GET_TASK = "get_task"
ACTION_STATUS = "status"

EVENT_TASK_OPENED = "task_opened"
EVENT_TASK_LINE = "task_line"
EVENT_TASK_COMPLETED = "task_completed"
TERMINAL_EVENTS = (EVENT_TASK_OPENED, EVENT_TASK_LINE, EVENT_TASK_COMPLETED)

POOL_POLL_S = 1.0
TERMINAL_POLL_S = 0.5
