"""Binds a ``drivers.scanner.SerialScanner`` to the bus: ``scan`` events and ``status``.

A scanner only talks, so the "poll" is a read: every ``poll_interval_s`` the worker calls
``read_scan`` with a short timeout (``read_timeout_s``, 0.25 s), then drains the scans already
decoded, and each becomes a ``scan`` event through the outbox (durable first; see
``events.py`` for the JSON). A ``status`` command therefore waits at most one read.

Weight labels are read with the store's layout from the device options: ``weight_prefixes``
(e.g. ``["22", "23"]``) and ``weight_item_digits`` (5 by default). Framing options
(``prefix``, ``suffix``, ``aim``, ``gs_substitute``, ``intercharacter_timeout``) and
``baudrate`` go to the driver as the scanner was programmed.

An unplugged USB-CDC scanner makes the read raise ``DeviceUnavailable``: the worker closes the
port, publishes ``offline`` and reopens the same path with backoff (``/dev/serial/by-id/…``
comes back after a replug). Garbage on the line is never an error: it is counted.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from drivers.errors import DeviceUnavailable, DriverConfigError
from drivers.scanner import Scanner, ScannerOptions, SerialScanner
from gateway.config import DeviceConfig
from gateway.devices.base import Action, DeviceBinding, EmitFn, NoArgs
from gateway.devices.scanner import const
from gateway.devices.scanner.events import scan_json
from protocols.barcodes import BarcodeError, WeightBarcodeFormat
from protocols.bus import DeviceKind
from protocols.scanner import BytesDiscarded

log = logging.getLogger(__name__)

ScannerFactory = Callable[[str, str, ScannerOptions, dict[str, Any]], Scanner]


def default_factory(driver: str, url: str, options: ScannerOptions, driver_options: dict[str, Any]) -> Scanner:
    """A ``SerialScanner`` on a serial path, pty or ``tcp://host:port`` (not opened)."""
    if driver not in ("serial", "cdc"):
        raise DriverConfigError(f"Неизвестный драйвер сканера {driver!r}; доступен: serial")
    return SerialScanner(url, options, **driver_options)


class ScannerBinding(DeviceBinding):
    kind = DeviceKind.SCANNER
    capabilities = (const.ACTION_STATUS,)
    events = const.EVENTS

    def __init__(self, config: DeviceConfig, emit: EmitFn, factory: ScannerFactory | None = None) -> None:
        super().__init__(config, emit, factory)
        self._factory: ScannerFactory = factory or default_factory
        _check_url(config.url)
        options = dict(config.options)
        known = const.BINDING_OPTIONS | const.FRAMING_OPTIONS | const.DRIVER_OPTIONS
        unknown = sorted(set(options) - known)
        if unknown:
            raise DriverConfigError(
                f"сканер: неизвестные параметры {', '.join(unknown)}; допустимы: {', '.join(sorted(known))}"
            )
        self._poll_interval = _positive(options, "poll_interval_s", const.DEFAULT_POLL_INTERVAL_S)
        self._read_timeout = _positive(options, "read_timeout_s", const.DEFAULT_READ_TIMEOUT_S)
        self._options = _scanner_options(options, self._discarded)
        self._driver_options = {k: v for k, v in options.items() if k in const.DRIVER_OPTIONS}
        self._scanner: Scanner | None = None
        self.scans = 0
        self.discarded = 0
        self._actions: dict[str, Action] = {
            const.ACTION_STATUS: Action(const.ACTION_STATUS, NoArgs, self._status_action),
        }

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    # Lifecycle (worker thread) ---------------------------------------------------------------
    @property
    def poll_interval(self) -> float | None:
        return self._poll_interval

    def open(self) -> None:
        self.close()
        scanner = self._factory(self.config.driver, self.config.url, self._options, dict(self._driver_options))
        scanner.open()
        self._scanner = scanner

    def close(self) -> None:
        scanner, self._scanner = self._scanner, None
        if scanner is not None:
            try:
                scanner.close()
            except Exception as exc:
                log.debug("closing scanner: %s", exc)

    def poll(self) -> None:
        scanner = self._require()
        scan = scanner.read_scan(self._read_timeout)
        count = 0
        while scan is not None:
            self.emit(const.EVENT_SCAN, scan_json(scan))
            self.scans += 1
            count += 1
            if count >= const.MAX_SCANS_PER_POLL:
                break
            scan = scanner.read_scan(0.0)

    def status_data(self) -> dict[str, Any]:
        formats = self._options.weight_formats
        return {"weight_prefixes": sorted({p for f in formats for p in f.prefixes})}

    # Actions ----------------------------------------------------------------------------
    def _status_action(self, args: NoArgs) -> dict[str, Any]:
        self._require()
        return {**self.status_data(), "scans": self.scans, "discarded": self.discarded}

    # Internals ----------------------------------------------------------------------------
    def _require(self) -> Scanner:
        if self._scanner is None:
            raise DeviceUnavailable(f"сканер {self.id!r} не подключён")
        return self._scanner

    def _discarded(self, event: BytesDiscarded) -> None:
        self.discarded += 1


def _scanner_options(options: Mapping[str, Any], on_discard: Callable[[BytesDiscarded], None]) -> ScannerOptions:
    framing = {k: v for k, v in options.items() if k in const.FRAMING_OPTIONS}
    prefixes = options.get("weight_prefixes")
    if prefixes is not None and (
        isinstance(prefixes, str) or not isinstance(prefixes, list | tuple)
        or not all(isinstance(p, str) for p in prefixes)
    ):
        raise DriverConfigError(f"weight_prefixes: ожидается список строк, например [\"22\", \"23\"], а не {prefixes!r}")
    try:
        built = ScannerOptions.build(weight_prefixes=tuple(prefixes) if prefixes is not None else None, **framing)
    except TypeError as exc:
        raise DriverConfigError(f"Неверные настройки сканера: {exc}") from exc
    digits = options.get("weight_item_digits")
    if digits is not None:
        if isinstance(digits, bool) or not isinstance(digits, int):
            raise DriverConfigError(f"weight_item_digits: ожидается целое число, а не {digits!r}")
        try:
            formats = tuple(WeightBarcodeFormat(f.prefixes, digits, f.measure) for f in built.weight_formats)
        except BarcodeError as exc:
            raise DriverConfigError(f"Неверные настройки сканера: {exc}") from exc
        built = dataclasses.replace(built, weight_formats=formats)
    return dataclasses.replace(built, on_discard=on_discard)


def _positive(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise DriverConfigError(f"option {key} must be a number, got {value!r}") from exc
    if number <= 0:
        raise DriverConfigError(f"option {key} must be > 0, got {value!r}")
    return number


def _check_url(url: str) -> None:
    """A device address this family can open: a network/USB URL or an absolute device path."""
    schemes = ("tcp://", "socket://", "rfc2217://")
    if url.lower().startswith(schemes) or url.startswith("/"):
        return
    raise DriverConfigError(
        f"scanner: адрес {url!r} не подходит: ожидается {', '.join(schemes)}… "
        "или абсолютный путь к порту (/dev/…)"
    )
