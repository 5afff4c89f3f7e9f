"""nexo Retailer (Sale to POI) messages as JSON over TCP with a 4-byte length prefix, sans-I/O.

``frames``: the length prefix. ``messages``: typed header and bodies. ``codec``: the
``Connection`` (bytes ⇄ messages). ``errors``: one base split into our / the peer's fault.
"""

from protocols.nexo.codec import NEED_DATA, Connection, decode, encode
from protocols.nexo.errors import (
    FrameTooLarge,
    LocalProtocolError,
    MalformedMessage,
    NexoError,
    RemoteProtocolError,
)

__all__ = [
    "NEED_DATA",
    "Connection",
    "FrameTooLarge",
    "LocalProtocolError",
    "MalformedMessage",
    "NexoError",
    "RemoteProtocolError",
    "decode",
    "encode",
]
