from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.checkout.rig import Store


@pytest.fixture
def store(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Store]:
    s = Store(tmp_path, mqtt_url, bus_root, bus_tenant)
    yield s
    s.stop()


@pytest.fixture
def scale_store(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Iterator[Store]:
    s = Store(tmp_path, mqtt_url, bus_root, bus_tenant, scale=True)
    yield s
    s.stop()
