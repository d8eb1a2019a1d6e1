"""``jay-config``: convert between YAML and env files, and validate a YAML file (JAY_SPEC §4.6).

Keys, env var names, types and range rules come from :mod:`jay.config.schema`, the table the
server's loader reads too, so the tool knows jay's extra keys and never disagrees with the
server about what a key is. ``${VAR}`` references are never resolved: they are carried over
literally, and validation lets any value containing ``${`` pass its type and range checks.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TextIO

import yaml

from jay.config.loader import _Invalid, _yaml_problem, _YamlLoader, coerce_yaml
from jay.config.schema import BY_ENV_VAR, BY_NAME, SECTIONS, SETTINGS, Setting, Value

PROG = "jay-config"
USAGE = f"""\
Usage: {PROG} <command> [flags]

Commands:
  yaml-to-env   --input/-i FILE.yml [--output/-o FILE.env]   YAML config -> KEY=value lines
  env-to-yaml   --input/-i FILE.env [--output/-o FILE.yml]   KEY=value lines -> YAML config
  validate      --input/-i FILE.yml                          check a YAML config file
  help          show this help

${{VAR}} references are never resolved; they are copied as written.
"""
# A config file is small; the same cap as the server's loader.
MAX_INPUT_BYTES = 1024 * 1024
# Range checks jay-config validate makes beyond the schema's own validators (§4.6): the
# server accepts these values (<= 0 disables) but upstream's validator calls them errors.
_NON_NEGATIVE = ("scrub.bytes_per_sec", "rate_limit", "rate_burst")
_SEED_FIELDS = ("account", "id", "secret")
_REQUIRED_SECRETS = ("admin_token", "signing_secret")


class _Failure(Exception):
    """A fatal problem; the message is printed after ``jay-config: error: ``."""


# --- command line ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Args:
    input: str
    output: str | None


def _parse_flags(command: str, argv: Sequence[str]) -> _Args:
    takes_output = command != "validate"
    values: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=")
        if name in ("--input", "-i", "-input"):
            key = "input"
        elif takes_output and name in ("--output", "-o", "-output"):
            key = "output"
        else:
            raise _Failure(f"{command}: unknown flag or argument {arg!r}")
        if eq:
            value = inline
        else:
            i += 1
            if i >= len(argv):
                raise _Failure(f"{command}: flag {name} needs a value")
            value = argv[i]
        if not value:
            raise _Failure(f"{command}: flag {name} needs a non-empty value")
        values[key] = value
        i += 1
    if "input" not in values:
        raise _Failure(f"{command}: --input/-i is required")
    return _Args(input=values["input"], output=values.get("output"))


def _read_input(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
    except OSError as e:
        raise _Failure(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise _Failure(f"{path}: larger than {MAX_INPUT_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Failure(f"{path}: not UTF-8 text") from None


def _write_output(path: str | None, text: str, stdout: TextIO) -> None:
    if path is None:
        stdout.write(text)
        return
    # The output holds secrets (admin_token, signing_secret): a new file is created 0600.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise _Failure(f"cannot write {path}: {e.strerror or e}") from None


# --- YAML -> env ----------------------------------------------------------------------------

# A ${…} reference written unquoted: nothing inside that a shell or env-file reader would split.
_BARE_REFERENCE = re.compile(r"[^ \t\"'\\]*\$\{[^ \t\"'\\]*")
_NEEDS_QUOTES = frozenset(" \t\"'\\#\n")


def _env_string(text: str) -> str:
    if text == "":
        return ""
    if _BARE_REFERENCE.fullmatch(text) and "#" not in text and "\n" not in text:
        return text
    if any(ch in _NEEDS_QUOTES for ch in text):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


def _decimal_text(number: float) -> str:
    """Numbers in natural decimal form: 100.0 → ``100``, 1e-05 → ``0.00001``, no exponents."""
    if number != number or number in (float("inf"), float("-inf")):
        return repr(number)
    if number.is_integer():
        return str(int(number))
    return format(Decimal(repr(number)), "f")


def _env_value(setting: Setting, raw: object, warn: _Warn) -> str | None:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        return _decimal_text(raw)
    if isinstance(raw, str):
        return _env_string(raw)
    if raw is None:
        return ""
    if isinstance(raw, list) and setting.type == "list":
        items = [str(item) for item in raw]
        return _env_string(",".join(items))
    warn(f"skipping {setting.name}: a {type(raw).__name__} cannot be written as an env value")
    return None


class _Warn:
    def __init__(self, stderr: TextIO) -> None:
        self._stderr = stderr

    def __call__(self, message: str) -> None:
        self._stderr.write(f"{PROG}: warning: {message}\n")


def _load_yaml(path: str, text: str) -> dict[str, Any]:
    try:
        document = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise _Failure(f"{path}: malformed YAML: {_yaml_problem(e)}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise _Failure(f"{path}: the top level must be a mapping")
    return {str(k): v for k, v in document.items()}


def yaml_to_env(path: str, text: str, warn: _Warn) -> str:
    document = _load_yaml(path, text)
    flat: dict[str, object] = {}
    for key, value in document.items():
        if key in SECTIONS and key not in BY_NAME:
            if value is None:
                continue
            if not isinstance(value, dict):
                warn(f"skipping {key}: expected a mapping")
                continue
            for sub_key, sub_value in value.items():
                name = f"{key}.{sub_key}"
                if name in BY_NAME:
                    flat[name] = sub_value
                else:
                    warn(f"skipping unknown YAML key: {name}")
        elif key in BY_NAME:
            flat[key] = value
        else:
            warn(f"skipping unknown YAML key: {key}")
    lines = [f"# Generated by {PROG} yaml-to-env from {path}"]
    for setting in SETTINGS:  # §5.1's order, then jay's keys
        if setting.name not in flat:
            continue
        value = _env_value(setting, flat[setting.name], warn)
        if value is not None:
            lines.append(f"{setting.env_var}={value}")
    return "\n".join(lines) + "\n"


# --- env -> YAML ----------------------------------------------------------------------------

_ENV_TRUE = frozenset(("true", "1", "yes", "on"))
_ENV_FALSE = frozenset(("false", "0", "no", "off", ""))
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _unquote(value: str) -> str:
    """Remove one pair of matching surrounding quotes; escapes inside are kept as written."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _coerce_env(setting: Setting, text: str, warn: _Warn) -> object:
    if "${" in text:
        return text
    kind = setting.type
    if kind == "bool":
        lowered = text.lower()
        if lowered in _ENV_TRUE:
            return True
        if lowered in _ENV_FALSE:
            return False
    elif kind == "int":
        if text == "":
            return 0
        if _INT_TEXT.fullmatch(text):
            return int(text)
    elif kind == "float":
        if text == "":
            return 0.0
        if _FLOAT_TEXT.fullmatch(text):
            return float(text)
    elif kind == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    else:
        return text
    warn(f"{setting.env_var}: cannot read {text!r} as {kind}; keeping it as a string")
    return text


