from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.runtime import Gateway
from tests.gateway.handheld.support import handheld_config, start_gateway
from tests.gateway.support import BusWatcher


@pytest.fixture
def hh_config(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> Any:
    return handheld_config(tmp_path, mqtt_url, bus_root, bus_tenant)


@pytest.fixture
def hh_watcher(mqtt_url: str, hh_config: Any) -> Iterator[BusWatcher]:
    w = BusWatcher(mqtt_url, [f"{hh_config.address.prefix}/#"])
    yield w
    w.close()


@pytest.fixture
def hh_gateway(hh_config: Any, hh_watcher: BusWatcher) -> Iterator[Gateway]:
    gw = start_gateway(hh_config, hh_watcher)
    yield gw
    gw.stop()
