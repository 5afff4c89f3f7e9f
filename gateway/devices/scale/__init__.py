"""The scale family: weighing, zero, tare, and ``weight`` events from a polled scale."""

from gateway.devices.scale.binding import ScaleBinding

__all__ = ["ScaleBinding"]
