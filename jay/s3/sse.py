"""Server-side encryption on the S3 front: the bucket default encryption document
(``?encryption``: parsing, rendering, the stored JSON) and the response headers that say how an
object is encrypted. Pure; the format and keys are jay.storage.encryption's.

PutBucketEncryption takes one ``Rule`` whose ``ApplyServerSideEncryptionByDefault`` names
``SSEAlgorithm`` ``AES256`` (SSE-S3) or ``aws:kms`` (SSE-KMS with the local keyring, under
``KMSMasterKeyID`` or the default key); ``aws:kms:dsse`` is 501 NotImplemented, like the object
header, and anything else is MalformedXML (as S3 answers an unknown algorithm).
``BucketKeyEnabled`` is kept and echoed; it changes nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable

from jay.errors import InvalidArgument, MalformedXML, NotImplementedOperation
from jay.s3.xml import _bool, _document, _el
from jay.storage.encryption import (
    AES256,
    AWS_KMS,
    MODE_SSE_C,
    MODE_SSE_KMS,
    BucketEncryption,
    parse_record,
)
from jay.xmlsafe import children, first_child, local_name, parse_root

# One rule of a few short elements; the cap leaves room for whitespace and comments.
MAX_ENCRYPTION_BODY = 16 * 1024

SSE_HEADER = b"x-amz-server-side-encryption"
SSE_C_ALGORITHM_HEADER = b"x-amz-server-side-encryption-customer-algorithm"
SSE_C_KEY_MD5_HEADER = b"x-amz-server-side-encryption-customer-key-MD5"
SSE_KMS_KEY_ID_HEADER = b"x-amz-server-side-encryption-aws-kms-key-id"
SSE_KMS_CONTEXT_HEADER = b"x-amz-server-side-encryption-context"


def parse_bucket_encryption(
    body: bytes, *, max_bytes: int = MAX_ENCRYPTION_BODY
) -> BucketEncryption:
    """A ``ServerSideEncryptionConfiguration`` document."""
    root = parse_root(body, "ServerSideEncryptionConfiguration", max_bytes)
    rules = children(root, "Rule")
    if len(rules) != 1:
        raise MalformedXML()
    rule = rules[0]
    default = first_child(rule, "ApplyServerSideEncryptionByDefault")
    if default is None:
        raise MalformedXML()
    for child in default:
        if local_name(child.tag) not in ("", "SSEAlgorithm", "KMSMasterKeyID"):
            raise MalformedXML()
    algorithm_element = first_child(default, "SSEAlgorithm")
    if algorithm_element is None:
        raise MalformedXML()
    algorithm = (algorithm_element.text or "").strip()
    if algorithm == "aws:kms:dsse":
        raise NotImplementedOperation(
            "Dual-layer server-side encryption with KMS keys is not supported"
        )
    if algorithm not in (AES256, AWS_KMS):
        raise MalformedXML()
    key_element = first_child(default, "KMSMasterKeyID")
    kms_key_id = (key_element.text or "").strip() if key_element is not None else None
    if kms_key_id is not None and algorithm != AWS_KMS:
        raise InvalidArgument(
            "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms",
            argument_name="ApplyServerSideEncryptionByDefault",
        )
    bucket_key = first_child(rule, "BucketKeyEnabled")
    bucket_key_text = (bucket_key.text or "").strip().lower() if bucket_key is not None else ""
    if bucket_key_text not in ("", "true", "false"):
        raise MalformedXML()
    return BucketEncryption(
        algorithm=algorithm,
        kms_key_id=kms_key_id or None,
        bucket_key_enabled=bucket_key_text == "true",
    )


def render_bucket_encryption(config: BucketEncryption) -> bytes:
    key = _el("KMSMasterKeyID", config.kms_key_id) if config.kms_key_id is not None else ""
    return _document(
        "ServerSideEncryptionConfiguration",
        [
            "<Rule><ApplyServerSideEncryptionByDefault>"
            + _el("SSEAlgorithm", config.algorithm)
            + key
            + "</ApplyServerSideEncryptionByDefault>"
            + _el("BucketKeyEnabled", _bool(config.bucket_key_enabled))
            + "</Rule>"
        ],
    )


def response_headers(
    record_json: str | None, *, with_context: bool = False
) -> Iterable[tuple[bytes, bytes]]:
    """The headers that tell a client how an object (or upload) is encrypted, as S3 sends them
    on PUT, GET, HEAD, copies and multipart answers: SSE-C echoes the algorithm and the key's
    MD5, SSE-S3 says AES256, SSE-KMS aws:kms and the key id (and, on writes, the context)."""
    if record_json is None:
        return ()
    record = parse_record(record_json)
    if record.mode == MODE_SSE_C:
        return (
            (SSE_C_ALGORITHM_HEADER, AES256.encode()),
            (SSE_C_KEY_MD5_HEADER, record.key_md5.encode()),
        )
    if record.mode == MODE_SSE_KMS:
        headers = [
            (SSE_HEADER, AWS_KMS.encode()),
            (SSE_KMS_KEY_ID_HEADER, record.kms_key_id.encode("utf-8")),
        ]
        if with_context and record.kms_context:
            headers.append((SSE_KMS_CONTEXT_HEADER, record.kms_context.encode()))
        return headers
    return ((SSE_HEADER, AES256.encode()),)
