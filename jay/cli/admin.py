"""``jay-admin``: the operator's client for the admin API (JAY_SPEC §4.1, §4.4).

Usage follows upstream: ``jay-admin [global flags] <command> [-flag value ...]``, Go-style
single-dash flags (``--long`` and ``-flag=value`` work too). Upstream's three broken commands
are fixed (§4.4): ``create-token`` sends ``allowed_actions`` (``-actions``, default ``*``),
``presign`` sends a numeric ``expires_seconds`` and ``quarantine-purge`` sends
``{"mode":"all"}``.

The admin address and token come from flags, then ``JAY_ADMIN_ADDR``/``JAY_ADMIN_TOKEN``, then
the ``secrets.json`` jay generated in its data directory (``-data-dir`` / ``JAY_DATA_DIR``).
Output is a human table by default and the server's JSON with ``--json``; any failure prints
one line on stderr and exits 1.

Parsing (:func:`parse_invocation`) and rendering (:func:`render`) are pure; only
:func:`perform` does I/O, through treq on the reactor that ``task.react`` runs.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import quote, urlencode, urlsplit

import jay

PROG = "jay-admin"
DEFAULT_ADDR = "http://localhost:9001"
SECRETS_FILE_NAME = "secrets.json"
# secrets.json holds two 64-character values; anything bigger is not jay's.
MAX_SECRETS_FILE_BYTES = 64 * 1024
# An admin answer is small JSON, except long token or quarantine lists; cap what we buffer.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# JAY_SPEC §3.6: presigned URLs live at most seven days.
MAX_PRESIGN_SECONDS = 604800
REQUEST_TIMEOUT_SECONDS = 60.0


class UsageError(Exception):
    """The command line is wrong; the message is one line."""


class CommandError(Exception):
    """The command failed (server error, unreachable server); the message is one line."""


# --- what a command sends ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiRequest:
    method: str
    path: str  # already quoted
    query: tuple[tuple[str, str], ...] = ()
    json_body: Any = None  # sent when not None
    raw_body: bytes | None = None  # sent as is (a policy document)

    def body_bytes(self) -> bytes | None:
        if self.raw_body is not None:
            return self.raw_body
        if self.json_body is not None:
            return json.dumps(self.json_body).encode("utf-8")
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    command: str
    addr: str
    token: str
    request: ApiRequest
    json_output: bool = False
    cacert: str = ""
    flags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Command:
    summary: str
    flags: tuple[str, ...]
    required: tuple[str, ...]
    build: Callable[[Mapping[str, str], float], ApiRequest]


def _seg(value: str) -> str:
    return quote(value, safe="")


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


_DURATION = re.compile(r"(\d+)([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """``3600``, ``90m``, ``24h``, ``7d``, ``1w`` → seconds (> 0)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"not a duration: {text!r} (use seconds or 90m, 24h, 7d)")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise UsageError(f"duration must be positive, got {text!r}")
    return seconds


