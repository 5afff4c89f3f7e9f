"""A ``Transport`` over USB bulk endpoints (pyusb), for printers on the USB printer class.

Label and receipt printers on USB expose interface class 7 (printer) with a bulk OUT
endpoint for the job and, on bidirectional models, a bulk IN endpoint the ``~HS``/``DLE EOT``
answers come back on. ``open`` finds the device by VID/PID (and serial number when several
are plugged), detaches a kernel driver (``usblp``) that holds the interface, selects the
configuration, picks the printer interface and its endpoints, and claims it.

``select_endpoints`` is pure (any objects shaped like pyusb descriptors), so the choice is
tested without hardware; pyusb is imported lazily, only when a real device is opened.
Errors: no device / a USB error → ``DeviceUnavailable``; a device with no bulk OUT
endpoint → ``DriverConfigError`` (wrong VID/PID configured). A read timeout returns ``b""``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from drivers.errors import DeviceUnavailable, DriverConfigError

PRINTER_CLASS = 7
_DIR_IN = 0x80
_BULK = 0x02


@dataclass(frozen=True)
class EndpointChoice:
    interface_number: int
    alternate_setting: int
    out_address: int
    in_address: int | None


def _bulk(ep: Any) -> bool:
    return (int(ep.bmAttributes) & 0x03) == _BULK


def select_endpoints(configuration: Iterable[Any]) -> EndpointChoice:
    """Pick the printer-class interface (else the first with a bulk OUT) and its endpoints."""
    candidates: list[tuple[int, Any]] = []
    for intf in configuration:
        eps = list(intf)
        if not any(_bulk(ep) and not int(ep.bEndpointAddress) & _DIR_IN for ep in eps):
            continue
        rank = 0 if int(intf.bInterfaceClass) == PRINTER_CLASS else 1
        candidates.append((rank, intf))
    if not candidates:
        raise DriverConfigError(
            "У USB-устройства нет bulk OUT конечной точки: это не принтер (проверьте VID/PID)"
        )
    candidates.sort(key=lambda item: (item[0], int(item[1].bInterfaceNumber), int(item[1].bAlternateSetting)))
    intf = candidates[0][1]
    out_ep = next(ep for ep in intf if _bulk(ep) and not int(ep.bEndpointAddress) & _DIR_IN)
    in_ep = next((ep for ep in intf if _bulk(ep) and int(ep.bEndpointAddress) & _DIR_IN), None)
    return EndpointChoice(
        int(intf.bInterfaceNumber),
        int(intf.bAlternateSetting),
        int(out_ep.bEndpointAddress),
        None if in_ep is None else int(in_ep.bEndpointAddress),
    )


def _default_find(**kwargs: Any) -> Iterable[Any]:
    import usb.core

    found: Iterable[Any] = usb.core.find(find_all=True, **kwargs)
    return found


class UsbTransport:
    """``Transport`` over a USB printer's bulk endpoints."""

    def __init__(
        self,
        vendor_id: int,
        product_id: int,
        *,
        serial_number: str | None = None,
        backend: Any = None,
        find: Callable[..., Iterable[Any]] | None = None,
        write_timeout: float = 5.0,
    ) -> None:
        if not (0 <= vendor_id <= 0xFFFF and 0 <= product_id <= 0xFFFF):
            raise DriverConfigError(f"Неверные VID/PID {vendor_id:#x}:{product_id:#x}")
        self.vendor_id = vendor_id
        self.product_id = product_id
        self.serial_number = serial_number
        self._backend = backend
        self._find = find or _default_find
        self._write_timeout_ms = int(write_timeout * 1000)
        self._device: Any = None
        self._choice: EndpointChoice | None = None
        self._pending = b""

    def __repr__(self) -> str:
        return f"UsbTransport({self.vendor_id:04x}:{self.product_id:04x}, open={self.is_open})"

    @property
    def url(self) -> str:
        return f"usb://{self.vendor_id:04x}:{self.product_id:04x}"

    @property
    def is_open(self) -> bool:
        return self._device is not None

    @property
    def endpoints(self) -> EndpointChoice | None:
        return self._choice

    def open(self) -> None:
        if self._device is not None:
            return
        try:
            devices = list(
                self._find(backend=self._backend, idVendor=self.vendor_id, idProduct=self.product_id)
            )
        except Exception as exc:  # pyusb raises NoBackendError / USBError / ValueError
            raise DeviceUnavailable(f"Поиск USB-устройства {self.url} не удался: {exc}") from exc
        if self.serial_number is not None:
            devices = [d for d in devices if self._serial_of(d) == self.serial_number]
        if not devices:
            which = f" с серийным номером {self.serial_number}" if self.serial_number else ""
            raise DeviceUnavailable(f"USB-принтер {self.url}{which} не найден (не подключён?)")
        if len(devices) > 1 and self.serial_number is None:
            raise DriverConfigError(
                f"Найдено {len(devices)} USB-принтеров {self.url}: укажите серийный номер"
            )
        device = devices[0]
        try:
            try:
                configuration = device.get_active_configuration()
            except Exception:
                device.set_configuration()
                configuration = device.get_active_configuration()
            choice = select_endpoints(configuration)
            try:
                if device.is_kernel_driver_active(choice.interface_number):
                    device.detach_kernel_driver(choice.interface_number)
            except NotImplementedError:  # libusb0/openusb backends cannot tell
                pass
            if choice.alternate_setting:
                device.set_interface_altsetting(choice.interface_number, choice.alternate_setting)
            self._claim(device, choice.interface_number)
        except DriverConfigError:
            raise
        except Exception as exc:
            raise DeviceUnavailable(f"Не удалось открыть USB-принтер {self.url}: {exc}") from exc
        self._device, self._choice, self._pending = device, choice, b""

    @staticmethod
    def _serial_of(device: Any) -> str | None:
        try:
            value = device.serial_number
        except Exception:  # reading strings needs permissions on some systems
            return None
        return None if value is None else str(value)

    @staticmethod
    def _claim(device: Any, interface: int) -> None:
        claim = getattr(device, "claim_interface", None)
        if claim is not None:
            claim(interface)
            return
        import usb.util

        usb.util.claim_interface(device, interface)

    def close(self) -> None:
        device, choice = self._device, self._choice
        self._device, self._choice, self._pending = None, None, b""
        if device is None or choice is None:
            return
        try:
            release = getattr(device, "release_interface", None)
            if release is not None:
                release(choice.interface_number)
            else:
                import usb.util

                usb.util.release_interface(device, choice.interface_number)
                usb.util.dispose_resources(device)
        except Exception:  # closing a lost device: nothing left to do
            pass

    def _require(self) -> tuple[Any, EndpointChoice]:
        if self._device is None or self._choice is None:
            raise DeviceUnavailable(f"USB-принтер {self.url} не открыт")
        return self._device, self._choice

    def write(self, data: bytes) -> None:
        device, choice = self._require()
        view = memoryview(data)
        try:
            while view:
                sent = int(device.write(choice.out_address, bytes(view[:16384]), self._write_timeout_ms))
                if sent <= 0:
                    raise DeviceUnavailable(f"USB-принтер {self.url} не принимает данные")
                view = view[sent:]
        except DeviceUnavailable:
            raise
        except Exception as exc:
            self.close()
            raise DeviceUnavailable(f"Ошибка записи в USB-принтер {self.url}: {exc}") from exc

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if max_bytes <= 0:
            return b""
        if self._pending:
            chunk, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
            return chunk
        device, choice = self._require()
        if choice.in_address is None:
            if timeout > 0:
                time.sleep(timeout)
            return b""
        try:
            data = bytes(device.read(choice.in_address, max(max_bytes, 64), max(1, int(timeout * 1000))))
        except Exception as exc:
            if _is_timeout(exc):
                return b""
            self.close()
            raise DeviceUnavailable(f"Связь с USB-принтером {self.url} потеряна: {exc}") from exc
        self._pending = data[max_bytes:]
        return data[:max_bytes]

    def read_until(self, terminator: bytes, timeout: float, max_bytes: int = 4096) -> bytes:
        if not terminator:
            raise ValueError("terminator must not be empty")
        deadline = time.monotonic() + max(timeout, 0.0)
        buf = b""
        while True:
            end = buf.find(terminator)
            if end >= 0:
                cut = end + len(terminator)
                self._pending = buf[cut:] + self._pending
                return buf[:cut]
            if len(buf) >= max_bytes:
                self._pending = buf[max_bytes:] + self._pending
                return buf[:max_bytes]
            left = deadline - time.monotonic()
            if left <= 0:
                return buf
            buf += self.read(max_bytes - len(buf), left)

    def reset_input(self) -> None:
        self._pending = b""
        while self.is_open and self._choice is not None and self._choice.in_address is not None:
            if not self.read(4096, 0.01):
                return


def _is_timeout(exc: BaseException) -> bool:
    if type(exc).__name__ == "USBTimeoutError":
        return True
    errno = getattr(exc, "errno", None)
    return errno in (110, 60)  # ETIMEDOUT on Linux / macOS (libusb0 reports it so)
