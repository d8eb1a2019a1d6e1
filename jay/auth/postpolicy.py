"""POST Object (browser form upload) credentials and policies; pure.

A form upload carries its own credentials as form fields: SigV4 (``x-amz-algorithm``,
``x-amz-credential``, ``x-amz-date``, ``x-amz-signature``, the hex HMAC-SHA256 of the base64
``policy`` under the day's signing key) or SigV2 (``AWSAccessKeyId`` and ``signature``, the
base64 HMAC-SHA1 of the base64 ``policy`` under the secret). The signature covers the policy
only; the policy in turn constrains every other field (AWS "Creating a POST Policy"): an
``expiration``, and ``conditions`` that are exact matches, ``starts-with`` prefixes or a
``content-length-range`` for the file. A field no condition covers is refused, so a signed
policy cannot be stretched to write another key or set other headers.

Form field names are case-insensitive; every mapping here has lower-case names.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jay.auth import sigv4
from jay.errors import (
    AccessDenied,
    EntityTooLarge,
    EntityTooSmall,
    InvalidArgument,
    InvalidPolicyDocument,
)

# Fields a policy does not have to mention (AWS): the credentials themselves, the file, and
# anything the page marks as not for S3 with the x-ignore- prefix.
EXEMPT_FIELDS = frozenset({"policy", "signature", "x-amz-signature", "awsaccesskeyid", "file"})
IGNORED_PREFIX = "x-ignore-"
# Checksums are not required in the policy either (ceph s3-tests send x-amz-checksum-sha256
# under a policy without it and expect success): they can only make an upload fail, never
# change what is written or where.
CHECKSUM_PREFIX = "x-amz-checksum-"
# The largest policy document jay decodes; the fields before the file (20 KiB) bound it anyway.
MAX_POLICY_BYTES = 20 * 1024

_EXPIRATION = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(Z|[+-]\d{2}:\d{2})"
)


@dataclass(frozen=True, slots=True)
class Condition:
    """One policy condition. ``field`` is lower-case without ``$``; for ``content-length-range``
    it is "" and ``low``/``high`` hold the bounds."""

    operator: str  # "eq" | "starts-with" | "content-length-range"
    field: str = ""
    value: str = ""
    low: int = 0
    high: int = 0
    text: str = ""  # the condition as written, for error messages

    def matches(self, fields: Mapping[str, str]) -> bool:
        given = fields.get(self.field)
        if self.operator == "eq":
            return given is not None and given == self.value
        # starts-with: an empty prefix allows anything, even a missing field.
        if not self.value:
            return True
        if given is None:
            return False
        if self.field == "content-type":
            # AWS: for Content-Type each comma-separated value must start with the prefix.
            return all(part.strip().startswith(self.value) for part in given.split(","))
        return given.startswith(self.value)


@dataclass(frozen=True, slots=True)
class PostPolicy:
    expiration: int  # Unix seconds
    conditions: tuple[Condition, ...]
    length_range: tuple[int, int] | None  # the content-length-range, if any

    def check_expiration(self, now: float) -> None:
        if now >= self.expiration:
            raise AccessDenied("Invalid according to Policy: Policy expired.")

    def check_fields(self, fields: Mapping[str, str]) -> None:
        """Every condition holds and every field is covered, else 403 AccessDenied."""
        covered = set()
        for condition in self.conditions:
            if condition.operator == "content-length-range":
                continue
            if not condition.matches(fields):
                raise AccessDenied(
                    f"Invalid according to Policy: Policy Condition failed: {condition.text}"
                )
            covered.add(condition.field)
        extra = [
            name
            for name in fields
            if name not in covered
            and name not in EXEMPT_FIELDS
            and not name.startswith(IGNORED_PREFIX)
            and not name.startswith(CHECKSUM_PREFIX)
        ]
        if extra:
            raise AccessDenied(
                "Invalid according to Policy: Extra input fields: " + ", ".join(sorted(extra))
            )

    def check_size(self, size: int) -> None:
        if self.length_range is None:
            return
        low, high = self.length_range
        if size > high:
            raise EntityTooLarge(
                "Your proposed upload exceeds the maximum allowed size", max_size_allowed=high
            )
        if size < low:
            raise EntityTooSmall(
                "Your proposed upload is smaller than the minimum allowed size",
                min_size_allowed=low,
            )


def _invalid(reason: str) -> InvalidPolicyDocument:
    return InvalidPolicyDocument(f"Invalid Policy: {reason}")


def parse_expiration(text: str) -> int:
    """ISO 8601 ``2026-01-02T03:04:05Z`` (fraction and offset allowed) → Unix seconds."""
    match = _EXPIRATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(text)
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        raise ValueError(text)
    if day > calendar.monthrange(year, month)[1]:
        raise ValueError(text)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    offset = match.group(7)
    if offset != "Z":
        delta = int(offset[1:3]) * 3600 + int(offset[4:6]) * 60
        seconds -= delta if offset[0] == "+" else -delta
    return seconds


def _condition_text(raw: Any) -> str:
    return json.dumps(raw, ensure_ascii=False, separators=(", ", ": "))


def _length(value: Any) -> int:
    # JSON numbers, or digit strings as some SDKs write them.
    if isinstance(value, bool):
        raise _invalid("Invalid content-length-range value")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise _invalid("Invalid content-length-range value")
    if number < 0:
        raise _invalid("Invalid content-length-range value")
    return number


def _parse_condition(raw: Any) -> Condition:
    text = _condition_text(raw)
    if isinstance(raw, dict):
        if len(raw) != 1:
            raise _invalid(
                "Invalid Simple-Condition: Simple-Conditions must have exactly one property "
                "specified."
            )
        ((name, value),) = raw.items()
        if not isinstance(value, str):
            raise _invalid(f"Invalid Simple-Condition: value must be a string: {text}")
        return Condition("eq", name.lower().removeprefix("$"), value, text=text)
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        raise _invalid(f"Invalid Condition: {text}")
    operator = raw[0].lower()
    if operator == "content-length-range":
        if len(raw) != 3:
            raise _invalid("Invalid content-length-range: it needs a minimum and a maximum")
        low, high = _length(raw[1]), _length(raw[2])
        if low > high:
            raise _invalid("Invalid content-length-range: the minimum exceeds the maximum")
        return Condition(operator, low=low, high=high, text=text)
    if operator not in ("eq", "starts-with"):
        raise _invalid(f"Invalid Condition: unknown operation {raw[0]!r}")
    if len(raw) != 3 or not isinstance(raw[1], str) or not isinstance(raw[2], str):
        raise _invalid(f"Invalid Condition: {text}")
    if not raw[1].startswith("$") or len(raw[1]) < 2:
        raise _invalid(f"Invalid Condition: the field must begin with '$': {text}")
    return Condition(operator, raw[1][1:].lower(), raw[2], text=text)


def parse_post_policy(encoded: str) -> PostPolicy:
    """The base64 ``policy`` field → PostPolicy; InvalidPolicyDocument when malformed.

    ``expiration`` and ``conditions`` are required and their names are case-sensitive.
    """
    if len(encoded) > MAX_POLICY_BYTES * 4 // 3 + 4:
        raise _invalid("The policy document is too large")
    try:
        document = base64.b64decode(encoded.strip().encode("ascii"), validate=True)
        parsed = json.loads(document.decode("utf-8"))
    except (ValueError, UnicodeError, binascii.Error):
        raise _invalid("The policy is not base64-encoded JSON") from None
    if not isinstance(parsed, dict):
        raise _invalid("The policy must be a JSON object")
    expiration_text = parsed.get("expiration")
    if not isinstance(expiration_text, str):
        raise _invalid("Policy missing expiration")
    try:
        expiration = parse_expiration(expiration_text)
    except ValueError:
        raise _invalid(f"Invalid 'expiration' value: '{expiration_text}'") from None
    raw_conditions = parsed.get("conditions")
    if not isinstance(raw_conditions, list):
        raise _invalid("Policy missing conditions")
    conditions: list[Condition] = []
    length_range: tuple[int, int] | None = None
    for raw in raw_conditions:
        condition = _parse_condition(raw)
        if condition.operator == "content-length-range":
            length_range = (condition.low, condition.high)
        conditions.append(condition)
    return PostPolicy(expiration, tuple(conditions), length_range)


# --- credentials ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormCredentials:
    """What a signed form claims; ``credential`` is set for SigV4 only."""

    access_key: str
    signature: str
    policy: str
    credential: sigv4.Credential | None = None

    @property
    def auth_method(self) -> str:
        return "sigv4-post" if self.credential is not None else "sigv2-post"


def _required(fields: Mapping[str, str], name: str, shown: str) -> str:
    value = fields.get(name)
    if not value:
        raise InvalidArgument(
            f"Bucket POST must contain a field named '{shown}'.  If it is specified, please "
            "check the order of the fields.",
            argument_name=shown,
        )
    return value


_V4_FIELDS = ("x-amz-algorithm", "x-amz-credential", "x-amz-signature", "x-amz-date")


def parse_form_credentials(fields: Mapping[str, str]) -> FormCredentials | None:
    """The form's credentials, or None for an anonymous form; InvalidArgument when partial."""
    if any(name in fields for name in _V4_FIELDS):
        algorithm = _required(fields, "x-amz-algorithm", "x-amz-algorithm")
        if algorithm != sigv4.ALGORITHM:
            raise InvalidArgument(
                "Only AWS4-HMAC-SHA256 is supported for x-amz-algorithm",
                argument_name="x-amz-algorithm",
                argument_value=algorithm,
            )
        credential = sigv4._parse_credential(
            _required(fields, "x-amz-credential", "x-amz-credential"), InvalidArgument
        )
        amz_date = _required(fields, "x-amz-date", "x-amz-date")
        try:
            sigv4.parse_request_time(amz_date)
        except ValueError:
            raise InvalidArgument(
                "x-amz-date must be in the ISO 8601 basic format",
                argument_name="x-amz-date",
                argument_value=amz_date,
            ) from None
        signature = _required(fields, "x-amz-signature", "x-amz-signature")
        policy = _required(fields, "policy", "policy")
        return FormCredentials(credential.access_key, signature, policy, credential)
    if "awsaccesskeyid" in fields or "signature" in fields:
        access_key = _required(fields, "awsaccesskeyid", "AWSAccessKeyId")
        signature = _required(fields, "signature", "Signature")
        policy = _required(fields, "policy", "policy")
        return FormCredentials(access_key, signature, policy)
    return None


def sigv2_form_signature(secret: str, policy: str) -> str:
    """base64(HMAC-SHA1(secret, base64 policy)) (AWS: "Browser-Based Uploads Using POST")."""
    digest = hmac.new(secret.encode("utf-8"), policy.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def sigv4_form_signature(secret: str, credential: sigv4.Credential, policy: str) -> str:
    """hex(HMAC-SHA256(signing key, base64 policy)): the policy is the string to sign."""
    key = sigv4.signing_key(secret, credential.date, credential.region, credential.service)
    return sigv4.sign(key, policy)


def verify_form_signature(credentials: FormCredentials, secret: str) -> bool:
    """Constant-time comparison of the form's signature with the one ``secret`` gives."""
    if not secret:
        return False
    if credentials.credential is not None:
        expected = sigv4_form_signature(secret, credentials.credential, credentials.policy)
        given = credentials.signature.strip().lower()
    else:
        expected = sigv2_form_signature(secret, credentials.policy)
        given = credentials.signature.strip()
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8"))
