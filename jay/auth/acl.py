"""S3 access control lists: canned ACLs, grant headers, AccessControlPolicy documents. Pure.

An ACL is a tuple of grants (grantee, permission). Grantees are jay accounts (``CanonicalUser``,
the account id S3 clients see as the owner ID) or the groups everyone (``AllUsers``, anonymous
callers included) and any authenticated caller (``AuthenticatedUsers``). A bucket or object
without a stored ACL has S3's default: its owner has FULL_CONTROL, nobody else anything.

What a permission lets a caller do (S3's table, in jay's action names):

* on a bucket: READ lists it (object:list, bucket:list, HeadBucket); WRITE creates, overwrites
  and deletes objects in it (object:put, object:delete, multipart:*); READ_ACP / WRITE_ACP
  read / replace its ACL; FULL_CONTROL all of these;
* on an object: READ gets it (GET, HEAD); READ_ACP / WRITE_ACP its ACL; FULL_CONTROL all.

Grants add to what ownership, token scopes and bucket policies allow; a policy's deny still
wins (jay.auth.policy.decide). Grants by e-mail address cannot be resolved (S3 answers
``UnresolvableGrantByEmailAddress`` too where it has no e-mail directory).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from jay.errors import (
    AccessDenied,
    InvalidArgument,
    InvalidRequest,
    MalformedACLError,
    UnresolvableGrantByEmailAddress,
)
from jay.xmlsafe import first_child, local_name, parse_root

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY})

READ, WRITE, READ_ACP, WRITE_ACP, FULL_CONTROL = (
    "READ",
    "WRITE",
    "READ_ACP",
    "WRITE_ACP",
    "FULL_CONTROL",
)
PERMISSIONS = (FULL_CONTROL, WRITE, WRITE_ACP, READ, READ_ACP)

CANNED = frozenset(
    {
        "private",
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
        "bucket-owner-read",
        "bucket-owner-full-control",
        "log-delivery-write",
    }
)

# x-amz-grant-<name> → permission
GRANT_HEADERS: Mapping[str, str] = {
    "x-amz-grant-read": READ,
    "x-amz-grant-write": WRITE,
    "x-amz-grant-read-acp": READ_ACP,
    "x-amz-grant-write-acp": WRITE_ACP,
    "x-amz-grant-full-control": FULL_CONTROL,
}

# Bucket permissions → jay actions they allow (object actions on keys in the bucket included).
_BUCKET_ACTIONS: Mapping[str, frozenset[str]] = {
    READ: frozenset({"object:list", "bucket:list", "bucket:read-meta"}),
    # WRITE also lets the grantee tag what it writes (x-amz-tagging, a form's tagging field):
    # whoever may overwrite or delete an object may do no less.
    WRITE: frozenset(
        {
            "object:put",
            "object:put-tagging",
            "object:delete",
            "multipart:create",
            "multipart:upload-part",
            "multipart:complete",
            "multipart:abort",
        }
    ),
}
_BUCKET_ACTIONS = {
    **_BUCKET_ACTIONS,
    FULL_CONTROL: _BUCKET_ACTIONS[READ] | _BUCKET_ACTIONS[WRITE],
}

# AccessControlPolicy documents are small; S3 caps the number of grants at 100.
MAX_ACL_BYTES = 64 * 1024
MAX_GRANTS = 100

_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"


@dataclass(frozen=True, slots=True)
class Grant:
    kind: str  # "CanonicalUser" | "Group"
    grantee: str  # account id, or group URI
    permission: str


Acl = tuple[Grant, ...]


def owner_full_control(owner_id: str) -> Acl:
    return (Grant("CanonicalUser", owner_id, FULL_CONTROL),)


def canned(name: str, owner_id: str, bucket_owner_id: str = "") -> Acl:
    """The grants of canned ACL ``name`` (``x-amz-acl``) for a resource owned by ``owner_id``."""
    if name not in CANNED:
        raise InvalidArgument(f"Invalid canned ACL {name!r}", argument_name="x-amz-acl")
    grants: list[Grant] = []
    if name in ("public-read", "public-read-write"):
        grants.append(Grant("Group", ALL_USERS, READ))
        if name == "public-read-write":
            grants.append(Grant("Group", ALL_USERS, WRITE))
    elif name == "authenticated-read":
        grants.append(Grant("Group", AUTHENTICATED_USERS, READ))
    elif name == "log-delivery-write":
        grants += [Grant("Group", LOG_DELIVERY, WRITE), Grant("Group", LOG_DELIVERY, READ_ACP)]
    elif name in ("bucket-owner-read", "bucket-owner-full-control"):
        if bucket_owner_id and bucket_owner_id != owner_id:
            permission = READ if name == "bucket-owner-read" else FULL_CONTROL
            grants.append(Grant("CanonicalUser", bucket_owner_id, permission))
    # The owner's grant last, as Ceph lists canned ACLs (clients compare lists in order).
    return (*grants, *owner_full_control(owner_id))


_GRANTEE = re.compile(r'\s*(id|uri|emailAddress)\s*=\s*(?:"([^"]*)"|([^,\s]*))\s*(?:,|$)', re.I)


# Every request header that sets an ACL.
ACL_HEADERS = frozenset({"x-amz-acl", *GRANT_HEADERS})


def has_acl_headers(headers: Mapping[str, str]) -> bool:
    return not ACL_HEADERS.isdisjoint(headers)


def from_headers(
    headers: Mapping[str, str], owner_id: str, bucket_owner_id: str = ""
) -> Acl | None:
    """The ACL a write's ``x-amz-acl`` or ``x-amz-grant-*`` headers ask for; None without any.
    The caller checks that the accounts named exist (``account_ids``).

    Both kinds at once → InvalidRequest; an unknown account → InvalidArgument; an e-mail
    grantee → UnresolvableGrantByEmailAddress; an unknown group → InvalidArgument."""
    canned_name = headers.get("x-amz-acl")
    granted = [(h, headers[h]) for h in GRANT_HEADERS if h in headers]
    if canned_name is not None and granted:
        raise InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed")
    if canned_name is not None:
        return canned(canned_name.strip(), owner_id, bucket_owner_id)
    if not granted:
        return None
    grants: list[Grant] = []
    for header, value in granted:
        permission = GRANT_HEADERS[header]
        position = 0
        text = value.strip()
        while position < len(text):
            match = _GRANTEE.match(text, position)
            if match is None or match.end() == position:
                raise InvalidArgument(f"Invalid grantee in {header}", argument_name=header)
            position = match.end()
            kind, target = match.group(1).lower(), match.group(2) or match.group(3) or ""
            grants.append(_grantee(kind, target, permission))
    return _checked(grants)


def _grantee(kind: str, target: str, permission: str) -> Grant:
    if kind == "emailaddress":
        raise UnresolvableGrantByEmailAddress()
    if kind == "uri":
        if target not in GROUPS:
            raise InvalidArgument("Invalid group uri", argument_name="uri")
        return Grant("Group", target, permission)
    if not target:
        raise InvalidArgument("Invalid id", argument_name="CanonicalUser/ID")
    return Grant("CanonicalUser", target, permission)


def account_ids(acl: Iterable[Grant]) -> list[str]:
    """The accounts an ACL names (each must exist: InvalidArgument "Invalid id" otherwise)."""
    return sorted({g.grantee for g in acl if g.kind == "CanonicalUser"})


def _checked(grants: Sequence[Grant]) -> Acl:
    if len(grants) > MAX_GRANTS:
        raise MalformedACLError(f"An ACL can have at most {MAX_GRANTS} grants")
    unique: list[Grant] = []
    for grant in grants:
        if grant not in unique:
            unique.append(grant)
    return tuple(unique)


def parse_policy_document(body: bytes, owner_id: str) -> Acl:
    """A PutBucketAcl / PutObjectAcl ``AccessControlPolicy`` body → its grants. The Owner, when
    given, must be the resource's owner (AccessDenied otherwise, as S3)."""
    root = parse_root(body, "AccessControlPolicy", MAX_ACL_BYTES, MalformedACLError)
    owner = first_child(root, "Owner")
    if owner is not None:
        owner_element = first_child(owner, "ID")
        if owner_element is None or (owner_element.text or "").strip() != owner_id:
            raise AccessDenied()
    grant_list = first_child(root, "AccessControlList")
    if grant_list is None:
        raise MalformedACLError()
    grants: list[Grant] = []
    for grant in grant_list:
        if local_name(grant.tag) != "Grant":
            if local_name(grant.tag):
                raise MalformedACLError()
            continue
        grantee = first_child(grant, "Grantee")
        permission_element = first_child(grant, "Permission")
        if grantee is None or permission_element is None:
            raise MalformedACLError()
        permission = (permission_element.text or "").strip()
        if permission not in PERMISSIONS:
            raise MalformedACLError()
        kind = grantee.get(f"{{{_XSI}}}type", "")
        if kind == "CanonicalUser":
            found = first_child(grantee, "ID")
            grants.append(
                _grantee(
                    "id",
                    (found.text or "").strip() if found is not None else "",
                    permission,
                )
            )
        elif kind == "Group":
            found = first_child(grantee, "URI")
            grants.append(
                _grantee(
                    "uri",
                    (found.text or "").strip() if found is not None else "",
                    permission,
                )
            )
        elif kind == "AmazonCustomerByEmail":
            raise UnresolvableGrantByEmailAddress()
        else:
            raise MalformedACLError()
    return _checked(grants)


