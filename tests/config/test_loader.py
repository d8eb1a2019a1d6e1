"""Loading: defaults → YAML → env, interpolation, type rules and validation (JAY_SPEC §5.2–5.5)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import Logger, LogLevel, formatEvent

from jay.config.loader import config_path_from, interpolate, load_config
from jay.config.model import Config
from jay.errors import ConfigError

TOKEN = "t" * 32
SECRET = "s" * 40


class Captured:
    """A Logger whose events land in a list (what load_config's ``log=`` is for)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.log = Logger(namespace="jay.config", observer=self.events.append)

    def warnings(self) -> list[str]:
        return [formatEvent(e) for e in self.events if e["log_level"] == LogLevel.warn]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "jay.yml"
    path.write_text(text)
    return str(path)


def load(tmp_path: Path, yaml_text: str | None = None, env: dict[str, str] | None = None) -> Config:
    path = write(tmp_path, yaml_text) if yaml_text is not None else None
    return load_config(path, env or {}, log=Captured().log)


def load_error(
    tmp_path: Path, yaml_text: str | None = None, env: dict[str, str] | None = None
) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, yaml_text, env)
    return info.value.message


# --- precedence -----------------------------------------------------------------------------


def test_defaults_without_file_or_env() -> None:
    assert load_config(None, {}) == Config()


def test_yaml_overrides_default_and_env_overrides_yaml(tmp_path: Path) -> None:
    yaml_text = (
        "listen_addr: ':9100'\nadmin_addr: ':9101'\nscrub:\n  interval_hours: 2\n  max_per_run: 7\n"
    )
    env = {"JAY_ADMIN_ADDR": ":9201", "JAY_SCRUB_MAX_PER_RUN": "9"}
    config = load(tmp_path, yaml_text, env)
    assert config.listen_addr == ":9100"  # YAML over default
    assert config.admin_addr == ":9201"  # env over YAML
    assert config.scrub.interval_hours == 2
    assert config.scrub.max_per_run == 9
    assert config.native_addr == ":4444"  # default kept


def test_empty_env_value_is_ignored(tmp_path: Path) -> None:
    config = load(
        tmp_path, "native_addr: ''\nregion: eu-west-1\n", {"JAY_REGION": "", "JAY_NATIVE_ADDR": ""}
    )
    assert config.region == "eu-west-1"
    assert config.native_addr == ""  # empty native_addr only via YAML (§5.1)


def test_env_only(tmp_path: Path) -> None:
    env = {
        "JAY_DATA_DIR": "/srv/jay",
        "JAY_ADMIN_TOKEN": TOKEN,
        "JAY_SIGNING_SECRET": SECRET,
        "JAY_RATE_LIMIT": "2.5",
        "JAY_RATE_BURST": "7",
        "JAY_WORKERS": "4",
        "JAY_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.0/24,",
        "JAY_TLS_CERT": "/c.pem",
        "JAY_TLS_KEY": "/k.pem",
        "JAY_NATIVE_TLS": "true",
        "JAY_GC_INTERVAL_MINUTES": "5",
        "JAY_BACKUP_KEEP": "3",
        "JAY_SEED_TOKEN_ACCOUNT": "acct",
        "JAY_SEED_TOKEN_ID": "tid",
        "JAY_SEED_TOKEN_SECRET": "short-is-fine",
    }
    config = load_config(None, env)
    assert config.data_dir == "/srv/jay"
    assert (config.admin_token, config.signing_secret) == (TOKEN, SECRET)
    assert (config.rate_limit.rate, config.rate_limit.burst) == (2.5, 7)
    assert config.workers == 4
    assert config.proxy.trusted_proxies == ("10.0.0.0/8", "192.168.1.0/24")
    assert (config.tls.cert_path, config.tls.key_path, config.tls.native) == (
        "/c.pem",
        "/k.pem",
        True,
    )
    assert config.tls.is_enabled
    assert config.gc.interval_minutes == 5
    assert config.backup.keep == 3
    assert config.seed_token.is_set and config.seed_token.secret == "short-is-fine"


