from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import GatewayConfig, load_config
from gateway.errors import ConfigError
from protocols.bus import DeviceKind

GOOD = """
tenant = "acme"
store = "s001"
gateway = "gw1"

[broker]
url = "mqtts://broker.example:8883"
keepalive = 15
username = "gw"
password = "secret"

[outbox]
max_events = 500
max_age_days = 2

[[devices]]
id = "scale1"
kind = "scale"
driver = "mtsics"
url = "/dev/ttyUSB0"
options = { baudrate = 9600, poll_interval_s = 0.5, deadband_kg = 0.005 }

[[devices]]
id = "scale2"
kind = "scale"
driver = "mtsics"
url = "socket://10.0.0.5:4001"
enabled = false
"""


def _load(tmp_path: Path, text: str) -> GatewayConfig:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return load_config(path)


def test_good_config(tmp_path: Path) -> None:
    cfg = _load(tmp_path, GOOD)
    assert cfg.address.prefix == "vitrina/v1/acme/s001/gw1"
    assert (cfg.broker.host, cfg.broker.port, cfg.broker.tls) == ("broker.example", 8883, True)
    assert cfg.outbox.max_events == 500 and cfg.outbox.require_cloud_online is True
    assert cfg.devices[0].kind is DeviceKind.SCALE and cfg.devices[0].options["baudrate"] == 9600
    assert [d.id for d in cfg.enabled_devices()] == ["scale1"]
    assert cfg.resolved_data_dir == Path("var/gateway-gw1")
    assert cfg.client_id == "vitrina-gw-acme-s001-gw1"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (('kind = "scale"', 'kind = "toaster"', 1), "devices[0].kind"),
        (('keepalive = 15', 'keep_alive = 15', 1), "broker.keep_alive"),
        (('url = "mqtts://broker.example:8883"', 'url = "http://broker"', 1), "broker.url"),
        (('url = "mqtts://broker.example:8883"', 'url = "mqtt://h:99999"', 1), "broker.url"),
        (('gateway = "gw1"', 'gateway = "gw/1"', 1), "gateway"),
        (('id = "scale2"', 'id = "scale1"', 1), "used twice"),
        (('id = "scale1"', 'id = "sc ale"', 1), "devices[0].id"),
        (('max_events = 500', 'max_events = 0', 1), "outbox.max_events"),
        (('tenant = "acme"\n', '', 1), "tenant"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, change: tuple[str, str, int], field: str) -> None:
    old, new, count = change
    assert old in GOOD
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, GOOD.replace(old, new, count))
    message = str(info.value)
    assert field in message and "\n" not in message
    assert str(tmp_path / "gateway.toml") in message


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="invalid TOML"):
        _load(tmp_path, "tenant = \n")
