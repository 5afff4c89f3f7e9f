"""CAS CL-series label scales (CL5000/CL5200/CL5500): PLU upload, read and delete, sans-I/O."""

from protocols.cas.codec import (
    Decoder,
    DeletePlu,
    Plu,
    ReadPlu,
    Reply,
    WritePlu,
    encode_delete_plu,
    encode_read_plu,
    encode_reply,
    encode_write_plu,
)
from protocols.cas.errors import CasError, LocalProtocolError, RemoteProtocolError, ScaleRefused

__all__ = [
    "CasError",
    "Decoder",
    "DeletePlu",
    "LocalProtocolError",
    "Plu",
    "ReadPlu",
    "RemoteProtocolError",
    "Reply",
    "ScaleRefused",
    "WritePlu",
    "encode_delete_plu",
    "encode_read_plu",
    "encode_reply",
    "encode_write_plu",
]