@pytest.mark.parametrize(
    ("rate", "burst", "expected"),
    [
        ("100", "0", 200),
        ("0.2", "-1", 1),
        ("0", "0", 1),
        ("-5", "0", 1),
        ("2.6", "0", 5),
        ("10", "3", 3),
    ],
)
def test_rate_burst_rule(rate: str, burst: str, expected: int) -> None:
    config = load_config(None, {"JAY_RATE_LIMIT": rate, "JAY_RATE_BURST": burst})
    assert config.rate_limit.burst == expected
    assert config.rate_limit.rate == float(rate)


def test_all_sections_from_yaml(tmp_path: Path) -> None:
    yaml_text = """
gc:
  interval_minutes: 1
  temp_max_age_hours: 2
  multipart_max_age_hours: 3
backup:
  interval_hours: 4
  keep: 5
  max_age_days: 6
scrub:
  bytes_per_sec: -1
trusted_proxies: ["10.1.2.3/8", "::1"]
trust_proxy_headers: true
metrics_public: "T"
log_level: WARN
log_format: JSON
public_url: https://s3.example.com
domain: s3.example.com
max_object_size: 1e3
read_verify_rate: 0
"""
    config = load(tmp_path, yaml_text)
    assert (
        config.gc.interval_minutes,
        config.gc.temp_max_age_hours,
        config.gc.multipart_max_age_hours,
    ) == (1, 2, 3)
    assert (config.backup.interval_hours, config.backup.keep, config.backup.max_age_days) == (
        4,
        5,
        6,
    )
    assert config.scrub.bytes_per_sec == -1  # ≤ 0 means unthrottled (§5.1)
    assert config.proxy.trusted_proxies == ("10.0.0.0/8", "::1/128")
    assert config.proxy.trust_proxy_headers is True
    assert config.metrics_public is True
    assert config.log_level == "warn"
    assert config.log_format == "json"
    assert config.max_object_size == 1000
    assert config.read_verify_rate == 0.0


def test_empty_and_comment_only_file_is_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "") == Config()
    assert load(tmp_path, "# nothing\nscrub:\n  # interval_hours: 3\n") == Config()


def test_config_path_from() -> None:
    assert config_path_from("/a.yml", {"JAY_CONFIG_FILE": "/b.yml"}) == "/a.yml"
    assert config_path_from(None, {"JAY_CONFIG_FILE": "/b.yml"}) == "/b.yml"
    assert config_path_from("", {"JAY_CONFIG_FILE": "/b.yml"}) == "/b.yml"
    assert config_path_from(None, {"JAY_CONFIG_FILE": ""}) is None
    assert config_path_from(None, {}) is None


