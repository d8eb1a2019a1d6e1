"""jay-admin (JAY_SPEC §4.4): the requests each command builds, where the address and token come
from, and the real console script against a small recording HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from jay.cli.admin import (
    ApiRequest,
    UsageError,
    error_message,
    normalize_addr,
    parse_duration,
    parse_invocation,
    render,
)

BIN = Path(sys.executable).parent
TOKEN = "t" * 40
NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def _req(*argv: str, environ: dict[str, str] | None = None) -> ApiRequest:
    env = {"JAY_ADMIN_TOKEN": TOKEN} if environ is None else environ
    return parse_invocation(list(argv), env, now=NOW).request


# --- requests (the three upstream bugs first) -------------------------------------------------


def test_create_token_sends_allowed_actions_defaulting_to_wildcard() -> None:
    assert _req("create-token", "-account", "acc-1", "-name", "ci") == ApiRequest(
        method="POST",
        path="/_jay/tokens",
        json_body={"account_id": "acc-1", "name": "ci", "allowed_actions": ["*"]},
    )


def test_create_token_scopes_and_expiry() -> None:
    request = _req(
        "create-token",
        "--account",
        "acc-1",
        "-actions",
        "s3:GetObject, s3:PutObject",
        "-buckets=photos,logs",
        "-prefixes",
        "public/",
        "-expires",
        "24h",
    )
    assert request.json_body == {
        "account_id": "acc-1",
        "name": "",
        "allowed_actions": ["s3:GetObject", "s3:PutObject"],
        "bucket_scope": ["photos", "logs"],
        "prefix_scope": ["public/"],
        "expires_at": "2023-11-15T22:13:20Z",
    }
    fixed = _req("create-token", "-account", "a", "-expires", "2030-01-02T03:04:05Z")
    assert fixed.json_body["expires_at"] == "2030-01-02T03:04:05Z"


def test_presign_sends_a_number() -> None:
    request = _req(
        "presign",
        "-bucket",
        "b",
        "-key",
        "k/1",
        "-token-id",
        "tok",
        "-method",
        "put",
        "-expires",
        "600",
    )
    assert request.json_body == {
        "token_id": "tok",
        "method": "PUT",
        "bucket": "b",
        "key": "k/1",
        "expires_seconds": 600,
    }
    assert json.loads(request.body_bytes() or b"")["expires_seconds"] == 600
    default = _req("presign", "-bucket", "b", "-token-id", "tok")
    assert default.json_body == {
        "token_id": "tok",
        "method": "GET",
        "bucket": "b",
        "expires_seconds": 3600,
    }


def test_quarantine_purge_sends_mode_all() -> None:
    assert _req("quarantine-purge").json_body == {"mode": "all"}
    assert _req("quarantine-purge", "-bucket-id", "B", "-key", "k").json_body == {
        "bucket_id": "B",
        "key": "k",
    }


@pytest.mark.parametrize(
    ("argv", "method", "path", "body"),
    [
        (["create-account", "-name", "app"], "POST", "/_jay/accounts", {"name": "app"}),
        (["list-accounts"], "GET", "/_jay/accounts", None),
        (["suspend-account", "-id", "a/1"], "POST", "/_jay/accounts/a%2F1/suspend", None),
        (["reactivate-account", "-id", "a1"], "POST", "/_jay/accounts/a1/reactivate", None),
        (["list-tokens"], "GET", "/_jay/tokens", None),
        (["revoke-token", "-id", "tok"], "DELETE", "/_jay/tokens/tok", None),
        (["metrics"], "GET", "/_jay/metrics", None),
        (["quarantine-list"], "GET", "/_jay/quarantine", None),
        (
            ["quarantine-revalidate", "-bucket-id", "B", "-key", "k"],
            "POST",
            "/_jay/quarantine/revalidate",
            {"bucket_id": "B", "key": "k"},
        ),
        (["list-buckets"], "GET", "/_jay/buckets", None),
        (["get-policy", "-bucket", "b"], "GET", "/_jay/buckets/b/policy", None),
        (["delete-policy", "-bucket", "b"], "DELETE", "/_jay/buckets/b/policy", None),
        (["version"], "GET", "/_jay/version", None),
    ],
)
def test_every_command_builds_its_request(
    argv: list[str], method: str, path: str, body: object
) -> None:
    request = _req(*argv)
    assert (request.method, request.path, request.json_body) == (method, path, body)


def test_list_tokens_account_filter_and_set_policy_file(tmp_path: Path) -> None:
    assert _req("list-tokens", "-account", "a b").query == (("account_id", "a b"),)
    policy = tmp_path / "policy.json"
    policy.write_bytes(b'{"statements": []}\n')
    request = _req("set-policy", "-bucket", "b", "-file", str(policy))
    assert (request.method, request.path) == ("PUT", "/_jay/buckets/b/policy")
    assert request.body_bytes() == b'{"statements": []}\n'


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no command given"),
        (["frob"], "unknown command: frob"),
        (["create-account"], "-name required"),
        (["create-account", "-name"], "flag -name needs a value"),
        (["create-account", "-nom", "x"], "unknown flag -nom"),
        (["create-account", "-name", "x", "extra"], "unexpected argument"),
        (["-bogus", "x", "metrics"], "unknown global flag"),
        (["presign", "-bucket", "b", "-token-id", "t", "-expires", "soon"], "not a duration"),
        (["presign", "-bucket", "b", "-token-id", "t", "-expires", "8d"], "at most 604800"),
        (["create-token", "-account", "a", "-actions", ","], "at least one action"),
        (["quarantine-purge", "-key", "k"], "both -bucket-id and -key"),
        (["set-policy", "-bucket", "b", "-file", "/no/such/file"], "cannot read policy file"),
    ],
)
def test_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("-", "\\-")):
        _req(*argv)


# --- address and token ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("localhost:9001", "http://localhost:9001"),
        (":9001", "http://localhost:9001"),
        ("0.0.0.0:9001", "http://localhost:9001"),
        ("https://admin.example.com/", "https://admin.example.com"),
        ("http://127.0.0.1:1234", "http://127.0.0.1:1234"),
    ],
)
def test_normalize_addr(given: str, expected: str) -> None:
    assert normalize_addr(given) == expected


def test_token_and_address_precedence(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "secrets.json").write_text(
        json.dumps({"admin_token": "from-file" * 4, "signing_secret": "x" * 40})
    )
    env = {"JAY_DATA_DIR": str(data)}
    inv = parse_invocation(["metrics"], env, now=NOW)
    assert (inv.token, inv.addr) == ("from-file" * 4, "http://localhost:9001")
    env["JAY_ADMIN_TOKEN"] = "from-env"
    env["JAY_ADMIN_ADDR"] = "127.0.0.1:7"
    inv = parse_invocation(["metrics"], env, now=NOW)
    assert (inv.token, inv.addr) == ("from-env", "http://127.0.0.1:7")
    inv = parse_invocation(["-token", "from-flag", "--addr", "h:8", "metrics"], env, now=NOW)
    assert (inv.token, inv.addr) == ("from-flag", "http://h:8")
    other = tmp_path / "other"
    other.mkdir()
    (other / "secrets.json").write_text(json.dumps({"admin_token": "other-dir"}))
    inv = parse_invocation(["-data-dir", str(other), "metrics"], {}, now=NOW)
    assert inv.token == "other-dir"
    with pytest.raises(UsageError, match="admin token required"):
        parse_invocation(["-data-dir", str(tmp_path / "empty"), "metrics"], {}, now=NOW)


# --- output -----------------------------------------------------------------------------------


def _render(argv: list[str], status: int, body: bytes) -> str:
    return render(parse_invocation(argv, {"JAY_ADMIN_TOKEN": TOKEN}, now=NOW), status, body)


def test_tables_and_json_output() -> None:
    tokens = json.dumps(
        [
            {
                "token_id": "t1",
                "account_id": "a1",
                "name": "ci",
                "secret_hash": "",
                "allowed_actions": ["*"],
                "created_at": "2024-01-02T03:04:05Z",
                "status": "active",
            },
        ]
    ).encode()
    table = _render(["list-tokens"], 200, tokens)
    header, row = table.splitlines()
    assert header.split() == [
        "TOKEN",
        "ID",
        "ACCOUNT",
        "ID",
        "NAME",
        "ACTIONS",
        "BUCKETS",
        "PREFIXES",
        "STATUS",
        "EXPIRES",
    ]
    assert row.split() == ["t1", "a1", "ci", "*", "active"]
    assert _render(["list-tokens"], 200, b"null\n") == "(none)\n"
    as_json = _render(["--json", "list-tokens"], 200, tokens)
    assert json.loads(as_json) == json.loads(tokens)
    assert as_json.startswith('[\n  {\n    "token_id"')  # two-space pretty JSON
    assert _render(["revoke-token", "-id", "t1"], 204, b"") == "Token revoked.\n"
    assert json.loads(_render(["revoke-token", "-id", "t1", "--json"], 204, b"")) == {
        "token_id": "t1",
        "status": "revoked",
    }
    assert _render(["quarantine-purge"], 200, b'{"purged":3}\n') == (
        "All quarantined objects purged (3).\n"
    )
    assert (
        _render(["presign", "-bucket", "b", "-token-id", "t"], 200, b'{"url":"http://x/b?sig=1"}\n')
        == "http://x/b?sig=1\n"
    )
    created = _render(
        ["create-token", "-account", "a"],
        201,
        b'{"token_id":"tid","secret":"' + b"f" * 64 + b'"}\n',
    )
    assert created.splitlines()[0].split() == ["token_id", "tid"]
    assert "f" * 64 in created and "only once" in created
    assert _render(["metrics"], 200, b'{"uptime_seconds":3,"put_object_total":0}\n') == (
        "uptime_seconds    3\nput_object_total  0\n"
    )
    assert _render(["get-policy", "-bucket", "b"], 200, b"not json") == "not json\n"


def test_error_message_is_one_line() -> None:
    assert error_message(400, b'{"error":"allowed_actions is required"}\n') == (
        "server error (400): allowed_actions is required"
    )
    assert error_message(502, b"<html>\n<b>bad</b>\n</html>") == (
        "server error (502): <html> <b>bad</b> </html>"
    )


@pytest.mark.parametrize("text", ["60", "60s", "1m", "1h", "1d", "1w"])
def test_durations(text: str) -> None:
    assert parse_duration(text) in (60, 3600, 86400, 604800)


# --- the console script against a recording server ------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    answers: dict[tuple[str, str], tuple[int, bytes]] = {}
    seen: list[dict[str, Any]] = []

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "body": body,
                "auth": self.headers.get("Authorization"),
                "type": self.headers.get("Content-Type"),
            }
        )
        status, answer = self.answers.get(
            (self.command, self.path.split("?")[0]), (404, b'{"error":"not found"}\n')
        )
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_admin() -> Iterator[tuple[str, type[_Recorder]]]:
    class Handler(_Recorder):
        answers = {}
        seen = []

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", Handler
    finally:
        server.shutdown()
        server.server_close()


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("JAY_")}
    base.update(env or {})
    return subprocess.run(
        [str(BIN / "jay-admin"), *argv],
        capture_output=True,
        text=True,
        env=base,
        timeout=60,
        check=False,
    )


def test_script_sends_fixed_requests_and_prints_results(
    fake_admin: tuple[str, type[_Recorder]],
) -> None:
    addr, handler = fake_admin
    handler.answers[("POST", "/_jay/tokens")] = (201, b'{"token_id":"tid","secret":"sec"}\n')
    handler.answers[("DELETE", "/_jay/quarantine")] = (200, b'{"purged":2}\n')
    handler.answers[("POST", "/_jay/presign")] = (200, b'{"url":"http://u"}\n')
    env = {"JAY_ADMIN_ADDR": addr, "JAY_ADMIN_TOKEN": TOKEN}

    result = _cli("create-token", "-account", "acc", "-name", "n", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"token_id": "tid", "secret": "sec"}
    result = _cli("quarantine-purge", env=env)
    assert (result.returncode, result.stdout) == (0, "All quarantined objects purged (2).\n")
    result = _cli("presign", "-bucket", "b", "-token-id", "tid", "-expires", "90", env=env)
    assert (result.returncode, result.stdout) == (0, "http://u\n")

    sent = handler.seen
    assert [(s["method"], s["path"]) for s in sent] == [
        ("POST", "/_jay/tokens"),
        ("DELETE", "/_jay/quarantine"),
        ("POST", "/_jay/presign"),
    ]
    assert all(s["auth"] == f"Bearer {TOKEN}" for s in sent)
    assert all(s["type"] == "application/json" for s in sent)
    assert json.loads(sent[0]["body"]) == {
        "account_id": "acc",
        "name": "n",
        "allowed_actions": ["*"],
    }
    assert json.loads(sent[1]["body"]) == {"mode": "all"}
    assert json.loads(sent[2]["body"])["expires_seconds"] == 90


def test_script_reports_server_errors_on_one_line(
    fake_admin: tuple[str, type[_Recorder]], tmp_path: Path
) -> None:
    addr, handler = fake_admin
    handler.answers[("GET", "/_jay/metrics")] = (401, b'{"error":"unauthorized"}\n')
    data = tmp_path / "data"
    data.mkdir()
    (data / "secrets.json").write_text(json.dumps({"admin_token": "file-token"}))
    result = _cli("-addr", f"http://{addr}", "-data-dir", str(data), "metrics")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "Error: server error (401): unauthorized\n"
    assert handler.seen[0]["auth"] == "Bearer file-token"


def test_script_unreachable_server_and_usage(tmp_path: Path) -> None:
    result = _cli("-addr", "127.0.0.1:1", "-token", TOKEN, "metrics")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot reach the admin API at http://127.0.0.1:1")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    result = _cli()
    assert result.returncode == 1 and "Usage: jay-admin" in result.stderr
    result = _cli("--help")
    assert result.returncode == 0 and "create-token" in result.stdout
    result = _cli("-token", TOKEN, "nope")
    assert result.returncode == 1 and "unknown command: nope" in result.stderr
