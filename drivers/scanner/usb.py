"""USB HID scanners through pyusb: HID POS (usage page 0x8C) and keyboard-wedge mode.

``open`` finds the scanner by VID/PID (and serial number when several are plugged), picks
the HID interface with an interrupt IN endpoint — the HID POS one (interface protocol 0) or
the boot keyboard (protocol 1), as ``mode`` says (``auto``: HID POS when the scanner exposes
it) —, detaches the kernel driver (``usbhid``: otherwise a keyboard wedge would also type into
the console) and claims the interface. ``read_scan`` reads input reports from the endpoint
and decodes them with ``protocols.scanner`` (``HidPosDecoder``, or ``KeyboardDecoder`` +
``LineDecoder`` with the options' framing, Enter being the usual CR suffix). ``close``
releases the interface and gives it back to the kernel driver.

``select_hid_interface`` is pure (any objects shaped like pyusb descriptors) and pyusb is
imported lazily, so all of it is tested with a fake device. Errors: no device / a USB error →
``DeviceUnavailable`` (the port is closed; ``open`` again to reconnect); no usable HID
interface → ``DriverConfigError`` (wrong VID/PID or the scanner is programmed for another
mode). A broken report is discarded like garbage on a serial line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from drivers.errors import DeviceUnavailable, DriverConfigError
from drivers.scanner.base import ScannerOptions
from protocols.scanner import (
    NEED_DATA,
    BytesDiscarded,
    CodeScanned,
    HidPosDecoder,
    KeyboardDecoder,
    LineDecoder,
    MalformedReport,
    Scan,
    make_scan,
)

log = logging.getLogger(__name__)

HID_CLASS = 3
KEYBOARD_PROTOCOL = 1
_DIR_IN = 0x80
_INTERRUPT = 0x03
_ITER_TIMEOUT = 1.0


class HidMode(StrEnum):
    AUTO = "auto"
    POS = "pos"
    KEYBOARD = "keyboard"


@dataclass(frozen=True, slots=True)
class HidInterface:
    interface_number: int
    alternate_setting: int
    in_address: int
    packet_size: int
    keyboard: bool


def _interrupt_in(intf: Any) -> Any | None:
    for ep in intf:
        if (int(ep.bmAttributes) & 0x03) == _INTERRUPT and int(ep.bEndpointAddress) & _DIR_IN:
            return ep
    return None


def select_hid_interface(configuration: Iterable[Any], mode: HidMode = HidMode.AUTO) -> HidInterface:
    """The scanner's HID interface for ``mode`` (see the module docstring)."""
    found: list[HidInterface] = []
    for intf in configuration:
        if int(intf.bInterfaceClass) != HID_CLASS:
            continue
        ep = _interrupt_in(intf)
        if ep is None:
            continue
        found.append(
            HidInterface(
                int(intf.bInterfaceNumber),
                int(intf.bAlternateSetting),
                int(ep.bEndpointAddress),
                int(ep.wMaxPacketSize),
                int(intf.bInterfaceProtocol) == KEYBOARD_PROTOCOL,
            )
        )
    found.sort(key=lambda h: (h.interface_number, h.alternate_setting))
    pos = [h for h in found if not h.keyboard]
    keyboards = [h for h in found if h.keyboard]
    if mode is HidMode.POS and pos:
        return pos[0]
    if mode is HidMode.KEYBOARD and keyboards:
        return keyboards[0]
    if mode is HidMode.AUTO and found:
        return (pos or keyboards)[0]
    if not found:
        raise DriverConfigError(
            "У USB-устройства нет HID-интерфейса с interrupt IN: это не HID-сканер (проверьте VID/PID)"
        )
    wanted = "HID POS" if mode is HidMode.POS else "клавиатуры (keyboard wedge)"
    raise DriverConfigError(
        f"Сканер не предоставляет интерфейс {wanted}: перепрограммируйте режим USB или смените mode"
    )


