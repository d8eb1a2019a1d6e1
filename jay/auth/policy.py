"""Who may do what: token scopes, bucket ownership and bucket policies. Pure functions.

Decision for a request on a bucket (JAY_SPEC §3.7–3.9 with jay's fixes, §8.2 items 11–13):
no matching deny statement, and either (the caller's account owns the bucket and its token scope
permits the action) or a matching allow statement. Deny always wins. ``*`` as a subject matches
everyone, anonymous callers included, which is how public access is granted; a public-read bucket
grants object:get and object:list to everyone in the same way (JAY_SPEC §3.9).

Two policy formats are accepted: Jay's own (``statements`` with ``actions``, ``prefixes``,
``subjects``, ``conditions.ip_whitelist``) and the AWS IAM format that S3 tools write
(``Statement`` with ``Effect``, ``Principal``, ``Action``, ``Resource`` and ``IpAddress`` /
``NotIpAddress`` conditions on ``aws:SourceIp``), translated into the same statements. What the
AWS format can say that jay cannot enforce (other condition operators, ``NotAction``,
``NotPrincipal``, ``NotResource``) is refused with ``MalformedPolicy``, never ignored.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Policy:
    statements: tuple[Statement, ...]


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
    "s3:getobjectacl": (),
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


def _parse_aws_policy(doc: dict[str, Any], bucket: str | None) -> Policy:
    version = doc.get("version")
    if version is not None and version not in _POLICY_VERSIONS:
        raise MalformedPolicy(f"Unsupported policy version: {version}")
    raw_statements = doc["statement"]
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
        conditions = raw.get("condition")
        if conditions is not None:
            if not isinstance(conditions, dict):
                raise MalformedPolicy("Condition must be a JSON object")
            for operator, value in conditions.items():
                if operator.lower() == "ipaddress":
                    whitelist = _aws_networks(value, operator)
                elif operator.lower() == "notipaddress":
                    blacklist = _aws_networks(value, operator)
                else:
                    raise MalformedPolicy(f"Condition operator {operator} is not supported")
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
            )
        )
    return Policy(tuple(statements))


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
    return True


def decide(
    *,
    token: TokenRecord | None,
    account_id: str,
    action: str,
    bucket: BucketInfo,
    key: str,
    client_ip: str,
) -> Decision:
    """The access decision for one request on an existing bucket."""
    token_id = token.token_id if token is not None else ""
    policy: Policy | None = None
    if bucket.policy_json:
        policy = _cached_policy(bucket.policy_json)
        if policy is None:
            return _UNREADABLE_POLICY
    if policy is not None:
        for st in policy.statements:
            if st.effect == "deny" and statement_matches(
                st, token_id, action, key, client_ip, account_id=account_id, bucket=bucket.name
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
                st, token_id, action, key, client_ip, account_id=account_id, bucket=bucket.name
            ):
                return _POLICY_ALLOWS
    if bucket.configs:
        stored_acl = bucket.config(BUCKET_CONFIG_ACL)
        if (
            stored_acl is not None
            and (token is None or scope_allows(token, action, bucket.name, key))
            and acl.bucket_allows(
                public_access.effective_acl(stored_acl, block),
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
