"""Who may do what: token scopes, bucket ownership and bucket policies. Pure functions.

Decision for a request on a bucket (JAY_SPEC §3.7–3.9 with jay's fixes, §8.2 items 11–13):
no matching deny statement, and either (the caller's account owns the bucket and its token scope
permits the action) or a matching allow statement. Deny always wins. ``*`` as a subject matches
everyone, anonymous callers included, which is how public access is granted; a public-read bucket
grants object:get and object:list to everyone in the same way (JAY_SPEC §3.9).

Two policy formats are accepted: Jay's own (``statements`` with ``actions``, ``prefixes``,
``subjects``, ``conditions.ip_whitelist``) and the AWS IAM format that S3 tools write
(``Statement`` with ``Effect``, ``Principal``, ``Action``, ``Resource`` and ``Condition``),
translated into the same statements. AWS-format conditions use the IAM condition operators
(String*, Numeric*, Date*, Bool, IpAddress, Null, the ``ForAnyValue:`` / ``ForAllValues:``
prefixes and the ``IfExists`` suffix) over the keys in ``CONDITION_KEYS``; their values come per
request in a ``ConditionContext`` that the caller builds only when a policy's conditions need it.
What the AWS format can say that jay cannot enforce (other operators or keys, ``NotAction``,
``NotPrincipal``, ``NotResource``) is refused with ``MalformedPolicy``, never ignored.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

from jay.auth import acl, public_access
from jay.errors import MalformedPolicy
from jay.storage.api import BUCKET_CONFIG_ACL, BucketInfo, TokenRecord

ACTIONS = frozenset(
    {
        "bucket:list",
        "bucket:read-meta",
        "bucket:write-meta",
        "object:get",
        "object:put",
        "object:delete",
        "object:list",
        "multipart:create",
        "multipart:upload-part",
        "multipart:complete",
        "multipart:abort",
    }
)
WILDCARD = "*"
# Finer actions for operations S3 authorizes apart from the object or bucket itself (tagging),
# each inside a token action: a token's scope or a Jay-format statement naming the parent
# covers it, while an AWS-format statement must name the S3 action itself (s3:GetObject does
# not grant GetObjectTagging on S3, nor s3:GetObjectTagging the object's bytes). Not token
# actions of their own: ``ACTIONS`` and the admin API do not know them.
SUB_ACTIONS = {
    "object:get-tagging": "object:get",
    "object:put-tagging": "object:put",
    "object:delete-tagging": "object:put",
    "bucket:get-tagging": "bucket:read-meta",
    "bucket:put-tagging": "bucket:write-meta",
    # Block Public Access and the policy status: owner only (see jay.s3.app), but a policy's
    # deny of s3:GetBucketPublicAccessBlock & co. applies to the owner too, as on S3.
    "bucket:get-public-access-block": "bucket:read-meta",
    "bucket:put-public-access-block": "bucket:write-meta",
    "bucket:get-policy-status": "bucket:read-meta",
    # Default encryption: s3:GetEncryptionConfiguration / s3:PutEncryptionConfiguration.
    "bucket:get-encryption": "bucket:read-meta",
    "bucket:put-encryption": "bucket:write-meta",
    "bucket:get-ownership-controls": "bucket:read-meta",
    "bucket:put-ownership-controls": "bucket:write-meta",
    # An object's ACL (GetObjectAcl / PutObjectAcl): s3:GetObject does not grant it on S3.
    "object:get-acl": "object:get",
    "object:put-acl": "object:put",
    # Object Lock. Bypassing GOVERNANCE retention lets a version be deleted for good or its
    # retention shortened: it sits inside object:delete.
    "object:get-retention": "object:get",
    "object:put-retention": "object:put",
    "object:get-legal-hold": "object:get",
    "object:put-legal-hold": "object:put",
    "object:bypass-governance-retention": "object:delete",
    "bucket:get-object-lock": "bucket:read-meta",
    "bucket:put-object-lock": "bucket:write-meta",
}
# Actions everyone (anonymous callers too) gets on a public-read bucket (JAY_SPEC §3.9).
PUBLIC_READ_ACTIONS = frozenset({"object:get", "object:list"})
# Policies are small JSON documents; a cap keeps a stored policy from costing much per request.
MAX_POLICY_BYTES = 20 * 1024

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Statement:
    effect: str  # "allow" | "deny"
    actions: frozenset[str]
    prefixes: tuple[str, ...]
    subjects: frozenset[str]  # token ids, or "*"
    ip_whitelist: tuple[IPNetwork, ...] | None  # None: no condition
    # AWS-format statements only: ``Resource`` patterns over "bucket" (bucket-level actions)
    # and "bucket/key" (object actions), in place of ``prefixes``; principals that name
    # accounts; ``NotIpAddress``.
    resources: tuple[re.Pattern[str], ...] | None = None
    accounts: frozenset[str] = frozenset()
    ip_blacklist: tuple[IPNetwork, ...] | None = None
    # AWS-format ``Condition`` entries other than a plain IpAddress / NotIpAddress on
    # aws:SourceIp (those stay in ip_whitelist / ip_blacklist): all must hold.
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    statements: tuple[Statement, ...]
    # Context keys the statements' conditions read, besides aws:SourceIp (which decide() takes
    # as ``client_ip``): empty when no ConditionContext is needed at all.
    condition_keys: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str


# Decisions are immutable; the common ones are built once rather than per request.
_OWNER = Decision(True, "owner")
_POLICY_ALLOWS = Decision(True, "allowed by bucket policy")
_POLICY_DENIES = Decision(False, "denied by bucket policy")
_PUBLIC_READ = Decision(True, "public-read bucket")
_ACL_ALLOWS = Decision(True, "granted by the bucket ACL")
_UNREADABLE_POLICY = Decision(False, "bucket policy is unreadable (fail closed)")
_AUTHENTICATION_REQUIRED = Decision(False, "authentication required")
_ACCESS_DENIED = Decision(False, "access denied")


def denied_by_policy(decision: Decision) -> bool:
    """A policy's deny statement decided: no grant (an ACL) can override it."""
    return decision is _POLICY_DENIES or decision is _UNREADABLE_POLICY


