"""CAS label-scale driver against the simulator over real TCP and a real pty."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest

from drivers.errors import DeviceTimeout
from drivers.label_scale import LabelScale
from protocols import cas
from protocols.barcodes.weight import WeightBarcodeFormat, decode_weight_barcode
from simulators.label_scale.cas import CasLabelScaleConfig, CasLabelScaleSimulator

pytestmark = pytest.mark.integration

TABLE = [
    cas.Plu(n, f"Товар весовой №{n}", 10_000 + n * 37, shelf_life_days=n % 7, item_code=100 + n)
    for n in range(1, 51)
]


@pytest.fixture(params=["tcp", "pty"])
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[CasLabelScaleSimulator, LabelScale]]:
    sim = CasLabelScaleSimulator(CasLabelScaleConfig(max_price=5_000_000, today=dt.date(2026, 3, 2)))
    if request.param == "pty":
        url = sim.serve_pty()
    else:
        host, port = sim.serve_tcp()
        url = f"tcp://{host}:{port}"
    scale = LabelScale(url, timeout=1.0)
    scale.open()
    try:
        yield sim, scale
    finally:
        scale.close()
        sim.stop()


def test_upload_fifty_then_reupload_changes_nothing(rig: tuple[CasLabelScaleSimulator, LabelScale]) -> None:
    sim, scale = rig
    first = scale.upload_plu(TABLE)
    assert [r.status for r in first] == ["written"] * 50 and sim.writes == 50
    assert sim.plus[(1, 7)] == TABLE[6]
    again = scale.upload_plu(TABLE)
    assert [r.status for r in again] == ["unchanged"] * 50 and sim.writes == 50
    changed = [*TABLE[:10], cas.Plu(11, "Новое имя", 999, item_code=111)]
    third = scale.upload_plu(changed)
    assert [r.status for r in third] == ["unchanged"] * 10 + ["written"] and sim.writes == 51
    assert scale.read_plu(11) == cas.Plu(11, "Новое имя", 999, item_code=111)


def test_bad_plus_fail_alone(rig: tuple[CasLabelScaleSimulator, LabelScale]) -> None:
    sim, scale = rig
    items: list[cas.Plu | dict[str, object]] = [
        TABLE[0],
        {"number": 2, "name": "Очень длинное название товара, которое не влезет в весы", "price": 100},
        cas.Plu(3, "Чёрная икра", 9_000_000),  # above the scale's price limit
        TABLE[3],
    ]
    results = scale.upload_plu(items)
    assert [r.status for r in results] == ["written", "failed", "failed", "written"]
    assert (
        results[1].number == 2 and results[1].error_code == "plu_invalid" and "40" in (results[1].error or "")
    )
    assert results[2].number == 3 and "Неверные данные" in (results[2].error or "")
    assert set(sim.plus) == {(1, 1), (1, 4)}


def test_read_delete_and_label(rig: tuple[CasLabelScaleSimulator, LabelScale]) -> None:
    sim, scale = rig
    scale.upload_plu(TABLE[:3])
    assert scale.read_plu(2) == TABLE[1]
    assert scale.read_plu(40) is None
    label = sim.print_label(2, Decimal("1.234"))
    assert label.barcode == "2200102012347"  # 22 00102 01234 + EAN check 7
    decoded = decode_weight_barcode(label.barcode, WeightBarcodeFormat(("22",)))
    assert decoded.item_code == TABLE[1].item_code and decoded.weight_kg == Decimal("1.234")
    assert label.total == 12_431 and label.sell_by == dt.date(2026, 3, 4)
    assert "1.234 кг" in label.text() and label.name in label.text()
    assert scale.delete_plu(2) is True
    assert scale.delete_plu(2) is False
    assert scale.read_plu(2) is None


def test_silent_scale_times_out() -> None:
    sim = CasLabelScaleSimulator()
    host, port = sim.serve_tcp()
    scale = LabelScale(f"tcp://{host}:{port}", timeout=0.3)
    scale.open()
    try:
        sim.set_silent()
        with pytest.raises(DeviceTimeout):
            scale.upload_plu(TABLE[:1])
        sim.set_silent(False)
        assert scale.upload_plu(TABLE[:1])[0].status == "written"
    finally:
        scale.close()
        sim.stop()
