"""Handheld (ТСД) tasks: assign a task to a store's handheld pool, read its lines back from events.

Stateless over the existing ``commands`` and ``events`` tables: the task is the ``assign_task``
command (``command_id = "hht-{task_id}"``), its progress the ``task_*`` events of the store's
handhelds. The module that owns a task (stock count, receipt…) decides what the lines mean.
"""
