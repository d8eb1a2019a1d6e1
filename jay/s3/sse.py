"""Server-side encryption on the S3 front: the bucket default encryption document
(``?encryption``: parsing, rendering, the stored JSON) and the response headers that say how an
object is encrypted. Pure; the format and keys are jay.storage.encryption's.

PutBucketEncryption takes one ``Rule`` whose ``ApplyServerSideEncryptionByDefault`` names
``SSEAlgorithm`` ``AES256`` (SSE-S3); ``aws:kms`` and ``aws:kms:dsse`` are 501 NotImplemented,
like the object headers, and anything else is MalformedXML (as S3 answers an unknown
algorithm). ``BucketKeyEnabled`` is kept and echoed; it changes nothing for SSE-S3.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from jay.errors import MalformedXML, NotImplementedOperation
from jay.s3.xml import _bool, _document
from jay.storage.encryption import AES256, MODE_SSE_C, parse_record
from jay.xmlsafe import children, first_child, local_name, parse_root

# One rule of a few short elements; the cap leaves room for whitespace and comments.
MAX_ENCRYPTION_BODY = 16 * 1024

SSE_HEADER = b"x-amz-server-side-encryption"
SSE_C_ALGORITHM_HEADER = b"x-amz-server-side-encryption-customer-algorithm"
SSE_C_KEY_MD5_HEADER = b"x-amz-server-side-encryption-customer-key-MD5"


def parse_bucket_encryption(body: bytes, *, max_bytes: int = MAX_ENCRYPTION_BODY) -> str:
    """A ``ServerSideEncryptionConfiguration`` document → the JSON the bucket keeps."""
    root = parse_root(body, "ServerSideEncryptionConfiguration", max_bytes)
    rules = children(root, "Rule")
    if len(rules) != 1:
        raise MalformedXML()
    rule = rules[0]
    default = first_child(rule, "ApplyServerSideEncryptionByDefault")
    if default is None:
        raise MalformedXML()
    algorithm_element = first_child(default, "SSEAlgorithm")
    if algorithm_element is None:
        raise MalformedXML()
    algorithm = (algorithm_element.text or "").strip()
    if algorithm in ("aws:kms", "aws:kms:dsse"):
        raise NotImplementedOperation("Server-side encryption with KMS keys is not supported")
    if algorithm != AES256:
        raise MalformedXML()
    if first_child(default, "KMSMasterKeyID") is not None:
        raise MalformedXML("KMSMasterKeyID is only allowed with aws:kms")
    for child in default:
        if local_name(child.tag) not in ("", "SSEAlgorithm", "KMSMasterKeyID"):
            raise MalformedXML()
    bucket_key = first_child(rule, "BucketKeyEnabled")
    bucket_key_text = (bucket_key.text or "").strip().lower() if bucket_key is not None else ""
    if bucket_key_text not in ("", "true", "false"):
        raise MalformedXML()
    return json.dumps(
        {"algorithm": algorithm, "bucket_key_enabled": bucket_key_text == "true"},
        sort_keys=True,
    )


def render_bucket_encryption(stored: str) -> bytes:
    config = json.loads(stored)
    return _document(
        "ServerSideEncryptionConfiguration",
        [
            "<Rule><ApplyServerSideEncryptionByDefault>"
            f"<SSEAlgorithm>{config['algorithm']}</SSEAlgorithm>"
            "</ApplyServerSideEncryptionByDefault>"
            f"<BucketKeyEnabled>{_bool(bool(config.get('bucket_key_enabled')))}"
            "</BucketKeyEnabled></Rule>"
        ],
    )


def response_headers(record_json: str | None) -> Iterable[tuple[bytes, bytes]]:
    """The headers that tell a client how an object (or upload) is encrypted, as S3 sends them
    on PUT, GET, HEAD, copies and multipart answers: SSE-C echoes the algorithm and the key's
    MD5, SSE-S3 says AES256."""
    if record_json is None:
        return ()
    record = parse_record(record_json)
    if record.mode == MODE_SSE_C:
        return (
            (SSE_C_ALGORITHM_HEADER, AES256.encode()),
            (SSE_C_KEY_MD5_HEADER, record.key_md5.encode()),
        )
    return ((SSE_HEADER, AES256.encode()),)