def _expires_at(text: str, now: float) -> str:
    """``-expires`` of create-token: a duration from now, or an RFC 3339 time as is."""
    if "T" in text or "t" in text:
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise UsageError(f"not an RFC 3339 time: {text!r}") from None
        return text
    moment = datetime.fromtimestamp(int(now) + parse_duration(text), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _create_token(flags: Mapping[str, str], now: float) -> ApiRequest:
    actions = _csv(flags.get("actions", "*"))
    if not actions:
        raise UsageError("-actions must name at least one action (or *)")
    body: dict[str, Any] = {
        "account_id": flags["account"],
        "name": flags.get("name", ""),
        "allowed_actions": actions,
    }
    if flags.get("buckets"):
        body["bucket_scope"] = _csv(flags["buckets"])
    if flags.get("prefixes"):
        body["prefix_scope"] = _csv(flags["prefixes"])
    if flags.get("expires"):
        body["expires_at"] = _expires_at(flags["expires"], now)
    return ApiRequest(method="POST", path="/_jay/tokens", json_body=body)


def _presign(flags: Mapping[str, str], now: float) -> ApiRequest:
    expires = parse_duration(flags.get("expires", "3600"))
    if expires > MAX_PRESIGN_SECONDS:
        raise UsageError(f"-expires must be at most {MAX_PRESIGN_SECONDS} seconds (7 days)")
    body: dict[str, Any] = {
        "token_id": flags["token-id"],
        "method": flags.get("method", "GET").upper(),
        "bucket": flags["bucket"],
        "expires_seconds": expires,  # a number: upstream sent a string (JAY_SPEC §4.4)
    }
    if flags.get("key"):
        body["key"] = flags["key"]
    return ApiRequest(method="POST", path="/_jay/presign", json_body=body)


def _quarantine_purge(flags: Mapping[str, str], now: float) -> ApiRequest:
    if flags.get("bucket-id") or flags.get("key"):
        if not (flags.get("bucket-id") and flags.get("key")):
            raise UsageError("quarantine-purge: give both -bucket-id and -key, or neither")
        body = {"bucket_id": flags["bucket-id"], "key": flags["key"]}
    else:
        body = {"mode": "all"}  # upstream sent no body, always a 400 (JAY_SPEC §4.4)
    return ApiRequest(method="DELETE", path="/_jay/quarantine", json_body=body)


def _read_policy_file(path: str) -> bytes:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_RESPONSE_BYTES)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_RESPONSE_BYTES)
    except OSError as e:
        raise UsageError(f"cannot read policy file {path}: {e.strerror or e}") from None
    try:
        json.loads(data)
    except ValueError:
        raise UsageError(f"policy file {path} is not JSON") from None
    return data


def _set_policy(flags: Mapping[str, str], now: float) -> ApiRequest:
    return ApiRequest(
        method="PUT",
        path=f"/_jay/buckets/{_seg(flags['bucket'])}/policy",
        raw_body=_read_policy_file(flags["file"]),
    )


def _list_tokens(flags: Mapping[str, str], now: float) -> ApiRequest:
    query = (("account_id", flags["account"]),) if flags.get("account") else ()
    return ApiRequest(method="GET", path="/_jay/tokens", query=query)


def _simple(method: str, path: str, **body_from_flags: str) -> Callable[..., ApiRequest]:
    """A fixed path; the JSON body (if any) maps body fields to command flags."""

    def build(flags: Mapping[str, str], now: float) -> ApiRequest:
        body = {name: flags[flag] for name, flag in body_from_flags.items()} or None
        return ApiRequest(method=method, path=path, json_body=body)

    return build


def _with_id(method: str, template: str) -> Callable[..., ApiRequest]:
    def build(flags: Mapping[str, str], now: float) -> ApiRequest:
        return ApiRequest(method=method, path=template.format(_seg(flags["id"])))

    return build


def _with_bucket(method: str) -> Callable[..., ApiRequest]:
    def build(flags: Mapping[str, str], now: float) -> ApiRequest:
        return ApiRequest(method=method, path=f"/_jay/buckets/{_seg(flags['bucket'])}/policy")

    return build


