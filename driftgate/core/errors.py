"""One small exception tree, mapped to HTTP status codes in one place.

Every service answers errors in the OpenAI shape::

    {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}

Raise a subclass of :class:`DriftgateError`; the services install
:func:`install_error_handlers` so no stack trace ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import ORJSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

log = logging.getLogger(__name__)


class CliError(Exception):
    """An error the user of a command can fix: printed as one line, exit status 1.

    Not an HTTP error: every ``driftgate`` subcommand (the app's and the services')
    raises it, and ``driftgate.cli.main`` prints it.
    """


class DriftgateError(Exception):
    """Base of every error a client may see."""

    status_code = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, param=self.param, code=self.code)


class InvalidRequest(DriftgateError):
    status_code = 400
    error_type = "invalid_request_error"


class Unauthorized(DriftgateError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(DriftgateError):
    status_code = 403
    error_type = "permission_error"
    code = "model_not_allowed"


class NotFound(DriftgateError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class Conflict(DriftgateError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(DriftgateError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(DriftgateError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        seconds = max(1, int(retry_after_s + 0.999))
        super().__init__(message, headers={"Retry-After": str(seconds)})
        self.retry_after_s = retry_after_s


class UnprocessableBody(InvalidRequest):
    """The body is JSON but not a valid request (wrong or missing fields)."""

    status_code = 422
    code = "invalid_body"


class UpstreamError(DriftgateError):
    """The engine answered with an error we cannot retry."""

    status_code = 502
    error_type = "upstream_error"
    code = "bad_gateway"


class Unavailable(DriftgateError):
    """No healthy replica (or no dependency) can take the request now."""

    status_code = 503
    error_type = "service_unavailable"
    code = "no_healthy_upstream"


class UpstreamTimeout(DriftgateError):
    status_code = 504
    error_type = "timeout_error"
    code = "upstream_timeout"


def error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | int | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request body", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    param = ".".join(loc) or None
    msg = str(first.get("msg", "invalid value"))
    return (f"{param}: {msg}" if param else msg), param


async def send_error(send: Send, exc: DriftgateError) -> None:
    """Answer ``exc`` in the OpenAI shape straight through ASGI (for middleware that
    refuses a request before any route sees it)."""
    body = orjson.dumps(exc.body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()),
    ]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the OpenAI shape; never leak a stack trace."""

    async def on_driftgate(_: Request, exc: Exception) -> ORJSONResponse:
        assert isinstance(exc, DriftgateError)
        return ORJSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    async def on_validation(_: Request, exc: Exception) -> ORJSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, param = _validation_message(exc)
        return ORJSONResponse(
            error_body(message, "invalid_request_error", param=param, code="invalid_body"),
            status_code=422,
        )

    async def on_http(_: Request, exc: Exception) -> ORJSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        etype = _STATUS_TYPES.get(exc.status_code, "server_error")
        return ORJSONResponse(
            error_body(str(exc.detail), etype, code=None),
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )

    async def on_unexpected(_: Request, exc: Exception) -> ORJSONResponse:
        # The one place a blanket handler is right: log it whole, tell the client little.
        log.exception("unhandled error", exc_info=exc)
        return ORJSONResponse(error_body("internal error", "server_error"), status_code=500)

    app.add_exception_handler(DriftgateError, on_driftgate)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
