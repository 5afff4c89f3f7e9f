"""What every scanner driver shares: the options a store configures and the ``Scanner`` API
the gateway binds to (``open``/``close``/``read_scan``/iteration), whatever the link."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from drivers.errors import DriverConfigError
from protocols.barcodes import DEFAULT_WEIGHT_FORMATS, BarcodeError, WeightBarcodeFormat
from protocols.scanner import BytesDiscarded, FramingConfigError, LineFraming, Scan


@dataclass(frozen=True, slots=True)
class ScannerOptions:
    """A scanner's configuration in a store.

    ``framing``: prefix, suffix, AIM ids and GS substitute as the scanner was programmed
    (keyboard wedges use it too: Enter is CR). ``weight_formats``: the store's weight-label
    layouts (prefixes), used to read PLU and weight from weight barcodes.
    ``fallback_encoding``: for codes that are not UTF-8 (Cyrillic QR codes in cp1251).
    ``on_discard``: called with every ``BytesDiscarded`` (garbage, overlong or broken lines).
    """

    framing: LineFraming = field(default_factory=LineFraming)
    weight_formats: tuple[WeightBarcodeFormat, ...] = DEFAULT_WEIGHT_FORMATS
    fallback_encoding: str = "cp1251"
    on_discard: Callable[[BytesDiscarded], None] | None = None

    @classmethod
    def build(
        cls,
        *,
        prefix: str = "",
        suffix: str = "CR",
        aim: bool = False,
        gs_substitute: str | None = None,
        weight_prefixes: tuple[str, ...] | None = None,
        intercharacter_timeout: float = 0.1,
    ) -> ScannerOptions:
        """Options from config spellings (``suffix="CRLF"``, ``gs_substitute="<GS>"``,
        ``weight_prefixes=("22", "23")``); ``DriverConfigError`` with the reason if wrong."""
        try:
            framing = LineFraming.from_names(
                prefix=prefix,
                suffix=suffix,
                aim=aim,
                gs_substitute=gs_substitute,
                intercharacter_timeout=intercharacter_timeout,
            )
            formats = (
                DEFAULT_WEIGHT_FORMATS if weight_prefixes is None else (WeightBarcodeFormat(weight_prefixes),)
            )
        except (FramingConfigError, BarcodeError) as exc:
            raise DriverConfigError(f"Неверные настройки сканера: {exc}") from exc
        return cls(framing=framing, weight_formats=formats)


class Scanner(Protocol):
    """A barcode scanner: scans arrive on their own; the host only reads them."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    @property
    def is_open(self) -> bool: ...

    def read_scan(self, timeout: float) -> Scan | None:
        """The next scan within ``timeout`` seconds, else ``None``; ``DeviceUnavailable`` on a lost link."""
        ...

    def __iter__(self) -> Iterator[Scan]: ...
