"""``jay-rekey``: re-encrypt token secrets after a signing-secret change (JAY_SPEC §4.5).

Run it with jay stopped: the database is opened in exclusive mode and the tool gives up after
one second if a server holds it. Every encrypted ``secret_key`` is decrypted with the key
derived from the old signing secret and encrypted (fresh nonce) with the new one, all in one
transaction; one failure leaves the database untouched.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from jay.auth.secrets import decrypt_secret, derive_kek, encrypt_secret, is_encrypted
from jay.storage.offline import DatabaseInUse, DatabaseMissing, RekeyFailed, rekey_tokens

PROG = "jay-rekey"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        allow_abbrev=False,
        description="Re-encrypt stored token secrets from an old signing secret to a new one. "
        "Stop jay first.",
    )
    # Upstream's Go flags are single-dash; the --long forms are accepted too.
    parser.add_argument(
        "-data-dir",
        "--data-dir",
        dest="data_dir",
        default=environ.get("JAY_DATA_DIR") or "./data",
        help="data directory; the database is <data-dir>/meta/jay.db "
        "(default: $JAY_DATA_DIR or ./data)",
    )
    parser.add_argument(
        "-db", "--db", dest="db", default="", help="explicit database path (overrides -data-dir)"
    )
    parser.add_argument(
        "-old-secret",
        "--old-secret",
        dest="old_secret",
        default=environ.get("JAY_OLD_SIGNING_SECRET", ""),
        help="the previous signing secret (default: $JAY_OLD_SIGNING_SECRET)",
    )
    parser.add_argument(
        "-new-secret",
        "--new-secret",
        dest="new_secret",
        default=environ.get("JAY_SIGNING_SECRET", ""),
        help="the new signing secret (default: $JAY_SIGNING_SECRET)",
    )
    return parser


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """The whole tool, with its inputs as parameters; returns the exit status."""
    parser = _parser(environ)
    try:
        args = parser.parse_args(list(argv))
    except _UsageError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        parser.print_usage(sys.stderr)
        return 1
    if not args.old_secret:
        return _fail("old signing secret required (-old-secret or JAY_OLD_SIGNING_SECRET)")
    if not args.new_secret:
        return _fail("new signing secret required (-new-secret or JAY_SIGNING_SECRET)")
    if args.old_secret == args.new_secret:
        return _fail("old and new signing secrets are identical; nothing to do")
    db_path = args.db or os.path.join(args.data_dir, "meta", "jay.db")

    old_kek = derive_kek(args.old_secret)
    new_kek = derive_kek(args.new_secret)

    def reencrypt(stored: str) -> str | None:
        if not is_encrypted(stored):
            return None  # legacy plaintext: the server encrypts it at its next start (§3.4)
        return encrypt_secret(new_kek, decrypt_secret(old_kek, stored))

    try:
        count = rekey_tokens(db_path, reencrypt)
    except (DatabaseInUse, DatabaseMissing, RekeyFailed) as e:
        return _fail(e.message)
    if count == 0:
        print("No encrypted tokens found — nothing rekeyed.")
    else:
        print(f"Rekeyed {count} token(s) successfully.")
    return 0


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 1


def main() -> None:
    sys.exit(run(sys.argv[1:], os.environ))