COMMANDS: Mapping[str, _Command] = {
    "create-account": _Command(
        "create an account", ("name",), ("name",), _simple("POST", "/_jay/accounts", name="name")
    ),
    "list-accounts": _Command("list accounts", (), (), _simple("GET", "/_jay/accounts")),
    "suspend-account": _Command(
        "suspend an account (its tokens stop working)",
        ("id",),
        ("id",),
        _with_id("POST", "/_jay/accounts/{}/suspend"),
    ),
    "reactivate-account": _Command(
        "reactivate a suspended account",
        ("id",),
        ("id",),
        _with_id("POST", "/_jay/accounts/{}/reactivate"),
    ),
    "create-token": _Command(
        "create a token: -account ID [-name N] [-actions a,b|*] [-buckets b1,b2] "
        "[-prefixes p1,p2] [-expires 24h|RFC3339]",
        ("account", "name", "actions", "buckets", "prefixes", "expires"),
        ("account",),
        _create_token,
    ),
    "list-tokens": _Command("list tokens [-account ID]", ("account",), (), _list_tokens),
    "revoke-token": _Command(
        "revoke a token", ("id",), ("id",), _with_id("DELETE", "/_jay/tokens/{}")
    ),
    "metrics": _Command("show the server's counters", (), (), _simple("GET", "/_jay/metrics")),
    "presign": _Command(
        "presign a URL: -bucket B [-key K] -token-id ID [-method GET] [-expires 3600]",
        ("bucket", "key", "token-id", "method", "expires"),
        ("bucket", "token-id"),
        _presign,
    ),
    "quarantine-list": _Command(
        "list quarantined objects", (), (), _simple("GET", "/_jay/quarantine")
    ),
    "quarantine-revalidate": _Command(
        "re-hash a quarantined object and restore it if intact",
        ("bucket-id", "key"),
        ("bucket-id", "key"),
        _simple("POST", "/_jay/quarantine/revalidate", bucket_id="bucket-id", key="key"),
    ),
    "quarantine-purge": _Command(
        "purge every quarantined object (or one: -bucket-id ID -key K)",
        ("bucket-id", "key"),
        (),
        _quarantine_purge,
    ),
    "list-buckets": _Command("list buckets", (), (), _simple("GET", "/_jay/buckets")),
    "get-policy": _Command("show a bucket's policy", ("bucket",), ("bucket",), _with_bucket("GET")),
    "set-policy": _Command(
        "set a bucket's policy from a JSON file (- for stdin)",
        ("bucket", "file"),
        ("bucket", "file"),
        _set_policy,
    ),
    "delete-policy": _Command(
        "remove a bucket's policy", ("bucket",), ("bucket",), _with_bucket("DELETE")
    ),
    "version": _Command("show client and server versions", (), (), _simple("GET", "/_jay/version")),
}


def usage() -> str:
    lines = [
        f"Usage: {PROG} [-addr URL] [-token TOKEN] [-data-dir DIR] [-cacert PEM] [--json] "
        "<command> [-flag value ...]",
        "",
        "Global flags (before the command):",
        f"  -addr URL       admin API address (default $JAY_ADMIN_ADDR or {DEFAULT_ADDR})",
        "  -token TOKEN    admin token (default $JAY_ADMIN_TOKEN, else <data-dir>/secrets.json)",
        "  -data-dir DIR   jay's data directory, for secrets.json (default $JAY_DATA_DIR or ./data)",
        "  -cacert PEM     CA certificate to trust for an https:// address",
        "  --json          print the server's JSON instead of a table",
        "",
        "Commands:",
    ]
    width = max(len(name) for name in COMMANDS)
    lines += [f"  {name.ljust(width)}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    lines += [
        "",
        "Offline commands (stop jay first; they use -data-dir, not the admin API):",
        "  list-backups            list metadata backups in <data-dir>/backups",
        "  restore-backup -file F  replace <data-dir>/meta/jay.db with backup F",
    ]
    return "\n".join(lines) + "\n"


# --- the command line -------------------------------------------------------------------------

_GLOBAL_VALUE_FLAGS = ("addr", "token", "data-dir", "cacert")
_JSON_FLAGS = ("-json", "--json")
_HELP_FLAGS = ("-h", "-help", "--help")


def _flag_name(arg: str) -> str | None:
    """``-name``/``--name``/``-name=value`` → ``name``; anything else → None."""
    if not arg.startswith("-") or arg in ("-", "--"):
        return None
    return arg.lstrip("-").partition("=")[0]