def scope_allows(token: TokenRecord, action: str, bucket: str, key: str) -> bool:
    """The token's own limits (JAY_SPEC §3.7): action list, bucket scope, prefix scope."""
    allowed = token.allowed_actions
    if WILDCARD not in allowed and action not in allowed and SUB_ACTIONS.get(action) not in allowed:
        return False
    if token.bucket_scope and bucket not in token.bucket_scope:
        return False
    if token.prefix_scope and key and not any(key.startswith(p) for p in token.prefix_scope):
        return False
    return True


def list_prefix_allowed(token: TokenRecord | None, prefix: str) -> bool:
    """A prefix-scoped token may list only under its prefixes (§8.2 item 12)."""
    if token is None or not token.prefix_scope:
        return True
    return any(prefix.startswith(p) for p in token.prefix_scope)


def _lower_keys(obj: dict[str, Any]) -> dict[str, Any]:
    # Upstream's Go decoder matches field names case-insensitively.
    return {str(k).lower(): v for k, v in obj.items()}


def _str_list(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedPolicy(f"'{field}' must be a list of strings")
    return tuple(value)


def _statement_objects(raw: Any, missing: str) -> list[dict[str, Any]]:
    """The statements of either format, each a JSON object with lower-cased field names."""
    if not isinstance(raw, list) or not raw:
        raise MalformedPolicy(missing)
    if not all(isinstance(item, dict) for item in raw):
        raise MalformedPolicy("Each statement must be a JSON object")
    return [_lower_keys(item) for item in raw]


def parse_policy(text: str, bucket: str | None = None) -> Policy:
    """Validate a policy (Jay's JSON or the AWS format); MalformedPolicy says what is wrong.
    With ``bucket``, AWS-format resources must name that bucket (S3's check on PUT)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise MalformedPolicy(f"Policies are limited to {MAX_POLICY_BYTES} bytes")
    try:
        doc = json.loads(text)
    except RecursionError:
        raise MalformedPolicy("Policies must be valid JSON: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, or an integer literal past Python's digit limit
        detail = e.msg if isinstance(e, json.JSONDecodeError) else "invalid number"
        raise MalformedPolicy(f"Policies must be valid JSON: {detail}") from None
    if not isinstance(doc, dict):
        raise MalformedPolicy("A policy must be a JSON object")
    doc = _lower_keys(doc)
    if "statement" in doc:
        return _parse_aws_policy(doc, bucket)
    statements = []
    for raw in _statement_objects(
        doc.get("statements"), "A policy needs a non-empty 'statements' list"
    ):
        effect = str(raw.get("effect", "")).lower()
        if effect not in ("allow", "deny"):
            raise MalformedPolicy("'effect' must be 'allow' or 'deny'")
        actions = _str_list(raw.get("actions"), "actions")
        if not actions:
            raise MalformedPolicy("Each statement needs at least one action")
        unknown = [a for a in actions if a != WILDCARD and a not in ACTIONS]
        if unknown:
            raise MalformedPolicy(f"Unknown action(s): {', '.join(sorted(unknown))}")
        subjects = _str_list(raw.get("subjects"), "subjects")
        if not subjects:
            raise MalformedPolicy("Each statement needs at least one subject ('*' for anyone)")
        networks: tuple[IPNetwork, ...] | None = None
        conditions = raw.get("conditions")
        if conditions is not None:
            if not isinstance(conditions, dict):
                raise MalformedPolicy("'conditions' must be a JSON object")
            cidrs = _str_list(_lower_keys(conditions).get("ip_whitelist"), "ip_whitelist")
            parsed = []
            for cidr in cidrs:
                try:
                    parsed.append(ipaddress.ip_network(cidr, strict=False))
                except ValueError:
                    raise MalformedPolicy(f"Invalid CIDR in ip_whitelist: {cidr!r}") from None
            networks = tuple(parsed) if parsed else None
        statements.append(
            Statement(
                effect=effect,
                actions=frozenset(actions),
                prefixes=_str_list(raw.get("prefixes"), "prefixes"),
                subjects=frozenset(subjects),
                ip_whitelist=networks,
            )
        )
    return Policy(tuple(statements))


# --- the AWS policy format -------------------------------------------------------------------

_ARN_PREFIX = "arn:aws:s3:::"
# S3 actions → jay's actions. s3:PutObject covers the multipart steps, as on S3; s3:ListBucket
# covers HeadBucket (S3 checks ListBucket for it) and the bucket's other read-only metadata.
# Actions for features jay does not have grant or deny nothing here.
_AWS_ACTIONS: dict[str, tuple[str, ...]] = {
    "s3:getobject": ("object:get",),
    "s3:putobject": (
        "object:put",
        "multipart:create",
        "multipart:upload-part",
        "multipart:complete",
    ),
    "s3:deleteobject": ("object:delete",),
    "s3:abortmultipartupload": ("multipart:abort",),
    "s3:listbucket": ("object:list", "bucket:read-meta"),
    "s3:getbucketlocation": ("bucket:read-meta",),
    "s3:deletebucket": ("bucket:write-meta",),
    "s3:listmultipartuploadparts": (),
    "s3:listbucketmultipartuploads": (),
    "s3:getobjectacl": ("object:get-acl",),
    "s3:putobjectacl": ("object:put-acl",),
    "s3:getbucketacl": (),
    "s3:getbucketpolicy": (),
    "s3:putbucketpolicy": (),
    "s3:deletebucketpolicy": (),
    # Tagging: exact, see SUB_ACTIONS. S3 authorizes DeleteBucketTagging as s3:PutBucketTagging.
    "s3:getobjecttagging": ("object:get-tagging",),
    "s3:putobjecttagging": ("object:put-tagging",),
    "s3:deleteobjecttagging": ("object:delete-tagging",),
    "s3:getbuckettagging": ("bucket:get-tagging",),
    "s3:putbuckettagging": ("bucket:put-tagging",),
    # Lifecycle rules delete objects: like the policy, only the bucket's owner manages them.
    "s3:getlifecycleconfiguration": (),
    "s3:putlifecycleconfiguration": (),
    # S3 authorizes DeletePublicAccessBlock as s3:PutBucketPublicAccessBlock.
    "s3:getbucketpublicaccessblock": ("bucket:get-public-access-block",),
    "s3:putbucketpublicaccessblock": ("bucket:put-public-access-block",),
    "s3:getbucketpolicystatus": ("bucket:get-policy-status",),
    # S3 authorizes DeleteBucketEncryption as s3:PutEncryptionConfiguration.
    "s3:getencryptionconfiguration": ("bucket:get-encryption",),
    "s3:putencryptionconfiguration": ("bucket:put-encryption",),
    # S3 authorizes DeleteBucketOwnershipControls as s3:PutBucketOwnershipControls.
    "s3:getbucketownershipcontrols": ("bucket:get-ownership-controls",),
    "s3:putbucketownershipcontrols": ("bucket:put-ownership-controls",),
    # Object Lock.
    "s3:getobjectretention": ("object:get-retention",),
    "s3:putobjectretention": ("object:put-retention",),
    "s3:getobjectlegalhold": ("object:get-legal-hold",),
    "s3:putobjectlegalhold": ("object:put-legal-hold",),
    "s3:bypassgovernanceretention": ("object:bypass-governance-retention",),
    "s3:getbucketobjectlockconfiguration": ("bucket:get-object-lock",),
    "s3:putbucketobjectlockconfiguration": ("bucket:put-object-lock",),
}
# Jay actions whose resource is the bucket itself rather than one of its keys.
_BUCKET_LEVEL_ACTIONS = frozenset(
    {
        "object:list",
        "bucket:read-meta",
        "bucket:write-meta",
        "bucket:get-tagging",
        "bucket:put-tagging",
        "bucket:get-public-access-block",
        "bucket:put-public-access-block",
        "bucket:get-policy-status",
        "bucket:get-encryption",
        "bucket:put-encryption",
        "bucket:get-ownership-controls",
        "bucket:put-ownership-controls",
        "bucket:get-object-lock",
        "bucket:put-object-lock",
    }
)
_POLICY_VERSIONS = ("2012-10-17", "2008-10-17")


def _one_or_many(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise MalformedPolicy(f"'{field}' must be a string or a non-empty list of strings")


def _aws_actions(value: Any) -> frozenset[str]:
    actions: set[str] = set()
    for name in _one_or_many(value, "Action"):
        lowered = name.lower()
        if lowered in ("*", "s3:*"):
            return frozenset({WILDCARD})
        if not lowered.startswith("s3:"):
            raise MalformedPolicy(f"Policy has an invalid action: {name}")
        matched = [v for k, v in _AWS_ACTIONS.items() if fnmatch.fnmatchcase(k, lowered)]
        for jay_actions in matched:
            actions.update(jay_actions)
    return frozenset(actions)


def _aws_principals(value: Any) -> tuple[frozenset[str], frozenset[str]]:
    """(token ids or "*", account ids) named by ``Principal``."""
    if value == "*":
        return frozenset({WILDCARD}), frozenset()
    if not isinstance(value, dict) or not value:
        raise MalformedPolicy("Invalid principal in policy")
    subjects: set[str] = set()
    accounts: set[str] = set()
    for kind, names in value.items():
        if str(kind).lower() not in ("aws", "canonicaluser"):
            raise MalformedPolicy(f"Unsupported principal type: {kind}")
        for name in _one_or_many(names, "Principal"):
            if name == "*":
                subjects.add(WILDCARD)
            elif name.startswith("arn:aws:iam::"):
                # arn:aws:iam::<account>:root | :user/<name>: the account, and the name as a
                # token id (jay's callers are tokens of accounts).
                account, _, rest = name[len("arn:aws:iam::") :].partition(":")
                accounts.add(account)
                if rest.startswith("user/") and rest[5:]:
                    subjects.add(rest[5:])
            else:
                accounts.add(name)
                subjects.add(name)
    return frozenset(subjects), frozenset(accounts)


def _aws_resources(value: Any, bucket: str | None) -> tuple[re.Pattern[str], ...]:
    patterns = []
    for resource in _one_or_many(value, "Resource"):
        if not resource.startswith(_ARN_PREFIX) or len(resource) == len(_ARN_PREFIX):
            raise MalformedPolicy(f"Policy has invalid resource: {resource}")
        path = resource[len(_ARN_PREFIX) :]
        if bucket is not None and not fnmatch.fnmatchcase(bucket, path.partition("/")[0]):
            raise MalformedPolicy(f"Policy has invalid resource: {resource}")
        regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in path)
        patterns.append(re.compile(regex, re.DOTALL))
    return tuple(patterns)


def _aws_networks(value: Any, operator: str) -> tuple[IPNetwork, ...]:
    if not isinstance(value, dict) or not value:
        raise MalformedPolicy(f"Invalid {operator} condition")
    networks = []
    for key, cidrs in value.items():
        if str(key).lower() != "aws:sourceip":
            raise MalformedPolicy(f"Condition key {key} is not supported with {operator}")
        for cidr in _one_or_many(cidrs, "aws:SourceIp"):
            try:
                networks.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                raise MalformedPolicy(f"Invalid IP address in policy: {cidr!r}") from None
    return tuple(networks)


# --- AWS-format conditions ---------------------------------------------------------------------
#
# AWS semantics (IAM "Condition operators", "Conditions with multiple context keys or values"):
# operators and the keys inside one operator are ANDed; a key's policy values are ORed (NORed for
# a negated operator). A key missing from the request makes a condition false, or true for a
# negated operator; ``...IfExists`` makes it true and ``Null`` tests exactly that. For keys with
# several request values (s3:RequestObjectTagKeys), ``ForAnyValue:`` needs one request value to
# match (false without values) and ``ForAllValues:`` every one (true without values).

# Context keys jay can supply (lower case, as AWS compares key names case-insensitively), and
# key prefixes whose suffix is a tag key (case-sensitive, as tag keys are).
CONDITION_KEYS = frozenset(
    {
        "aws:sourceip",
        "aws:securetransport",
        "aws:currenttime",
        "aws:epochtime",
        "aws:useragent",
        "aws:referer",
        # jay's callers are tokens of accounts: the account, and the token id, which is also the
        # name a Principal ``arn:aws:iam::<account>:user/<name>`` matches.
        "aws:principalaccount",
        "aws:username",
        "aws:userid",
        "s3:prefix",
        "s3:delimiter",
        "s3:max-keys",
        "s3:x-amz-acl",
        "s3:x-amz-copy-source",
        "s3:x-amz-metadata-directive",
        "s3:x-amz-server-side-encryption",
        "s3:x-amz-server-side-encryption-customer-algorithm",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
        "s3:x-amz-content-sha256",
        "s3:x-amz-grant-read",
        "s3:x-amz-grant-write",
        "s3:x-amz-grant-read-acp",
        "s3:x-amz-grant-write-acp",
        "s3:x-amz-grant-full-control",
        "s3:signatureversion",
        "s3:authtype",
        "s3:requestobjecttagkeys",
    }
)
EXISTING_OBJECT_TAG = "s3:existingobjecttag/"
REQUEST_OBJECT_TAG = "s3:requestobjecttag/"
_TAG_KEY_PREFIXES = (EXISTING_OBJECT_TAG, REQUEST_OBJECT_TAG)
# Context keys whose values the principal and the clock give (the access layer adds them).
PRINCIPAL_KEYS = frozenset({"aws:principalaccount", "aws:username", "aws:userid"})
TIME_KEYS = frozenset({"aws:currenttime", "aws:epochtime"})
# Actions on an existing object whose requests carry its tags as s3:ExistingObjectTag/<key>
# (S3 gives them to GetObject, Get/PutObjectAcl and the object tagging actions).
EXISTING_TAG_ACTIONS = frozenset(
    {
        "object:get",
        "object:get-acl",
        "object:put-acl",
        "object:put-tagging",
        "object:get-tagging",
        "object:delete-tagging",
    }
)
_SOURCE_IP = "aws:sourceip"


@dataclass(frozen=True, slots=True)
class ConditionContext:
    """One request's condition values: normalised key (``normalize_condition_key``) → values.
    A key that is not here is absent from the request."""

    values: Mapping[str, tuple[str, ...]]


class ConditionSource(Protocol):
    """What a front end knows about a request, asked only when a policy needs some of it."""

    def condition_values(self, keys: frozenset[str]) -> Mapping[str, tuple[str, ...]]:
        """Values of those of ``keys`` (normalised) the request has; absent keys left out."""
        ...


@dataclass(frozen=True, slots=True)
class StaticConditions:
    """A ConditionSource over values known up front."""

    values: Mapping[str, tuple[str, ...]]

    def condition_values(self, keys: frozenset[str]) -> Mapping[str, tuple[str, ...]]:
        return self.values


@dataclass(frozen=True, slots=True)
class Condition:
    operator: str  # as written, for messages
    key: str  # normalised
    match: Callable[[str], bool]  # one request value against the policy's values (ORed)
    negated: bool = False
    if_exists: bool = False
    set_op: str = ""  # "" | "any" | "all"
    null: bool | None = None  # Null: the key must be absent (True) or present (False)


def normalize_condition_key(key: str) -> str:
    """Key names compare case-insensitively, the tag key after ``.../`` exactly."""
    lowered = key.lower()
    for prefix in _TAG_KEY_PREFIXES:
        if lowered.startswith(prefix):
            return prefix + key[len(prefix) :]
    return lowered


def _known_key(normalized: str) -> bool:
    if normalized in CONDITION_KEYS:
        return True
    return any(normalized.startswith(p) and len(normalized) > len(p) for p in _TAG_KEY_PREFIXES)


def _condition_strings(value: Any, key: str) -> tuple[str, ...]:
    """A key's policy values: a string, number or boolean, or a non-empty list of them."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise MalformedPolicy(f"Condition key {key} has no values")
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str):
            out.append(item)
        elif isinstance(item, int | float):
            out.append(str(item))
        else:
            raise MalformedPolicy(f"Invalid value for condition key {key}: {item!r}")
    return tuple(out)


