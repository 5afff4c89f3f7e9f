"""The CAS label-scale simulator's PLU table, fed protocol bytes directly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from protocols import cas
from simulators.label_scale.cas import CasLabelScaleConfig, CasLabelScaleSimulator


def test_table_write_read_delete_and_limits() -> None:
    sim = CasLabelScaleSimulator(CasLabelScaleConfig(capacity=1, max_price=1000))
    plu = cas.Plu(5, "Сыр", 900, item_code=5)
    assert sim.feed(cas.encode_write_plu(plu), 0.0) == b"W02:O01\n"
    assert sim.feed(cas.encode_write_plu(plu), 0.0) == b"W02:O01\n" and sim.writes == 1
    assert sim.feed(cas.encode_write_plu(cas.Plu(6, "Хлеб", 100)), 0.0) == b"W02:E99\n"  # table full
    assert sim.feed(cas.encode_write_plu(cas.Plu(5, "Сыр", 2000)), 0.0) == b"W02:E84\n"  # price limit
    assert sim.feed(cas.encode_read_plu(5), 0.0) == cas.encode_write_plu(plu)
    assert sim.feed(b"garbage" + cas.encode_delete_plu(5), 0.0) == b"W02:O01\n"
    assert sim.feed(cas.encode_read_plu(5), 0.0) == b"W02:E82\n"
    with pytest.raises(KeyError):
        sim.print_label(5, Decimal("1"))