def env_to_yaml(path: str, text: str, warn: _Warn) -> str:
    tree: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export ") :].lstrip()
        name, eq, value = stripped.partition("=")
        if not eq:
            warn(f"{path}:{number}: skipping line without '='")
            continue
        name = name.strip()
        setting = BY_ENV_VAR.get(name)
        if setting is None:
            warn(f"{path}:{number}: skipping unknown key: {name}")
            continue
        coerced = _coerce_env(setting, _unquote(value.strip()), warn)
        head, dot, tail = setting.name.partition(".")
        if dot:
            tree.setdefault(head, {})[tail] = coerced
        else:
            tree[head] = coerced
    body = yaml.safe_dump(
        tree, sort_keys=True, default_flow_style=False, indent=2, allow_unicode=True, width=1000
    )
    header = f"# Generated by {PROG} env-to-yaml from {path}\n"
    return header + ("" if not tree else body)


# --- validate -------------------------------------------------------------------------------


class _Report:
    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def _where(self, node: yaml.Node | None) -> str:
        if node is None:
            return self.path
        mark = node.start_mark
        return f"{self.path}:{mark.line + 1}:{mark.column + 1}"

    def error(self, node: yaml.Node | None, message: str) -> None:
        self.errors.append(f"{self._where(node)}: {message}")

    def warning(self, node: yaml.Node | None, message: str) -> None:
        self.warnings.append(f"{self._where(node)}: {message}")


def _construct(node: yaml.Node) -> Any:
    return _YamlLoader("").construct_document(node)


def _is_interpolated(raw: object) -> bool:
    if isinstance(raw, str):
        return "${" in raw
    if isinstance(raw, list):
        return any(isinstance(item, str) and "${" in item for item in raw)
    return False


def _pairs(
    report: _Report, mapping: yaml.MappingNode, prefix: str
) -> list[tuple[str, yaml.Node, yaml.Node]]:
    seen: set[str] = set()
    out = []
    for key_node, value_node in mapping.value:
        key = str(_construct(key_node))
        name = prefix + key
        if name in seen:
            report.error(key_node, f"{name}: duplicate key")
            continue
        seen.add(name)
        out.append((name, key_node, value_node))
    return out


