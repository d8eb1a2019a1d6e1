"""Load the configuration: defaults → YAML file → environment → validation (JAY_SPEC §5.2).

The environment is a parameter, never ``os.environ`` read from here, so tests pass a dict and
nothing reads the process environment after startup. jay is stricter than upstream: every
invalid value stops startup with a :class:`~jay.errors.ConfigError` naming the key (and the env
var when the value came from one) and the rule, where upstream logs and keeps a default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import yaml
from twisted.logger import Logger

from jay.config.model import Config
from jay.config.schema import (
    BY_NAME,
    INT_MAX,
    INT_MIN,
    SECTIONS,
    SETTINGS,
    Setting,
    Value,
    describe,
    format_value,
)
from jay.errors import ConfigError

_log = Logger(namespace="jay.config")

REDACTED = "<redacted>"
CONFIG_FILE_ENV_VAR = "JAY_CONFIG_FILE"
# A config file is a few kilobytes; refuse to parse something absurd (a device, a wrong path).
MAX_CONFIG_FILE_BYTES = 1024 * 1024


def config_path_from(argv_value: str | None, environ: Mapping[str, str]) -> str | None:
    """The config file to read: the command-line flag, else ``JAY_CONFIG_FILE``, else none (§5.1)."""
    return argv_value or environ.get(CONFIG_FILE_ENV_VAR) or None


# --- ${VAR} interpolation (§5.3) ------------------------------------------------------------

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in one pass.

    A variable that is set wins even when empty (unlike POSIX shells); ``${NAME}`` of an unset
    variable is "". Substituted text is never scanned again, so there is no recursion, and
    anything not matching the pattern (``$NAME``, ``${1X}``) stays literal.
    """

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        return default if default is not None else ""

    return _REFERENCE.sub(substitute, text)


# --- YAML -----------------------------------------------------------------------------------


class _YamlLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no stubs here
    """SafeLoader resolving plain scalars the way upstream's YAML library does.

    PyYAML follows YAML 1.1, where ``yes``/``no``/``on``/``off`` are booleans, ``1:30`` is the
    integer 90 and ``2024-01-02`` a date. Go's yaml.v3 keeps all of those as strings when
    decoding into untyped values, so a ``region: no`` must stay the string "no" here too.
    Duplicate keys are an error, as in yaml.v3.
    """


_YamlLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag
        not in (
            "tag:yaml.org,2002:bool",
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
            "tag:yaml.org,2002:timestamp",
        )
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)$"),
    list("-+0123456789"),
)
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    assert isinstance(node, yaml.ScalarNode)
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    base = 10  # "010" is ten, not eight, as in YAML 1.2
    for prefix, prefix_base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if digits.startswith(prefix):
            digits, base = digits[2:], prefix_base
    try:
        return sign * int(digits, base)
    except ValueError:  # "0x_": the resolver allows underscores only
        raise yaml.constructor.ConstructorError(
            None, None, "malformed integer", node.start_mark
        ) from None


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Any, Any]:
    assert isinstance(node, yaml.MappingNode)
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool | None):
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be scalars", key_node.start_mark
            )
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"mapping key {key!r} already defined", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_YamlLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_YamlLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _read_yaml(path: str) -> dict[Any, Any]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_FILE_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"config file {path}: cannot read: {e.strerror or e}") from None
    if len(data) > MAX_CONFIG_FILE_BYTES:
        raise ConfigError(f"config file {path}: larger than {MAX_CONFIG_FILE_BYTES} bytes")
    try:
        document = yaml.load(data, Loader=_YamlLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path}: malformed YAML: {_yaml_problem(e)}") from None
    except RecursionError:
        raise ConfigError(f"config file {path}: malformed YAML: nested too deeply") from None
    if document is None:  # empty, or only comments: every key keeps its default
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"config file {path}: the top level must be a mapping, got {_type_name(document)}"
        )
    return document


def _yaml_problem(error: yaml.YAMLError) -> str:
    """The parser's complaint and position, without the snippet of the offending line that
    PyYAML's own message quotes: that line may hold a secret."""
    if not isinstance(error, yaml.MarkedYAMLError):
        return type(error).__name__
    parts = [p for p in (error.context, error.problem) if p]
    text = "; ".join(parts) or "syntax error"
    mark = error.problem_mark or error.context_mark
    if mark is not None:
        text += f" (line {mark.line + 1}, column {mark.column + 1})"
    return text


