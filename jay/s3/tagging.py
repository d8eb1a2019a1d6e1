"""S3 object and bucket tagging: tag sets from XML bodies and ``x-amz-tagging``, their rules,
the ``Tagging`` document, and the canonical JSON a bucket's tags are stored as. Pure.

The rules are S3's (AWS S3 API reference, ``Tag``; user-defined tag restrictions): at most 10
tags on an object and 50 on a bucket, a key of 1 to 128 Unicode characters and a value of 0 to
256, each made of letters, digits, white space and ``_ . : / = + - @`` only, keys unique, and no
key starting with ``aws:`` (reserved for AWS, in any case).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping

from jay.errors import InvalidArgument, InvalidTag, MalformedXML
from jay.s3.routing import percent_decode

# The hardened parser (size cap, DTDs and entities refused) and the namespace-blind element
# helpers every request document shares.
from jay.s3.xml import S3_NAMESPACE, XML_DECLARATION, escape
from jay.xmlsafe import children, local_name, parse_root

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 256
# A Tagging body of 50 tags at the longest, every character written as a numeric reference
# (``&#x10ffff;``, 10 bytes), is under 200 KiB with its markup.
MAX_TAGGING_BODY = 256 * 1024

_RESERVED_PREFIX = "aws:"
_PUNCTUATION = frozenset("_.:/=+-@")
# Unicode general categories the S3 pattern allows: \p{L} letters, \p{Z} separators (spaces),
# \p{N} numbers.
_CATEGORIES = frozenset("LZN")


def _is_allowed(text: str) -> bool:
    for ch in text:
        if ch.isascii():
            if not (ch.isalnum() or ch == " " or ch in _PUNCTUATION):
                return False
        elif unicodedata.category(ch)[0] not in _CATEGORIES:
            return False
    return True


def check_tags(pairs: Iterable[tuple[str, str]], *, for_bucket: bool = False) -> dict[str, str]:
    """The tag set ``pairs`` stands for, sorted by key, or InvalidTag saying what is wrong.

    Sorted, as S3 lists a tag set back; ``pairs`` keeps the request's order and duplicates.
    """
    pairs = list(pairs)
    max_tags = MAX_BUCKET_TAGS if for_bucket else MAX_OBJECT_TAGS
    if len(pairs) > max_tags:
        what = "Bucket" if for_bucket else "Object"
        raise InvalidTag(f"{what} tags cannot be greater than {max_tags}")
    tags: dict[str, str] = {}
    for key, value in pairs:
        if not 1 <= len(key) <= MAX_KEY_CHARS:
            raise InvalidTag(
                f"The TagKey you have provided is invalid: it must be 1 to {MAX_KEY_CHARS} "
                "characters long"
            )
        if len(value) > MAX_VALUE_CHARS:
            raise InvalidTag(
                f"The TagValue you have provided is too long, max {MAX_VALUE_CHARS} characters"
            )
        if not _is_allowed(key):
            raise InvalidTag("The TagKey you have provided is invalid")
        if not _is_allowed(value):
            raise InvalidTag("The TagValue you have provided is invalid")
        if key[: len(_RESERVED_PREFIX)].lower() == _RESERVED_PREFIX:
            raise InvalidTag("System tags cannot be added/updated by requester")
        if key in tags:
            raise InvalidTag("Cannot provide multiple Tags with the same key")
        tags[key] = value
    return dict(sorted(tags.items()))


def parse_tagging(body: bytes, *, for_bucket: bool = False) -> dict[str, str]:
    """A ``<Tagging><TagSet><Tag><Key/><Value/></Tag>…</TagSet></Tagging>`` body (Put*Tagging).

    The shape is checked first (MalformedXML: one TagSet, each Tag with one Key and one Value),
    then the tags (InvalidTag). An empty TagSet is an empty tag set.
    """
    root = parse_root(body, "Tagging", MAX_TAGGING_BODY)
    tag_sets = children(root, "TagSet")
    if len(tag_sets) != 1:
        raise MalformedXML()
    pairs: list[tuple[str, str]] = []
    for element in tag_sets[0]:
        name = local_name(element.tag)
        if not name:
            continue  # a comment or processing instruction
        if name != "Tag":
            raise MalformedXML()
        keys = children(element, "Key")
        values = children(element, "Value")
        if len(keys) != 1 or len(values) != 1:
            raise MalformedXML()
        pairs.append((keys[0].text or "", values[0].text or ""))
    return check_tags(pairs, for_bucket=for_bucket)


_HEADER_FORMAT = (
    "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters "
    "without tag name duplicates."
)


def parse_tagging_header(text: str) -> dict[str, str]:
    """``x-amz-tagging`` (PutObject, CreateMultipartUpload, CopyObject with REPLACE): URL query
    parameters ``k1=v1&k2``, a missing ``=`` meaning an empty value and ``+`` a space, as in a
    query string. Bad encoding or a repeated key is InvalidArgument, as S3 answers for this
    header; the tags themselves follow ``check_tags``."""
    pairs: list[tuple[str, str]] = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        try:
            pairs.append(
                (
                    percent_decode(name, plus_is_space=True),
                    percent_decode(value, plus_is_space=True),
                )
            )
        except ValueError:
            raise InvalidArgument(_HEADER_FORMAT, argument_name="x-amz-tagging") from None
    if len({key for key, _ in pairs}) != len(pairs):
        raise InvalidArgument(_HEADER_FORMAT, argument_name="x-amz-tagging")
    return check_tags(pairs)


def render_tagging(tags: Mapping[str, str]) -> bytes:
    """The ``Tagging`` document of Get*Tagging, tags in key order."""
    tag_set = "".join(
        f"<Tag><Key>{escape(key)}</Key><Value>{escape(value)}</Value></Tag>"
        for key, value in sorted(tags.items())
    )
    return (
        XML_DECLARATION + f'<Tagging xmlns="{S3_NAMESPACE}"><TagSet>{tag_set}</TagSet></Tagging>'
    ).encode("utf-8")


def encode_bucket_tags(tags: Mapping[str, str]) -> str:
    """The canonical JSON a bucket's tag set is stored as (``BUCKET_CONFIG_TAGGING``): one
    object, keys sorted, no spaces, so equal tag sets are equal strings."""
    return json.dumps(dict(tags), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode_bucket_tags(stored: str) -> dict[str, str]:
    raw = json.loads(stored)
    return {str(key): str(value) for key, value in raw.items()}
