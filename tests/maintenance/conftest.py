"""Fixtures for maintenance tests: a real StorageService in tmp_path, a fake clock for timers."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from tests.storage.conftest import start_service, stop_service


class CountingMetrics:
    """Records what storage and the scrubber report (the registry's count/scrub_progress)."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.progress: list[tuple[int, int, bool]] = []

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def scrub_progress(
        self, *, objects_scanned: int, bytes_scanned: int, pass_complete: bool = False
    ) -> None:
        self.progress.append((objects_scanned, bytes_scanned, pass_complete))


@pytest.fixture
def data_dir(tmp_path: Any) -> str:
    return str(tmp_path / "data")


@pytest.fixture
def metrics() -> CountingMetrics:
    return CountingMetrics()


@pytest_twisted.async_yield_fixture
async def svc(data_dir: str, metrics: CountingMetrics) -> Any:
    service = await start_service(data_dir)
    service.metrics = metrics
    try:
        yield service
    finally:
        await stop_service(service)


@pytest_twisted.async_fixture
async def bucket_info(svc: Any) -> Any:
    account = await svc.create_account("alice")
    return await svc.create_bucket("bkt", account.account_id)
