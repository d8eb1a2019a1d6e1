"""Health bodies (JAY_SPEC §4.3, §9.6): pure functions over a Readiness."""

from __future__ import annotations

import json

from jay.lifecycle import Readiness


def live_body() -> tuple[int, bytes]:
    return 200, json.dumps({"status": "alive"}, separators=(",", ":")).encode() + b"\n"


def ready_body(readiness: Readiness) -> tuple[int, bytes]:
    if readiness.is_ready:
        return 200, b'{"status":"ready"}\n'
    body = {"reason": readiness.reason, "status": "not_ready"}
    return 503, json.dumps(body, separators=(",", ":")).encode() + b"\n"
