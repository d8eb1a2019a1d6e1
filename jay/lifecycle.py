"""Readiness shared by the health endpoint and the front ends; a leaf anyone may import."""

from __future__ import annotations


class Readiness:
    """Not ready until startup recovery is done; not ready again as soon as shutdown starts, so
    load balancers drain before listeners close (JAY_SPEC §4.3, §7.6 gap)."""

    def __init__(self) -> None:
        self.is_ready = False
        self.reason = "recovery in progress"

    def mark_ready(self) -> None:
        self.is_ready = True
        self.reason = ""

    def mark_stopping(self) -> None:
        self.is_ready = False
        self.reason = "shutting down"