def _take_value(argv: Sequence[str], i: int, name: str) -> tuple[str, int]:
    arg = argv[i]
    if "=" in arg:
        return arg.partition("=")[2], i + 1
    if i + 1 >= len(argv):
        raise UsageError(f"flag -{name} needs a value")
    return argv[i + 1], i + 2


def normalize_addr(addr: str) -> str:
    """Prepend ``http://`` like upstream, and give a bind-style ``:9001`` or ``0.0.0.0:9001``
    (what ``JAY_ADMIN_ADDR`` holds for the server) a host to connect to."""
    addr = addr.strip().rstrip("/")
    if not addr.startswith(("http://", "https://")):
        addr = "http://" + addr
    parts = urlsplit(addr)
    host = parts.hostname or ""
    if host in ("", "0.0.0.0", "::"):
        port = f":{parts.port}" if parts.port else ""
        addr = f"{parts.scheme}://localhost{port}{parts.path}"
    return addr


def read_secrets_token(data_dir: str) -> str:
    """The admin token jay generated into ``<data_dir>/secrets.json``, or "" if there is none."""
    path = os.path.join(data_dir, SECRETS_FILE_NAME)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SECRETS_FILE_BYTES + 1)
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        document = json.loads(data)
    except ValueError:
        raise UsageError(f"{path} is not valid JSON") from None
    token = document.get("admin_token") if isinstance(document, dict) else None
    return token if isinstance(token, str) else ""


def parse_invocation(argv: Sequence[str], environ: Mapping[str, str], now: float) -> Invocation:
    """The whole command line → what to send where. Raises UsageError."""
    globals_: dict[str, str] = {}
    json_output = False
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg in _JSON_FLAGS:
            json_output, i = True, i + 1
            continue
        name = _flag_name(arg)
        if name not in _GLOBAL_VALUE_FLAGS:
            raise UsageError(f"unknown global flag {arg}")
        globals_[name], i = _take_value(argv, i, name)
    if i >= len(argv):
        raise UsageError("no command given")
    command_name = argv[i]
    command = COMMANDS.get(command_name)
    if command is None:
        raise UsageError(f"unknown command: {command_name}")

    flags: dict[str, str] = {}
    i += 1
    while i < len(argv):
        arg = argv[i]
        if arg in _JSON_FLAGS:
            json_output, i = True, i + 1
            continue
        name = _flag_name(arg)
        if name is None:
            raise UsageError(f"{command_name}: unexpected argument {arg!r}")
        if name not in command.flags:
            raise UsageError(f"{command_name}: unknown flag {arg}")
        flags[name], i = _take_value(argv, i, name)
    missing = [f"-{name}" for name in command.required if not flags.get(name)]
    if missing:
        raise UsageError(f"{command_name}: {', '.join(missing)} required")
    request = command.build(flags, now)

    addr = normalize_addr(globals_.get("addr") or environ.get("JAY_ADMIN_ADDR") or DEFAULT_ADDR)
    token = globals_.get("token") or environ.get("JAY_ADMIN_TOKEN") or ""
    if not token:
        data_dir = globals_.get("data-dir") or environ.get("JAY_DATA_DIR") or "./data"
        token = read_secrets_token(data_dir)
    if not token:
        raise UsageError(
            "admin token required: -token, JAY_ADMIN_TOKEN, or jay's <data-dir>/secrets.json"
        )
    return Invocation(
        command=command_name,
        addr=addr,
        token=token,
        request=request,
        json_output=json_output,
        cacert=globals_.get("cacert") or environ.get("JAY_ADMIN_CACERT", ""),
        flags=flags,
    )


# --- output -------------------------------------------------------------------------------------


def _one_line(text: str, limit: int = 500) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def error_message(status: int, body: bytes) -> str:
    """``Error: server error (<status>): <message>`` on one line (JAY_SPEC §4.4)."""
    text = body.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        text = document["error"]
    return f"server error ({status}): {_one_line(text) or '(empty body)'}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[col]) for row in cells) for col in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    return "\n".join(lines) + "\n"


