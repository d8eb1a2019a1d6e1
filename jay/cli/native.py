"""``jay-native``: a command-line client for jay's native protocol (JAY_SPEC §1).

    jay-native [--endpoint HOST:PORT] [--token ID:SECRET] COMMAND ...

Commands: ``ls [BUCKET[/PREFIX]]``, ``mb BUCKET``, ``rb BUCKET``, ``put FILE BUCKET/KEY``,
``get BUCKET/KEY FILE`` (``-`` for stdout), ``rm BUCKET/KEY``, ``cp SRC DST`` (one side
``jay://BUCKET/KEY``, the other a local path), ``stat BUCKET/KEY``. The endpoint and token also
come from ``JAY_NATIVE_ENDPOINT`` and ``JAY_NATIVE_TOKEN``. Transfers above a few MiB show a
progress bar on stderr (``--quiet`` hides it). Any failure prints one line and exits non-zero.
"""

from __future__ import annotations

import argparse
import mimetypes
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer, IProducer, IReactorCore
from twisted.internet.task import react
from twisted.web.client import FileBodyProducer
from zope.interface import implementer

from jay.client import Client, NativeConnectionError, NativeError, connect

DEFAULT_ENDPOINT = "127.0.0.1:4444"
PROGRESS_THRESHOLD_BYTES = 4 * 1024 * 1024
REMOTE_PREFIX = "jay://"


class UsageError(Exception):
    """A bad argument; reported as one line like every other failure."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jay-native", description="Talk to jay over the native protocol."
    )
    parser.add_argument("--endpoint", help="host:port or a Twisted endpoint string")
    parser.add_argument("--token", help="ID:SECRET (default: $JAY_NATIVE_TOKEN)")
    parser.add_argument("--pool-size", type=int, default=4, help="connections (default 4)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ls = commands.add_parser("ls", help="list buckets, or objects under BUCKET[/PREFIX]")
    ls.add_argument("target", nargs="?", default="")
    ls.add_argument("-r", "--recursive", action="store_true", help="no '/' roll-up")
    mb = commands.add_parser("mb", help="create a bucket")
    mb.add_argument("bucket")
    rb = commands.add_parser("rb", help="delete an empty bucket")
    rb.add_argument("bucket")
    put = commands.add_parser("put", help="upload FILE to BUCKET/KEY")
    put.add_argument("file")
    put.add_argument("target")
    put.add_argument("--content-type", default=None)
    put.add_argument("--meta", action="append", default=[], metavar="K=V")
    get = commands.add_parser("get", help="download BUCKET/KEY to FILE ('-': stdout)")
    get.add_argument("source")
    get.add_argument("file")
    rm = commands.add_parser("rm", help="delete BUCKET/KEY")
    rm.add_argument("target")
    cp = commands.add_parser("cp", help="copy between a local path and jay://BUCKET/KEY")
    cp.add_argument("source")
    cp.add_argument("destination")
    cp.add_argument("--content-type", default=None)
    stat = commands.add_parser("stat", help="show an object's metadata")
    stat.add_argument("target")
    return parser


def split_remote(text: str, *, need_key: bool = True) -> tuple[str, str]:
    """``bucket/key`` (or ``jay://bucket/key``) to (bucket, key)."""
    if text.startswith(REMOTE_PREFIX):
        text = text[len(REMOTE_PREFIX) :]
    bucket, _, key = text.partition("/")
    if not bucket or (need_key and not key):
        raise UsageError(f"expected BUCKET/KEY, got {text!r}")
    return bucket, key


def parse_token(value: str | None) -> tuple[str, str]:
    if not value:
        raise UsageError("no token: pass --token ID:SECRET or set JAY_NATIVE_TOKEN")
    token_id, colon, secret = value.partition(":")
    if not colon or not token_id or not secret:
        raise UsageError("the token must look like ID:SECRET")
    return token_id, secret


def parse_metadata(pairs: Sequence[str]) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise UsageError(f"--meta expects K=V, got {pair!r}")
        metadata[key] = value
    return metadata


# --- progress ----------------------------------------------------------------------------------


def make_bar(total: int, description: str, *, is_quiet: bool) -> Any:
    """A tqdm bar on stderr for large transfers, else None."""
    if is_quiet or total < PROGRESS_THRESHOLD_BYTES:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=description, leave=False
    )


@implementer(IConsumer)
class _CountingConsumer:
    """Passes writes through to ``inner`` and advances the bar."""

    def __init__(self, inner: IConsumer, bar: Any) -> None:
        self._inner = inner
        self._bar = bar

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        self._inner.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._inner.unregisterProducer()

    def write(self, data: bytes) -> None:
        self._inner.write(data)
        if self._bar is not None:
            self._bar.update(len(data))


class _ProgressBody:
    """A file body producer whose writes advance a progress bar."""

    def __init__(self, path: Path, bar: Any) -> None:
        self._inner = FileBodyProducer(open(path, "rb"), readSize=256 * 1024)  # type: ignore[no-untyped-call]
        self.length = self._inner.length
        self._bar = bar

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        result: Deferred[None] = self._inner.startProducing(_CountingConsumer(consumer, self._bar))  # type: ignore[no-untyped-call]
        return result

    def pauseProducing(self) -> None:
        self._inner.pauseProducing()  # type: ignore[no-untyped-call]

    def resumeProducing(self) -> None:
        self._inner.resumeProducing()  # type: ignore[no-untyped-call]

    def stopProducing(self) -> None:
        try:
            self._inner.stopProducing()  # type: ignore[no-untyped-call]
        except Exception:
            pass  # already finished