# --- interpolation (§5.3) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A}", {}, ""),
        ("${A}", {"A": ""}, ""),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, ""),  # set-but-empty wins over the default (not POSIX)
        ("${A:-d}", {"A": "v"}, "v"),
        ("${A:-}", {}, ""),
        ("${A:-a b:c-d}", {}, "a b:c-d"),
        ("pre-${A}-mid-${B:-bee}-post", {"A": "1"}, "pre-1-mid-bee-post"),
        ("${A}${A}", {"A": "z"}, "zz"),
        ("$A", {"A": "x"}, "$A"),
        ("${1X}", {"1X": "x"}, "${1X}"),
        ("${A-d}", {}, "${A-d}"),
        ("${A", {"A": "x"}, "${A"),
        ("${}", {}, "${}"),
        ("${A:-${B}}", {"B": "b"}, "${B}"),  # default "${B" ends at the first "}"; not re-read
        ("${A}", {"A": "${B}", "B": "no"}, "${B}"),  # no recursion
        ("$${A}", {"A": "x"}, "$x"),  # no escape syntax
        ("${_a9}", {"_a9": "ok"}, "ok"),
    ],
)
def test_interpolate(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


def test_interpolation_in_yaml(tmp_path: Path) -> None:
    yaml_text = """
region: "${REGION:-us-west-2}"
data_dir: "${BASE}/data"
admin_token: "${TOKEN}"
rate_limit: "${RATE}"
scrub:
  max_per_run: "${RUNS:-12}"
trusted_proxies: ["${NET}"]
domain: "$HOST"
"""
    env = {"BASE": "/srv", "TOKEN": TOKEN, "RATE": "12.5", "NET": "10.0.0.0/8", "HOST": "h"}
    with pytest.raises(ConfigError) as info:  # "$HOST" stays literal, and "$" is not a DNS name
        load(tmp_path, yaml_text, env)
    assert info.value.message == "domain: must be a DNS name such as s3.example.com, got '$HOST'"
    config = load(tmp_path, yaml_text.replace('"$HOST"', "s3.example.com"), env)
    assert config.region == "us-west-2"
    assert config.data_dir == "/srv/data"
    assert config.admin_token == TOKEN
    assert config.rate_limit.rate == 12.5  # a numeric key written as "${RATE}"
    assert config.scrub.max_per_run == 12
    assert config.proxy.trusted_proxies == ("10.0.0.0/8",)


def test_interpolated_value_is_not_reparsed_as_yaml(tmp_path: Path) -> None:
    config = load(tmp_path, 'region: "${R}"\n', {"R": "[a, b]: {c}"})
    assert config.region == "[a, b]: {c}"


def test_env_values_are_not_interpolated() -> None:
    assert load_config(None, {"JAY_REGION": "${HOME}", "HOME": "/root"}).region == "${HOME}"


def test_interpolated_bad_number_names_key(tmp_path: Path) -> None:
    message = load_error(tmp_path, 'rate_limit: "${RATE}"\n', {"RATE": "fast"})
    assert message == "rate_limit: expected a number, got 'fast'"


def test_interpolated_unset_number_is_error(tmp_path: Path) -> None:
    message = load_error(tmp_path, 'workers: "${N}"\n')
    assert message == "workers: expected an integer, got ''"


# --- YAML types (§5.2) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("tls_cert:\n", "tls_cert: expected string, got null"),
        ("tls_cert: ~\n", "tls_cert: expected string, got null"),
        ("listen_addr: 9000\n", "listen_addr: expected string, got int"),
        ("region: true\n", "region: expected string, got bool"),
        ("region: 1.5\n", "region: expected string, got float"),
        ("region: [a]\n", "region: expected string, got list"),
        ("data_dir: {a: 1}\n", "data_dir: expected string, got mapping"),
        ("seed_token:\n  account: 5\n", "seed_token.account: expected string, got int"),
        ("workers: 1.5\n", "workers: expected an integer, got 1.5"),
        ("workers: '1.0'\n", "workers: expected an integer, got '1.0'"),
        ("workers: true\n", "workers: expected an integer, got bool"),
        ("workers:\n", "workers: expected an integer, got null"),
        (
            "workers: 99999999999999999999\n",
            "workers: out of the 64-bit integer range, got 99999999999999999999",
        ),
        ("rate_limit: fast\n", "rate_limit: expected a number, got 'fast'"),
        ("rate_limit: false\n", "rate_limit: expected a number, got bool"),
        ("rate_limit: '1_000'\n", "rate_limit: expected a number, got '1_000'"),
        ("metrics_public: 1\n", "metrics_public: expected a boolean, got int"),
        ("metrics_public: yes\n", "metrics_public: expected a boolean (true or false), got 'yes'"),
        ("metrics_public: 'on'\n", "metrics_public: expected a boolean (true or false), got 'on'"),
        ("metrics_public:\n", "metrics_public: expected a boolean, got null"),
        ("trusted_proxies: 5\n", "trusted_proxies: expected a list of strings, got int"),
        (
            "trusted_proxies: [10.0.0.0/8, 5]\n",
            "trusted_proxies: expected a list of strings, got an item of type int",
        ),
        ("scrub: 5\n", "scrub: expected a mapping, got int"),
    ],
)
def test_yaml_type_errors(tmp_path: Path, yaml_text: str, expected: str) -> None:
    assert load_error(tmp_path, yaml_text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        ("'1'", True),
        ("'t'", True),
        ("'T'", True),
        ("'true'", True),
        ("'0'", False),
        ("'f'", False),
        ("'F'", False),
        ("'FALSE'", False),
    ],
)
def test_yaml_bool(tmp_path: Path, text: str, expected: bool) -> None:
    assert load(tmp_path, f"metrics_public: {text}\n").metrics_public is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", 3), ("3.0", 3), ("'3'", 3), ("'+3'", 3), ("0x10", 16), ("1_000", 1000), ("010", 10)],
)
def test_yaml_int(tmp_path: Path, text: str, expected: int) -> None:
    assert load(tmp_path, f"workers: {text}\n").workers == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("1", 1.0), ("0.5", 0.5), ("'0.25'", 0.25), ("'1e-1'", 0.1), (".5", 0.5)]
)
def test_yaml_float(tmp_path: Path, text: str, expected: float) -> None:
    assert load(tmp_path, f"read_verify_rate: {text}\n").read_verify_rate == expected