def _pairs(document: Mapping[str, Any]) -> str:
    width = max((len(k) for k in document), default=0)
    return "".join(f"{k.ljust(width)}  {_scalar(v)}\n" for k, v in document.items())


def _scalar(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def render(invocation: Invocation, status: int, body: bytes) -> str:
    """What a successful answer prints: a table, a sentence, or (``--json``) the JSON."""
    command = invocation.command
    text = body.decode("utf-8", "replace")
    document: Any
    try:
        document = json.loads(text) if text.strip() else None
    except ValueError:  # not JSON: shown as it came (JAY_SPEC §4.4)
        return text if text.endswith("\n") or not text else text + "\n"
    if invocation.json_output:
        if status == 204 or document is None and not text.strip():
            document = _no_content_json(invocation)
        if command == "version":
            document = {"client": jay.__version__, "server": (document or {}).get("version")}
        return json.dumps(document, indent=2) + "\n"
    flags = invocation.flags
    if command == "revoke-token":
        return "Token revoked.\n"
    if command == "quarantine-purge":
        if "mode" in (invocation.request.json_body or {}):
            purged = (document or {}).get("purged", 0) if isinstance(document, dict) else 0
            return f"All quarantined objects purged ({purged}).\n"
        return "Quarantined object purged.\n"
    if command == "set-policy":
        return f"Policy of bucket {flags['bucket']} set.\n"
    if command == "delete-policy":
        return f"Policy of bucket {flags['bucket']} deleted.\n"
    if command == "version":
        server = document.get("version") if isinstance(document, dict) else None
        return f"client {jay.__version__}\nserver {server}\n"
    if command == "presign" and isinstance(document, dict):
        return f"{document.get('url', '')}\n"
    if command == "get-policy":
        return json.dumps(document, indent=2) + "\n" if document is not None else text
    if command == "quarantine-revalidate" and isinstance(document, dict):
        return (
            "Restored.\n"
            if document.get("restored")
            else "Not restored: the file is missing or its checksum still does not match.\n"
        )
    if command in ("suspend-account", "reactivate-account") and isinstance(document, dict):
        return f"Account {document.get('account_id')} is now {document.get('status')}.\n"
    if command == "create-token" and isinstance(document, dict):
        return _pairs(document) + "The secret is shown only once: store it now.\n"
    if isinstance(document, dict):
        return _pairs(document)
    if document is None or isinstance(document, list):
        return _render_list(command, document or [])
    return text


def _no_content_json(invocation: Invocation) -> Any:
    flags = invocation.flags
    if invocation.command == "revoke-token":
        return {"token_id": flags["id"], "status": "revoked"}
    if invocation.command in ("set-policy", "delete-policy"):
        return {"bucket": flags["bucket"], "policy": invocation.command == "set-policy"}
    if invocation.command == "quarantine-purge":
        return {"purged": 1}
    return {}


_LIST_COLUMNS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "list-accounts": (
        ("ACCOUNT ID", "account_id"),
        ("NAME", "name"),
        ("STATUS", "status"),
        ("CREATED", "created_at"),
    ),
    "list-tokens": (
        ("TOKEN ID", "token_id"),
        ("ACCOUNT ID", "account_id"),
        ("NAME", "name"),
        ("ACTIONS", "allowed_actions"),
        ("BUCKETS", "bucket_scope"),
        ("PREFIXES", "prefix_scope"),
        ("STATUS", "status"),
        ("EXPIRES", "expires_at"),
    ),
    "quarantine-list": (
        ("BUCKET ID", "bucket_id"),
        ("BUCKET", "bucket_name"),
        ("KEY", "key"),
        ("SIZE", "size_bytes"),
        ("OBJECT ID", "object_id"),
    ),
    "list-buckets": (
        ("BUCKET", "name"),
        ("BUCKET ID", "bucket_id"),
        ("OWNER", "owner_account_id"),
        ("VISIBILITY", "visibility"),
        ("POLICY", "has_policy"),
        ("CREATED", "created_at"),
    ),
}


