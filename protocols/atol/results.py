"""The ATOL web server ("Web-сервер ДТО") HTTP API envelope and the task results.

    POST /api/v2/requests        {"uuid": "...", "request": [task, ...]}
         201 {"uuid", "number", "isBlocked", "blockedUUID"}; 409 when the uuid is known
         (the tasks are never queued twice: GET the uuid for the first run's results);
         400 for a body without uuid/request or with more than one fiscal task.
    GET  /api/v2/requests/{uuid} 200 {"results": [{"status", "errorCode", "errorDescription",
         "result"}, ...]}, one per task, in order; 404 for an unknown uuid.

Statuses (``Utils.getStatusString`` of the ``archdemon`` web-server clone, which keeps ATOL's
protocol): ``wait`` ``inProgress`` ``ready`` ``error`` ``interrupted`` (a previous task failed)
``blocked`` (the device was lost mid-document; the queue waits for recovery) ``canceled``.
The 201/409/400 codes and the POST answer body come from that clone [V clone, K for ATOL's
own server]. Result payloads: ``fiscalParams`` with ``fiscalDocumentDateTime``,
``fiscalDocumentNumber``, ``fiscalDocumentSign`` (a string of digits), ``fiscalReceiptNumber``,
``fnNumber``, ``registrationNumber``, ``shiftNumber``, ``receiptsCount`` (close shift),
``total``, ``fnsUrl`` (examples quoted in public projects from ATOL's documentation);
``shiftStatus {number, state, expiredTime}``; ``deviceStatus {paperPresent, coverOpened, ...}``
(field names from ``KKTServiceLib``; the ``deviceStatus`` wrapper key [K]);
``documentTLV`` keyed by tag number (``getFnDocument``); marking-check results as in
``KKTServiceLib`` (``offlineValidation``, ``ready``, ``onlineValidation.itemInfoCheckResult``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from protocols.atol.errors import RemoteProtocolError

API_PATH = "/api/v2/requests"
DEFAULT_PORT = 16732


class Status(StrEnum):
    WAIT = "wait"
    IN_PROGRESS = "inProgress"
    READY = "ready"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    BLOCKED = "blocked"
    CANCELED = "canceled"


FINAL = frozenset({Status.READY, Status.ERROR, Status.INTERRUPTED, Status.CANCELED})


class _Peer(BaseModel):
    """Parsed from the web server: unknown fields are kept out, missing ones are errors."""

    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="python")


class Accepted(_Peer):
    uuid: str
    number: int = 0
    is_blocked: bool = False
    blocked_uuid: str = Field(default="", alias="blockedUUID")


class TaskResult(_Peer):
    status: Status
    error_code: int = 0
    error_description: str = ""
    result: dict[str, Any] | None = None


class RequestResults(_Peer):
    results: tuple[TaskResult, ...]

    @property
    def done(self) -> bool:
        return all(r.status in FINAL for r in self.results)


class FiscalParams(_Peer):
    fiscal_document_date_time: dt.datetime
    fiscal_document_number: int = Field(ge=1)
    fiscal_document_sign: str = Field(pattern=r"^\d{1,20}$")
    fn_number: str
    registration_number: str = ""
    shift_number: int = Field(ge=0)
    fiscal_receipt_number: int | None = None
    receipts_count: int | None = None
    total: Decimal | None = None
    fns_url: str | None = None


class FiscalResult(_Peer):
    fiscal_params: FiscalParams
    warnings: Any = None


class ShiftState(StrEnum):
    CLOSED = "closed"
    OPENED = "opened"
    EXPIRED = "expired"


class ShiftStatus(_Peer):
    number: int = Field(ge=0)
    state: ShiftState
    expired_time: dt.datetime | None = None


class ShiftStatusResult(_Peer):
    shift_status: ShiftStatus


class DeviceStatus(_Peer):
    current_date_time: dt.datetime
    shift: ShiftState
    blocked: bool = False
    cover_opened: bool
    paper_present: bool
    fiscal: bool = True
    fn_fiscal: bool = True
    fn_present: bool = True
    cash_drawer_opened: bool = False


class DeviceStatusResult(_Peer):
    device_status: DeviceStatus


class FnDocumentResult(_Peer):
    document_tlv: dict[str, Any] = Field(alias="documentTLV")


class OfflineValidation(_Peer):
    fm_check: bool
    fm_check_result: bool
    fm_check_error_reason: str | None = None


class BeginValidationResult(_Peer):
    offline_validation: OfflineValidation


class ItemInfoCheckResult(_Peer):
    """Tag 2106 as five flags (bits 0..4)."""

    imc_check_flag: bool
    imc_check_result: bool
    imc_status_info: bool
    imc_estimated_status_correct: bool
    ecr_stand_alone_flag: bool

    @property
    def bits(self) -> int:
        flags = (self.imc_check_flag, self.imc_check_result, self.imc_status_info,
                 self.imc_estimated_status_correct, self.ecr_stand_alone_flag)  # fmt: skip
        return sum(1 << n for n, f in enumerate(flags) if f)

    @classmethod
    def from_bits(cls, bits: int) -> ItemInfoCheckResult:
        return cls(
            imc_check_flag=bool(bits & 1), imc_check_result=bool(bits & 2), imc_status_info=bool(bits & 4),
            imc_estimated_status_correct=bool(bits & 8), ecr_stand_alone_flag=bool(bits & 16),
        )  # fmt: skip


class OnlineValidation(_Peer):
    item_info_check_result: ItemInfoCheckResult
    mark_operator_item_status: str | None = None
    mark_operator_response_result: str | None = None
    imc_type: str | None = None


class DriverError(_Peer):
    code: int
    description: str = ""


class ValidationStatusResult(_Peer):
    ready: bool
    sent_imc_request: bool = False
    driver_error: DriverError | None = None
    online_validation: OnlineValidation | None = None


class AcceptResult(_Peer):
    item_info_check_result: ItemInfoCheckResult | None = None


M = TypeVar("M", bound=_Peer)


def parse(model: type[M], data: object) -> M:
    """A peer model from decoded JSON; ``RemoteProtocolError`` names what does not fit."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "<тело>"
        raise RemoteProtocolError(
            f"ответ не по схеме ATOL ({model.__name__}): {where}: {err['msg']}"
        ) from exc