@pytest.mark.parametrize("text", ["no", "yes", "on", "off", "y", "1:30", "2024-01-02"])
def test_yaml_11_scalars_stay_strings(tmp_path: Path, text: str) -> None:
    # Go's yaml.v3 keeps these as strings; PyYAML's YAML 1.1 defaults would not.
    assert load(tmp_path, f"region: {text}\n").region == text


# --- env parsing (§5.2) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("0", False),
        ("false", False),
        ("yes", False),
        ("on", False),
        ("t", False),
        ("tRuE", False),
    ],
)
def test_env_bool(text: str, expected: bool) -> None:
    assert (
        load_config(None, {"JAY_TRUST_PROXY_HEADERS": text}).proxy.trust_proxy_headers is expected
    )


def test_env_bool_unrecognized_value_warns() -> None:
    captured = Captured()
    config = load_config(None, {"JAY_METRICS_PUBLIC": "yes"}, log=captured.log)
    assert config.metrics_public is False
    assert captured.warnings() == [
        "JAY_METRICS_PUBLIC is yes, not one of 1, true, TRUE, True: metrics_public is false"
    ]


def test_env_bool_overrides_yaml_true(tmp_path: Path) -> None:
    config = load(tmp_path, "metrics_public: true\n", {"JAY_METRICS_PUBLIC": "0"})
    assert config.metrics_public is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"JAY_WORKERS": "two"}, "workers (JAY_WORKERS): expected an integer, got 'two'"),
        ({"JAY_WORKERS": "2.0"}, "workers (JAY_WORKERS): expected an integer, got '2.0'"),
        ({"JAY_WORKERS": " 2"}, "workers (JAY_WORKERS): expected an integer, got ' 2'"),
        ({"JAY_RATE_LIMIT": "1,5"}, "rate_limit (JAY_RATE_LIMIT): expected a number, got '1,5'"),
        (
            {"JAY_SCRUB_BYTES_PER_SEC": "50MiB"},
            "scrub.bytes_per_sec (JAY_SCRUB_BYTES_PER_SEC): expected an integer, got '50MiB'",
        ),
    ],
)
def test_env_parse_errors(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env)
    assert info.value.message == expected
    assert info.value.details["env_var"] == next(iter(env))


# --- validation rules -----------------------------------------------------------------------

SHORT = "x" * 31

