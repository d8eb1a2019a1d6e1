"""What access control costs one authenticated S3 client.

Runs the same loadgen GET/HEAD/PUT cells against two jay servers, side by side:

* open: rate limiting off, the seed token (``*``, no scopes), a bucket without a policy;
* guarded: rate limiting on (a limit far above the offered load, so every request pays for the
  check but none is refused), a token scoped to actions, one bucket and one prefix, and a bucket
  policy of several statements including an IP condition.

Usage: ``.venv/bin/python benchmarks/access_overhead.py [--duration 5] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import Loadgen, build_loadgen  # noqa: E402

from tests.integration.conftest import SEED_ACCOUNT, SEED_SECRET, SEED_TOKEN_ID  # noqa: E402
from tests.integration.jayproc import JayProcess  # noqa: E402

BUCKET = "guarded"
POLICY = {
    "version": "1",
    "statements": [
        {
            "effect": "deny",
            "actions": ["object:delete"],
            "subjects": ["*"],
            "conditions": {"ip_whitelist": ["10.0.0.0/8", "192.168.0.0/16"]},
        },
        {"effect": "allow", "actions": ["object:get"], "prefixes": ["public/"], "subjects": ["*"]},
        {"effect": "deny", "actions": ["object:put"], "prefixes": ["frozen/"], "subjects": ["*"]},
        {"effect": "allow", "actions": ["object:list"], "subjects": ["someone-else"]},
    ],
}


def _admin(jay: JayProcess, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        jay.admin_url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {jay.admin_token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read()
    return json.loads(text) if text.strip() else None


def _start(workdir: Path, guarded: bool) -> tuple[JayProcess, str, str]:
    settings: dict[str, Any] = {
        "seed_token": {"account": SEED_ACCOUNT, "id": SEED_TOKEN_ID, "secret": SEED_SECRET},
        "rate_limit": 1_000_000 if guarded else 0,
        "rate_burst": 1_000_000 if guarded else 0,
    }
    workdir.mkdir(parents=True, exist_ok=True)
    jay = JayProcess(workdir, settings).start()
    token_id, secret = SEED_TOKEN_ID, SEED_SECRET
    if guarded:
        accounts = _admin(jay, "GET", "/_jay/accounts")
        account_id = next(a["account_id"] for a in accounts if a["name"] == SEED_ACCOUNT)
        created = _admin(
            jay,
            "POST",
            "/_jay/tokens",
            {
                "account_id": account_id,
                "name": "scoped",
                "allowed_actions": [
                    "object:get",
                    "object:put",
                    "object:list",
                    "bucket:read-meta",
                    "bucket:write-meta",
                ],
                "bucket_scope": [BUCKET],
                "prefix_scope": ["bench/"],
            },
        )
        token_id, secret = created["token_id"], created["secret"]
    return jay, token_id, secret


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16")
    args = parser.parse_args(argv)
    binary = build_loadgen()
    results: dict[tuple[str, str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {}
        for name in ("open", "guarded"):
            jay, token_id, secret = _start(Path(tmp) / name, name == "guarded")
            creds = ["-endpoint", jay.s3_url, "-access-key", token_id, "-secret-key", secret]
            servers[name] = (jay, Loadgen(binary, {"s3": ["-target", "s3", *creds]}))
            lg = servers[name][1]
            admin_creds = [
                "-endpoint",
                jay.s3_url,
                "-access-key",
                SEED_TOKEN_ID,
                "-secret-key",
                SEED_SECRET,
            ]
            Loadgen(binary, {"s3": ["-target", "s3", *admin_creds]}).checked(
                "s3", "-op", "mkbucket", "-bucket", BUCKET
            )
            if name == "guarded":
                _admin(jay, "PUT", f"/_jay/buckets/{BUCKET}/policy", POLICY)
            lg.checked(
                "s3",
                "-op",
                "put",
                "-bucket",
                BUCKET,
                "-prefix",
                "bench/",
                "-size",
                "1024",
                "-keys",
                "200",
                "-count",
                "200",
                "-concurrency",
                "4",
            )
        try:
            for _ in range(args.rounds):
                for op in ("get", "head", "put"):
                    for c in (int(x) for x in args.concurrency.split(",")):
                        for name, (_, lg) in servers.items():
                            r = lg.checked(
                                "s3",
                                "-op",
                                op,
                                "-bucket",
                                BUCKET,
                                "-prefix",
                                "bench/",
                                "-size",
                                "1024",
                                "-keys",
                                "200",
                                "-concurrency",
                                str(c),
                                "-duration",
                                f"{args.duration}s",
                            )
                            results.setdefault((op, name, c), []).append(r["ops_per_s"])
        finally:
            for jay, _ in servers.values():
                jay.stop()
    print("| op | c | open ops/s | guarded ops/s | guarded ÷ open |")
    print("| -- | - | ---------- | ------------- | -------------- |")
    for op in ("get", "head", "put"):
        for c in (int(x) for x in args.concurrency.split(",")):
            o = statistics.median(results[(op, "open", c)])
            g = statistics.median(results[(op, "guarded", c)])
            print(f"| {op.upper()} 1 KiB | {c} | {o:.0f} | {g:.0f} | {g / o:.2f} |")


if __name__ == "__main__":
    main()