def _wildcard_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """StringLike: ``*`` any run of characters, ``?`` one character, the rest literal."""
    alternatives = (
        "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in p)
        for p in patterns
    )
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.DOTALL)


def parse_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_date(text: str) -> float | None:
    """An ISO 8601 date or time (UTC unless it says otherwise) or epoch seconds → epoch seconds."""
    text = text.strip()
    if text and (text.isdigit() or (text[0] == "-" and text[1:].isdigit())):
        return float(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "equals": lambda a, b: a == b,
    "notequals": lambda a, b: a == b,  # negated: NOR over the policy's values
    "lessthan": lambda a, b: a < b,
    "lessthanequals": lambda a, b: a <= b,
    "greaterthan": lambda a, b: a > b,
    "greaterthanequals": lambda a, b: a >= b,
}


def _ordered_matcher(
    operator: str, key: str, values: tuple[str, ...], kind: str, compare: Callable[..., bool]
) -> Callable[[str], bool]:
    parse = parse_number if kind == "numeric" else parse_date
    bounds = []
    for value in values:
        bound = parse(value)
        if bound is None:
            raise MalformedPolicy(f"Invalid {kind} value for {operator} on {key}: {value!r}")
        bounds.append(bound)

    def match(request_value: str) -> bool:
        actual = parse(request_value)
        return actual is not None and any(compare(actual, b) for b in bounds)

    return match