VALIDATION_CASES = [
    # (key, bad value as env text, message without the "key (ENV): " prefix)
    ("scrub.sample_rate", "1.5", "must be in (0, 1], got 1.5"),
    ("scrub.sample_rate", "0", "must be in (0, 1], got 0"),
    ("scrub.sample_rate", "nan", "must be in (0, 1], got nan"),
    ("scrub.interval_hours", "0", "must be > 0, got 0"),
    ("scrub.max_per_run", "-3", "must be > 0, got -3"),
    ("log_level", "verbose", "must be one of debug|info|warn|error, got 'verbose'"),
    ("log_level", "warning", "must be one of debug|info|warn|error, got 'warning'"),
    ("log_format", "xml", "must be one of text|json, got 'xml'"),
    ("admin_token", SHORT, "must be at least 32 bytes long, got 31 bytes"),
    ("signing_secret", "abc", "must be at least 32 bytes long, got 3 bytes"),
    (
        "trusted_proxies",
        "10.0.0.0/8,10.0.0.0/33",
        "not an IP network in CIDR notation: '10.0.0.0/33'",
    ),
    ("trusted_proxies", "localhost", "not an IP network in CIDR notation: 'localhost'"),
    ("listen_addr", "9000", "expected [host]:port, got '9000'"),
    ("admin_addr", "host:http", "port must be a number in 0..65535, got 'host:http'"),
    ("native_addr", ":70000", "port must be a number in 0..65535, got ':70000'"),
    ("listen_addr", "::1:9000", "an IPv6 host must be in brackets ([::1]:port), got '::1:9000'"),
    ("listen_addr", "[zz]:9000", "not an IPv6 address in brackets: '[zz]:9000'"),
    (
        "public_url",
        "s3.example.com",
        "must be an http:// or https:// URL with a host, got 's3.example.com'",
    ),
    ("public_url", "https://h/?a=1", "must not have a query or fragment, got 'https://h/?a=1'"),
    ("domain", "http://x", "must be a DNS name such as s3.example.com, got 'http://x'"),
    ("max_object_size", "0", "must be > 0, got 0"),
    ("min_part_size", "-1", "must be >= 0, got -1"),
    ("read_verify_rate", "1.01", "must be in [0, 1], got 1.01"),
    ("read_verify_rate", "-0.1", "must be in [0, 1], got -0.1"),
    ("pack_max_object_bytes", "65537", "must be in [0, 65536], got 65537"),
    ("pack_max_object_bytes", "-1", "must be in [0, 65536], got -1"),
    ("native_idle_timeout_seconds", "0", "must be > 0, got 0"),
    ("shutdown_grace_seconds", "-1", "must be >= 0, got -1"),
    ("workers", "-1", "must be >= 0, got -1"),
    ("rate_limit", "inf", "must be a finite number, got inf"),
    ("gc.interval_minutes", "0", "must be > 0, got 0"),
    ("gc.temp_max_age_hours", "0", "must be > 0, got 0"),
    ("gc.multipart_max_age_hours", "-1", "must be > 0, got -1"),
    ("backup.interval_hours", "0", "must be > 0, got 0"),
    ("backup.keep", "0", "must be >= 1, got 0"),
    ("backup.max_age_days", "0", "must be > 0, got 0"),
]


def _env_var(key: str) -> str:
    return "JAY_" + key.upper().replace(".", "_")


@pytest.mark.parametrize(("key", "text", "rule"), VALIDATION_CASES)
def test_validation_from_env(key: str, text: str, rule: str) -> None:
    env_var = _env_var(key)
    with pytest.raises(ConfigError) as info:
        load_config(None, {env_var: text})
    assert info.value.message == f"{key} ({env_var}): {rule}"
    assert info.value.details["setting"] == key


@pytest.mark.parametrize(("key", "text", "rule"), VALIDATION_CASES)
def test_validation_from_yaml(tmp_path: Path, key: str, text: str, rule: str) -> None:
    section, _, leaf = key.rpartition(".")
    value = f"[{text}]" if key == "trusted_proxies" else repr(text)
    yaml_text = f"{section}:\n  {leaf}: {value}\n" if section else f"{key}: {value}\n"
    assert load_error(tmp_path, yaml_text) == f"{key}: {rule}"


def test_secret_errors_do_not_contain_the_value() -> None:
    secret = "hunter2-is-my-password"
    with pytest.raises(ConfigError) as info:
        load_config(None, {"JAY_ADMIN_TOKEN": secret})
    assert secret not in str(info.value)


def test_secret_length_counts_utf8_bytes() -> None:
    token = "é" * 16  # 16 characters, 32 bytes
    assert load_config(None, {"JAY_ADMIN_TOKEN": token}).admin_token == token


def test_secrets_may_be_empty() -> None:
    config = load_config(None, {})
    assert config.admin_token == "" and config.signing_secret == ""