# --- storage ---------------------------------------------------------------------------------


def is_default(acl: Acl, owner_id: str) -> bool:
    """Exactly the owner's FULL_CONTROL: stored as no ACL at all."""
    return acl == owner_full_control(owner_id)


def to_json(acl: Acl, owner: str = "") -> str:
    """The stored form; ``owner`` for an object another account wrote (its owner, which is
    not the bucket's)."""
    grants = [[g.kind, g.grantee, g.permission] for g in acl]
    if owner:
        return json.dumps({"owner": owner, "grants": grants}, separators=(",", ":"))
    return json.dumps(grants, separators=(",", ":"))


_DECODED: dict[str, tuple[str, Acl]] = {}


def _decoded(text: str) -> tuple[str, Acl]:
    found = _DECODED.get(text)
    if found is None:
        if len(_DECODED) >= 1024:
            _DECODED.clear()
        raw = json.loads(text)
        owner, grants = (raw["owner"], raw["grants"]) if isinstance(raw, dict) else ("", raw)
        found = _DECODED[text] = (owner, tuple(Grant(k, g, p) for k, g, p in grants))
    return found


def from_json(text: str) -> Acl:
    return _decoded(text)[1]


def owner_of(text: str | None, default: str) -> str:
    """The owner a stored ACL records, else ``default`` (the bucket's owner)."""
    return (_decoded(text)[0] or default) if text is not None else default


