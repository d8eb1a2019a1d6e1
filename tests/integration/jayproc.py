"""Run ``twistd -n jay`` as a real process on free loopback ports, for integration tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from jay.config.model import usable_cpus
from jay.workers import listening_workers

BIN = Path(sys.executable).parent
# twistd re-raises the terminating signal after a clean shutdown (its log ends with "Server Shut
# Down."), so a process stopped by SIGTERM reports -SIGTERM; systemd counts that as success.
CLEAN_EXIT = (0, -signal.SIGTERM)


# Ports this test process has handed out. The kernel may hand the same ephemeral port to two
# consecutive ``bind(0)`` calls once the first socket is closed, so a server given "three free
# ports" could be told to listen on one of them twice; every port is handed out at most once.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on now and that this process has not handed out before."""
    held: list[socket.socket] = []
    try:
        while True:
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port
    finally:
        for s in held:
            s.close()


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


def http_get(url: str, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class JayProcess:
    """A jay server process with its own data dir, config file and ports."""

    def __init__(
        self,
        workdir: Path,
        settings: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.s3_port = free_port()
        self.admin_port = free_port()
        self.native_port = free_port()
        self.admin_token = "admin-" + "a" * 40
        self.signing_secret = "sign-" + "s" * 40
        self.settings: dict[str, Any] = {
            "data_dir": str(workdir / "data"),
            "listen_addr": f"127.0.0.1:{self.s3_port}",
            "admin_addr": f"127.0.0.1:{self.admin_port}",
            "native_addr": f"127.0.0.1:{self.native_port}",
            "admin_token": self.admin_token,
            "signing_secret": self.signing_secret,
            "log_level": "info",
            # One process unless a test asks for more: most tests look at one process's state
            # (logs, limits, counters); tests/integration/test_workers.py covers several.
            "workers": 1,
        }
        self.settings.update(settings or {})
        self.env = dict(env or {})
        self.config_path = workdir / "jay.yml"
        self.log_path = workdir / "jay.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, wait: bool = True) -> JayProcess:
        """Launch twistd; with ``wait``, return once /health/ready answers.

        Another program on the machine may take a port between ``free_port()`` and twistd's
        listen; when the ports were picked here and the server exits with "Address already in
        use", it is launched again on fresh ports (a few times), not reported as a failure.
        """
        for attempt in range(3):
            self._launch()
            if not wait:
                return self
            try:
                self.wait_ready()
                return self
            except RuntimeError:
                if attempt == 2 or not self._picked_ports_taken():
                    raise
                self._log.close()
                self._repick_ports()
        return self

    def _picked_ports_taken(self) -> bool:
        picked = {
            "listen_addr": self.s3_port,
            "admin_addr": self.admin_port,
            "native_addr": self.native_port,
        }
        ours = all(self.settings.get(k) == f"127.0.0.1:{port}" for k, port in picked.items())
        return ours and b"Address already in use" in self.log_path.read_bytes()[self._log_start :]

    def _repick_ports(self) -> None:
        self.s3_port, self.admin_port, self.native_port = free_port(), free_port(), free_port()
        self.settings["listen_addr"] = f"127.0.0.1:{self.s3_port}"
        self.settings["admin_addr"] = f"127.0.0.1:{self.admin_port}"
        self.settings["native_addr"] = f"127.0.0.1:{self.native_port}"

    def _launch(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.settings))
        env = {k: v for k, v in os.environ.items() if not k.startswith("JAY_")}
        env.update(self.env)
        self._log = open(self.log_path, "ab")
        self._log_start = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [str(BIN / "twistd"), "-n", "--pidfile=", "jay", "--config", str(self.config_path)],
            cwd=self.workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"jay exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                status, body = http_get(self.admin_url + "/health/ready")
            except OSError:
                return False
            if status != 200 or json.loads(body) != {"status": "ready"}:
                return False
            # With several workers, the first is ready before the others start: wait for all,
            # or a benchmark's connections would all land on the first.
            workers = int(self.settings.get("workers", 0)) or usable_cpus()
            if workers == 1:
                return True
            data_dir = str(self.workdir / self.settings["data_dir"])
            return listening_workers(data_dir, workers) == workers

        wait_until(ready, timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def head_on_socket(sock: socket.socket, path: str, auth_header: str) -> None:
    """Send HEAD ``path`` on an open connection and read the 200 response head: proof that the
    server accepted the connection (one still in the listen queue is reset on shutdown)."""
    sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth_header}\r\n\r\n".encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the HEAD response"
        response += chunk
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
