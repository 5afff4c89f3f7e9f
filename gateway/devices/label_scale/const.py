"""The label-scale family described as data: actions, options, defaults, limits."""

from __future__ import annotations

from protocols.bus import ReplyCode

ACTION_UPLOAD_PLU = "upload_plu"
ACTION_DELETE_PLU = "delete_plu"
ACTION_STATUS = "status"

EVENT_PLU_SYNCED = "plu_synced"
"""The cloud's PLU list was put on the scale (``sync``): version, counts, failed PLUs."""

EVENTS: tuple[str, ...] = (EVENT_PLU_SYNCED,)

DEFAULT_POLL_INTERVAL_S = 5.0
"""A label scale is not weighed from the gateway: the poll only proves the link is alive."""
PROBE_PLU = 1
"""The PLU read by the link probe: any answer (the PLU or "no such PLU") means the scale is there."""

MAX_PLU_NUMBER = 999_999
MAX_DEPARTMENT = 99
MAX_ITEMS = 10_000
"""Largest table one command may carry (CL5500 memory holds a few thousand PLUs)."""
PROGRESS_EVERY = 50
"""A ``progress`` reply after every this many PLUs of a long upload."""

BINDING_OPTIONS = frozenset({"poll_interval_s"})
"""Options the binding consumes; every other option is passed to the driver factory."""

RERUN_ON = frozenset(
    {
        ReplyCode.DEVICE_OFFLINE.value,
        ReplyCode.DEVICE_TIMEOUT.value,
        "device_protocol",
        ReplyCode.INTERRUPTED.value,
    }
)
"""A repeat of an upload/delete that failed on the link runs again instead of getting a
``duplicate`` of that failure: both are idempotent on the scale (read-compare-write, delete of
an absent PLU is ``absent``), so running them again finishes the job without doing anything twice."""

FIELD_NAMES = {
    "plu": "номер ПЛУ",
    "name": "название",
    "price_per_kg": "цена за кг, коп.",
    "shelf_life_days": "срок годности, сут.",
    "item_code": "код товара",
    "barcode_format": "формат штрихкода",
    "department": "отдел",
    "items": "список ПЛУ",
    "plus": "список номеров ПЛУ",
}
"""How validation messages name each argument."""