def _render_list(command: str, items: Sequence[Any]) -> str:
    columns = _LIST_COLUMNS.get(command)
    if columns is None:
        return json.dumps(list(items), indent=2) + "\n"
    if not items:
        return "(none)\n"
    rows = [
        [_scalar(item.get(key)) if isinstance(item, dict) else "" for _, key in columns]
        for item in items
    ]
    return _table([title for title, _ in columns], rows)


# --- I/O ----------------------------------------------------------------------------------------


def _tls_policy(cacert: str) -> Any:
    """Trust exactly the given CA for https:// admin addresses (self-signed deployments)."""
    from twisted.internet import ssl
    from twisted.web.client import BrowserLikePolicyForHTTPS

    try:
        with open(cacert, "rb") as f:
            authority = ssl.Certificate.loadPEM(f.read())
    except Exception as e:  # OSError, or OpenSSL errors for a bad PEM
        raise UsageError(f"cannot load CA certificate {cacert}: {e}") from None
    return BrowserLikePolicyForHTTPS(trustRoot=authority)  # type: ignore[no-untyped-call]


async def perform(reactor: Any, invocation: Invocation) -> tuple[int, bytes]:
    """Send the request; the status and the (bounded) body. Raises CommandError."""
    import treq
    from treq.client import HTTPClient
    from twisted.web.client import Agent

    if invocation.cacert:
        client: Any = HTTPClient(
            Agent(reactor, contextFactory=_tls_policy(invocation.cacert))  # type: ignore[no-untyped-call]
        )
    else:
        client = HTTPClient(Agent(reactor))  # type: ignore[no-untyped-call]
    request = invocation.request
    url = invocation.addr + request.path
    if request.query:
        url += "?" + urlencode(request.query)
    headers = {b"Authorization": [f"Bearer {invocation.token}".encode()]}
    body = request.body_bytes()
    if body is not None:
        headers[b"Content-Type"] = [b"application/json"]
    try:
        response = await client.request(
            request.method, url, headers=headers, data=body, timeout=REQUEST_TIMEOUT_SECONDS
        )
        chunks: list[bytes] = []
        size = 0

        def collect(data: bytes) -> None:
            nonlocal size
            size += len(data)
            if size > MAX_RESPONSE_BYTES:
                raise CommandError(f"response larger than {MAX_RESPONSE_BYTES} bytes")
            chunks.append(data)

        await treq.collect(response, collect)
    except CommandError:
        raise
    except Exception as e:  # connection refused, TLS failure, timeout, …
        raise CommandError(
            f"cannot reach the admin API at {invocation.addr}: {_one_line(_reason(e))}"
        ) from None
    return response.code, b"".join(chunks)


def _reason(error: Exception) -> str:
    reasons = getattr(error, "reasons", None)  # ResponseNeverReceived and friends
    if reasons:
        return "; ".join(str(r.value) for r in reasons)
    return str(error) or type(error).__name__


async def run(
    reactor: Any, argv: Sequence[str], environ: Mapping[str, str], stdout: TextIO, stderr: TextIO
) -> int:
    if not argv or argv[0] in _HELP_FLAGS or "help" == argv[0]:
        (stdout if argv else stderr).write(usage())
        return 0 if argv else 1
    offline = _offline_command(argv)
    if offline is not None:
        return run_offline(argv, environ, stdout, stderr)
    try:
        invocation = parse_invocation(argv, environ, now=reactor.seconds())
    except UsageError as e:
        stderr.write(f"Error: {e}\n")
        stderr.write(f"Run '{PROG} -h' for usage.\n")
        return 1
    try:
        status, body = await perform(reactor, invocation)
    except (CommandError, UsageError) as e:
        stderr.write(f"Error: {e}\n")
        return 1
    if status >= 400:
        stderr.write(f"Error: {error_message(status, body)}\n")
        return 1
    stdout.write(render(invocation, status, body))
    return 0


