"""Who may do what: token scopes, bucket ownership and bucket policies. Pure functions.

Decision for a request on a bucket (JAY_SPEC §3.7–3.9 with jay's fixes, §8.2 items 11–13):
no matching deny statement, and either (the caller's account owns the bucket and its token scope
permits the action) or a matching allow statement. Deny always wins. ``*`` as a subject matches
everyone, anonymous callers included, which is how public access is granted; a public-read bucket
grants object:get and object:list to everyone in the same way (JAY_SPEC §3.9).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jay.errors import MalformedPolicy
from jay.storage.api import BucketInfo, TokenRecord

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
    subjects: frozenset[str]
    ip_whitelist: tuple[IPNetwork, ...] | None  # None: no condition


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
_UNREADABLE_POLICY = Decision(False, "bucket policy is unreadable (fail closed)")
_AUTHENTICATION_REQUIRED = Decision(False, "authentication required")
_ACCESS_DENIED = Decision(False, "access denied")


def scope_allows(token: TokenRecord, action: str, bucket: str, key: str) -> bool:
    """The token's own limits (JAY_SPEC §3.7): action list, bucket scope, prefix scope."""
    if WILDCARD not in token.allowed_actions and action not in token.allowed_actions:
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


def parse_policy(text: str) -> Policy:
    """Validate Jay's policy JSON; MalformedPolicy says what is wrong."""
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
    raw_statements = doc.get("statements")
    if not isinstance(raw_statements, list) or not raw_statements:
        raise MalformedPolicy("A policy needs a non-empty 'statements' list")
    statements = []
    for raw in raw_statements:
        if not isinstance(raw, dict):
            raise MalformedPolicy("Each statement must be a JSON object")
        raw = _lower_keys(raw)
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


def statement_matches(st: Statement, token_id: str, action: str, key: str, client_ip: str) -> bool:
    if WILDCARD not in st.subjects and (not token_id or token_id not in st.subjects):
        return False
    if WILDCARD not in st.actions and action not in st.actions:
        return False
    if st.prefixes and not any(key.startswith(p) for p in st.prefixes):
        return False
    if st.ip_whitelist is not None and not _ip_in(client_ip, st.ip_whitelist):
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
            if st.effect == "deny" and statement_matches(st, token_id, action, key, client_ip):
                return _POLICY_DENIES
    if (
        token is not None
        and account_id == bucket.owner_account_id
        and scope_allows(token, action, bucket.name, key)
    ):
        return _OWNER
    if policy is not None:
        for st in policy.statements:
            if st.effect == "allow" and statement_matches(st, token_id, action, key, client_ip):
                return _POLICY_ALLOWS
    if bucket.visibility == "public-read" and action in PUBLIC_READ_ACTIONS:
        # Like a "*" subject: public means everyone, so a caller who happens to sign its requests
        # is not refused what an anonymous one may do.
        return _PUBLIC_READ
    if token is None:
        return _AUTHENTICATION_REQUIRED
    return _ACCESS_DENIED
