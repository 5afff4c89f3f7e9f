"""The checkout lane family: a lane is a device on the bus (shift, cash moves, receipts the cloud asks for)."""

from gateway.devices.lane.binding import LaneBinding

__all__ = ["LaneBinding"]
