"""Shtrih-M fiscal register simulator (device model, FN state file, CLI)."""

from simulators.fiscal.device import ShtrihDevice, SimConfig

__all__ = ["ShtrihDevice", "SimConfig"]