def test_valid_values_accepted() -> None:
    env = {
        "JAY_LOG_LEVEL": "DeBuG",
        "JAY_LISTEN_ADDR": "[::1]:0",
        "JAY_ADMIN_ADDR": "127.0.0.1:65535",
        "JAY_SCRUB_SAMPLE_RATE": "1",
        "JAY_READ_VERIFY_RATE": "1",
        "JAY_PUBLIC_URL": "http://localhost:9000/base",
        "JAY_SHUTDOWN_GRACE_SECONDS": "0",
        "JAY_RATE_LIMIT": "-1",
    }
    config = load_config(None, env)
    assert config.log_level == "debug"
    assert config.listen_addr == "[::1]:0"
    assert config.scrub.sample_rate == 1.0
    assert config.public_url == "http://localhost:9000/base"
    assert not config.rate_limit.is_enabled


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"JAY_SEED_TOKEN_ACCOUNT": "a"},
            "seed_token: account, id and secret must be all set or all empty; set: "
            "seed_token.account (JAY_SEED_TOKEN_ACCOUNT); missing: seed_token.id, seed_token.secret",
        ),
        (
            {"JAY_SEED_TOKEN_ID": "i", "JAY_SEED_TOKEN_SECRET": "s"},
            "seed_token: account, id and secret must be all set or all empty; set: "
            "seed_token.id (JAY_SEED_TOKEN_ID), seed_token.secret (JAY_SEED_TOKEN_SECRET); "
            "missing: seed_token.account",
        ),
        (
            {"JAY_TLS_CERT": "/c.pem"},
            "tls_cert/tls_key: TLS needs both a certificate and a key; set: tls_cert (JAY_TLS_CERT); "
            "missing: tls_key",
        ),
        (
            {"JAY_NATIVE_TLS": "1"},
            "native_tls (JAY_NATIVE_TLS): native TLS needs tls_cert and tls_key",
        ),
    ],
)
def test_combination_rules(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env)
    assert info.value.message == expected


def test_seed_partial_from_yaml(tmp_path: Path) -> None:
    message = load_error(tmp_path, "seed_token:\n  account: a\n  id: i\n  secret: ''\n")
    assert message.endswith("set: seed_token.account, seed_token.id; missing: seed_token.secret")


def test_tls_key_only_from_yaml(tmp_path: Path) -> None:
    message = load_error(tmp_path, "tls_key: /k.pem\n")
    assert message.endswith("set: tls_key; missing: tls_cert")


def test_bad_yaml_value_is_fatal_even_if_env_overrides(tmp_path: Path) -> None:
    message = load_error(tmp_path, "workers: -1\n", {"JAY_WORKERS": "2"})
    assert message == "workers: must be >= 0, got -1"


# --- file errors ----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.yml")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.message.startswith(f"config file {path}: cannot read")


def test_directory_as_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path), {})
    assert "cannot read" in info.value.message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: [1, 2\n", "malformed YAML"),
        ("a: b: c\n", "malformed YAML"),
        ("region: a\nregion: b\n", "mapping key 'region' already defined"),
        ("--- 1\n--- 2\n", "malformed YAML"),
        ("- a\n- b\n", "the top level must be a mapping, got list"),
        ("just a string\n", "the top level must be a mapping, got string"),
        ("workers: 0x_\n", "malformed integer"),
        ("? [a]\n: b\n", "mapping keys must be scalars"),
        ("a: " + "[" * 1000 + "]" * 1000 + "\n", "malformed YAML"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, fragment: str) -> None:
    message = load_error(tmp_path, text)
    assert message.startswith(f"config file {tmp_path / 'jay.yml'}:")
    assert fragment in message


def test_malformed_yaml_error_does_not_quote_the_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, f"admin_token: {TOKEN}: [oops\n")
    assert TOKEN not in message
    assert "line 1" in message


# --- warnings -------------------------------------------------------------------------------


