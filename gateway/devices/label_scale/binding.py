"""Binds a ``drivers.label_scale`` LabelScale to the bus: PLU upload/delete, link probe, status.

``upload_plu`` is idempotent twice over: the journal answers a repeated ``command_id`` with the
stored reply, and the driver reads every PLU back before writing it, so a *new* command with the
same table writes nothing (every PLU ``unchanged``). The reply is ``done`` whenever the upload
ran — PLUs the protocol or the scale refused are listed as ``failed`` with the reason and
counted — and ``failed`` only when the link broke: then the message says how far it got, and a
retry with the same ``command_id`` runs again (``RERUN_ON``) and finishes the table.

The scale is polled only to prove the link (one read of ``PROBE_PLU``): an unplugged scale goes
``offline`` in the retained status without waiting for a command. The CAS protocol has no
"how many PLUs" request, so ``plu_count`` stays ``null``; ``plus_confirmed`` is how many PLUs
this gateway has seen on the scale (written or unchanged, minus deleted) since it came online.

The driver comes from a factory with the contract of ``drivers.label_scale.open_label_scale(
driver, url, options)`` — an *opened* scale or a ``DriverError`` — by default that function.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ValidationError

from drivers.errors import (
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnavailable,
    DriverConfigError,
    DriverError,
)
from drivers.label_scale import LabelScale, LabelScaleRejected, open_label_scale
from gateway.config import DeviceConfig
from gateway.devices.base import Action, CommandContext, DeviceBinding, EmitFn, NoArgs
from gateway.devices.label_scale import const
from gateway.devices.label_scale.actions import (
    DeletePluArgs,
    UploadPluArgs,
    explain,
    plu_result_json,
    upload_summary,
)
from gateway.errors import InvalidArgs
from protocols.bus import DeviceKind

log = logging.getLogger(__name__)

LabelScaleFactory = Callable[[str, str, dict[str, Any]], LabelScale]

_LINK_ERRORS = (DeviceUnavailable, DeviceTimeout, DeviceProtocolError)
_WHY: dict[type[DriverError], str] = {
    DeviceUnavailable: "недоступны",
    DeviceTimeout: "не отвечают",
    DeviceProtocolError: "отвечают непонятно",
}


def default_factory(driver: str, url: str, options: dict[str, Any]) -> LabelScale:
    """``drivers.label_scale.open_label_scale``: build the named driver and open it."""
    return open_label_scale(driver, url, options)


class LabelScaleBinding(DeviceBinding):
    kind = DeviceKind.LABEL_SCALE
    capabilities = (const.ACTION_DELETE_PLU, const.ACTION_STATUS, const.ACTION_UPLOAD_PLU)
    events = const.EVENTS

    def __init__(self, config: DeviceConfig, emit: EmitFn, factory: LabelScaleFactory | None = None) -> None:
        super().__init__(config, emit, factory)
        self._factory: LabelScaleFactory = factory or default_factory
        options = dict(config.options)
        self._poll_interval = _positive_float(options, "poll_interval_s", const.DEFAULT_POLL_INTERVAL_S)
        self._driver_options = {k: v for k, v in options.items() if k not in const.BINDING_OPTIONS}
        self._scale: LabelScale | None = None
        self._confirmed: set[tuple[int, int]] = set()
        self._last_upload: dict[str, Any] | None = None
        self.plu_list_version: int | None = None
        """The cloud PLU list version last put whole on the scale (``sync``) since it came online."""
        self._actions: dict[str, Action] = {
            const.ACTION_UPLOAD_PLU: Action(
                const.ACTION_UPLOAD_PLU,
                UploadPluArgs,
                self._upload,
                side_effect=True,
                context=True,
                rerun_on=const.RERUN_ON,
                doc="загрузить таблицу ПЛУ (пишутся только изменившиеся)",
            ),
            const.ACTION_DELETE_PLU: Action(
                const.ACTION_DELETE_PLU,
                DeletePluArgs,
                self._delete,
                side_effect=True,
                rerun_on=const.RERUN_ON,
                doc="удалить ПЛУ из весов",
            ),
            const.ACTION_STATUS: Action(
                const.ACTION_STATUS, NoArgs, self._status, doc="проверить связь с весами"
            ),
        }

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    def validate(self, action: str, args: dict[str, Any]) -> BaseModel:
        """As the base, but a bad table is explained in Russian, item by item."""
        spec = self._actions.get(action)
        if spec is None or spec.args is NoArgs:
            return super().validate(action, args)
        try:
            return spec.args.model_validate(args)
        except ValidationError as exc:
            raise InvalidArgs(explain(action, exc, args if isinstance(args, Mapping) else {})) from exc

    # Lifecycle ----------------------------------------------------------------------------
    @property
    def poll_interval(self) -> float | None:
        return self._poll_interval

    def open(self) -> None:
        self.close()
        with self._link("подключение"):
            self._scale = self._factory(self.config.driver, self.config.url, dict(self._driver_options))
        self._confirmed.clear()  # someone may have edited the table while we were away
        self.plu_list_version = None

    def close(self) -> None:
        scale, self._scale = self._scale, None
        if scale is not None:
            try:
                scale.close()
            except Exception as exc:
                log.debug("closing label scale %s: %s", self.id, exc)

    def poll(self) -> None:
        scale = self._require()
        with self._link("проверка связи"):
            scale.read_plu(const.PROBE_PLU)

    def status_data(self) -> dict[str, Any]:
        return {
            "plu_count": None,
            "plus_confirmed": len(self._confirmed),
            "last_upload": self._last_upload,
            "plu_list_version": self.plu_list_version,
        }

    # Actions ----------------------------------------------------------------------------
    def _upload(self, args: UploadPluArgs, context: CommandContext) -> dict[str, Any]:
        scale = self._require()
        items = args.items
        entries: list[dict[str, Any]] = []
        for start in range(0, len(items), const.PROGRESS_EVERY):
            chunk = items[start : start + const.PROGRESS_EVERY]
            with self._link("загрузка ПЛУ", done=len(entries), total=len(items)):
                results = scale.upload_plu([item.driver_fields() for item in chunk])
            for item, result in zip(chunk, results, strict=True):
                entries.append(plu_result_json(item.plu, result))
                if result.status != "failed":
                    self._confirmed.add((item.department, item.plu))
            if len(entries) < len(items):
                context.progress("uploading", f"Обработано ПЛУ: {len(entries)} из {len(items)}")
        summary = upload_summary(entries)
        self._last_upload = {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **{key: summary[key] for key in ("total", "written", "unchanged", "failed")},
        }
        return summary

    def _delete(self, args: DeletePluArgs) -> dict[str, Any]:
        scale = self._require()
        entries: list[dict[str, Any]] = []
        for number in args.plus:
            try:
                with self._link("удаление ПЛУ", done=len(entries), total=len(args.plus)):
                    deleted = scale.delete_plu(number, args.department)
            except LabelScaleRejected as exc:
                entries.append({"plu": number, "status": "failed", "code": exc.code, "reason": exc.message})
                continue
            self._confirmed.discard((args.department, number))
            entries.append({"plu": number, "status": "deleted" if deleted else "absent"})
        counts = {s: sum(1 for e in entries if e["status"] == s) for s in ("deleted", "absent", "failed")}
        return {"total": len(entries), **counts, "complete": counts["failed"] == 0, "plus": entries}

    def _status(self, args: NoArgs) -> dict[str, Any]:
        self.poll()
        return {"reachable": True, **self.status_data()}

    # Internals ----------------------------------------------------------------------------
    def _require(self) -> LabelScale:
        if self._scale is None:
            raise DeviceUnavailable(f"Весы с печатью этикеток {self.id!r} не подключены")
        return self._scale

    @contextmanager
    def _link(self, what: str, *, done: int | None = None, total: int | None = None) -> Iterator[None]:
        """Name the device (and how far a batch got) in link errors; keep their class and code."""
        try:
            yield
        except _LINK_ERRORS as exc:
            cls, why = next((cls, why) for cls, why in _WHY.items() if isinstance(exc, cls))
            text = f"Весы с печатью этикеток {self.id!r} {why} ({what}): {exc.message}"
            if total is not None:
                text += f"; обработано ПЛУ: {done} из {total}, повтор с тем же command_id продолжит"
            raise cls(text, code=exc.code) from exc


def _positive_float(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise DriverConfigError(f"Параметр {key} должен быть числом, а не {value!r}") from exc
    if number <= 0:
        raise DriverConfigError(f"Параметр {key} должен быть больше 0, а не {value!r}")
    return number
