"""Problem-details errors shaped like the Oz API's documented error responses.

Warp documents one RFC 7807 body for every error: ``type`` (a link to the
error code's page), ``title`` (the code's summary), ``status``, ``detail``,
``instance`` (the request path), ``error`` (title and detail for older
clients), ``retryable`` and ``trace_id``, as ``application/problem+json``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = ["ERROR_CODES", "ERROR_TYPE_BASE", "SimError", "problem_body", "problem_response"]

ERROR_TYPE_BASE = "https://docs.warp.dev/reference/api-and-sdk/troubleshooting/errors/"


@dataclass(frozen=True)
class ErrorCode:
    title: str
    retryable: bool


# Every code of oz_agent_sdk.types.ErrorCode, with the title and retryability Warp documents for it.
ERROR_CODES: dict[str, ErrorCode] = {
    "insufficient_credits": ErrorCode("Your team has no remaining credits.", False),
    "feature_not_available": ErrorCode("This feature is not available on your plan.", False),
    "external_authentication_required": ErrorCode("Authorization with an external service is required.", False),
    "not_authorized": ErrorCode("You do not have permission to perform this operation.", False),
    "invalid_request": ErrorCode("The request contains invalid or missing parameters.", False),
    "resource_not_found": ErrorCode("The requested resource was not found.", False),
    "budget_exceeded": ErrorCode("The spending budget limit has been reached.", False),
    "integration_disabled": ErrorCode("The integration is disabled.", False),
    "integration_not_configured": ErrorCode("The integration setup is incomplete.", False),
    "operation_not_supported": ErrorCode(
        "The requested operation is not supported for this resource or its current state.", False
    ),
    "environment_setup_failed": ErrorCode("The environment setup failed.", False),
    "content_policy_violation": ErrorCode("The request violated the content policy.", False),
    "conflict": ErrorCode("The request conflicts with the current state of the resource.", True),
    "authentication_required": ErrorCode(
        "Your API key is invalid or has expired. Please generate a new key and try again.", False
    ),
    "resource_unavailable": ErrorCode(
        "A transient infrastructure issue prevented the request. Please try again later.", True
    ),
    "internal_error": ErrorCode(
        "An unexpected error occurred. Please try again later. If the issue persists, contact support.", True
    ),
}

# The code an HTTP status gets when the caller names none; 429 is the
# documented "capacity temporarily full" case of ``resource_unavailable``.
_DEFAULT_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "authentication_required",
    403: "not_authorized",
    404: "resource_not_found",
    405: "invalid_request",
    409: "conflict",
    422: "operation_not_supported",
    429: "resource_unavailable",
    500: "internal_error",
    502: "resource_unavailable",
    503: "resource_unavailable",
    504: "resource_unavailable",
}


class SimError(Exception):
    """An API-level failure; the same object serves Python and HTTP callers."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        error_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.error_code = error_code or _DEFAULT_CODES.get(status, "internal_error")
        self.headers = headers or {}

    def body(self, instance: str = "") -> dict[str, Any]:
        return problem_body(self.status, self.detail, self.error_code, instance)


def problem_body(status: int, detail: str, error_code: str | None = None, instance: str = "") -> dict[str, Any]:
    code = error_code or _DEFAULT_CODES.get(status, "internal_error")
    known = ERROR_CODES.get(code, ERROR_CODES["internal_error"])
    body: dict[str, Any] = {
        "type": ERROR_TYPE_BASE + code.replace("_", "-"),
        "title": known.title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "error": f"{known.title} ({detail})" if detail else known.title,
        "retryable": known.retryable,
        "trace_id": secrets.token_hex(16),
    }
    return body


def problem_response(err: SimError, instance: str = "") -> web.Response:
    return web.Response(
        status=err.status,
        text=json.dumps(err.body(instance)),
        content_type="application/problem+json",
        headers=err.headers,
    )
