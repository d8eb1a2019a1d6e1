"""IdleMemoryRelease: what a busy moment allocated goes back to the system once the process
rests.

While requests flow, jay keeps freed body buffers for reuse on purpose: malloc's trim threshold
is raised (``libc.tune_allocator``) and ``blobs`` keeps aligned O_DIRECT buffers, so each 1 MiB
read or write does not map, fault in and unmap fresh memory. Once no request has finished and
no buffer been taken for a whole interval, this service unmaps the kept buffers and asks malloc
to return its free memory (``malloc_trim``), once per quiet spell: an idle worker's RSS is that
of its data structures, not of its busiest moment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from jay.storage.blobs import drop_direct_buffers
from jay.storage.libc import release_free_memory

log = Logger()

# How long without activity counts as quiet: short enough that a process measured "idle for a
# couple of seconds" has already given its memory back, long enough that a pause between two
# requests of a busy client does not trim (a trim only costs the re-faulting of what is
# allocated again).
QUIET_SECONDS = 0.5


def release_memory() -> None:
    drop_direct_buffers()
    release_free_memory()


class IdleMemoryRelease(Service):
    """Calls ``release`` once each time ``activity()`` (a number that grows with work) has not
    changed for ``interval`` seconds after it last did."""

    def __init__(
        self,
        activity: Callable[[], int],
        *,
        clock: Any,
        interval: float = QUIET_SECONDS,
        release: Callable[[], None] = release_memory,
    ) -> None:
        self._activity = activity
        self._clock = clock
        self._interval = interval
        self._release = release
        self._seen: int | None = None
        self._is_released = True  # nothing allocated for work yet
        self._loop: LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self._seen = self._activity()
        loop = self._loop = LoopingCall(self._tick)
        loop.clock = self._clock
        loop.start(self._interval, now=False).addErrback(
            lambda f: log.failure("Idle memory release stopped", f)
        )

    def stopService(self) -> Any:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        return super().stopService()

    def _tick(self) -> None:
        seen = self._activity()
        if seen != self._seen:
            self._seen = seen
            self._is_released = False
            return
        if not self._is_released:
            self._is_released = True
            self._release()
