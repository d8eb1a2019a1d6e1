"""Files: sharded object paths, temp → fsync → rename → fsync dir, quarantine (JAY_SPEC §6.1–6.2).

Every function here is synchronous and runs on a blob-pool thread. Location refs are relative
paths stored in the database; they are validated before use and keys never become paths.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence

from twisted.logger import Logger

from jay.checksums import MultiHasher
from jay.errors import JayError, StorageFull, StorageIOError

log = Logger()

DIR_MODE = 0o755
FILE_MODE = 0o600
# Read size for assembly and streaming: large enough to amortise a thread hop.
CHUNK_SIZE = 256 * 1024

SUBDIRS = ("meta", "buckets", "tmp", "quarantine", "backups", "multipart")


def storage_error(exc: OSError) -> JayError:
    """Map an OS error to the domain: a full disk is not an I/O fault (§8.2)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull()
    return StorageIOError()


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: str) -> None:
    """``mkdir -p`` that fsyncs the parent of every directory it creates (§8.2 item 25)."""
    missing: list[str] = []
    current = path
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            continue  # another thread or process made it; its creator fsyncs the parent
        fsync_dir(os.path.dirname(directory))


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warn("Could not remove {path}: {error}", path=path, error=str(exc))


class BlobStore:
    """Paths under one data directory and the file operations on them."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.tmp_dir = os.path.join(self.data_dir, "tmp")
        self.buckets_dir = os.path.join(self.data_dir, "buckets")
        self.multipart_dir = os.path.join(self.data_dir, "multipart")
        self.quarantine_dir = os.path.join(self.data_dir, "quarantine")
        self.meta_dir = os.path.join(self.data_dir, "meta")

    def create_layout(self) -> None:
        make_dirs(self.data_dir)
        for name in SUBDIRS:
            make_dirs(os.path.join(self.data_dir, name))

    # --- paths ---------------------------------------------------------------------------

    def temp_path(self, kind: str) -> str:
        return os.path.join(self.tmp_dir, f"jay-{kind}-{uuid.uuid4().hex}.writing")

    @staticmethod
    def object_ref(bucket_id: str, object_id: str) -> str:
        return os.path.join(
            "buckets", bucket_id, "objects", object_id[0:2], object_id[2:4], object_id
        )

    @staticmethod
    def part_ref(upload_id: str, part_number: int) -> str:
        return os.path.join("multipart", upload_id, f"part-{part_number:05d}")

    def bucket_path(self, bucket_id: str) -> str:
        return self.resolve(os.path.join("buckets", bucket_id))

    def upload_path(self, upload_id: str) -> str:
        return self.resolve(os.path.join("multipart", upload_id))

    def resolve(self, ref: str) -> str:
        """Absolute path of a location ref; refuses refs that could leave the data dir."""
        parts = ref.replace("\\", "/").split("/")
        if not ref or "\x00" in ref or ".." in parts or os.path.isabs(ref):
            raise StorageIOError("Invalid location reference")
        path = os.path.normpath(os.path.join(self.data_dir, ref))
        if not path.startswith(self.data_dir + os.sep):
            raise StorageIOError("Invalid location reference")
        return path

    # --- writes --------------------------------------------------------------------------

    def place(self, temp_path: str, ref: str) -> None:
        """Rename a durable temp file to ``ref`` and make the rename durable.

        Rename before commit: a crash leaves an orphan file that recovery quarantines, never a
        record without bytes. The temp file is removed on any failure.
        """
        try:
            final = self.resolve(ref)
            directory = os.path.dirname(final)
            make_dirs(directory)
            os.rename(temp_path, final)
            fsync_dir(directory)
        except OSError as exc:
            remove_quietly(temp_path)
            raise storage_error(exc) from exc
        except BaseException:
            remove_quietly(temp_path)
            raise

    def remove(self, ref: str) -> None:
        """Best-effort delete of a file after its record is gone."""
        try:
            remove_quietly(self.resolve(ref))
        except JayError:
            log.warn("Refusing to remove invalid location {ref}", ref=ref)

    def remove_tree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def quarantine(self, ref: str, name: str) -> str | None:
        """Move a file into ``quarantine/``; returns the new name, None if it was gone."""
        try:
            source = self.resolve(ref)
        except JayError:
            return None
        target_name = name
        target = os.path.join(self.quarantine_dir, target_name)
        while os.path.exists(target):
            target_name = f"{name}.{uuid.uuid4().hex[:8]}"
            target = os.path.join(self.quarantine_dir, target_name)
        try:
            os.rename(source, target)
        except FileNotFoundError:
            return None
        fsync_dir(self.quarantine_dir)
        return target_name

    def assemble(
        self, refs: Sequence[str], algorithms: Sequence[str]
    ) -> tuple[str, int, bytes, dict[str, str]]:
        """Concatenate part files into a durable temp file, hashing SHA-256 (and any flexible
        checksums) on the way; returns (temp path, size, sha256, checksums)."""
        temp = self.temp_path("assemble")
        sha = hashlib.sha256()
        extra = MultiHasher(algorithms)
        size = 0
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                for ref in refs:
                    with open(self.resolve(ref), "rb") as part:
                        while chunk := part.read(CHUNK_SIZE):
                            sha.update(chunk)
                            extra.update(chunk)
                            write_all(fd, chunk)
                            size += len(chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            remove_quietly(temp)
            raise storage_error(exc) from exc
        except BaseException:
            remove_quietly(temp)
            raise
        return temp, size, sha.digest(), extra.values()

    # --- recovery ------------------------------------------------------------------------

    def iter_files(self, top: str) -> Iterator[str]:
        for root, _dirs, files in os.walk(top):
            for name in files:
                yield os.path.join(root, name)

    def ref_of(self, path: str) -> str:
        return os.path.relpath(path, self.data_dir)


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
