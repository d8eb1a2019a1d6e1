"""S3Resource: the plain twisted.web dispatch that replaced Klein's werkzeug match per request.

It must keep Klein's contract for ``S3Api.handle``: write returned bytes and finish, leave a
request the handler finished alone, cancel the handler when the client goes away, and answer
500 for an unexpected failure.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from jay.s3.app import S3Resource


class FakeApi:
    def __init__(self, result: Deferred[Any]) -> None:
        self.result = result
        self.requests: list[Any] = []

    def handle(self, request: Any) -> Deferred[Any]:
        self.requests.append(request)
        return self.result


def render(result: Deferred[Any]) -> tuple[DummyRequest, FakeApi, Any]:
    api = FakeApi(result)
    request = DummyRequest([b""])
    returned = S3Resource(api).render(request)  # type: ignore[arg-type]
    return request, api, returned


def test_bytes_are_written_and_the_request_finished() -> None:
    request, api, returned = render(succeed(b"<xml/>"))
    assert returned is NOT_DONE_YET
    assert api.requests == [request]
    assert request.written == [b"<xml/>"]
    assert request.finished == 1


def test_a_request_the_handler_finished_is_not_finished_again() -> None:
    pending: Deferred[Any] = Deferred()
    request, _, _ = render(pending)
    request.write(b"streamed")
    request.finish()
    pending.callback(None)
    assert request.written == [b"streamed"]
    assert request.finished == 1


def test_none_finishes_without_a_body() -> None:
    request, _, _ = render(succeed(None))
    assert request.written == []
    assert request.finished == 1


def test_client_going_away_cancels_the_handler() -> None:
    cancelled: list[bool] = []
    pending: Deferred[Any] = Deferred(lambda d: cancelled.append(True))
    request, _, _ = render(pending)
    request.processingFailed(Failure(ConnectionError("gone")))  # errbacks notifyFinish
    assert cancelled == [True]
    pending.addErrback(lambda f: f.trap(CancelledError))
    assert request.written == []


def test_unexpected_failure_becomes_processing_failed() -> None:
    failures: list[Failure] = []

    class Recording(DummyRequest):
        def processingFailed(self, reason: Failure) -> None:
            failures.append(reason)
            super().processingFailed(reason)

    request = Recording([b""])
    S3Resource(FakeApi(fail(RuntimeError("boom")))).render(request)  # type: ignore[arg-type]
    assert [f.type for f in failures] == [RuntimeError]
    assert request.written == []