def _ip_matcher(operator: str, values: tuple[str, ...]) -> Callable[[str], bool]:
    networks = []
    for cidr in values:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise MalformedPolicy(f"Invalid IP address in policy: {cidr!r}") from None
    found = tuple(networks)
    return lambda request_value: _ip_in(request_value, found)


def _matcher(
    operator: str, base: str, key: str, values: tuple[str, ...]
) -> tuple[Callable[[str], bool], bool]:
    """(matcher, negated) for an operator name without prefix or IfExists, lower case."""
    if base in ("stringequals", "stringnotequals"):
        exact = frozenset(values)
        return exact.__contains__, base == "stringnotequals"
    if base in ("stringequalsignorecase", "stringnotequalsignorecase"):
        folded = frozenset(v.casefold() for v in values)
        return (lambda v: v.casefold() in folded), base == "stringnotequalsignorecase"
    if base in ("stringlike", "stringnotlike"):
        pattern = _wildcard_regex(values)
        return (lambda v: pattern.fullmatch(v) is not None), base == "stringnotlike"
    for kind in ("numeric", "date"):
        if base.startswith(kind) and base[len(kind) :] in _COMPARISONS:
            comparison = base[len(kind) :]
            matcher = _ordered_matcher(operator, key, values, kind, _COMPARISONS[comparison])
            return matcher, comparison == "notequals"
    if base == "bool":
        wanted = set()
        for value in values:
            if value.lower() not in ("true", "false"):
                raise MalformedPolicy(f"Invalid boolean value for {operator} on {key}: {value!r}")
            wanted.add(value.lower())
        return (lambda v: v.lower() in wanted), False
    if base in ("ipaddress", "notipaddress"):
        if key != _SOURCE_IP:
            raise MalformedPolicy(f"Condition key {key} is not supported with {operator}")
        return _ip_matcher(operator, values), base == "notipaddress"
    raise MalformedPolicy(f"Condition operator {operator} is not supported")