def test_unknown_keys_warn_but_load(tmp_path: Path) -> None:
    captured = Captured()
    path = write(tmp_path, "bogus: 1\nscrub:\n  nope: 2\nregion: eu\n")
    config = load_config(path, {}, log=captured.log)
    assert config.region == "eu"
    assert captured.warnings() == [
        f"Ignoring unknown configuration key bogus in {path}",
        f"Ignoring unknown configuration key scrub.nope in {path}",
    ]


def test_conflict_warning(tmp_path: Path) -> None:
    captured = Captured()
    path = write(tmp_path, "region: eu-west-1\nscrub:\n  interval_hours: 3\nworkers: 2\n")
    env = {"JAY_REGION": "us-east-2", "JAY_SCRUB_INTERVAL_HOURS": "4", "JAY_WORKERS": "2"}
    config = load_config(path, env, log=captured.log)
    assert config.region == "us-east-2"
    assert sorted(captured.warnings()) == [
        "Configuration key region is set in the config file to 'eu-west-1' and overridden by "
        "environment variable JAY_REGION = 'us-east-2'",
        "Configuration key scrub.interval_hours is set in the config file to 3 and overridden "
        "by environment variable JAY_SCRUB_INTERVAL_HOURS = 4",
    ]  # workers: same value, no warning
    event = [e for e in captured.events if e.get("key") == "region"][0]
    assert (event["env_var"], event["log_namespace"]) == ("JAY_REGION", "jay.config")


def test_no_conflict_for_same_canonical_value_or_empty_yaml(tmp_path: Path) -> None:
    captured = Captured()
    path = write(tmp_path, "rate_limit: 100\nmetrics_public: 'True'\ndomain: ''\nlog_level: INFO\n")
    env = {
        "JAY_RATE_LIMIT": "100.0",
        "JAY_METRICS_PUBLIC": "1",
        "JAY_DOMAIN": "x.example",
        "JAY_LOG_LEVEL": "info",
    }
    load_config(path, env, log=captured.log)
    assert captured.warnings() == []


def test_conflict_warning_redacts_secrets(tmp_path: Path) -> None:
    captured = Captured()
    yaml_secrets = {"admin_token": "a" * 32, "signing_secret": "b" * 32}
    env_secrets = {
        "JAY_ADMIN_TOKEN": "c" * 32,
        "JAY_SIGNING_SECRET": "d" * 32,
        "JAY_SEED_TOKEN_SECRET": "env-seed",
    }
    path = write(
        tmp_path,
        "".join(f"{k}: {v}\n" for k, v in yaml_secrets.items())
        + "seed_token:\n  account: acc\n  id: tid\n  secret: yaml-seed\n",
    )
    config = load_config(path, env_secrets, log=captured.log)
    assert config.admin_token == "c" * 32 and config.seed_token.secret == "env-seed"
    warnings = captured.warnings()
    assert len(warnings) == 3
    for name, env_var in [
        ("admin_token", "JAY_ADMIN_TOKEN"),
        ("signing_secret", "JAY_SIGNING_SECRET"),
        ("seed_token.secret", "JAY_SEED_TOKEN_SECRET"),
    ]:
        assert (
            f"Configuration key {name} is set in the config file to <redacted> and overridden by "
            f"environment variable {env_var} = <redacted>"
        ) in warnings
    everything = repr(captured.events)
    for secret in [*yaml_secrets.values(), *env_secrets.values(), "yaml-seed"]:
        assert secret not in everything


def test_alias_fan_out_under_unknown_key_is_cheap(tmp_path: Path) -> None:
    # 10 levels of 10 aliases would be 10**10 strings if anything walked the expansion.
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*l{i - 1}"] * 10)
        lines.append(f"l{i}: &l{i} [{refs}]")
    captured = Captured()
    config = load_config(write(tmp_path, "\n".join(lines) + "\n"), {}, log=captured.log)
    assert config == Config()
    assert len(captured.warnings()) == 10


def test_workers_default_to_one_per_usable_core(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.workers == 0
    assert config.worker_count == len(os.sched_getaffinity(0))
    assert load(tmp_path, "workers: 3\n").worker_count == 3
