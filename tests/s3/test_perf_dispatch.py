"""S3Resource: the plain twisted.web dispatch that replaced Klein's werkzeug match per request.

It must keep Klein's contract for ``S3Api.handle``: write returned bytes and finish, leave a
request the handler finished alone, cancel the handler when the client goes away, and answer
500 for an unexpected failure. ``S3Api.handle_now`` runs the handler at once and returns the
body of a request answered without waiting; one that waits continues as a Deferred, with
results, failures and cancellation reaching the coroutine as under ``Deferred.fromCoroutine``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from jay.s3.app import S3Api, S3Resource


class FakeApi:
    def __init__(self, result: Deferred[Any]) -> None:
        self.result = result
        self.requests: list[Any] = []

    def handle_now(self, request: Any) -> Deferred[Any]:
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
        def handle_now(self, req: Any) -> Deferred[Any]:
            req.write(b"streamed")
            req.finish()
            return succeed(None)

    S3Resource(Streaming()).render(request)  # type: ignore[arg-type]
    assert request.written == [b"streamed"]
    assert request.finished == 1
    assert not [w for w in recwarn if "finish called twice" in str(w.message)]


# --- S3Api.handle_now --------------------------------------------------------------------------


def api_running(handler: Callable[[Any], Coroutine[Any, Any, Any]]) -> S3Api:
    """An S3Api whose ``_handle`` is ``handler`` (nothing else of it is used here)."""
    api = S3Api.__new__(S3Api)
    api._in_flight = 0
    api._idle_waiters = []
    api._handle = handler  # type: ignore[method-assign, assignment]
    return api


def test_a_handler_that_never_waits_answers_without_a_deferred() -> None:
    async def handler(request: Any) -> bytes:
        return b"<xml/>" + await succeed(b"!")

    api = api_running(handler)
    assert api.handle_now(DummyRequest([b""])) == b"<xml/>!"
    assert api._in_flight == 0
    assert api.wait_idle().called


def test_a_handler_that_waits_continues_as_a_deferred() -> None:
    first: Deferred[bytes] = Deferred()
    second: Deferred[bytes] = Deferred()
    seen: list[bytes] = []

    async def handler(request: Any) -> bytes:
        seen.append(await first)
        seen.append(await second)
        return b"done"

    api = api_running(handler)
    handled = api.handle_now(DummyRequest([b""]))
    assert isinstance(handled, Deferred) and not handled.called
    idle = api.wait_idle()
    first.callback(b"a")
    assert seen == [b"a"] and not handled.called
    second.callback(b"b")
    assert seen == [b"a", b"b"]
    assert handled.result == b"done"
    assert api._in_flight == 0 and idle.called


def test_a_failure_reaches_the_waiting_handler() -> None:
    waited: Deferred[bytes] = Deferred()

    async def handler(request: Any) -> bytes:
        try:
            await waited
        except KeyError as exc:
            return b"caught " + str(exc).encode()
        return b"not reached"

    handled = api_running(handler).handle_now(DummyRequest([b""]))
    assert isinstance(handled, Deferred)
    waited.errback(KeyError("k"))
    assert handled.result == b"caught 'k'"


def test_cancelling_reaches_the_handler_at_its_await() -> None:
    cancelled: list[bool] = []
    waited: Deferred[bytes] = Deferred(lambda d: cancelled.append(True))
    cleaned: list[bool] = []

    async def handler(request: Any) -> bytes:
        try:
            return await waited
        finally:
            cleaned.append(True)

    api = api_running(handler)
    handled = api.handle_now(DummyRequest([b""]))
    assert isinstance(handled, Deferred)
    handled.cancel()
    assert cancelled == [True] and cleaned == [True]
    failures: list[Failure] = []
    handled.addErrback(failures.append)
    assert failures[0].check(CancelledError)
    assert api._in_flight == 0


def test_an_error_before_the_first_wait_is_raised_and_rendered_as_a_failure() -> None:
    async def handler(request: Any) -> bytes:
        raise RuntimeError("early")

    api = api_running(handler)
    with pytest.raises(RuntimeError):
        api.handle_now(DummyRequest([b""]))
    assert api._in_flight == 0

    failures: list[Failure] = []

    class Recording(DummyRequest):
        def processingFailed(self, reason: Failure) -> None:
            failures.append(reason)
            super().processingFailed(reason)

    request = Recording([b""])
    S3Resource(api).render(request)
    assert [f.type for f in failures] == [RuntimeError]


def test_render_writes_and_finishes_an_answer_given_at_once() -> None:
    async def handler(request: Any) -> bytes:
        return b"<xml/>"

    request = CountingRequest([b""])
    assert S3Resource(api_running(handler)).render(request) is NOT_DONE_YET
    assert request.written == [b"<xml/>"]
    assert request.finished == 1
    assert request.notify_calls == 0

    async def streaming(request: Any) -> None:
        request.write(b"streamed")
        request.finish()

    request = CountingRequest([b""])
    S3Resource(api_running(streaming)).render(request)
    assert request.written == [b"streamed"] and request.finished == 1
