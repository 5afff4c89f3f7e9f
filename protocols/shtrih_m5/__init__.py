"""Shtrih M5 scale protocol (Shtrih-M POS scales and weighing modules), sans-I/O.

Frames and the ENQ/ACK/NAK link are the fiscal register's (``protocols.shtrih.frames`` and
``protocols.shtrih.machine``); this package adds the scale's commands (``messages``), its
error table (``errors``) and a typed host/device connection (``machine``).
Source: ``shtrih-m/opos`` ``Source/SmScale/Units/`` (ScaleFrame.pas, M5ScaleDevice.pas,
M5ScaleTypes.pas, LocalConnection.pas, ScaleParameters.pas).
"""

from protocols.shtrih_m5.errors import (
    ErrorCode,
    LocalProtocolError,
    MalformedMessage,
    RemoteProtocolError,
    ScaleRefused,
    ShtrihM5Error,
    UnexpectedAnswer,
)
from protocols.shtrih_m5.machine import (
    NEED_DATA,
    Answered,
    BadRequest,
    DeviceConnection,
    HostConnection,
    LinkLost,
    RequestReceived,
)
from protocols.shtrih_m5.messages import (
    DEFAULT_PASSWORD,
    Answer,
    ChannelInfo,
    ChannelNumber,
    Command,
    DeviceInfo,
    Done,
    ReadChannel,
    ReadChannelNumber,
    ReadDeviceInfo,
    ReadStatus,
    Refused,
    Request,
    SetTare,
    Status,
    StatusFlag,
    Tare,
    Zero,
    decode_answer,
    decode_request,
    encode_answer,
)

__all__ = [
    "DEFAULT_PASSWORD",
    "NEED_DATA",
    "Answer",
    "Answered",
    "BadRequest",
    "ChannelInfo",
    "ChannelNumber",
    "Command",
    "DeviceConnection",
    "DeviceInfo",
    "Done",
    "ErrorCode",
    "HostConnection",
    "LinkLost",
    "LocalProtocolError",
    "MalformedMessage",
    "ReadChannel",
    "ReadChannelNumber",
    "ReadDeviceInfo",
    "ReadStatus",
    "Refused",
    "RemoteProtocolError",
    "Request",
    "RequestReceived",
    "ScaleRefused",
    "SetTare",
    "ShtrihM5Error",
    "Status",
    "StatusFlag",
    "Tare",
    "UnexpectedAnswer",
    "Zero",
    "decode_answer",
    "decode_request",
    "encode_answer",
]
