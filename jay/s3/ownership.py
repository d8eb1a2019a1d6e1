"""``OwnershipControls`` XML (Put/GetBucketOwnershipControls): parsing and rendering. Pure.

The document holds exactly one ``Rule`` with exactly one ``ObjectOwnership`` of
``BucketOwnerEnforced``, ``BucketOwnerPreferred`` or ``ObjectWriter``; anything else is
``MalformedXML``, as on S3. What the settings do: ``jay.auth.ownership``.
"""

from __future__ import annotations

from jay.auth.ownership import SETTINGS
from jay.errors import InvalidArgument, MalformedXML
from jay.s3.xml import _document, _el, _local, _parse_root

MAX_OWNERSHIP_CONTROLS_BODY = 16 * 1024
# CreateBucket's header naming the setting for the new bucket.
OBJECT_OWNERSHIP_HEADER = "x-amz-object-ownership"


def parse_ownership_controls(body: bytes, *, max_bytes: int = MAX_OWNERSHIP_CONTROLS_BODY) -> str:
    root = _parse_root(body, "OwnershipControls", max_bytes)
    rules = [child for child in root if _local(child.tag)]
    if len(rules) != 1 or _local(rules[0].tag) != "Rule":
        raise MalformedXML()
    values = [child for child in rules[0] if _local(child.tag)]
    if len(values) != 1 or _local(values[0].tag) != "ObjectOwnership" or len(values[0]):
        raise MalformedXML()
    setting = (values[0].text or "").strip()
    if setting not in SETTINGS:
        raise MalformedXML()
    return setting


def render_ownership_controls(setting: str) -> bytes:
    rule = _el("ObjectOwnership", setting)
    return _document("OwnershipControls", [f"<Rule>{rule}</Rule>"])


def setting_from_header(value: str) -> str:
    """CreateBucket's ``x-amz-object-ownership``: one of the three settings (InvalidArgument)."""
    setting = value.strip()
    if setting not in SETTINGS:
        raise InvalidArgument(
            "Invalid x-amz-object-ownership header",
            argument_name=OBJECT_OWNERSHIP_HEADER,
            argument_value=value,
        )
    return setting
