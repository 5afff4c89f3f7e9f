"""Scale simulators: the device side of each scale protocol, with a weighing model."""

from simulators.scale.mtsics import MtSicsConfig, MtSicsSimulator

__all__ = ["MtSicsConfig", "MtSicsSimulator"]
