"""ZPL II (Zebra label printers): label templates, a tokenizer for the printer side, and the
``~HS``/``~HI`` answers parsed and encoded. Sans-I/O: no sockets here."""

from protocols.zpl.commands import (
    Command,
    ControlCommand,
    LabelFormat,
    StrayCommand,
    ZplStreamParser,
    tokenize,
)
from protocols.zpl.errors import LocalProtocolError, RemoteProtocolError, TemplateDataError, ZplError
from protocols.zpl.labels import (
    LabelSize,
    MarkingCode,
    MarkingLabel,
    PriceTag,
    Template,
    WeighedLabel,
    build_label,
    render_label,
)
from protocols.zpl.status import (
    CANCEL_ALL,
    HOST_IDENTIFICATION,
    HOST_STATUS,
    NEED_DATA,
    AnswerParser,
    HostIdentification,
    HostStatus,
)

__all__ = [
    "CANCEL_ALL",
    "HOST_IDENTIFICATION",
    "HOST_STATUS",
    "NEED_DATA",
    "AnswerParser",
    "Command",
    "ControlCommand",
    "HostIdentification",
    "HostStatus",
    "LabelFormat",
    "LabelSize",
    "LocalProtocolError",
    "MarkingCode",
    "MarkingLabel",
    "PriceTag",
    "RemoteProtocolError",
    "StrayCommand",
    "Template",
    "TemplateDataError",
    "WeighedLabel",
    "ZplError",
    "ZplStreamParser",
    "build_label",
    "render_label",
    "tokenize",
]
