"""Shared fixtures for the S3 front-end tests."""

from __future__ import annotations

import time

import pytest
from twisted.web import http

from jay.s3 import http as jay_http
from tests.s3.wire import NOW


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """twisted's and jay's response dates both read ``NOW``."""
    monkeypatch.setattr(http, "gmtime", lambda t=None: time.gmtime(NOW if t is None else t))
    monkeypatch.setattr(jay_http.time, "time", lambda: NOW)
    monkeypatch.setattr(jay_http, "_date_header", jay_http._DateHeader())