# --- offline commands -------------------------------------------------------------------------

OFFLINE_COMMANDS = ("list-backups", "restore-backup")


def _offline_command(argv: Sequence[str]) -> str | None:
    """The offline command named after the global flags, if that is what argv asks for."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        takes_value = _flag_name(arg) in _GLOBAL_VALUE_FLAGS and "=" not in arg
        i += 2 if takes_value else 1
    return argv[i] if i < len(argv) and argv[i] in OFFLINE_COMMANDS else None


def run_offline(
    argv: Sequence[str], environ: Mapping[str, str], stdout: TextIO, stderr: TextIO
) -> int:
    """``list-backups`` / ``restore-backup``: work on the data directory, never the API."""
    from jay.storage import backups
    from jay.storage.offline import DatabaseInUse, DatabaseMissing, exclusive_database

    globals_: dict[str, str] = {}
    json_output = False
    try:
        i = 0
        while argv[i].startswith("-"):
            if argv[i] in _JSON_FLAGS:
                json_output, i = True, i + 1
                continue
            name = _flag_name(argv[i]) or ""
            globals_[name], i = _take_value(argv, i, name)
        command, rest = argv[i], list(argv[i + 1 :])
        flags: dict[str, str] = {}
        j = 0
        while j < len(rest):
            if rest[j] in _JSON_FLAGS:
                json_output, j = True, j + 1
                continue
            name = _flag_name(rest[j]) or ""
            if command != "restore-backup" or name != "file":
                raise UsageError(f"{command}: unknown flag or argument {rest[j]}")
            flags[name], j = _take_value(rest, j, name)
        if command == "restore-backup" and not flags.get("file"):
            raise UsageError("restore-backup: -file required")
    except UsageError as e:
        stderr.write(f"Error: {e}\n")
        return 1
    data_dir = globals_.get("data-dir") or environ.get("JAY_DATA_DIR") or "./data"
    if command == "list-backups":
        found = backups.list_backups(os.path.join(data_dir, "backups"))
        if json_output:
            stdout.write(
                json.dumps(
                    [{"name": b.name, "path": b.path, "created_at": b.created_at} for b in found],
                    indent=2,
                )
            )
            stdout.write("\n")
        elif not found:
            stdout.write("(none)\n")
        else:
            rows = [
                [
                    b.name,
                    datetime.fromtimestamp(b.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    b.path,
                ]
                for b in found
            ]
            stdout.write(_table(["NAME", "CREATED", "PATH"], rows))
        return 0
    db_path = os.path.join(data_dir, "meta", "jay.db")
    try:
        with exclusive_database(db_path):
            previous = backups.restore_backup(data_dir, flags["file"])
    except (DatabaseInUse, DatabaseMissing) as e:
        stderr.write(f"Error: {e.message}\n")
        return 1
    except (ValueError, OSError) as e:
        stderr.write(f"Error: cannot restore {flags['file']}: {_one_line(str(e))}\n")
        return 1
    if json_output:
        stdout.write(json.dumps({"restored": flags["file"], "previous": previous}) + "\n")
    else:
        stdout.write(f"Restored {flags['file']} into {db_path}.\n")
        if previous:
            stdout.write(f"The previous database is kept as {previous}.\n")
        stdout.write("Start jay: its recovery reconciles records and object files.\n")
    return 0


def main() -> None:
    from twisted.internet import defer, task

    def start(reactor: Any) -> defer.Deferred[None]:
        async def go() -> None:
            code = await run(reactor, sys.argv[1:], os.environ, sys.stdout, sys.stderr)
            if code:
                raise SystemExit(code)

        return defer.Deferred.fromCoroutine(go())

    task.react(start)
