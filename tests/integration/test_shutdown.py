"""Graceful shutdown: SIGTERM turns readiness 503 and stops accepting, while a request already in
flight finishes within the grace period and is acknowledged."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from tests.integration.conftest import SEED_ACCOUNT, SEED_SECRET, SEED_TOKEN_ID, s3_client
from tests.integration.jayproc import CLEAN_EXIT, JayProcess, head_on_socket, http_get, wait_until


def test_sigterm_lets_an_in_flight_upload_finish(tmp_path: Path) -> None:
    jay = JayProcess(
        tmp_path,
        {
            "seed_token": {"account": SEED_ACCOUNT, "id": SEED_TOKEN_ID, "secret": SEED_SECRET},
            "shutdown_grace_seconds": 20,
        },
    ).start()
    try:
        s3_client(jay).create_bucket(Bucket="drain")
        body = b"x" * (4 * 1024 * 1024)
        sock = socket.create_connection(("127.0.0.1", jay.s3_port), timeout=20)
        # A first request on the same connection proves the server accepted it before the
        # signal (a connection still in the listen queue would be reset when listeners close).
        head_on_socket(sock, "/drain", f"Authorization: Bearer {SEED_TOKEN_ID}:{SEED_SECRET}")
        head = (
            f"PUT /drain/in-flight HTTP/1.1\r\nHost: 127.0.0.1:{jay.s3_port}\r\n"
            f"Authorization: Bearer {SEED_TOKEN_ID}:{SEED_SECRET}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        sock.sendall(head + body[: len(body) // 2])
        # Half the body is on its way: the request is in flight when the signal arrives.
        assert jay.proc is not None
        jay.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "readiness is now 503" in jay.log_text(), timeout=10)

        # New connections are refused once the listeners have stopped.
        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", jay.s3_port), timeout=1).close()
                return False
            except OSError:
                return True

        wait_until(refused, timeout=10)
        sock.sendall(body[len(body) // 2 :])
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
        sock.close()
        assert response.startswith(b"HTTP/1.1 200"), response[:200]
        assert b'ETag: "' in response
        jay.proc.wait(timeout=30)
        assert jay.proc.returncode in CLEAN_EXIT
        log = jay.log_text()
        assert "In-flight requests finished" in log
        assert "Server Shut Down." in log
    finally:
        jay.stop()
    # The acknowledged upload is durable: a fresh server serves it.
    jay2 = JayProcess(
        tmp_path,
        {"seed_token": {"account": SEED_ACCOUNT, "id": SEED_TOKEN_ID, "secret": SEED_SECRET}},
    ).start()
    try:
        obj = s3_client(jay2).get_object(Bucket="drain", Key="in-flight")
        assert obj["Body"].read() == b"x" * (4 * 1024 * 1024)
        assert http_get(jay2.admin_url + "/health/ready")[0] == 200
    finally:
        assert jay2.stop() in CLEAN_EXIT
