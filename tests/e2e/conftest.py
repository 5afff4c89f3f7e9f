from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from simulators.scale.mtsics import MtSicsConfig, MtSicsSimulator
from tests.e2e.harness import Cloud, GatewayProcess
from tests.e2e.store_rig import SellingStore

pytestmark = pytest.mark.e2e


@pytest.fixture
def selling(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str,
            fresh_database_url: str) -> Iterator[SellingStore]:
    """A store selling at one lane into the cloud (:mod:`tests.e2e.store_rig`), closed after the test."""
    store = SellingStore(tmp_path, fresh_database_url, mqtt_url, bus_root, bus_tenant)
    try:
        yield store.start()
    finally:
        store.close()


@pytest.fixture
def scale_sim() -> Iterator[MtSicsSimulator]:
    sim = MtSicsSimulator(MtSicsConfig(initial_weight=Decimal("0.000"), unstable_after_change=0.2))
    yield sim
    sim.stop()


def gateway_config(mqtt_url: str, root: str, tenant: str, data_dir: Path, scale_url: str, keepalive: int = 2) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "store": "store-1",
        "gateway": "gw-1",
        "bus_root": root,
        "data_dir": str(data_dir),
        "broker": {"url": mqtt_url, "keepalive": keepalive, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "devices": [
            {
                "id": "scale-1",
                "kind": "scale",
                "driver": "mtsics",
                "url": scale_url,
                "options": {"poll_interval_s": 0.1, "deadband_kg": 0.004, "timeout": 1.0},
            }
        ],
    }


@pytest.fixture
def store(
    mqtt_url: str, bus_root: str, bus_tenant: str, fresh_database_url: str, tmp_path: Path, scale_sim: MtSicsSimulator
) -> Iterator[tuple[Cloud, GatewayProcess, MtSicsSimulator]]:
    """Cloud + gateway process + simulated scale on the shared broker."""
    cloud = Cloud(fresh_database_url, mqtt_url, bus_root, bus_tenant)
    pty = scale_sim.serve_pty()
    gw = GatewayProcess(tmp_path, gateway_config(mqtt_url, bus_root, bus_tenant, tmp_path / "gw-data", pty)).start()
    try:
        yield cloud, gw, scale_sim
    finally:
        gw.stop()
        cloud.stop()
