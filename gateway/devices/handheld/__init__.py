"""The handheld (ТСД) family: a task pool device and one device per handheld, over ``gateway.handheld``."""

from gateway.devices.handheld.binding import HandheldBinding

__all__ = ["HandheldBinding"]
