"""S3 XML: hardened request parsing and fast response rendering.

Parsing uses defusedxml with DTDs, entity declarations and external references refused, and a
size cap checked *before* the parser sees a byte (JAY_SPEC §8.2 item 17). Element names are
compared without their namespace: clients send the S3 namespace, or none.

Rendering builds one line of text with escaping (JAY_SPEC §2.5): a one-line declaration, then the
document; success roots carry the S3 namespace, ``Error`` carries none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote
from xml.etree.ElementTree import Element

from jay.errors import InvalidArgument, MalformedXML
from jay.s3.headers import UnreadablePrecondition, delete_condition, parse_http_date
from jay.storage.api import (
    BucketInfo,
    DeleteCondition,
    ListedObject,
    ListPage,
    MultipartUpload,
    ObjectInfo,
    PartsPage,
    UploadsPage,
)
from jay.timestamps import utc_second
from jay.xmlsafe import children, local_name, parse_root

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
CONTENT_TYPE = "application/xml"

# Request bodies are small documents; 1 MiB holds a 10000-part Complete or a 1000-key Delete
# with room to spare, and bounds what an unauthenticated client can make us buffer.
DEFAULT_MAX_XML_BYTES = 1024 * 1024
MAX_DELETE_OBJECTS = 1000  # S3's limit per DeleteObjects request
MAX_PART_NUMBER = 10000

# ---------------------------------------------------------------------------------------------
# Parsing


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestedPart:
    """One ``Part`` of a CompleteMultipartUpload body."""

    part_number: int
    etag: str | None  # unquoted; None when the client sent none
    checksums: Mapping[str, str] = field(default_factory=dict)  # "CRC32" → base64


@dataclass(frozen=True, slots=True)
class ObjectToDelete:
    key: str
    version_id: str | None = None
    # Conditional delete of this object (``ETag``, ``LastModifiedTime``, ``Size`` elements).
    condition: DeleteCondition | None = None


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    objects: tuple[ObjectToDelete, ...]
    is_quiet: bool


# The hardened parser is shared with the other request documents (jay.xmlsafe).
_local = local_name
_parse_root = parse_root
_children = children


def _text(element: Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def parse_complete_multipart_upload(
    body: bytes, *, max_bytes: int = DEFAULT_MAX_XML_BYTES
) -> tuple[RequestedPart, ...]:
    """``<CompleteMultipartUpload><Part><PartNumber/><ETag/>…</Part>…`` in request order.

    Order and ETags are checked by storage (InvalidPartOrder, InvalidPart); here only the shape:
    at least one part, integer part numbers in 1..10000.
    """
    root = _parse_root(body, "CompleteMultipartUpload", max_bytes)
    parts: list[RequestedPart] = []
    for element in _children(root, "Part"):
        number_text = _text(element, "PartNumber")
        if number_text is None:
            raise MalformedXML()
        try:
            number = int(number_text.strip())
        except ValueError:
            raise MalformedXML() from None
        if not 1 <= number <= MAX_PART_NUMBER:
            raise InvalidArgument(
                "Part number must be an integer between 1 and 10000, inclusive",
                argument_name="partNumber",
                argument_value=number_text,
            )
        etag_text = _text(element, "ETag")
        checksums: dict[str, str] = {}
        for child in element:
            name = _local(child.tag)
            if name.startswith("Checksum") and name != "ChecksumType":
                checksums[name[len("Checksum") :].upper()] = (child.text or "").strip()
        parts.append(
            RequestedPart(
                part_number=number,
                etag=_unquote(etag_text) if etag_text is not None else None,
                checksums=checksums,
            )
        )
    if not parts or len(parts) > MAX_PART_NUMBER:
        raise MalformedXML()
    return tuple(parts)


def _unquote(etag: str) -> str:
    etag = etag.strip()
    if len(etag) >= 2 and etag[0] == '"' and etag[-1] == '"':
        return etag[1:-1]
    return etag


def parse_delete(body: bytes, *, max_bytes: int = DEFAULT_MAX_XML_BYTES) -> DeleteRequest:
    """``<Delete><Quiet/><Object><Key/><VersionId/></Object>…</Delete>``, 1..1000 objects."""
    root = _parse_root(body, "Delete", max_bytes)
    quiet_text = _text(root, "Quiet")
    if quiet_text is None:
        is_quiet = False
    elif quiet_text.strip().lower() in ("true", "false"):
        is_quiet = quiet_text.strip().lower() == "true"
    else:
        raise MalformedXML()
    objects: list[ObjectToDelete] = []
    for element in _children(root, "Object"):
        key = _text(element, "Key")
        if not key:
            raise MalformedXML()
        objects.append(ObjectToDelete(key, _text(element, "VersionId"), _delete_condition(element)))
        if len(objects) > MAX_DELETE_OBJECTS:
            raise MalformedXML()
    if not objects:
        raise MalformedXML()
    return DeleteRequest(tuple(objects), is_quiet)


def _timestamp(text: str) -> float | None:
    """An XML timestamp: ISO 8601 (S3's usual form) or an HTTP date, which botocore writes
    for DeleteObjects' ``LastModifiedTime``; None when it is neither."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return parse_http_date(text)
    if when.tzinfo is None:  # no offset: UTC, as every S3 timestamp
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _delete_condition(element: Element) -> DeleteCondition | None:
    """The ``ETag`` / ``LastModifiedTime`` / ``Size`` preconditions of one ``Object``."""
    try:
        return delete_condition(
            _text(element, "ETag"),
            _text(element, "LastModifiedTime"),
            _text(element, "Size"),
            parse_date=_timestamp,
        )
    except UnreadablePrecondition:
        raise MalformedXML() from None


def parse_versioning_configuration(
    body: bytes, *, max_bytes: int = DEFAULT_MAX_XML_BYTES
) -> tuple[str, str]:
    """PutBucketVersioning's ``VersioningConfiguration`` → (Status, MfaDelete); each "" when
    absent, else ``Enabled`` or ``Suspended`` (``Disabled`` for MfaDelete) or MalformedXML."""
    root = _parse_root(body, "VersioningConfiguration", max_bytes)
    status = (_text(root, "Status") or "").strip()
    mfa_delete = (_text(root, "MfaDelete") or "").strip()
    if status not in ("", "Enabled", "Suspended") or mfa_delete not in ("", "Enabled", "Disabled"):
        raise MalformedXML()
    return status, mfa_delete


def parse_create_bucket_configuration(
    body: bytes, *, max_bytes: int = DEFAULT_MAX_XML_BYTES
) -> str:
    """The ``LocationConstraint`` of a CreateBucket body; "" for an empty body or element."""
    if not body.strip():
        return ""
    root = _parse_root(body, "CreateBucketConfiguration", max_bytes)
    return (_text(root, "LocationConstraint") or "").strip()


# ---------------------------------------------------------------------------------------------
# Rendering

# Characters XML 1.0 cannot carry even as references; S3 sends them as numeric references and
# clients that need them ask for encoding-type=url.
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# Any character ``escape`` changes: one search clears the common text that has none of them.
_NEEDS_ESCAPE = re.compile("[&<>\"'\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def escape(text: str) -> str:
    """Escape for element content. Quotes as ``&#34;``/``&#39;`` like upstream's encoder."""
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if '"' in text:
        text = text.replace('"', "&#34;")
    if "'" in text:
        text = text.replace("'", "&#39;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    if _INVALID_XML_CHARS.search(text):
        text = _INVALID_XML_CHARS.sub(lambda m: f"&#x{ord(m.group()):x};", text)
    return text


def url_encode(text: str) -> str:
    """``encoding-type=url``: percent-encoding, ``/`` left alone, a space as ``%20``.

    botocore decodes these fields with ``unquote_plus`` and other clients with a plain
    ``unquote``; ``%20`` for a space and ``%2B`` for ``+`` read the same under both (a ``+``
    for a space would come back as ``+`` from the second kind; ceph's s3-tests expect ``%20``).
    """
    return quote(text, safe="/")


def format_timestamp(timestamp: float) -> str:
    """``2024-01-02T03:04:05.000Z`` (ISO 8601, UTC, milliseconds)."""
    whole = int(timestamp)
    millis = round((timestamp - whole) * 1000)  # round() of a float is an int
    if millis >= 1000:
        whole, millis = whole + 1, 0
    return f"{utc_second(whole)}.{millis:03d}Z"


def _el(name: str, text: str) -> str:
    return f"<{name}>{escape(text)}</{name}>"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _document(root: str, body: Iterable[str], *, namespace: bool = True) -> bytes:
    attributes = f' xmlns="{S3_NAMESPACE}"' if namespace else ""
    return (XML_DECLARATION + f"<{root}{attributes}>" + "".join(body) + f"</{root}>").encode(
        "utf-8"
    )


def _owner(owner_id: str, tag: str = "Owner") -> str:
    return f"<{tag}>{_el('ID', owner_id)}{_el('DisplayName', owner_id)}</{tag}>"


def _checksum_fields(checksums: Mapping[str, str], checksum_type: str = "") -> str:
    out = "".join(
        _el("Checksum" + algorithm.upper(), value) for algorithm, value in checksums.items()
    )
    if checksum_type:
        out += _el("ChecksumType", checksum_type)
    return out


def _quoted(etag: str) -> str:
    return _el("ETag", '"' + etag + '"')


def render_error(
    code: str,
    message: str,
    resource: str = "",
    request_id: str = "",
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """``<Error>`` without a namespace; ``extra`` adds fields such as ``BucketName``."""
    fields = [_el("Code", code), _el("Message", message)]
    fields.extend(_el(name, value) for name, value in extra)
    fields.append(_el("Resource", resource))
    fields.append(_el("RequestId", request_id))
    return _document("Error", fields, namespace=False)


def render_list_buckets(
    buckets: Sequence[BucketInfo],
    owner_id: str,
    *,
    region: str = "",
    prefix: str | None = None,
    continuation_token: str = "",
) -> bytes:
    """``ListAllMyBucketsResult``; ``continuation_token`` (opaque) when more buckets follow,
    ``prefix`` echoed when the request gave one."""
    region_element = _el("BucketRegion", region) if region else ""
    items = "".join(
        "<Bucket>"
        + _el("Name", bucket.name)
        + _el("CreationDate", format_timestamp(bucket.created_at))
        + region_element
        + "</Bucket>"
        for bucket in buckets
    )
    fields = [_owner(owner_id), f"<Buckets>{items}</Buckets>"]
    if continuation_token:
        fields.append(_el("ContinuationToken", continuation_token))
    if prefix is not None:
        fields.append(_el("Prefix", prefix))
    return _document("ListAllMyBucketsResult", fields)


def _object_entries(
    objects: Sequence[ListedObject], encode: bool, owner: str, *, tag: str, version: str = ""
) -> str:
    """``<Contents>`` (or ``<Version>``) elements of a LIST page, one template per entry.

    A page has up to 1000 of these, so this is the bulk of a listing's rendering. The text is
    what ``_el`` would write; keys and ETags are escaped entry by entry only when one search over
    the whole page finds something to escape (rare: most keys are plain). ``owner`` is the
    rendered ``<Owner>`` element or ""; ``version`` the fixed version fields after ``Key``.
    """
    keys = [url_encode(entry.key) if encode else entry.key for entry in objects]
    etags = [entry.etag for entry in objects]
    if _NEEDS_ESCAPE.search("".join(keys)) is not None:
        keys = [escape(key) for key in keys]
    if _NEEDS_ESCAPE.search("".join(etags)) is not None:
        etags = [escape(etag) for etag in etags]
    opening = "<" + tag + "><Key>"
    after_key = "</Key>" + version + "<LastModified>"
    closing = owner + "<StorageClass>STANDARD</StorageClass></" + tag + ">"
    stamp = format_timestamp
    return "".join(
        [
            f"{opening}{key}{after_key}{stamp(entry.updated_at)}</LastModified>"
            f"<ETag>&#34;{etag}&#34;</ETag><Size>{entry.size}</Size>{closing}"
            for key, etag, entry in zip(keys, etags, objects, strict=True)
        ]
    )


def _common_prefixes(prefixes: Iterable[str], encode: bool) -> str:
    return "".join(
        "<CommonPrefixes>" + _el("Prefix", url_encode(p) if encode else p) + "</CommonPrefixes>"
        for p in prefixes
    )


def _encoding_is_url(encoding_type: str) -> bool:
    return encoding_type.lower() == "url"


def render_list_objects_v2(
    page: ListPage,
    *,
    bucket: str,
    prefix: str = "",
    delimiter: str = "",
    max_keys: int = 1000,
    encoding_type: str = "",
    start_after: str = "",
    continuation_token: str | None = None,
    next_continuation_token: str = "",
    owner_id: str | None = None,
) -> bytes:
    """``ListBucketResult`` (V2). ``owner_id`` adds ``Owner`` to each entry (fetch-owner=true).

    With ``encoding_type="url"`` Key, Prefix, Delimiter, StartAfter and CommonPrefixes are
    URL-encoded (JAY_SPEC §8.2 item 5); continuation tokens are opaque and never encoded. A
    ``continuation_token`` the request carried is echoed even when empty, as S3 does.
    """
    encode = _encoding_is_url(encoding_type)

    def enc(text: str) -> str:
        return url_encode(text) if encode else text

    fields = [_el("Name", bucket), _el("Prefix", enc(prefix))]
    if delimiter:
        fields.append(_el("Delimiter", enc(delimiter)))
    fields.append(_el("MaxKeys", str(max_keys)))
    fields.append(_el("IsTruncated", _bool(page.is_truncated)))
    owner = _owner(owner_id) if owner_id is not None else ""
    fields.append(_object_entries(page.objects, encode, owner, tag="Contents"))
    fields.append(_common_prefixes(page.common_prefixes, encode))
    fields.append(_el("KeyCount", str(len(page.objects) + len(page.common_prefixes))))
    if encoding_type:
        fields.append(_el("EncodingType", encoding_type))
    if start_after:
        fields.append(_el("StartAfter", enc(start_after)))
    if continuation_token is not None:
        fields.append(_el("ContinuationToken", continuation_token))
    if next_continuation_token:
        fields.append(_el("NextContinuationToken", next_continuation_token))
    return _document("ListBucketResult", fields)


def render_list_objects_v1(
    page: ListPage,
    *,
    bucket: str,
    prefix: str = "",
    delimiter: str = "",
    marker: str = "",
    max_keys: int = 1000,
    encoding_type: str = "",
    owner_id: str,
) -> bytes:
    """``ListBucketResult`` (V1): ``Marker`` echoed; ``NextMarker`` when truncated and a
    delimiter was given (without one, clients continue from the last Key, as S3 documents).

    With ``encoding_type="url"`` the top-level ``Prefix`` stays as given, as S3 sends it: the
    SDKs decode Delimiter, Marker, NextMarker, Key and CommonPrefixes in a V1 listing, not
    Prefix (botocore's ``decode_list_object``), so an encoded one would reach users encoded."""
    encode = _encoding_is_url(encoding_type)

    def enc(text: str) -> str:
        return url_encode(text) if encode else text

    fields = [
        _el("Name", bucket),
        _el("Prefix", prefix),
        _el("Marker", enc(marker)),
    ]
    if page.is_truncated and delimiter and page.next_start_after:
        fields.append(_el("NextMarker", enc(page.next_start_after)))
    fields.append(_el("MaxKeys", str(max_keys)))
    if delimiter:
        fields.append(_el("Delimiter", enc(delimiter)))
    fields.append(_el("IsTruncated", _bool(page.is_truncated)))
    fields.append(_object_entries(page.objects, encode, _owner(owner_id), tag="Contents"))
    fields.append(_common_prefixes(page.common_prefixes, encode))
    if encoding_type:
        fields.append(_el("EncodingType", encoding_type))
    return _document("ListBucketResult", fields)


def render_location(location_constraint: str = "") -> bytes:
    """GetBucketLocation: an empty element means us-east-1, as S3 answers."""
    return _document("LocationConstraint", [escape(location_constraint)])


def render_unconfigured(operation: str) -> bytes:
    """What S3 answers for a bucket that never had the feature configured: an empty
    ``BucketLoggingStatus`` / ``NotificationConfiguration`` / ``AccelerateConfiguration``,
    and the bucket owner paying for requests."""
    if operation == "GetBucketRequestPayment":
        return _document("RequestPaymentConfiguration", [_el("Payer", "BucketOwner")])
    return _document(_UNCONFIGURED_ROOTS[operation], [])


_UNCONFIGURED_ROOTS = {
    "GetBucketLogging": "BucketLoggingStatus",
    "GetBucketNotificationConfiguration": "NotificationConfiguration",
    "GetBucketAccelerateConfiguration": "AccelerateConfiguration",
}


def render_versioning(status: str = "") -> bytes:
    """GetBucketVersioning: an empty configuration means versioning was never enabled."""
    return _document("VersioningConfiguration", [_el("Status", status)] if status else [])


def render_list_object_versions(
    page: ListPage,
    *,
    bucket: str,
    prefix: str = "",
    delimiter: str = "",
    key_marker: str = "",
    version_id_marker: str = "",
    max_keys: int = 1000,
    encoding_type: str = "",
    owner_id: str,
) -> bytes:
    """``ListVersionsResult``: every object is its only version, ``null`` and latest."""
    encode = _encoding_is_url(encoding_type)

    def enc(text: str) -> str:
        return url_encode(text) if encode else text

    fields = [
        _el("Name", bucket),
        _el("Prefix", enc(prefix)),
        _el("KeyMarker", enc(key_marker)),
        _el("VersionIdMarker", version_id_marker),
    ]
    if page.is_truncated and page.next_start_after:
        fields.append(_el("NextKeyMarker", enc(page.next_start_after)))
        fields.append(_el("NextVersionIdMarker", "null"))
    fields.append(_el("MaxKeys", str(max_keys)))
    if delimiter:
        fields.append(_el("Delimiter", enc(delimiter)))
    fields.append(_el("IsTruncated", _bool(page.is_truncated)))
    fields.append(
        _object_entries(
            page.objects,
            encode,
            _owner(owner_id),
            tag="Version",
            version="<VersionId>null</VersionId><IsLatest>true</IsLatest>",
        )
    )
    fields.append(_common_prefixes(page.common_prefixes, encode))
    if encoding_type:
        fields.append(_el("EncodingType", encoding_type))
    return _document("ListVersionsResult", fields)


def _upload(upload: MultipartUpload, encode: bool) -> str:
    return (
        "<Upload>"
        + _el("Key", url_encode(upload.key) if encode else upload.key)
        + _el("UploadId", upload.upload_id)
        + _owner(upload.initiated_by, "Initiator")
        + _owner(upload.initiated_by)
        + "<StorageClass>STANDARD</StorageClass>"
        + _el("Initiated", format_timestamp(upload.created_at))
        + (_el("ChecksumAlgorithm", upload.checksum_algorithm) if upload.checksum_algorithm else "")
        + (_el("ChecksumType", upload.checksum_type) if upload.checksum_type else "")
        + "</Upload>"
    )


def render_list_multipart_uploads(
    page: UploadsPage,
    *,
    bucket: str,
    prefix: str = "",
    delimiter: str = "",
    key_marker: str = "",
    upload_id_marker: str = "",
    max_uploads: int = 1000,
    encoding_type: str = "",
) -> bytes:
    encode = _encoding_is_url(encoding_type)

    def enc(text: str) -> str:
        return url_encode(text) if encode else text

    fields = [
        _el("Bucket", bucket),
        _el("KeyMarker", enc(key_marker)),
        _el("UploadIdMarker", upload_id_marker),
    ]
    if page.is_truncated:
        fields.append(_el("NextKeyMarker", enc(page.next_key_marker)))
        fields.append(_el("NextUploadIdMarker", page.next_upload_id_marker))
    if delimiter:
        fields.append(_el("Delimiter", enc(delimiter)))
    fields.append(_el("Prefix", enc(prefix)))
    fields.append(_el("MaxUploads", str(max_uploads)))
    fields.append(_el("IsTruncated", _bool(page.is_truncated)))
    fields.extend(_upload(upload, encode) for upload in page.uploads)
    fields.append(_common_prefixes(page.common_prefixes, encode))
    if encoding_type:
        fields.append(_el("EncodingType", encoding_type))
    return _document("ListMultipartUploadsResult", fields)


def render_initiate_multipart_upload(
    bucket: str, key: str, upload_id: str, *, checksum_algorithm: str = "", checksum_type: str = ""
) -> bytes:
    fields = [_el("Bucket", bucket), _el("Key", key), _el("UploadId", upload_id)]
    if checksum_algorithm:
        fields.append(_el("ChecksumAlgorithm", checksum_algorithm))
    if checksum_type:
        fields.append(_el("ChecksumType", checksum_type))
    return _document("InitiateMultipartUploadResult", fields)


def object_location(bucket: str, key: str) -> str:
    """The URL path of an object, percent-encoded (``Location`` of a completed upload)."""
    return "/" + quote(bucket, safe="") + "/" + quote(key, safe="/~")


def render_complete_multipart_upload(
    bucket: str,
    key: str,
    etag: str,
    *,
    location: str | None = None,
    checksums: Mapping[str, str] = {},  # noqa: B006 - read only
    checksum_type: str = "",
) -> bytes:
    fields = [
        _el("Location", object_location(bucket, key) if location is None else location),
        _el("Bucket", bucket),
        _el("Key", key),
        _quoted(etag),
        _checksum_fields(checksums, checksum_type),
    ]
    return _document("CompleteMultipartUploadResult", fields)


def render_list_parts(
    page: PartsPage,
    *,
    part_number_marker: int = 0,
    max_parts: int = 1000,
) -> bytes:
    upload = page.upload
    fields = [
        _el("Bucket", upload.bucket),
        _el("Key", upload.key),
        _el("UploadId", upload.upload_id),
        _owner(upload.initiated_by, "Initiator"),
        _owner(upload.initiated_by),
        "<StorageClass>STANDARD</StorageClass>",
        _el("PartNumberMarker", str(part_number_marker)),
        _el("NextPartNumberMarker", str(page.next_part_number_marker)),
        _el("MaxParts", str(max_parts)),
        _el("IsTruncated", _bool(page.is_truncated)),
    ]
    if upload.checksum_algorithm:
        fields.append(_el("ChecksumAlgorithm", upload.checksum_algorithm))
    if upload.checksum_type:
        fields.append(_el("ChecksumType", upload.checksum_type))
    for part in page.parts:
        fields.append(
            "<Part>"
            + _el("PartNumber", str(part.part_number))
            + _el("LastModified", format_timestamp(part.created_at))
            + _quoted(part.etag)
            + _el("Size", str(part.size))
            + _checksum_fields(part.checksums)
            + "</Part>"
        )
    return _document("ListPartsResult", fields)


def render_copy_object_result(
    etag: str,
    last_modified: float,
    *,
    checksums: Mapping[str, str] = {},  # noqa: B006 - read only
    checksum_type: str = "",
) -> bytes:
    fields = [
        _el("LastModified", format_timestamp(last_modified)),
        _quoted(etag),
        _checksum_fields(checksums, checksum_type),
    ]
    return _document("CopyObjectResult", fields)


def render_copy_part_result(
    etag: str,
    last_modified: float,
    *,
    checksums: Mapping[str, str] = {},  # noqa: B006 - read only
) -> bytes:
    fields = [
        _el("LastModified", format_timestamp(last_modified)),
        _quoted(etag),
        _checksum_fields(checksums),
    ]
    return _document("CopyPartResult", fields)


@dataclass(frozen=True, slots=True)
class DeleteError:
    key: str
    code: str
    message: str
    version_id: str | None = None


def render_delete_result(
    deleted: Sequence[ObjectToDelete],
    errors: Sequence[DeleteError],
    *,
    is_quiet: bool = False,
) -> bytes:
    """``DeleteResult``: ``Deleted`` entries only when not quiet; ``Error`` entries always."""
    fields: list[str] = []
    if not is_quiet:
        for item in deleted:
            version = _el("VersionId", item.version_id) if item.version_id is not None else ""
            fields.append("<Deleted>" + _el("Key", item.key) + version + "</Deleted>")
    for error in errors:
        version = _el("VersionId", error.version_id) if error.version_id is not None else ""
        fields.append(
            "<Error>"
            + _el("Key", error.key)
            + version
            + _el("Code", error.code)
            + _el("Message", error.message)
            + "</Error>"
        )
    return _document("DeleteResult", fields)


# The names x-amz-object-attributes may list (GetObjectAttributes), in response order.
OBJECT_ATTRIBUTE_NAMES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")


def render_object_attributes(
    info: ObjectInfo,
    wanted: Iterable[str],
    part_checksums: Sequence[Mapping[str, str]] = (),
    *,
    max_parts: int = 1000,
    part_number_marker: int = 0,
) -> bytes:
    """``GetObjectAttributesResponse`` with the ``wanted`` attributes, in S3's order.

    ETag is unquoted, as S3 sends it here. ``Checksum`` is left out when the object has none.
    ``ObjectParts`` is only for multipart objects: the count, and a ``Part`` list (paged by
    ``part_number_marker``/``max_parts``) with each part's size and, when they were kept, its
    checksums. S3 lists parts for every object with a checksum, which since S3 adds a default
    CRC64NVME to each new object is every new multipart object; jay does not add one, so a part
    listed without a checksum is one for which none was given. Parts are numbered 1..N in
    object order, as GetObject's ``partNumber`` counts them.
    """
    wanted = set(wanted)
    fields: list[str] = []
    if "ETag" in wanted:
        fields.append(_el("ETag", info.etag))
    if "Checksum" in wanted and info.checksums:
        checksum_type = info.checksum_type or "FULL_OBJECT"
        fields.append(
            "<Checksum>" + _checksum_fields(info.checksums, checksum_type) + "</Checksum>"
        )
    if "ObjectParts" in wanted and info.part_sizes:
        fields.append(_object_parts(info.part_sizes, part_checksums, max_parts, part_number_marker))
    if "StorageClass" in wanted:
        fields.append("<StorageClass>STANDARD</StorageClass>")
    if "ObjectSize" in wanted:
        fields.append(_el("ObjectSize", str(info.size)))
    return _document("GetObjectAttributesResponse", fields)


def _object_parts(
    part_sizes: Sequence[int],
    part_checksums: Sequence[Mapping[str, str]],
    max_parts: int,
    part_number_marker: int,
) -> str:
    # Wire name "PartsCount" (the SDK model's TotalPartsCount has that locationName).
    has_checksums = len(part_checksums) == len(part_sizes)
    first = min(part_number_marker, len(part_sizes))  # index of the first listed part
    last = min(first + max_parts, len(part_sizes))
    fields = [
        _el("PartsCount", str(len(part_sizes))),
        _el("PartNumberMarker", str(part_number_marker)),
        _el("NextPartNumberMarker", str(last if last > first else part_number_marker)),
        _el("MaxParts", str(max_parts)),
        _el("IsTruncated", _bool(last < len(part_sizes))),
    ]
    for index in range(first, last):
        fields.append(
            "<Part>"
            + _el("PartNumber", str(index + 1))
            + _el("Size", str(part_sizes[index]))
            + (_checksum_fields(part_checksums[index]) if has_checksums else "")
            + "</Part>"
        )
    return "<ObjectParts>" + "".join(fields) + "</ObjectParts>"
