"""``PublicAccessBlockConfiguration`` and ``PolicyStatus`` XML: parsing and rendering. Pure.

PutPublicAccessBlock takes up to four boolean elements (``BlockPublicAcls``,
``IgnorePublicAcls``, ``BlockPublicPolicy``, ``RestrictPublicBuckets``); one left out is false,
as on S3. Anything else (another root, an unknown or repeated element, a value other than
``true`` or ``false``) is ``MalformedXML``. What the switches do: ``jay.auth.public_access``.
"""

from __future__ import annotations

from jay.auth.public_access import PublicAccessBlock
from jay.errors import MalformedXML
from jay.s3.xml import _bool, _document, _el, _local, _parse_root

# Four elements of at most ~50 bytes each plus the root and a namespace: well under 1 KiB;
# the cap leaves room for whitespace and comments.
MAX_PUBLIC_ACCESS_BLOCK_BODY = 16 * 1024

_ELEMENTS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
_BOOLEANS = {"true": True, "false": False}


def parse_public_access_block(
    body: bytes, *, max_bytes: int = MAX_PUBLIC_ACCESS_BLOCK_BODY
) -> PublicAccessBlock:
    root = _parse_root(body, "PublicAccessBlockConfiguration", max_bytes)
    values: dict[str, bool] = {}
    for child in root:
        name = _local(child.tag)
        if not name:
            continue  # a comment or processing instruction
        if name not in _ELEMENTS or name in values or len(child):
            raise MalformedXML()
        value = _BOOLEANS.get((child.text or "").strip().lower())
        if value is None:
            raise MalformedXML()
        values[name] = value
    return PublicAccessBlock(*(values.get(name, False) for name in _ELEMENTS))


def render_public_access_block(block: PublicAccessBlock) -> bytes:
    values = (
        block.block_public_acls,
        block.ignore_public_acls,
        block.block_public_policy,
        block.restrict_public_buckets,
    )
    return _document(
        "PublicAccessBlockConfiguration",
        [_el(name, _bool(value)) for name, value in zip(_ELEMENTS, values, strict=True)],
    )


def render_policy_status(is_public: bool) -> bytes:
    return _document("PolicyStatus", [_el("IsPublic", _bool(is_public))])
