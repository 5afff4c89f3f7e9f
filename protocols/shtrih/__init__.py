"""Shtrih-M fiscal register protocol v1, sans-I/O: frames, typed commands, the link handshake.

``frames`` (STX/LEN/LRC, shared with Shtrih M5 scales), ``messages`` (typed commands and
answers), ``machine`` (host and device link state machines), ``errors`` (the vendor error
table as typed errors).
"""

from protocols.shtrih.errors import (
    DeviceRefused,
    LocalProtocolError,
    RemoteProtocolError,
    ShtrihError,
)
from protocols.shtrih.frames import Control, Frame, FrameDecoder, encode_frame, lrc
from protocols.shtrih.machine import NEED_DATA, DeviceLink, HostLink

__all__ = [
    "NEED_DATA",
    "Control",
    "DeviceLink",
    "DeviceRefused",
    "Frame",
    "FrameDecoder",
    "HostLink",
    "LocalProtocolError",
    "RemoteProtocolError",
    "ShtrihError",
    "encode_frame",
    "lrc",
]