def _parse_conditions(value: Any, *, variables: bool = True) -> tuple[Condition, ...]:
    """``variables``: the policy's version gives ``${...}`` its meaning of a policy variable,
    which jay does not substitute: such a value is refused rather than matched literally."""
    if not isinstance(value, dict):
        raise MalformedPolicy("Condition must be a JSON object")
    conditions = []
    for operator, block in value.items():
        operator = str(operator)
        if not isinstance(block, dict) or not block:
            raise MalformedPolicy(f"Invalid {operator} condition: it needs keys and values")
        name = operator.lower()
        set_op = ""
        for prefix, kind in (("foranyvalue:", "any"), ("forallvalues:", "all")):
            if name.startswith(prefix):
                set_op, name = kind, name[len(prefix) :]
        if_exists = name.endswith("ifexists") and name != "ifexists"
        if if_exists:
            name = name[: -len("ifexists")]
        for raw_key, raw_values in block.items():
            key = normalize_condition_key(str(raw_key))
            if not _known_key(key):
                raise MalformedPolicy(f"Policy has an unsupported condition key: {raw_key}")
            values = _condition_strings(raw_values, str(raw_key))
            if variables and any("${" in v for v in values):
                raise MalformedPolicy(f"Policy variables are not supported (in {raw_key})")
            if name == "null":
                if set_op or if_exists:
                    raise MalformedPolicy(f"Condition operator {operator} is not supported")
                if len(values) != 1 or values[0].lower() not in ("true", "false"):
                    raise MalformedPolicy(f"Null on {raw_key} takes true or false")
                conditions.append(Condition(operator, key, bool, null=values[0].lower() == "true"))
                continue
            match, negated = _matcher(operator, name, key, values)
            conditions.append(Condition(operator, key, match, negated, if_exists, set_op))
    return tuple(conditions)