def _check_value(report: _Report, setting: Setting, node: yaml.Node) -> Value | None:
    try:
        raw = _construct(node)
    except yaml.YAMLError as e:
        report.error(node, f"{setting.name}: {_yaml_problem(e)}")
        return None
    if _is_interpolated(raw):
        return None  # decided by the environment at startup
    try:
        value = coerce_yaml(setting, raw, {})
    except _Invalid as e:
        report.error(node, f"{setting.name}: {e}")
        return None
    # No normalisation: log_level is case-sensitive here, unlike the server (§4.6).
    problem = setting.validate(value) if setting.validate is not None else None
    if problem is None and setting.name in _NON_NEGATIVE:
        assert isinstance(value, int | float)
        if value < 0:
            problem = f"must be >= 0, got {value}"
    if problem is not None:
        report.error(node, f"{setting.name}: {problem}")
    return value


def validate(path: str, text: str) -> _Report:
    report = _Report(path)
    try:
        root = yaml.compose(text, Loader=_YamlLoader)
    except yaml.YAMLError as e:
        report.error(None, f"malformed YAML: {_yaml_problem(e)}")
        return report
    if root is None:
        report.error(None, "the document is empty")
        return report
    if not isinstance(root, yaml.MappingNode):
        report.error(root, "the top level must be a mapping")
        return report
    present: dict[str, yaml.Node] = {}
    for name, key_node, value_node in _pairs(report, root, ""):
        if name in SECTIONS and name not in BY_NAME:
            if isinstance(value_node, yaml.ScalarNode) and _construct(value_node) is None:
                present[name] = value_node
                continue
            if not isinstance(value_node, yaml.MappingNode):
                report.error(value_node, f"{name}: expected a mapping")
                continue
            present[name] = value_node
            for sub_name, sub_key_node, sub_value_node in _pairs(report, value_node, name + "."):
                setting = BY_NAME.get(sub_name)
                if setting is None:
                    report.warning(sub_key_node, f"unknown key {sub_name}")
                    continue
                present[sub_name] = sub_value_node
                _check_value(report, setting, sub_value_node)
        elif name in BY_NAME:
            present[name] = value_node
            _check_value(report, BY_NAME[name], value_node)
        else:
            report.warning(key_node, f"unknown key {name}")

    for name in _REQUIRED_SECRETS:
        node = present.get(name)
        if node is None or (isinstance(node, yaml.ScalarNode) and node.value == ""):
            # Upstream calls this an error; jay starts without it, taking the value from
            # JAY_* or generating it into <data_dir>/secrets.json, so it is a warning here.
            report.warning(
                node,
                f"{name} is not set: jay takes it from {BY_NAME[name].env_var} or from "
                "<data_dir>/secrets.json (generated on first start)",
            )

    seed = present.get("seed_token")
    if isinstance(seed, yaml.MappingNode):
        given = [field for field in _SEED_FIELDS if f"seed_token.{field}" in present]
        if given and len(given) != len(_SEED_FIELDS):
            missing = [field for field in _SEED_FIELDS if field not in given]
            report.error(
                seed,
                "seed_token: account, id and secret must be given together or not at all; "
                f"missing: {', '.join(missing)}",
            )
    return report


# --- main -----------------------------------------------------------------------------------


def run(argv: Sequence[str], *, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]) -> int:
    """The tool with its streams as parameters; the exit status. ``environ`` is unused on
    purpose: jay-config never resolves ``${VAR}``."""
    del environ
    if not argv:
        stderr.write(USAGE)
        return 1
    command, rest = argv[0], argv[1:]
    if command in ("help", "-h", "--help") or any(a in ("-h", "--help") for a in rest):
        stdout.write(USAGE)
        return 0
    warn = _Warn(stderr)
    try:
        if command not in ("yaml-to-env", "env-to-yaml", "validate"):
            raise _Failure(f"unknown command {command!r}")
        args = _parse_flags(command, rest)
        text = _read_input(args.input)
        if command == "yaml-to-env":
            _write_output(args.output, yaml_to_env(args.input, text, warn), stdout)
            return 0
        if command == "env-to-yaml":
            _write_output(args.output, env_to_yaml(args.input, text, warn), stdout)
            return 0
        report = validate(args.input, text)
    except _Failure as e:
        stderr.write(f"{PROG}: error: {e}\n")
        stderr.write(f"Run '{PROG} help' for usage.\n")
        return 1
    for message in report.warnings:
        stderr.write(f"warning: {message}\n")
    for message in report.errors:
        stderr.write(f"error: {message}\n")
    if report.errors:
        return 1
    stdout.write(f"OK: {args.input} is valid\n")
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:], stdout=sys.stdout, stderr=sys.stderr, environ=os.environ))
