"""S3Resource: the plain twisted.web dispatch that replaced Klein's werkzeug match per request.

It must keep Klein's contract for ``S3Api.handle``: write returned bytes and finish, leave a
request the handler finished alone, cancel the handler when the client goes away, and answer
500 for an unexpected failure.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
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


class CountingRequest(DummyRequest):
    """A DummyRequest that warns on a second finish, as twisted's Request does."""

    notify_calls = 0

    def notifyFinish(self) -> Deferred[None]:
        self.notify_calls += 1
        return super().notifyFinish()

    def finish(self) -> None:
        if self.finished:
            warnings.warn("Warning! request.finish called twice.", stacklevel=2)
            return
        super().finish()


def test_an_answered_handler_needs_no_finish_notification() -> None:
    request = CountingRequest([b""])
    S3Resource(FakeApi(succeed(b"<xml/>"))).render(request)  # type: ignore[arg-type]
    assert request.notify_calls == 0
    assert request.written == [b"<xml/>"]
    assert request.finished == 1
    pending: Deferred[Any] = Deferred()
    running = CountingRequest([b""])
    S3Resource(FakeApi(pending)).render(running)  # type: ignore[arg-type]
    assert running.notify_calls == 1
    pending.callback(b"")
    assert running.finished == 1


def test_a_request_finished_synchronously_is_not_finished_twice(
    recwarn: pytest.WarningsRecorder,
) -> None:
    request = CountingRequest([b""])

    class Streaming:
        def handle(self, req: Any) -> Deferred[Any]:
            req.write(b"streamed")
            req.finish()
            return succeed(None)

    S3Resource(Streaming()).render(request)  # type: ignore[arg-type]
    assert request.written == [b"streamed"]
    assert request.finished == 1
    assert not [w for w in recwarn if "finish called twice" in str(w.message)]
