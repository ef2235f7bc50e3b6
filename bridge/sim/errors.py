"""Problem-details errors shaped like the Oz API's error responses."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

__all__ = ["ERROR_TYPE_BASE", "SimError", "problem_body", "problem_response"]

ERROR_TYPE_BASE = "https://docs.warp.dev/errors/"

# Default codes come from oz_agent_sdk.types.ErrorCode; that catalogue has no
# rate-limit code, so 429 borrows the transient ``resource_unavailable``.
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

_TITLES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
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

    def body(self) -> dict[str, Any]:
        return problem_body(self.status, self.detail, self.error_code)


def problem_body(status: int, detail: str, error_code: str | None = None) -> dict[str, Any]:
    code = error_code or _DEFAULT_CODES.get(status, "internal_error")
    return {
        "type": ERROR_TYPE_BASE + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }


def problem_response(err: SimError) -> web.Response:
    return web.Response(
        status=err.status,
        text=json.dumps(err.body()),
        content_type="application/problem+json",
        headers=err.headers,
    )
