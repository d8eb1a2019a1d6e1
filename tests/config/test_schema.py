"""The key table: names, env vars, defaults and types agree with JAY_SPEC §5.1 and the model."""

from __future__ import annotations

import pytest

from jay.config.model import Config
from jay.config.schema import (
    BY_ENV_VAR,
    BY_NAME,
    SECRET_NAMES,
    SETTINGS,
    default_of,
    env_var_for,
    format_value,
)

# JAY_SPEC §5.1, in table order: (YAML key, env var, default, type).
UPSTREAM_TABLE = [
    ("data_dir", "JAY_DATA_DIR", "./data", "str"),
    ("listen_addr", "JAY_LISTEN_ADDR", ":9000", "str"),
    ("admin_addr", "JAY_ADMIN_ADDR", ":9001", "str"),
    ("native_addr", "JAY_NATIVE_ADDR", ":4444", "str"),
    ("admin_token", "JAY_ADMIN_TOKEN", "", "str"),
    ("signing_secret", "JAY_SIGNING_SECRET", "", "str"),
    ("log_level", "JAY_LOG_LEVEL", "info", "str"),
    ("tls_cert", "JAY_TLS_CERT", "", "str"),
    ("tls_key", "JAY_TLS_KEY", "", "str"),
    ("rate_limit", "JAY_RATE_LIMIT", 100.0, "float"),
    ("rate_burst", "JAY_RATE_BURST", 200, "int"),
    ("trust_proxy_headers", "JAY_TRUST_PROXY_HEADERS", False, "bool"),
    ("scrub.interval_hours", "JAY_SCRUB_INTERVAL_HOURS", 6, "int"),
    ("scrub.sample_rate", "JAY_SCRUB_SAMPLE_RATE", 0.1, "float"),
    ("scrub.bytes_per_sec", "JAY_SCRUB_BYTES_PER_SEC", 52428800, "int"),
    ("scrub.max_per_run", "JAY_SCRUB_MAX_PER_RUN", 100, "int"),
    ("seed_token.account", "JAY_SEED_TOKEN_ACCOUNT", "", "str"),
    ("seed_token.id", "JAY_SEED_TOKEN_ID", "", "str"),
    ("seed_token.secret", "JAY_SEED_TOKEN_SECRET", "", "str"),
]


def test_upstream_rows_come_first_in_spec_order() -> None:
    rows = [(s.name, s.env_var, s.default, s.type) for s in SETTINGS[: len(UPSTREAM_TABLE)]]
    assert rows == UPSTREAM_TABLE
    assert all(s.is_upstream for s in SETTINGS[: len(UPSTREAM_TABLE)])
    assert not any(s.is_upstream for s in SETTINGS[len(UPSTREAM_TABLE) :])


def test_jay_keys_present_with_types() -> None:
    expected = {
        "log_format": "str",
        "native_tls": "bool",
        "trusted_proxies": "list",
        "region": "str",
        "domain": "str",
        "public_url": "str",
        "max_object_size": "int",
        "min_part_size": "int",
        "read_verify_rate": "float",
        "pack_max_object_bytes": "int",
        "sse_master_key_file": "str",
        "sse_kms_key_ids": "list",
        "native_idle_timeout_seconds": "int",
        "metrics_public": "bool",
        "shutdown_grace_seconds": "int",
        "workers": "int",
        "lifecycle_interval_seconds": "int",
        "gc.interval_minutes": "int",
        "gc.temp_max_age_hours": "int",
        "gc.multipart_max_age_hours": "int",
        "backup.interval_hours": "int",
        "backup.keep": "int",
        "backup.max_age_days": "int",
    }
    assert {name: BY_NAME[name].type for name in expected} == expected
    assert len(SETTINGS) == len(UPSTREAM_TABLE) + len(expected)


def test_env_var_names() -> None:
    assert env_var_for("scrub.interval_hours") == "JAY_SCRUB_INTERVAL_HOURS"
    assert BY_NAME["workers"].env_var == "JAY_WORKERS"
    assert BY_ENV_VAR["JAY_TRUSTED_PROXIES"].name == "trusted_proxies"
    assert len(BY_ENV_VAR) == len(SETTINGS)


def test_secrets_marked() -> None:
    assert SECRET_NAMES == {"admin_token", "signing_secret", "seed_token.secret"}


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_default_matches_model_and_is_valid(setting: object) -> None:
    from jay.config.schema import Setting

    assert isinstance(setting, Setting)
    assert setting.default == default_of(setting.field)
    if setting.validate is not None:
        assert setting.validate(setting.default) is None


def test_fields_cover_the_model() -> None:
    fields = {s.field for s in SETTINGS}
    assert "tls.cert_path" in fields and "rate_limit.burst" in fields
    # Every leaf of Config is reachable from exactly one key.
    leaves = set()
    for name in Config.__dataclass_fields__:
        value = getattr(Config(), name)
        if hasattr(value, "__dataclass_fields__"):
            leaves |= {f"{name}.{sub}" for sub in value.__dataclass_fields__}
        else:
            leaves.add(name)
    assert fields == leaves


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (100.0, "100"),
        (0.1, "0.1"),
        (7, "7"),
        ("x", "x"),
        (("a", "b"), "a,b"),
    ],
)
def test_format_value(value: object, text: str) -> None:
    assert format_value(value) == text  # type: ignore[arg-type]