def _condition_holds(cond: Condition, values: tuple[str, ...] | None) -> bool:
    if cond.null is not None:
        return (not values) == cond.null
    if not values:
        if cond.if_exists:
            return True
        if cond.set_op:
            return cond.set_op == "all"
        return cond.negated
    match = cond.match
    if cond.set_op == "all":
        return all(match(v) != cond.negated for v in values)
    if cond.set_op == "any" or not cond.negated:
        return any(match(v) != cond.negated for v in values)
    return not any(match(v) for v in values)  # a negated operator: no value may match


def conditions_hold(
    conditions: tuple[Condition, ...], context: ConditionContext | None, client_ip: str
) -> bool:
    """Whether every condition holds for the request (``client_ip`` is aws:SourceIp)."""
    known = context.values if context is not None else {}
    for cond in conditions:
        if cond.key == _SOURCE_IP:
            values: tuple[str, ...] | None = (client_ip,) if client_ip else None
        else:
            values = known.get(cond.key)
        if not _condition_holds(cond, values):
            return False
    return True


def _parse_aws_policy(doc: dict[str, Any], bucket: str | None) -> Policy:
    version = doc.get("version")
    if version is not None and version not in _POLICY_VERSIONS:
        raise MalformedPolicy(f"Unsupported policy version: {version}")
    raw_statements = doc["statement"]
    keys: set[str] = set()
    if isinstance(raw_statements, dict):  # a single statement may stand alone
        raw_statements = [raw_statements]
    statements = []
    for raw in _statement_objects(raw_statements, "A policy needs at least one statement"):
        for unsupported in ("notprincipal", "notaction", "notresource"):
            if unsupported in raw:
                raise MalformedPolicy(f"Policies with {unsupported} are not supported")
        effect = str(raw.get("effect", "")).lower()
        if effect not in ("allow", "deny"):
            raise MalformedPolicy("Effect must be Allow or Deny")
        for required in ("principal", "action", "resource"):
            if required not in raw:
                raise MalformedPolicy(f"Missing required field {required.capitalize()}")
        subjects, accounts = _aws_principals(raw["principal"])
        whitelist: tuple[IPNetwork, ...] | None = None
        blacklist: tuple[IPNetwork, ...] | None = None
        conditions: tuple[Condition, ...] = ()
        raw_conditions = raw.get("condition")
        if raw_conditions is not None:
            if not isinstance(raw_conditions, dict):
                raise MalformedPolicy("Condition must be a JSON object")
            general = {}
            for operator, value in raw_conditions.items():
                # A plain IpAddress / NotIpAddress on aws:SourceIp keeps its own fields.
                if operator.lower() == "ipaddress":
                    whitelist = _aws_networks(value, operator)
                elif operator.lower() == "notipaddress":
                    blacklist = _aws_networks(value, operator)
                else:
                    general[operator] = value
            conditions = _parse_conditions(general, variables=version == "2012-10-17")
            keys.update(c.key for c in conditions if c.key != _SOURCE_IP)
        statements.append(
            Statement(
                effect=effect,
                actions=_aws_actions(raw["action"]),
                prefixes=(),
                subjects=subjects,
                ip_whitelist=whitelist,
                resources=_aws_resources(raw["resource"], bucket),
                accounts=accounts,
                ip_blacklist=blacklist,
                conditions=conditions,
            )
        )
    return Policy(tuple(statements), frozenset(keys))


