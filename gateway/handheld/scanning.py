"""What one scan means for one task: which expected line, what quantity, which marking code.

Pure: takes the task spec, the scan and the store's weight-label formats, returns a
:class:`Match` or raises :class:`~gateway.handheld.errors.HandheldRefused` with the message
the handheld shows. Duplicate marking codes are the caller's check (they need the store).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gateway.handheld.errors import refused
from gateway.handheld.models import QTY, ExpectedLine, ScanIn, TaskSpec, Unit
from protocols.barcodes import (
    AggregateCode,
    MarkingCode,
    Measure,
    ProductBarcode,
    UnknownBarcode,
    WeightBarcodeFormat,
    WeightLabel,
    classify,
    normalize_scan,
)

NOT_IN_TASK = "Штрихкод не найден в задании"


@dataclass(frozen=True)
class Match:
    line: ExpectedLine | None
    code_type: str  # product | weight | marking
    qty: Decimal
    unit: Unit
    barcode: str
    marking: str | None = None
    marking_code: str | None = None


class TaskIndex:
    """Lookup tables of one task spec (built once per task, cached by the hub)."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.by_barcode: dict[str, ExpectedLine] = {}
        self.by_plu: dict[int, ExpectedLine] = {}
        self.by_gtin: dict[str, ExpectedLine] = {}
        self.by_no: dict[int, ExpectedLine] = {}
        for line in spec.lines:
            self.by_no[line.line_no] = line
            for code in line.barcodes:
                self.by_barcode.setdefault(code, line)
                if code.isdigit() and len(code) in (8, 12, 13, 14):
                    self.by_gtin.setdefault(code.rjust(14, "0"), line)
            if line.plu is not None:
                self.by_plu.setdefault(line.plu, line)
            if line.gtin is not None:
                self.by_gtin.setdefault(line.gtin, line)


def resolve(index: TaskIndex, scan: ScanIn, formats: tuple[WeightBarcodeFormat, ...]) -> Match:
    """Match ``scan`` against the task (see the module doc)."""
    text = normalize_scan(scan.barcode)
    if not text:
        raise refused("Пустой штрихкод — отсканируйте ещё раз", "empty_barcode")
    parsed = classify(scan.barcode, formats)
    if isinstance(parsed, MarkingCode):
        return _marking(index, parsed, scan)
    if isinstance(parsed, AggregateCode):
        raise refused("Код коробки или паллеты (SSCC): отсканируйте каждую единицу товара", "aggregate_code")
    if isinstance(parsed, WeightLabel):
        return _weight(index, parsed, text)
    line = index.by_barcode.get(text)
    if line is None and isinstance(parsed, ProductBarcode):
        line = index.by_gtin.get(parsed.gtin.gtin14)
    if line is None:
        if isinstance(parsed, UnknownBarcode):
            raise refused(f"{NOT_IN_TASK}. Код не распознан: {parsed.reason}", "barcode_not_in_task", 404)
        if index.spec.allow_unexpected:
            return Match(None, "product", _product_qty(None, scan), Unit.PCS, text)
        raise refused(NOT_IN_TASK, "barcode_not_in_task", 404)
    if line.marked:
        raise refused(
            f"«{line.name}» — маркированный товар: отсканируйте код маркировки (DataMatrix)", "marking_required"
        )
    return Match(line, "product", _product_qty(line, scan), line.unit, text)


def _marking(index: TaskIndex, code: MarkingCode, scan: ScanIn) -> Match:
    line = index.by_gtin.get(code.gtin)
    if line is None:
        raise refused(
            f"Код маркировки товара, которого нет в задании (GTIN {code.gtin})", "marking_not_in_task", 404
        )
    qty = Decimal(1)
    if line.unit is Unit.KG:
        weight = code.weight_kg
        if weight is None:
            weight = scan.qty
        if weight is None or weight <= 0:
            raise refused(f"«{line.name}»: в коде нет веса — введите вес в кг и отсканируйте снова", "qty_required")
        qty = weight
    return Match(line, "marking", qty.quantize(QTY), line.unit, normalize_scan(scan.barcode),
                 marking=code.identity, marking_code=code.fiscal)


def _weight(index: TaskIndex, label: WeightLabel, text: str) -> Match:
    barcode = label.barcode
    line = index.by_barcode.get(text) or index.by_plu.get(barcode.item_code)
    if line is None:
        raise refused(f"{NOT_IN_TASK} (весовой товар, код {barcode.item_code})", "barcode_not_in_task", 404)
    if barcode.measure is Measure.WEIGHT:
        if line.unit is not Unit.KG:
            raise refused(f"«{line.name}» считается в штуках, а этикетка весовая", "unit_mismatch")
        qty = barcode.weight_kg or Decimal(0)
    else:
        if line.unit is not Unit.PCS:
            raise refused(f"«{line.name}» считается в кг, а этикетка штучная", "unit_mismatch")
        qty = Decimal(barcode.pieces or 0)
    if qty <= 0:
        raise refused("На этикетке нулевой вес или количество", "zero_qty")
    return Match(line, "weight", qty.quantize(QTY), line.unit, text)


def _product_qty(line: ExpectedLine | None, scan: ScanIn) -> Decimal:
    unit = line.unit if line is not None else Unit.PCS
    qty = scan.qty
    if qty is None:
        if unit is Unit.KG:
            name = line.name if line is not None else "товар"
            raise refused(f"«{name}» — весовой товар: введите вес в кг и отсканируйте снова", "qty_required")
        qty = Decimal(1)
    if qty <= 0:
        raise refused("Количество должно быть больше нуля", "zero_qty")
    if unit is Unit.PCS and qty != qty.to_integral_value():
        raise refused("Штучный товар: количество должно быть целым", "fractional_pieces")
    return qty.quantize(QTY)
