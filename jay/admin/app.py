"""Admin API on the admin port: health probes now, the /_jay/ operator API on top."""

from __future__ import annotations

from typing import Any

from klein import Klein
from twisted.web.iweb import IRequest

from jay.admin.health import live_body, ready_body
from jay.lifecycle import Readiness


class AdminApi:
    app = Klein()

    def __init__(self, *, readiness: Readiness) -> None:
        self._readiness = readiness

    def resource(self) -> Any:
        return self.app.resource()

    def _json(self, request: IRequest, status: int, body: bytes) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return body

    @app.route("/health/live", methods=["GET", "HEAD"])
    def live(self, request: IRequest) -> bytes:
        return self._json(request, *live_body())

    @app.route("/health/ready", methods=["GET", "HEAD"])
    @app.route("/health", methods=["GET", "HEAD"])
    def ready(self, request: IRequest) -> bytes:
        return self._json(request, *ready_body(self._readiness))

    @app.handle_errors
    def not_found(self, request: IRequest, failure: Any) -> bytes:
        from werkzeug.exceptions import HTTPException

        if failure.check(HTTPException):
            code = failure.value.code or 500
            request.setResponseCode(code)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"404 page not found\n" if code == 404 else b"error\n"
        request.setResponseCode(500)
        return b'{"error":"internal error"}\n'