@lru_cache(maxsize=1024)
def _cached_policy(text: str) -> Policy | None:
    try:
        return parse_policy(text)
    except MalformedPolicy:
        return None


def _ip_in(client_ip: str, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in networks)


def statement_matches(
    st: Statement,
    token_id: str,
    action: str,
    key: str,
    client_ip: str,
    *,
    account_id: str = "",
    bucket: str = "",
    context: ConditionContext | None = None,
) -> bool:
    if (
        WILDCARD not in st.subjects
        and (not token_id or token_id not in st.subjects)
        and (not account_id or account_id not in st.accounts)
    ):
        return False
    if WILDCARD not in st.actions and action not in st.actions:
        # A Jay-format statement's action covers its finer actions (SUB_ACTIONS).
        if st.resources is not None or SUB_ACTIONS.get(action) not in st.actions:
            return False
    if st.resources is not None:
        target = bucket if action in _BUCKET_LEVEL_ACTIONS else bucket + "/" + key
        if not any(p.fullmatch(target) for p in st.resources):
            return False
    elif st.prefixes and not any(key.startswith(p) for p in st.prefixes):
        return False
    if st.ip_whitelist is not None and not _ip_in(client_ip, st.ip_whitelist):
        return False
    if st.ip_blacklist is not None and _ip_in(client_ip, st.ip_blacklist):
        return False
    if st.conditions and not conditions_hold(st.conditions, context, client_ip):
        return False
    return True