def _flatten(document: Mapping[Any, Any]) -> dict[str, object]:
    """Nested section mappings → dotted keys (§5.2). Values are left as parsed: only values of
    known keys are ever looked at, so aliases fanning out under unknown keys cost nothing."""
    flat: dict[str, object] = {}
    for key, value in document.items():
        name = str(key)
        if name in SECTIONS and name not in BY_NAME:
            if value is None:  # "scrub:" with every entry commented out
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{name}: expected a mapping, got {_type_name(value)}")
            for sub_key, sub_value in value.items():
                flat[f"{name}.{sub_key}"] = sub_value
        else:
            flat[name] = value
    return flat


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


# --- coercion -------------------------------------------------------------------------------


class _Invalid(Exception):
    """A value could not be used; the message says why. Wrapped into ConfigError by the caller."""


_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FLOAT_SPECIAL = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
# Go's strconv.ParseBool, which upstream applies to YAML strings for bool keys (§5.2).
_BOOL_TEXT = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
# Environment booleans are true only for these; any other non-empty value is false (§5.2).
_ENV_TRUE = frozenset(("1", "true", "TRUE", "True"))
_ENV_FALSE = frozenset(("0", "false", "FALSE", "False"))


def _check_int(number: int) -> int:
    if not INT_MIN <= number <= INT_MAX:
        raise _Invalid(f"out of the 64-bit integer range, got {number}")
    return number


def _int_from_text(text: str) -> int:
    if not _INT_TEXT.fullmatch(text):
        raise _Invalid(f"expected an integer, got {text!r}")
    return _check_int(int(text))


def _float_from_text(text: str) -> float:
    if not (_FLOAT_TEXT.fullmatch(text) or _FLOAT_SPECIAL.fullmatch(text)):
        raise _Invalid(f"expected a number, got {text!r}")
    return float(text)


def _list_from_text(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def coerce_yaml(setting: Setting, raw: object, environ: Mapping[str, str]) -> Value:
    """A YAML value → the key's type, per the rules of §5.2. String scalars (also inside a
    list) are interpolated first (§5.3), so ``"${RATE}"`` can feed a numeric key."""
    if isinstance(raw, str):
        raw = interpolate(raw, environ)
    elif isinstance(raw, list):
        raw = [interpolate(item, environ) if isinstance(item, str) else item for item in raw]
    kind = setting.type
    if kind == "str":
        if isinstance(raw, str):
            return raw
    elif kind == "int":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return _check_int(raw)
        if isinstance(raw, float):
            if not raw.is_integer():
                raise _Invalid(f"expected an integer, got {raw!r}")
            return _check_int(int(raw))
        if isinstance(raw, str):
            return _int_from_text(raw)
    elif kind == "float":
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str):
            return _float_from_text(raw)
    elif kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            if raw not in _BOOL_TEXT:
                raise _Invalid(f"expected a boolean (true or false), got {raw!r}")
            return _BOOL_TEXT[raw]
    elif kind == "list":
        if isinstance(raw, str):
            return _list_from_text(raw)
        if isinstance(raw, list):
            bad = [item for item in raw if not isinstance(item, str)]
            if bad:
                raise _Invalid(
                    f"expected a list of strings, got an item of type {_type_name(bad[0])}"
                )
            return tuple(item.strip() for item in raw)
    raise _Invalid(f"expected {_expected(kind)}, got {_type_name(raw)}")


def _expected(kind: str) -> str:
    return {
        "str": "string",
        "int": "an integer",
        "float": "a number",
        "bool": "a boolean",
        "list": "a list of strings",
    }[kind]


def parse_env(setting: Setting, text: str) -> Value:
    """A non-empty environment value → the key's type (§5.2). Environment values are never
    interpolated."""
    kind = setting.type
    if kind == "str":
        return text
    if kind == "int":
        return _int_from_text(text)
    if kind == "float":
        return _float_from_text(text)
    if kind == "bool":
        return text in _ENV_TRUE
    return _list_from_text(text)


# --- loading --------------------------------------------------------------------------------


def _where(setting: Setting, from_env: bool) -> str:
    return f"{setting.name} ({setting.env_var})" if from_env else setting.name


def _finish(setting: Setting, value: Value, from_env: bool) -> Value:
    """Normalize and validate one value; errors name the key and, for env values, the var."""
    if setting.normalize is not None:
        value = setting.normalize(value)
    if setting.validate is not None:
        problem = setting.validate(value)
        if problem is not None:
            raise ConfigError(
                f"{_where(setting, from_env)}: {problem}",
                setting=setting.name,
                env_var=setting.env_var if from_env else "",
            )
    return value


def _shown(setting: Setting, value: Value) -> str:
    return REDACTED if setting.is_secret else describe(value)


