"""PeriodicTask: run a pass after a first delay, then ``interval`` after each pass *ends*.

Like ``TimerService`` with an injected clock, but a slow pass never overlaps the next one and the
timer restarts after each pass (JAY_SPEC §7.1, §7.3). Stopping cancels the timer and the running
pass (whose Deferred chain stops at its next await), so shutdown never waits for a scrub.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()


class PeriodicTask(Service):
    def __init__(
        self,
        name: str,
        run_pass: Callable[[], Deferred[Any]],
        *,
        clock: IReactorTime,
        first_delay_seconds: float,
        interval_seconds: float,
    ) -> None:
        self.task_name = name
        self._run_pass = run_pass
        self._clock = clock
        self._first_delay = first_delay_seconds
        self._interval = interval_seconds
        self._timer: IDelayedCall | None = None
        self._running: Deferred[Any] | None = None
        self.passes_completed = 0
        self.passes_failed = 0
        self.last_result: Any = None

    @property
    def is_enabled(self) -> bool:
        return self._interval > 0

    @property
    def is_pass_running(self) -> bool:
        return self._running is not None

    def startService(self) -> None:
        super().startService()
        if self.is_enabled:
            self._schedule(self._first_delay)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        running = self._running
        if running is None:
            return succeed(None)
        running.cancel()
        return succeed(None)

    def _schedule(self, delay: float) -> None:
        if self.running:
            self._timer = self._clock.callLater(max(0.0, delay), self.run_now)

    def run_now(self) -> Deferred[Any]:
        """Start a pass now unless one is running (then: that pass's Deferred)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._running is not None:
            return self._running
        try:
            d = self._run_pass()
        except Exception:
            d = Deferred()
            d.errback(Failure())
        self._running = d
        done: Deferred[Any] = Deferred()
        d.addBoth(self._pass_ended, done)
        return done

    def _pass_ended(self, result: Any, done: Deferred[Any]) -> None:
        self._running = None
        if isinstance(result, Failure):
            if result.check(CancelledError):
                log.info("{name} pass cancelled", name=self.task_name)
            else:
                self.passes_failed += 1
                log.failure("{name} pass failed", result, name=self.task_name)
        else:
            self.passes_completed += 1
            self.last_result = result
        self._schedule(self._interval)
        if isinstance(result, Failure):
            done.errback(result)
            done.addErrback(lambda _: None)
        else:
            done.callback(result)
