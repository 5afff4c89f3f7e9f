"""The per-store gateway: devices exposed on the store bus (MQTT contract v1)."""

__version__ = "0.1.0"
