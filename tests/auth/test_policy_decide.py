"""decide() against a small reference evaluator written from the rules, over generated cases.

The rule (JAY_SPEC §3.7–3.9 with §8.2 items 11–12): no matching deny statement, and either the
caller's account owns the bucket and its token scope permits the action, or an allow statement
matches, or the bucket is public-read and the action is object:get/object:list. A statement
matches on subject ("*" is everyone, anonymous included; anonymous matches nothing else), action
("*" or exact), prefix (none listed, or the key starts with one) and IP (no CIDRs, or the client
address lies in one; IPv4-mapped IPv6 counts as IPv4). A stored policy that does not parse
refuses everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from jay.auth.policy import decide
from jay.storage.api import BucketInfo, TokenRecord

ACTIONS = [
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
]
KEYS = ["", "a", "a/b", "ab", "public/x", "public", "b/c"]
PREFIXES = ["", "a", "a/", "public/", "b"]
SUBJECTS = ["*", "t1", "t2", ""]
BUCKETS = ["bkt", "other"]
CIDRS = ["127.0.0.0/8", "10.0.0.0/8", "::1/128", "2001:db8::/32"]
IPS = ["127.0.0.1", "10.1.2.3", "192.168.1.1", "::1", "2001:db8::5", "::ffff:10.0.0.9", ""]
# Written out by hand so the reference does not share ipaddress logic with the code under test.
IN_CIDR = {
    ("127.0.0.1", "127.0.0.0/8"),
    ("10.1.2.3", "10.0.0.0/8"),
    ("::ffff:10.0.0.9", "10.0.0.0/8"),
    ("::1", "::1/128"),
    ("2001:db8::5", "2001:db8::/32"),
}


@dataclass(frozen=True)
class Stmt:
    effect: str
    actions: tuple[str, ...]
    prefixes: tuple[str, ...]
    subjects: tuple[str, ...]
    cidrs: tuple[str, ...] | None  # None: no "conditions" field at all
    effect_spelling: str  # how the JSON spells the effect value ("Deny", "ALLOW" …)
    capitalised_fields: bool


@dataclass(frozen=True)
class Case:
    token: TokenRecord | None
    caller_account: str
    owner: str
    visibility: str
    statements: tuple[Stmt, ...] | None  # None: no policy
    broken_policy: bool
    action: str
    key: str
    client_ip: str


def _subset(items: list[str]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(items), max_size=3, unique=True).map(tuple)


statements = st.builds(
    lambda effect, actions, prefixes, subjects, cidrs, upper, caps: Stmt(
        effect,
        actions,
        prefixes,
        subjects,
        cidrs,
        effect.upper() if upper else effect.capitalize(),
        caps,
    ),
    st.sampled_from(["allow", "deny"]),
    st.lists(st.sampled_from(ACTIONS + ["*"]), min_size=1, max_size=3, unique=True).map(tuple),
    _subset(PREFIXES),
    st.lists(st.sampled_from(SUBJECTS), min_size=1, max_size=3, unique=True).map(tuple),
    st.none() | _subset(CIDRS),
    st.booleans(),
    st.booleans(),
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    anonymous = draw(st.booleans())
    token = None
    caller_account = ""
    if not anonymous:
        caller_account = draw(st.sampled_from(["acct1", "acct2"]))
        token = TokenRecord(
            token_id=draw(st.sampled_from(["t1", "t2"])),
            account_id=caller_account,
            name="",
            secret_hash="",
            secret_key="",
            allowed_actions=draw(_subset(ACTIONS + ["*"])),
            bucket_scope=draw(_subset(BUCKETS)),
            prefix_scope=draw(_subset(PREFIXES)),
            created_at=0.0,
        )
    has_policy = draw(st.booleans())
    return Case(
        token=token,
        caller_account=caller_account,
        owner=draw(st.sampled_from(["acct1", "acct2"])),
        visibility=draw(st.sampled_from(["private", "public-read"])),
        statements=tuple(draw(st.lists(statements, min_size=1, max_size=4)))
        if has_policy
        else None,
        broken_policy=has_policy and draw(st.integers(0, 15)) == 0,
        action=draw(st.sampled_from(ACTIONS)),
        key=draw(st.sampled_from(KEYS)),
        client_ip=draw(st.sampled_from(IPS)),
    )


def policy_json(case: Case) -> str | None:
    if case.statements is None:
        return None
    if case.broken_policy:
        return '{"statements": ['
    docs = []
    for s in case.statements:
        name = str.capitalize if s.capitalised_fields else str
        doc: dict[str, object] = {
            name("effect"): s.effect_spelling,
            name("actions"): list(s.actions),
            name("subjects"): list(s.subjects),
        }
        if s.prefixes:
            doc[name("prefixes")] = list(s.prefixes)
        if s.cidrs is not None:
            doc[name("conditions")] = {"ip_whitelist": list(s.cidrs)}
        docs.append(doc)
    return json.dumps({"version": "1", "statements": docs})


# --- the reference ----------------------------------------------------------------------------------


def ref_scope(token: TokenRecord, action: str, bucket: str, key: str) -> bool:
    action_ok = "*" in token.allowed_actions or action in token.allowed_actions
    bucket_ok = not token.bucket_scope or bucket in token.bucket_scope
    prefix_ok = (
        not token.prefix_scope or key == "" or any(key[: len(p)] == p for p in token.prefix_scope)
    )
    return action_ok and bucket_ok and prefix_ok


def ref_matches(s: Stmt, case: Case) -> bool:
    if case.token is None:
        subject_ok = "*" in s.subjects
    else:
        subject_ok = "*" in s.subjects or case.token.token_id in s.subjects
    action_ok = "*" in s.actions or case.action in s.actions
    prefix_ok = not s.prefixes or any(case.key[: len(p)] == p for p in s.prefixes)
    ip_ok = not s.cidrs or any((case.client_ip, c) in IN_CIDR for c in s.cidrs)
    return subject_ok and action_ok and prefix_ok and ip_ok


def reference(case: Case) -> bool:
    if case.broken_policy:
        return False
    stmts = case.statements or ()
    if any(s.effect == "deny" and ref_matches(s, case) for s in stmts):
        return False
    if (
        case.token is not None
        and case.caller_account == case.owner
        and ref_scope(case.token, case.action, "bkt", case.key)
    ):
        return True
    if any(s.effect == "allow" and ref_matches(s, case) for s in stmts):
        return True
    return case.visibility == "public-read" and case.action in ("object:get", "object:list")


@settings(max_examples=1500, deadline=None)
@given(cases())
def test_decide_agrees_with_the_reference(case: Case) -> None:
    bucket = BucketInfo(
        bucket_id="id",
        name="bkt",
        owner_account_id=case.owner,
        created_at=0.0,
        visibility=case.visibility,
        policy_json=policy_json(case),
    )
    decision = decide(
        token=case.token,
        account_id=case.caller_account,
        action=case.action,
        bucket=bucket,
        key=case.key,
        client_ip=case.client_ip,
    )
    assert decision.allowed == reference(case), decision.reason
    assert decision.reason


def test_the_reference_table_covers_every_branch() -> None:
    """The generator reaches owner, allow, public-read and each way of being refused."""
    seen: set[str] = set()

    @settings(max_examples=500, deadline=None, database=None)
    @given(cases())
    def collect(case: Case) -> None:
        bucket = BucketInfo(
            bucket_id="id",
            name="bkt",
            owner_account_id=case.owner,
            created_at=0.0,
            visibility=case.visibility,
            policy_json=policy_json(case),
        )
        seen.add(
            decide(
                token=case.token,
                account_id=case.caller_account,
                action=case.action,
                bucket=bucket,
                key=case.key,
                client_ip=case.client_ip,
            ).reason
        )

    collect()
    assert seen >= {
        "owner",
        "allowed by bucket policy",
        "public-read bucket",
        "denied by bucket policy",
        "bucket policy is unreadable (fail closed)",
        "authentication required",
        "access denied",
    }