# --- decisions -------------------------------------------------------------------------------


def _applies(grant: Grant, account_id: str | None) -> bool:
    if grant.kind == "Group":
        if grant.grantee == ALL_USERS:
            return True
        return grant.grantee == AUTHENTICATED_USERS and account_id is not None
    return account_id is not None and grant.grantee == account_id


def permissions_of(acl: Iterable[Grant], account_id: str | None) -> frozenset[str]:
    """What ``acl`` grants the caller (None: anonymous)."""
    return frozenset(g.permission for g in acl if _applies(g, account_id))


def has_permission(acl: Iterable[Grant], account_id: str | None, permission: str) -> bool:
    granted = permissions_of(acl, account_id)
    return permission in granted or FULL_CONTROL in granted


def bucket_allows(acl: Iterable[Grant], account_id: str | None, action: str) -> bool:
    """Whether a bucket ACL lets the caller perform ``action`` (a jay action name)."""
    for permission in permissions_of(acl, account_id):
        allowed = _BUCKET_ACTIONS.get(permission)
        if allowed is not None and action in allowed:
            return True
    return False


# --- rendering -------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(owner_id: str, acl: Acl | None) -> bytes:
    """The ``AccessControlPolicy`` document of a resource (``acl`` None: the default)."""
    grants = acl if acl is not None else owner_full_control(owner_id)
    # Group grants first, then accounts, each in stored order (Ceph's order; clients that
    # compare grant lists in order expect it).
    grants = tuple(g for g in grants if g.kind == "Group") + tuple(
        g for g in grants if g.kind != "Group"
    )
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<AccessControlPolicy xmlns="{_NAMESPACE}">',
        f"<Owner><ID>{_escape(owner_id)}</ID><DisplayName>{_escape(owner_id)}</DisplayName>"
        "</Owner><AccessControlList>",
    ]
    for grant in grants:
        if grant.kind == "Group":
            grantee = (
                f'<Grantee xmlns:xsi="{_XSI}" xsi:type="Group">'
                f"<URI>{_escape(grant.grantee)}</URI></Grantee>"
            )
        else:
            grantee = (
                f'<Grantee xmlns:xsi="{_XSI}" xsi:type="CanonicalUser">'
                f"<ID>{_escape(grant.grantee)}</ID>"
                f"<DisplayName>{_escape(grant.grantee)}</DisplayName></Grantee>"
            )
        parts.append(f"<Grant>{grantee}<Permission>{grant.permission}</Permission></Grant>")
    parts.append("</AccessControlList></AccessControlPolicy>")
    return "".join(parts).encode("utf-8")
