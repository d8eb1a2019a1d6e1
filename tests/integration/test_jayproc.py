"""The test harness's own promises: distinct ports, and a relaunch when a picked port is taken."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.integration.jayproc import CLEAN_EXIT, JayProcess, free_port


def test_free_port_never_hands_out_a_port_twice() -> None:
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)


def test_start_relaunches_on_fresh_ports_when_a_picked_port_is_taken(tmp_path: Path) -> None:
    jay = JayProcess(tmp_path)
    taken = jay.admin_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        jay.start()
        try:
            assert jay.admin_port != taken
            assert b"Address already in use" in jay.log_path.read_bytes()
            assert jay.settings["admin_addr"] == f"127.0.0.1:{jay.admin_port}"
        finally:
            assert jay.stop() in CLEAN_EXIT, jay.log_text()[-5000:]
