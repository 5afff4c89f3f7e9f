from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import GatewayConfig
from gateway.runtime import Gateway
from protocols.bus import DeviceKind
from tests.gateway.support import BusWatcher, FakeScaleFactory, make_config, wait_until


@pytest.fixture
def factory() -> FakeScaleFactory:
    return FakeScaleFactory()


@pytest.fixture
def gw_config(tmp_path: Path, mqtt_url: str, bus_root: str, bus_tenant: str) -> GatewayConfig:
    return make_config(tmp_path, mqtt_url, bus_root, bus_tenant)


@pytest.fixture
def watcher(mqtt_url: str, gw_config: GatewayConfig) -> Iterator[BusWatcher]:
    w = BusWatcher(mqtt_url, [f"{gw_config.address.prefix}/#"])
    yield w
    w.close()


@pytest.fixture
def gateway(gw_config: GatewayConfig, factory: FakeScaleFactory, watcher: BusWatcher) -> Iterator[Gateway]:
    gw = Gateway(gw_config, factories={DeviceKind.SCALE: factory}).start()
    assert gw.link.wait_connected(5)
    # births come after SUBSCRIBE on the same connection: once seen, commands reach the gateway
    watcher.wait_for(lambda m: m.topic == gw.address.state() and m.json()["online"])
    wait_until(lambda: gw.devices.snapshots()["scale1"].state == "online")
    yield gw
    gw.stop()