@implementer(IConsumer)
class _FileConsumer:
    """Writes a download into an open file, advancing a bar."""

    def __init__(self, file: IO[bytes], bar: Any) -> None:
        self._file = file
        self._bar = bar

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self._file.write(data)
        if self._bar is not None:
            self._bar.update(len(data))


# --- commands ----------------------------------------------------------------------------------


async def cmd_ls(client: Client, args: argparse.Namespace, out: IO[str]) -> None:
    if not args.target:
        for entry in await client.list_buckets():
            out.write(f"{entry.created_at}  {entry.name}\n")
        return
    bucket, _, prefix = args.target.removeprefix(REMOTE_PREFIX).partition("/")
    delimiter = "" if args.recursive else "/"
    async for page in client.iter_pages(bucket, prefix, delimiter):
        for cp in page.common_prefixes:
            out.write(f"{'DIR':>20}  {cp}\n")
        for obj in page.objects:
            out.write(f"{obj.last_modified}  {obj.size:>12}  {obj.key}\n")


async def cmd_put(
    client: Client, source: Path, target: str, args: argparse.Namespace, out: IO[str]
) -> None:
    bucket, key = split_remote(target)
    if not source.is_file():
        raise UsageError(f"not a file: {source}")
    content_type = args.content_type or mimetypes.guess_type(source.name)[0] or ""
    metadata = parse_metadata(getattr(args, "meta", []))
    size = source.stat().st_size
    bar = make_bar(size, key, is_quiet=args.quiet)
    try:
        body: Any = _ProgressBody(source, bar) if bar is not None else source
        result = await client.put_object(
            bucket, key, body, content_type=content_type, metadata=metadata
        )
    finally:
        if bar is not None:
            bar.close()
    out.write(f"{result.etag}  {bucket}/{key}\n")


async def cmd_get(client: Client, source: str, target: str, args: argparse.Namespace) -> None:
    bucket, key = split_remote(source)
    info = await client.head_object(bucket, key)
    bar = make_bar(info.size, key, is_quiet=args.quiet)
    try:
        if target == "-":
            await client.get_object(bucket, key, _FileConsumer(sys.stdout.buffer, bar))
            sys.stdout.buffer.flush()
            return
        path = Path(target)
        if path.is_dir():
            path = path / key.rsplit("/", 1)[-1]
        partial = path.with_name(path.name + ".part")
        try:
            with open(partial, "wb") as file:
                await client.get_object(bucket, key, _FileConsumer(file, bar))
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    finally:
        if bar is not None:
            bar.close()


async def cmd_stat(client: Client, target: str, out: IO[str]) -> None:
    bucket, key = split_remote(target)
    info = await client.head_object(bucket, key)
    out.write(f"key: {bucket}/{key}\n")
    out.write(f"size: {info.size}\n")
    out.write(f"etag: {info.etag}\n")
    out.write(f"sha256: {info.checksum_sha256}\n")
    out.write(f"content-type: {info.content_type}\n")
    out.write(f"last-modified: {info.last_modified}\n")
    for name, value in sorted(info.metadata.items()):
        out.write(f"meta {name}: {value}\n")


async def run(reactor: IReactorCore, args: argparse.Namespace, env: Mapping[str, str]) -> None:
    out = sys.stdout
    endpoint = args.endpoint or env.get("JAY_NATIVE_ENDPOINT") or DEFAULT_ENDPOINT
    token_id, secret = parse_token(args.token or env.get("JAY_NATIVE_TOKEN"))
    if args.command == "cp":
        is_src_remote = args.source.startswith(REMOTE_PREFIX)
        is_dst_remote = args.destination.startswith(REMOTE_PREFIX)
        if is_src_remote == is_dst_remote:
            raise UsageError("cp needs one jay://BUCKET/KEY side and one local path")
    client = await connect(endpoint, token_id, secret, reactor=reactor, pool_size=args.pool_size)
    try:
        command = args.command
        if command == "ls":
            await cmd_ls(client, args, out)
        elif command == "mb":
            await client.create_bucket(args.bucket)
        elif command == "rb":
            await client.delete_bucket(args.bucket)
        elif command == "put":
            await cmd_put(client, Path(args.file), args.target, args, out)
        elif command == "get":
            await cmd_get(client, args.source, args.file, args)
        elif command == "rm":
            await client.delete_object(*split_remote(args.target))
        elif command == "stat":
            await cmd_stat(client, args.target, out)
        elif command == "cp":
            if args.destination.startswith(REMOTE_PREFIX):
                source = Path(args.source)
                destination = args.destination
                if destination.endswith("/"):
                    destination += source.name
                await cmd_put(client, source, destination, args, out)
            else:
                await cmd_get(client, args.source, args.destination, args)
        out.flush()
    finally:
        await client.close()


def fail(message: str) -> NoReturn:
    print(f"jay-native: error: {message}", file=sys.stderr)
    raise SystemExit(1)


async def _guarded(reactor: IReactorCore, args: argparse.Namespace) -> None:
    try:
        await run(reactor, args, os.environ)
    except NativeError as e:
        fail(f"{e.message} ({e.code})" if e.code else e.message)
    except (NativeConnectionError, UsageError, OSError, ValueError) as e:
        fail(str(e) or type(e).__name__)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    def start(reactor: IReactorCore) -> Deferred[None]:
        return Deferred.fromCoroutine(_guarded(reactor, args))

    react(start)


if __name__ == "__main__":
    main()
