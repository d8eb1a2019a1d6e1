"""Frozen configuration values. No I/O here: ``jay.config.loader`` builds these.

Each component receives only the part it needs (``ScrubSettings``, ``TLSSettings`` …), never the
whole ``Config``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask; cgroup quotas are not read)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScrubSettings:
    interval_hours: int = 6
    sample_rate: float = 0.1
    bytes_per_sec: int = 52_428_800
    max_per_run: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedToken:
    account: str = ""
    id: str = ""
    secret: str = field(default="", repr=False)

    @property
    def is_set(self) -> bool:
        return bool(self.account and self.id and self.secret)


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSSettings:
    cert_path: str = ""
    key_path: str = ""
    native: bool = False

    @property
    def is_enabled(self) -> bool:
        return bool(self.cert_path and self.key_path)


@dataclass(frozen=True, slots=True, kw_only=True)
class GCSettings:
    interval_minutes: int = 15
    temp_max_age_hours: int = 1
    multipart_max_age_hours: int = 168


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupSettings:
    interval_hours: int = 1
    keep: int = 24
    max_age_days: int = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitSettings:
    rate: float = 100.0
    burst: int = 200

    @property
    def is_enabled(self) -> bool:
        return self.rate > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxySettings:
    trust_proxy_headers: bool = False
    trusted_proxies: tuple[str, ...] = (
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Every setting of jay (JAY_SPEC §5.1 plus jay's additions)."""

    data_dir: str = "./data"
    listen_addr: str = ":9000"
    admin_addr: str = ":9001"
    native_addr: str = ":4444"
    # Empty means "not configured": generated on first start into the data dir (0600).
    admin_token: str = field(default="", repr=False)
    signing_secret: str = field(default="", repr=False)
    log_level: str = "info"
    log_format: str = "text"
    tls: TLSSettings = field(default_factory=TLSSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    proxy: ProxySettings = field(default_factory=ProxySettings)
    scrub: ScrubSettings = field(default_factory=ScrubSettings)
    seed_token: SeedToken = field(default_factory=SeedToken)
    gc: GCSettings = field(default_factory=GCSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    # S3 behaviour
    region: str = "us-east-1"
    domain: str = ""  # virtual-host style: <bucket>.<domain>
    public_url: str = ""  # base URL of presigned links; default derived from listen_addr
    max_object_size: int = 5 * 1024**3  # single PUT limit (EntityTooLarge)
    min_part_size: int = 5 * 1024**2  # S3 EntityTooSmall rule for all but the last part
    read_verify_rate: float = 0.05  # fraction of GETs hashed while streaming (JAY_SPEC §7.2)
    # New objects up to this size share pack files (jay.storage.packs); 0: a file per object.
    pack_max_object_bytes: int = 65536
    # SSE-S3's master key file; empty: <data_dir>/sse-master.key (created 0600 on first use).
    sse_master_key_file: str = ""
    # SSE-KMS key ids the local keyring accepts besides "aws/s3" (keys derive from the master key).
    sse_kms_key_ids: tuple[str, ...] = ()
    # Native protocol
    native_idle_timeout_seconds: int = 300
    # Operations
    metrics_public: bool = False
    shutdown_grace_seconds: int = 30
    workers: int = 0  # processes serving the ports; 0: one per CPU core this process may use
    # Bucket lifecycle expiration pass (jay.maintenance.lifecycle) every N seconds; 0 disables.
    lifecycle_interval_seconds: int = 3600

    @property
    def worker_count(self) -> int:
        """``workers``, with 0 resolved to the number of usable CPU cores."""
        if self.workers > 0:
            return self.workers
        return usable_cpus()