def load_config(
    path: str | None, environ: Mapping[str, str], *, log: Logger | None = None
) -> Config:
    """Build the validated :class:`Config` from the file at ``path`` (if any) and ``environ``."""
    log = log or _log
    values: dict[str, Value] = {s.name: s.default for s in SETTINGS}
    from_env: dict[str, bool] = dict.fromkeys(values, False)
    from_yaml: dict[str, Value] = {}

    if path is not None:
        flat = _flatten(_read_yaml(path))
        for name, raw in flat.items():
            setting = BY_NAME.get(name)
            if setting is None:
                log.warn("Ignoring unknown configuration key {key} in {path}", key=name, path=path)
                continue
            try:
                value = coerce_yaml(setting, raw, environ)
            except _Invalid as e:
                raise ConfigError(f"{setting.name}: {e}", setting=setting.name) from None
            values[name] = from_yaml[name] = _finish(setting, value, from_env=False)

    for setting in SETTINGS:
        text = environ.get(setting.env_var, "")
        if not text:  # set and non-empty overrides (§5.2)
            continue
        try:
            value = parse_env(setting, text)
        except _Invalid as e:
            raise ConfigError(
                f"{_where(setting, True)}: {e}", setting=setting.name, env_var=setting.env_var
            ) from None
        if setting.type == "bool" and text not in _ENV_TRUE | _ENV_FALSE:
            log.warn(
                "{env_var} is {text}, not one of 1, true, TRUE, True: {key} is false",
                env_var=setting.env_var,
                text=text,
                key=setting.name,
            )
        value = _finish(setting, value, from_env=True)
        if setting.name in from_yaml:
            _warn_conflict(log, setting, from_yaml[setting.name], value)
        values[setting.name] = value
        from_env[setting.name] = True

    _check_combinations(values, from_env)
    return build_config(values)


def _warn_conflict(log: Logger, setting: Setting, yaml_value: Value, env_value: Value) -> None:
    """§5.2 step 4, without upstream's gap of logging secrets in clear text (§8.2 item 16)."""
    yaml_text = format_value(yaml_value)
    if yaml_text == "" or yaml_text == format_value(env_value):
        return
    log.warn(
        "Configuration key {key} is set in the config file to {yaml_value} and overridden by "
        "environment variable {env_var} = {env_value}",
        key=setting.name,
        env_var=setting.env_var,
        yaml_value=_shown(setting, yaml_value),
        env_value=_shown(setting, env_value),
    )


def _check_combinations(values: Mapping[str, Value], from_env: Mapping[str, bool]) -> None:
    """Rules spanning several keys: seed token all-or-none (§5.4), TLS pair (§5.5)."""

    def named(names: list[str]) -> str:
        return ", ".join(_where(BY_NAME[n], from_env[n]) for n in names)

    seed = ["seed_token.account", "seed_token.id", "seed_token.secret"]
    seed_set = [n for n in seed if values[n] != ""]
    if seed_set and len(seed_set) != len(seed):
        missing = [n for n in seed if n not in seed_set]
        raise ConfigError(
            f"seed_token: account, id and secret must be all set or all empty; "
            f"set: {named(seed_set)}; missing: {named(missing)}",
            setting="seed_token",
        )
    tls = ["tls_cert", "tls_key"]
    tls_set = [n for n in tls if values[n] != ""]
    if len(tls_set) == 1:
        missing = [n for n in tls if n not in tls_set]
        raise ConfigError(
            f"tls_cert/tls_key: TLS needs both a certificate and a key; "
            f"set: {named(tls_set)}; missing: {named(missing)}",
            setting="tls",
        )
    if values["native_tls"] is True and not tls_set:
        raise ConfigError(
            f"{named(['native_tls'])}: native TLS needs tls_cert and tls_key",
            setting="native_tls",
        )


def build_config(values: Mapping[str, Value]) -> Config:
    """Place validated values (by dotted key name) into the frozen model."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, object]] = {}
    for setting in SETTINGS:
        value = values.get(setting.name, setting.default)
        head, _, attr = setting.field.partition(".")
        if attr:
            nested.setdefault(head, {})[attr] = value
        else:
            top[head] = value
    rate = nested["rate_limit"]
    burst = rate["burst"]
    assert isinstance(burst, int) and isinstance(rate["rate"], float)
    if burst <= 0:  # §3.11: rate_burst <= 0 means 2 x rate, at least 1
        rate["burst"] = max(1, int(2 * rate["rate"]))
    base = Config()
    for head, attrs in nested.items():
        top[head] = replace(getattr(base, head), **attrs)
    return replace(base, **top)