def policy_condition_keys(policy_json: str) -> frozenset[str]:
    """The context keys a stored policy's conditions read (besides aws:SourceIp): a caller
    builds a ConditionContext only when this is not empty. Cached with the parsed policy."""
    policy = _cached_policy(policy_json)
    return policy.condition_keys if policy is not None else frozenset()


def decide(
    *,
    token: TokenRecord | None,
    account_id: str,
    action: str,
    bucket: BucketInfo,
    key: str,
    client_ip: str,
    context: ConditionContext | None = None,
) -> Decision:
    """The access decision for one request on an existing bucket. ``context`` holds the
    request's condition values when the bucket's policy has conditions that read them."""
    token_id = token.token_id if token is not None else ""
    policy: Policy | None = None
    if bucket.policy_json:
        policy = _cached_policy(bucket.policy_json)
        if policy is None:
            return _UNREADABLE_POLICY
    if policy is not None:
        for st in policy.statements:
            if st.effect == "deny" and statement_matches(
                st,
                token_id,
                action,
                key,
                client_ip,
                account_id=account_id,
                bucket=bucket.name,
                context=context,
            ):
                return _POLICY_DENIES
    if (
        token is not None
        and account_id == bucket.owner_account_id
        and scope_allows(token, action, bucket.name, key)
    ):
        return _OWNER
    # Block Public Access (jay.auth.public_access): only buckets that have the configuration
    # pay for it. RestrictPublicBuckets: a public policy serves only the owner's account.
    block = public_access.block_of(bucket) if bucket.configs else None
    is_restricted = block is not None and public_access.restricts(
        block,
        bucket,
        policy,
        is_owner_account=token is not None and account_id == bucket.owner_account_id,
    )
    if policy is not None and not is_restricted:
        for st in policy.statements:
            if st.effect == "allow" and statement_matches(
                st,
                token_id,
                action,
                key,
                client_ip,
                account_id=account_id,
                bucket=bucket.name,
                context=context,
            ):
                return _POLICY_ALLOWS
    if bucket.configs:
        stored_acl = bucket.config(BUCKET_CONFIG_ACL)
        if (
            stored_acl is not None
            and (token is None or scope_allows(token, action, bucket.name, key))
            and acl.bucket_allows(
                public_access.effective_acl(stored_acl, bucket),
                account_id if token is not None else None,
                action,
            )
        ):
            return _ACL_ALLOWS
    if bucket.visibility == "public-read" and action in PUBLIC_READ_ACTIONS and not is_restricted:
        # Like a "*" subject: public means everyone, so a caller who happens to sign its requests
        # is not refused what an anonymous one may do.
        return _PUBLIC_READ
    if token is None:
        return _AUTHENTICATION_REQUIRED
    return _ACCESS_DENIED
