"""Mettler Toledo MT-SICS (Standard Interface Command Set), levels 0 and 1, sans-I/O.

ASCII lines ending in CR LF; the host sends a command, the device answers with a line that
echoes the command's identifier and a status. See ``frames`` for the byte layout,
``messages`` for the typed commands and replies, ``machine`` for the host and device sides.
"""

from protocols.mtsics.errors import (
    LineTooLong,
    LocalProtocolError,
    MalformedLine,
    MtSicsError,
    RemoteProtocolError,
    UnexpectedReply,
)
from protocols.mtsics.machine import NEED_DATA, CommandRejected, DeviceConnection, HostConnection, HostState
from protocols.mtsics.messages import (
    ClearTare,
    Command,
    ErrorReply,
    PresetTare,
    QueryBalanceData,
    QuerySerialNumber,
    QuerySoftwareVersion,
    QueryTare,
    Reply,
    Reset,
    SendImmediateWeight,
    SendStableWeight,
    Status,
    StatusReply,
    Tare,
    TextReply,
    WeightReply,
    Zero,
    parse_command,
    parse_reply,
)

__all__ = [
    "NEED_DATA",
    "ClearTare",
    "Command",
    "CommandRejected",
    "DeviceConnection",
    "ErrorReply",
    "HostConnection",
    "HostState",
    "LineTooLong",
    "LocalProtocolError",
    "MalformedLine",
    "MtSicsError",
    "PresetTare",
    "QueryBalanceData",
    "QuerySerialNumber",
    "QuerySoftwareVersion",
    "QueryTare",
    "RemoteProtocolError",
    "Reply",
    "Reset",
    "SendImmediateWeight",
    "SendStableWeight",
    "Status",
    "StatusReply",
    "Tare",
    "TextReply",
    "UnexpectedReply",
    "WeightReply",
    "Zero",
    "parse_command",
    "parse_reply",
]
