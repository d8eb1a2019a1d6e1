"""First-start secrets: an admin token and a signing secret kept in ``<data_dir>/secrets.json``.

Upstream refuses to start without both (§5.1). jay generates strong ones instead, writes them
once with mode 0600 and reuses them on every later start, so presigned URLs and encrypted token
secrets (both keyed by the signing secret) survive restarts. Configured values always win.
This runs once at startup, before the reactor, so its blocking file I/O is fine.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
from dataclasses import replace

from twisted.logger import Logger

from jay.config.model import Config
from jay.config.schema import MIN_SECRET_BYTES
from jay.errors import ConfigError

_log = Logger(namespace="jay.config")

SECRETS_FILE_NAME = "secrets.json"
SECRETS_FILE_MODE = 0o600
# The file holds two 64-character values; anything bigger is not ours.
MAX_SECRETS_FILE_BYTES = 64 * 1024
_FIELDS = ("admin_token", "signing_secret")


def secrets_path(data_dir: str) -> str:
    return os.path.join(data_dir, SECRETS_FILE_NAME)


def generate_secret() -> str:
    """32 random bytes as 64 lowercase hex characters (the admin API's token format, §3.1)."""
    return secrets.token_hex(32)


def ensure_secrets(config: Config, *, log: Logger | None = None) -> Config:
    """Fill an empty ``admin_token`` / ``signing_secret`` from the secrets file, creating it
    (with freshly generated values) when it does not exist yet."""
    log = log or _log
    if config.admin_token and config.signing_secret:
        return config
    path = secrets_path(config.data_dir)
    stored = _read_secrets(path, log)
    if stored is None:
        stored = {name: generate_secret() for name in _FIELDS}
        created = _create_secrets_file(config.data_dir, path, stored)
        if created:
            log.info("Generated admin token and signing secret into {path}", path=path)
        else:  # another process sharing the data dir created it first: use its values
            stored = _read_secrets(path, log)
            if stored is None:
                raise ConfigError(f"secrets file {path}: vanished while starting")
    filled = [name for name in _FIELDS if not getattr(config, name)]
    log.info("Using {names} from {path}", names=", ".join(filled), path=path)
    return replace(
        config,
        admin_token=config.admin_token or stored["admin_token"],
        signing_secret=config.signing_secret or stored["signing_secret"],
    )


def _read_secrets(path: str, log: Logger) -> dict[str, str] | None:
    """The stored values, or None if the file does not exist. Opened without following a
    symlink, and its mode checked and tightened through the same descriptor."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ConfigError(f"secrets file {path}: is a symbolic link; refusing it") from None
        raise ConfigError(f"secrets file {path}: cannot open: {e.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"secrets file {path}: not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & ~SECRETS_FILE_MODE:
            os.fchmod(fd, SECRETS_FILE_MODE)
            log.warn(
                "Secrets file {path} had mode {old_mode}, broader than 0600; tightened it",
                path=path,
                old_mode=f"{mode:04o}",
            )
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_SECRETS_FILE_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"secrets file {path}: cannot read: {e.strerror}") from None
    finally:
        os.close(fd)
    return _parse_secrets(path, data)


def _parse_secrets(path: str, data: bytes) -> dict[str, str]:
    # The message never quotes the content: it is secret.
    corrupt = f"secrets file {path}: corrupt (expected a JSON object with {' and '.join(_FIELDS)})"
    if len(data) > MAX_SECRETS_FILE_BYTES:
        raise ConfigError(corrupt)
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ConfigError(corrupt) from None
    if not isinstance(document, dict):
        raise ConfigError(corrupt)
    out: dict[str, str] = {}
    for name in _FIELDS:
        value = document.get(name)
        if not isinstance(value, str) or len(value.encode("utf-8")) < MIN_SECRET_BYTES:
            raise ConfigError(f"{corrupt}: {name} missing or shorter than {MIN_SECRET_BYTES} bytes")
        out[name] = value
    return out


def _create_secrets_file(data_dir: str, path: str, values: dict[str, str]) -> bool:
    """Write ``values`` to ``path`` unless it exists; True if this call created it.

    temp file (0600 from creation, never chmod afterwards) → fsync → link into place → fsync
    the directory. ``link`` instead of ``rename`` because several processes may share one data
    dir: if two start at once, the second must adopt the first one's secrets, not replace them.
    """
    try:
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"data_dir {data_dir}: cannot create: {e.strerror}") from None
    temp = os.path.join(data_dir, f".{SECRETS_FILE_NAME}.{secrets.token_hex(8)}.tmp")
    payload = (json.dumps(values, indent=2, sort_keys=True) + "\n").encode("utf-8")
    try:
        fd = os.open(
            temp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            SECRETS_FILE_MODE,
        )
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, path)
            created = True
        except FileExistsError:
            created = False
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            # A filesystem without hard links: fall back to an atomic rename.
            os.replace(temp, path)
            created = True
    except OSError as e:
        raise ConfigError(f"secrets file {path}: cannot write: {e.strerror}") from None
    finally:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
    try:
        _fsync_dir(data_dir)  # makes the new name (and the temp's removal) durable
    except OSError as e:
        raise ConfigError(f"data_dir {data_dir}: cannot fsync: {e.strerror}") from None
    return created


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
