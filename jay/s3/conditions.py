"""The condition values (jay.auth.policy's context keys) an S3 request carries.

Asked for only when the bucket's policy has conditions that read some (``keys``), so a request
on a bucket without such a policy never builds them. Keys the request does not have are left out:
the policy treats them as absent.
"""

from __future__ import annotations

from collections.abc import Mapping

from jay.auth.policy import REQUEST_OBJECT_TAG
from jay.s3 import tagging

# Condition keys that are a request header's value (s3:<header>), and the headers of others.
_HEADER_KEYS = {
    "s3:x-amz-acl": "x-amz-acl",
    "s3:x-amz-copy-source": "x-amz-copy-source",
    "s3:x-amz-metadata-directive": "x-amz-metadata-directive",
    "s3:x-amz-server-side-encryption": "x-amz-server-side-encryption",
    "s3:x-amz-server-side-encryption-customer-algorithm": (
        "x-amz-server-side-encryption-customer-algorithm"
    ),
    "s3:x-amz-server-side-encryption-aws-kms-key-id": (
        "x-amz-server-side-encryption-aws-kms-key-id"
    ),
    "s3:x-amz-content-sha256": "x-amz-content-sha256",
    "s3:x-amz-grant-read": "x-amz-grant-read",
    "s3:x-amz-grant-write": "x-amz-grant-write",
    "s3:x-amz-grant-read-acp": "x-amz-grant-read-acp",
    "s3:x-amz-grant-write-acp": "x-amz-grant-write-acp",
    "s3:x-amz-grant-full-control": "x-amz-grant-full-control",
    "aws:useragent": "user-agent",
    "aws:referer": "referer",
}
# ListObjects / ListObjectsV2 / ListObjectVersions query parameters.
_QUERY_KEYS = {"s3:prefix": "prefix", "s3:delimiter": "delimiter", "s3:max-keys": "max-keys"}
_LIST_OPERATIONS = frozenset({"ListObjects", "ListObjectsV2", "ListObjectVersions"})
# Principal.auth_method → (s3:signatureversion, s3:authType); bearer tokens and Jay's own
# presigned URLs are no AWS signature: both keys are absent for them, as for anonymous calls.
_SIGNATURES = {
    "sigv4": ("AWS4-HMAC-SHA256", "REST-HEADER"),
    "sigv4-presigned": ("AWS4-HMAC-SHA256", "REST-QUERY-STRING"),
    "sigv4-post": ("AWS4-HMAC-SHA256", "POST"),
    "sigv2": ("AWS", "REST-HEADER"),
    "sigv2-post": ("AWS", "POST"),
}


def request_values(
    keys: frozenset[str],
    *,
    operation: str,
    headers: Mapping[str, str],
    params: Mapping[str, str],
    auth_method: str,
    is_secure: bool,
    body_tags: Mapping[str, str] | None = None,
    form_fields: Mapping[str, str] | None = None,
) -> dict[str, tuple[str, ...]]:
    """The values of those of ``keys`` this request has. ``body_tags``: the tag set of a
    PutObjectTagging body (else the ``x-amz-tagging`` header gives the request's tags).
    ``form_fields``: a POST upload's fields, which stand for a PUT's headers there."""
    values: dict[str, tuple[str, ...]] = {}
    if form_fields is not None:
        # Only S3's own fields: aws:Referer and aws:UserAgent stay the request's headers.
        headers = {**headers, **{k: v for k, v in form_fields.items() if k.startswith("x-amz-")}}
        if "acl" in form_fields:
            headers["x-amz-acl"] = form_fields["acl"]
        if body_tags is None and form_fields.get("tagging"):
            # The form's tag set is a Tagging XML document, as a PutObjectTagging body.
            body_tags = tagging.parse_tagging(form_fields["tagging"].encode("utf-8"))
    if "aws:securetransport" in keys:
        values["aws:securetransport"] = ("true" if is_secure else "false",)
    for key, header in _HEADER_KEYS.items():
        if key in keys:
            value = headers.get(header)
            if value is not None:
                values[key] = (value,)
    if operation in _LIST_OPERATIONS:
        for key, param in _QUERY_KEYS.items():
            if key in keys and param in params:
                values[key] = (params[param],)
    signature = _SIGNATURES.get(auth_method)
    if signature is not None:
        if "s3:signatureversion" in keys:
            values["s3:signatureversion"] = (signature[0],)
        if "s3:authtype" in keys:
            # SigV2 signs a header or the query string, both under one auth_method.
            query_signed = auth_method == "sigv2" and "authorization" not in headers
            values["s3:authtype"] = ("REST-QUERY-STRING" if query_signed else signature[1],)
    if "s3:requestobjecttagkeys" in keys or any(k.startswith(REQUEST_OBJECT_TAG) for k in keys):
        tags: Mapping[str, str] | None = body_tags
        if tags is None and headers.get("x-amz-tagging"):
            tags = tagging.parse_tagging_header(headers["x-amz-tagging"])
        if tags:
            values["s3:requestobjecttagkeys"] = tuple(tags)
            for tag, value in tags.items():
                values[REQUEST_OBJECT_TAG + tag] = (value,)
    return values
