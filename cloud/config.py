"""Settings of every cloud process (API, bus consumer, worker), read from ``VITRINA_*`` variables.

One settings class for all processes so that ``vitrina up`` and a production deployment read
the same names; each process uses the part it needs.
"""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_instance_id() -> str:
    # Stable across restarts on one host, so the consumer's persistent MQTT session (and the
    # messages the broker keeps for it) is found again after a restart.
    return socket.gethostname().replace(".", "-")[:40] or "cloud"


class CloudSettings(BaseSettings):
    """Cloud configuration; every field can be set as ``VITRINA_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="VITRINA_", extra="ignore")

    database_url: str = "sqlite:///var/vitrina.db"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    # How long the broker keeps the consumer's session (and unacknowledged messages) while it is away.
    mqtt_session_expiry_s: int = Field(default=86_400, ge=0)
    bus_root: str = "vitrina"
    redis_url: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    gateway_stale_after_s: float = Field(default=90, gt=0)
    command_timeout_s: float = Field(default=10, ge=0)
    command_max_timeout_s: float = Field(default=60, gt=0)
    shared_group: str = "vitrina-cloud"
    instance_id: str = Field(default_factory=_default_instance_id)

    @field_validator("bus_root", "shared_group", "instance_id")
    @classmethod
    def _topic_safe(cls, value: str) -> str:
        # These end up in topics and client ids: the same character set as a topic level.
        from protocols.bus import check_id

        check_id(value, "setting")
        return value

    def sqlite_path(self) -> Path | None:
        """The SQLite file of ``database_url`` (``None`` for other databases or in-memory)."""
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        raw = self.database_url[len(prefix):].split("?", 1)[0]
        return None if raw in ("", ":memory:") else Path(raw)


@lru_cache(maxsize=1)
def get_settings() -> CloudSettings:
    """Process-wide settings, read once; the SQLite folder is created so a fresh checkout starts."""
    settings = CloudSettings()
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return settings
