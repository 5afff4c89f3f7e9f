"""A CAS CL label scale: keeps the PLU table it is sent (``protocols.cas``) and "prints"
labels on demand, served over TCP (CL-Works talks to port 20304 on real scales) or a pty.

``print_label(plu_number, kg)`` is the tester's stand-in for weighing an item and pressing
the PLU key: it returns a ``Label`` record with the EAN-13 weight barcode built by
``protocols.barcodes`` (store prefix + the PLU's item code + grams) and keeps it in
``labels``. Refusals the scale makes: a price above ``max_price`` (the scale's display
limit) → ``E84``; a full table (``capacity``) → ``E99``; a bad BCC → ``EFE``. Faults:
``set_silent``, ``inject_garbage``, ``unplug``/``plug``. Never imports a driver.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from protocols import cas
from protocols.barcodes.weight import (
    WeightBarcode,
    WeightBarcodeFormat,
    encode_weight_barcode,
    weight_to_grams,
)
from simulators.link import PtyEndpoint, TcpEndpoint


@dataclass(frozen=True, slots=True)
class CasLabelScaleConfig:
    capacity: int = 3000
    max_price: int = 99_999_999
    """Kopecks per kg the scale can show (6+2 digits)."""
    barcode_prefix: str = "22"
    barcode_format: WeightBarcodeFormat = field(default_factory=lambda: WeightBarcodeFormat(("22",)))
    today: dt.date | None = None
    latency: float = 0.0


@dataclass(frozen=True, slots=True)
class Label:
    plu: int
    name: str
    weight: Decimal
    price_per_kg: int
    total: int
    packed: dt.date
    sell_by: dt.date | None
    barcode: str

    def text(self) -> str:
        rub = f"{self.total // 100}.{self.total % 100:02d}"
        lines = [
            self.name,
            f"Вес: {self.weight} кг",
            f"Цена за кг: {self.price_per_kg / 100:.2f}",
            f"Сумма: {rub}",
        ]
        lines.append(f"Упаковано: {self.packed:%d.%m.%Y}")
        if self.sell_by:
            lines.append(f"Годен до: {self.sell_by:%d.%m.%Y}")
        lines.append(self.barcode)
        return "\n".join(lines)


class CasLabelScaleSimulator:
    """A ``ByteDevice`` with a PLU table keyed by (department, number)."""

    def __init__(self, config: CasLabelScaleConfig | None = None) -> None:
        self.config = config or CasLabelScaleConfig()
        self._lock = threading.RLock()
        self._decoder = cas.Decoder()
        self.plus: dict[tuple[int, int], cas.Plu] = {}
        self.writes = 0
        """PLU writes that changed the table (tests check idempotent uploads with it)."""
        self.labels: list[Label] = []
        self._silent = False
        self._endpoint: PtyEndpoint | TcpEndpoint | None = None

    # --- control ---------------------------------------------------------------------------

    def print_label(self, plu_number: int, kg: Decimal, department: int = 1) -> Label:
        with self._lock:
            plu = self.plus.get((department, plu_number))
            if plu is None:
                raise KeyError(f"ПЛУ {plu_number} нет в весах")
            grams = weight_to_grams(kg)
            barcode = encode_weight_barcode(
                WeightBarcode(self.config.barcode_prefix, plu.item_code, grams), self.config.barcode_format
            )
            total = int((Decimal(plu.price) * kg).to_integral_value(rounding=ROUND_HALF_UP))
            today = self.config.today or dt.date.today()
            sell_by = today + dt.timedelta(days=plu.shelf_life_days) if plu.shelf_life_days else None
            label = Label(plu.number, plu.name, kg, plu.price, total, today, sell_by, barcode)
            self.labels.append(label)
            return label

    def set_silent(self, silent: bool = True) -> None:
        with self._lock:
            self._silent = silent

    def inject_garbage(self, data: bytes) -> None:
        if self._endpoint is not None:
            self._endpoint.inject(data)

    def unplug(self) -> None:
        if self._endpoint is not None:
            self._endpoint.unplug()

    def plug(self) -> None:
        if self._endpoint is not None:
            self._endpoint.plug()

    def serve_pty(self) -> str:
        endpoint = PtyEndpoint(self, latency=self.config.latency)
        self._endpoint = endpoint
        return endpoint.start()

    def serve_tcp(self, port: int = 0, host: str = "127.0.0.1") -> tuple[str, int]:
        endpoint = TcpEndpoint(self, host, port, latency=self.config.latency)
        self._endpoint = endpoint
        return endpoint.start()

    def stop(self) -> None:
        if self._endpoint is not None:
            self._endpoint.stop()
            self._endpoint = None

    # --- ByteDevice --------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> bytes:
        with self._lock:
            self._decoder.feed(data)
            out = bytearray()
            while (event := self._decoder.next_event()) is not None:
                if self._silent:
                    continue
                out += self._execute(event)
            return bytes(out)

    def _execute(self, event: cas.codec.Event) -> bytes:
        if isinstance(event, cas.codec.BadMessage):
            return event.reply
        if isinstance(event, cas.WritePlu):
            plu = event.plu
            if plu.price > self.config.max_price:
                return cas.encode_reply(0x84, ok=False)
            key = (plu.department, plu.number)
            if key not in self.plus and len(self.plus) >= self.config.capacity:
                return cas.encode_reply(0x99, ok=False)
            if self.plus.get(key) != plu:
                self.plus[key] = plu
                self.writes += 1
            return cas.encode_reply()
        if isinstance(event, cas.ReadPlu):
            found = self.plus.get((event.department, event.number))
            return cas.encode_write_plu(found) if found else cas.encode_reply(0x82, ok=False)
        if isinstance(event, cas.DeletePlu):
            if self.plus.pop((event.department, event.number), None) is None:
                return cas.encode_reply(0x82, ok=False)
            return cas.encode_reply()
        return b""  # a reply sent to the scale: not for it