def _default_find(**kwargs: Any) -> Iterable[Any]:
    import usb.core

    found: Iterable[Any] = usb.core.find(find_all=True, **kwargs)
    return found


def _default_util() -> Any:
    import usb.util

    return usb.util


def _is_timeout(exc: BaseException) -> bool:
    if type(exc).__name__ == "USBTimeoutError":
        return True
    return getattr(exc, "errno", None) in (110, 60) or getattr(exc, "backend_error_code", None) == -7


class HidScanner:
    """A USB HID scanner (HID POS or keyboard wedge), read through pyusb."""

    def __init__(
        self,
        vendor_id: int,
        product_id: int,
        options: ScannerOptions | None = None,
        *,
        mode: HidMode | str = HidMode.AUTO,
        serial_number: str | None = None,
        find: Callable[..., Iterable[Any]] | None = None,
        usb_util: Any = None,
        backend: Any = None,
    ) -> None:
        if not (0 <= vendor_id <= 0xFFFF and 0 <= product_id <= 0xFFFF):
            raise DriverConfigError(f"Неверные VID/PID сканера {vendor_id:#x}:{product_id:#x}")
        try:
            self.mode = HidMode(mode)
        except ValueError as exc:
            raise DriverConfigError(
                f"Неизвестный режим USB-сканера {mode!r}: auto, pos или keyboard"
            ) from exc
        self.vendor_id = vendor_id
        self.product_id = product_id
        self.serial_number = serial_number
        self.options = options or ScannerOptions()
        self._find = find or _default_find
        self._util = usb_util
        self._backend = backend
        self._device: Any = None
        self._intf: HidInterface | None = None
        self._detached = False
        self._pos = HidPosDecoder(max_length=self.options.framing.max_length)
        self._keyboard = KeyboardDecoder()
        self._lines = LineDecoder(self.options.framing)
        self.discarded = 0

    @property
    def url(self) -> str:
        return f"usb://{self.vendor_id:04x}:{self.product_id:04x}"

    def __repr__(self) -> str:
        return f"HidScanner({self.url}, mode={self.mode.value}, open={self.is_open})"

    @property
    def is_open(self) -> bool:
        return self._device is not None

    @property
    def interface(self) -> HidInterface | None:
        return self._intf

    def _usb_util(self) -> Any:
        if self._util is None:
            self._util = _default_util()
        return self._util

    def open(self) -> None:
        if self._device is not None:
            return
        try:
            devices = list(
                self._find(backend=self._backend, idVendor=self.vendor_id, idProduct=self.product_id)
            )
        except Exception as exc:  # pyusb raises NoBackendError / USBError / ValueError
            raise DeviceUnavailable(f"Поиск USB-сканера {self.url} не удался: {exc}") from exc
        if self.serial_number is not None:
            devices = [d for d in devices if _serial_of(d) == self.serial_number]
        if not devices:
            which = f" с серийным номером {self.serial_number}" if self.serial_number else ""
            raise DeviceUnavailable(f"USB-сканер {self.url}{which} не найден (не подключён?)")
        if len(devices) > 1 and self.serial_number is None:
            raise DriverConfigError(f"Найдено {len(devices)} USB-сканеров {self.url}: укажите серийный номер")
        device = devices[0]
        detached = False
        try:
            try:
                configuration = device.get_active_configuration()
            except Exception:  # unconfigured device (pyusb raises USBError)
                device.set_configuration()
                configuration = device.get_active_configuration()
            intf = select_hid_interface(configuration, self.mode)
            try:
                if device.is_kernel_driver_active(intf.interface_number):
                    device.detach_kernel_driver(intf.interface_number)
                    detached = True
            except NotImplementedError:  # libusb0/openusb backends cannot tell
                pass
            if intf.alternate_setting:
                device.set_interface_altsetting(intf.interface_number, intf.alternate_setting)
            self._usb_util().claim_interface(device, intf.interface_number)
        except DriverConfigError:
            raise
        except Exception as exc:
            raise DeviceUnavailable(f"Не удалось открыть USB-сканер {self.url}: {exc}") from exc
        self._device, self._intf, self._detached = device, intf, detached
        self._pos = HidPosDecoder(max_length=self.options.framing.max_length)
        self._keyboard = KeyboardDecoder()
        self._lines = LineDecoder(self.options.framing)
        self.discarded = 0

    def close(self) -> None:
        """Release the interface and give it back to the kernel driver; never raises."""
        device, intf, detached = self._device, self._intf, self._detached
        self._device, self._intf, self._detached = None, None, False
        if device is None or intf is None:
            return
        util = self._usb_util()
        try:
            util.release_interface(device, intf.interface_number)
        except Exception:  # closing a lost device: nothing left to do
            pass
        if detached:
            try:
                device.attach_kernel_driver(intf.interface_number)
            except Exception:
                pass
        try:
            util.dispose_resources(device)
        except Exception:
            pass

    def __enter__(self) -> HidScanner:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_scan(self, timeout: float = 1.0) -> Scan | None:
        """The next scan within ``timeout`` seconds, else ``None``; ``DeviceUnavailable`` on a lost link."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            now = time.monotonic()
            scan = self._next_scan(now)
            if scan is not None:
                return scan
            left = deadline - now
            if left <= 0:
                return None
            if self._device is None or self._intf is None:
                raise DeviceUnavailable(f"USB-сканер {self.url} не открыт")
            wake = self._lines.deadline() if self._intf.keyboard else None
            wait = left if wake is None else min(left, max(wake - now, 0.0) + 0.001)
            try:
                report = bytes(
                    self._device.read(
                        self._intf.in_address, max(self._intf.packet_size, 8), max(1, int(wait * 1000))
                    )
                )
            except Exception as exc:
                if _is_timeout(exc):
                    continue
                self.close()
                raise DeviceUnavailable(f"Связь с USB-сканером {self.url} потеряна: {exc}") from exc
            self._feed(report, time.monotonic())

    def __iter__(self) -> Iterator[Scan]:
        """Scans as they come, until the scanner is closed; ``DeviceUnavailable`` on a lost link."""
        while self.is_open:
            scan = self.read_scan(_ITER_TIMEOUT)
            if scan is not None:
                yield scan

    def _feed(self, report: bytes, now: float) -> None:
        assert self._intf is not None
        try:
            if self._intf.keyboard:
                typed = self._keyboard.receive_report(report)
                if typed:
                    self._lines.receive_data(typed, now)
            else:
                self._pos.receive_report(report, now)
        except MalformedReport as exc:
            self._discarded(BytesDiscarded(report[:32], len(report), str(exc)))

    def _next_scan(self, now: float) -> Scan | None:
        while True:
            event = (
                self._lines.next_event(now) if self._intf and self._intf.keyboard else self._pos.next_event()
            )
            if event == NEED_DATA:
                return None
            if isinstance(event, CodeScanned):
                if not self._intf or not self._intf.keyboard:
                    event = self._restore_gs(event)
                return make_scan(
                    event, self.options.weight_formats, fallback_encoding=self.options.fallback_encoding
                )
            if isinstance(event, BytesDiscarded):
                self._discarded(event)

    def _restore_gs(self, event: CodeScanned) -> CodeScanned:
        sub = self.options.framing.gs_substitute
        if sub is None or sub not in event.data:
            return event
        return CodeScanned(event.data.replace(sub, b"\x1d"), event.aim, event.at)

    def _discarded(self, event: BytesDiscarded) -> None:
        self.discarded += 1
        log.warning("Сканер %s: отброшено %d байт (%s): %r", self.url, event.size, event.reason, event.head)
        if self.options.on_discard is not None:
            self.options.on_discard(event)


def _serial_of(device: Any) -> str | None:
    try:
        value = device.serial_number
    except Exception:  # reading strings needs permissions on some systems
        return None
    return None if value is None else str(value)
