"""Errors of the cloud's services, mapped to HTTP by :mod:`cloud.app`.

Services raise these (never ``HTTPException``) so they stay usable from the bus consumer, tasks
and the CLI. Each carries a stable English ``code`` for machines and a human ``message``
(Russian where a store operator reads it).
"""

from __future__ import annotations


class CloudError(Exception):
    """Base of every cloud service error."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, extra: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra or {}


class NotFound(CloudError):
    """The row does not exist *for this tenant* (another tenant's row is not found either)."""

    status_code = 404
    code = "not_found"


class Conflict(CloudError):
    """The request is valid but clashes with the current state (key reuse, gateway offline)."""

    status_code = 409
    code = "conflict"


class Invalid(CloudError):
    """The request is malformed in a way the schema could not catch."""

    status_code = 422
    code = "invalid"


class Unauthorized(CloudError):
    status_code = 401
    code = "unauthorized"


class Unavailable(CloudError):
    """A dependency (broker, database) is down; the caller may retry the same request."""

    status_code = 503
    code = "unavailable"
