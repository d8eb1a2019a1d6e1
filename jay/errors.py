"""Domain exceptions shared by every layer.

They carry data (bucket, key, reason) and no wire format: each front end maps them to its own
status codes in one table (``jay.s3.errors``, ``jay.native.errors``, the admin app). Messages never
contain secrets or filesystem paths.
"""

from __future__ import annotations


class JayError(Exception):
    """Base of every expected failure. ``message`` is safe to show to a client."""

    default_message = "Internal error"

    def __init__(
        self,
        message: str | None = None,
        *,
        bucket: str = "",
        key: str = "",
        resource: str = "",
        **details: object,
    ) -> None:
        self.message = message or self.default_message
        self.bucket = bucket
        self.key = key
        self.resource = resource
        self.details = details
        super().__init__(self.message)


class ConfigError(JayError):
    """A setting is invalid; startup stops before any port opens."""

    default_message = "Invalid configuration"


# --- lookups -------------------------------------------------------------------------------


class NoSuchBucket(JayError):
    default_message = "The specified bucket does not exist"


class NoSuchKey(JayError):
    default_message = "The specified key does not exist."


class NoSuchVersion(JayError):
    """A version id that names no version of the key (S3 versioning)."""

    default_message = "The specified version does not exist."


class NoSuchUpload(JayError):
    default_message = (
        "The specified multipart upload does not exist. The upload ID may be invalid, "
        "or the upload may have been aborted or completed."
    )


class NoSuchAccount(JayError):
    default_message = "Account not found"


class NoSuchToken(JayError):
    default_message = "Token not found"


class NoSuchBucketPolicy(JayError):
    default_message = "The bucket policy does not exist"


class NoSuchCORSConfiguration(JayError):
    default_message = "The CORS configuration does not exist"


class NoSuchTagSet(JayError):
    """GetBucketTagging on a bucket without tags."""

    default_message = "The TagSet does not exist"


class NoSuchLifecycleConfiguration(JayError):
    default_message = "The lifecycle configuration does not exist"


class NoSuchPublicAccessBlockConfiguration(JayError):
    default_message = "The public access block configuration was not found"


class KMSKeyNotFound(JayError):
    """SSE-KMS named a key the local keyring does not hold (S3: KMS.NotFoundException)."""

    default_message = "Invalid keyId"


class ServerSideEncryptionConfigurationNotFound(JayError):
    """GetBucketEncryption on a bucket without a default encryption configuration."""

    default_message = "The server side encryption configuration was not found"


class OwnershipControlsNotFound(JayError):
    default_message = "The bucket ownership controls were not found"


class NoSuchWebsiteConfiguration(JayError):
    default_message = "The specified bucket does not have a website configuration"


class ReplicationConfigurationNotFound(JayError):
    default_message = "The replication configuration was not found"


class ObjectLockConfigurationNotFound(JayError):
    default_message = "Object Lock configuration does not exist for this bucket"


class NoSuchObjectLockConfiguration(JayError):
    """GetObjectRetention / GetObjectLegalHold of a version that never had one set."""

    default_message = "The specified object does not have a ObjectLock configuration"


# --- conflicts and validation --------------------------------------------------------------


class BucketAlreadyExists(JayError):
    """The name is taken by another account."""

    default_message = (
        "The requested bucket name is not available. The bucket namespace is shared by all "
        "users of the system. Please select a different name and try again."
    )


class AccessControlListNotSupported(JayError):
    """An ACL other than the bucket owner's full control, on a bucket with ACLs disabled."""

    default_message = "The bucket does not allow ACLs"


class InvalidBucketAclWithObjectOwnership(JayError):
    default_message = (
        "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
    )


class BucketAlreadyOwnedByYou(JayError):
    default_message = "The bucket you tried to create already exists, and you already own it."


class BucketNotEmpty(JayError):
    default_message = "The bucket you tried to delete is not empty"


class InvalidBucketState(JayError):
    """The request conflicts with the bucket's state (Object Lock needs versioning Enabled;
    versioning of a bucket with Object Lock cannot be suspended)."""

    default_message = "The request is not valid with the current state of the bucket."


class InvalidRetentionPeriod(JayError):
    default_message = "Default retention period must be a positive integer value."


class TooManyBuckets(JayError):
    default_message = "You have attempted to create more buckets than allowed"


class InvalidBucketName(JayError):
    default_message = "The specified bucket is not valid."


class KeyTooLong(JayError):
    default_message = "Your key is too long"


class InvalidArgument(JayError):
    default_message = "Invalid Argument"


class InvalidRequest(JayError):
    default_message = "Invalid Request"


class MalformedXML(JayError):
    default_message = (
        "The XML you provided was not well-formed or did not validate against our published schema"
    )


class MalformedACLError(JayError):
    default_message = (
        "The XML you provided was not well-formed or did not validate against our published schema"
    )


class UnexpectedContent(JayError):
    default_message = "This request does not support content"


class UnresolvableGrantByEmailAddress(JayError):
    default_message = "The e-mail address you provided does not match any account on record."


class MalformedPolicy(JayError):
    default_message = "Policies must be valid JSON"


class InvalidTag(JayError):
    """A tag set breaks S3's tagging rules (count, lengths, characters, duplicates, aws:)."""

    default_message = "The tag provided was not a valid tag."


class MetadataTooLarge(JayError):
    default_message = "Your metadata headers exceed the maximum allowed metadata size."


class EntityTooLarge(JayError):
    default_message = "Your proposed upload exceeds the maximum allowed size"


class EntityTooSmall(JayError):
    default_message = "Your proposed upload is smaller than the minimum allowed object size."


class IncompleteBody(JayError):
    default_message = (
        "You did not provide the number of bytes specified by the Content-Length HTTP header."
    )


class InvalidPart(JayError):
    default_message = (
        "One or more of the specified parts could not be found. The part may not have been "
        "uploaded, or the specified entity tag may not match the part's entity tag."
    )


class InvalidPartOrder(JayError):
    default_message = (
        "The list of parts was not in ascending order. Parts must be ordered by part number."
    )


class InvalidRange(JayError):
    default_message = "The requested range is not satisfiable"


class PreconditionFailed(JayError):
    default_message = "At least one of the pre-conditions you specified did not hold"


class NotModified(JayError):
    default_message = "Not Modified"


class ConditionalRequestConflict(JayError):
    default_message = (
        "A conflicting conditional operation is currently in progress against this resource."
    )


class BadDigest(JayError):
    default_message = "The Content-MD5 or checksum value that you specified did not match what the server received."


class InvalidDigest(JayError):
    default_message = "The Content-MD5 or checksum value that you specified is not valid."


class ChecksumMismatch(JayError):
    """Stored bytes no longer match their recorded SHA-256 (bit rot, truncation)."""

    default_message = "Stored object failed checksum verification"


# --- access ---------------------------------------------------------------------------------


class AccessDenied(JayError):
    default_message = "Access Denied"


class InvalidAccessKeyId(JayError):
    default_message = "The AWS Access Key Id you provided does not exist in our records."


class SignatureDoesNotMatch(JayError):
    default_message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    )


class RequestTimeTooSkewed(JayError):
    default_message = "The difference between the request time and the current time is too large."


class AuthorizationHeaderMalformed(JayError):
    default_message = "The authorization header is malformed."


class AuthorizationQueryParametersError(JayError):
    default_message = "Query-string authentication parameters are malformed."


class ExpiredToken(JayError):
    default_message = "The provided token has expired."


class SlowDown(JayError):
    default_message = "Please reduce your request rate."

    def __init__(self, message: str | None = None, *, retry_after_seconds: int = 1, **kw: object):
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after_seconds = retry_after_seconds


# --- protocol / server ----------------------------------------------------------------------


class NotImplementedOperation(JayError):
    default_message = (
        "A header or query you provided implies functionality that is not implemented."
    )


class BadRequest(JayError):
    """A request S3 calls plainly bad (e.g. a CORS preflight without ``Origin``)."""

    default_message = "Bad Request"


class CORSForbidden(JayError):
    """A CORS preflight the bucket's CORS configuration (or its absence) does not allow."""

    default_message = "CORSResponse: CORS is not enabled for this bucket."


class MethodNotAllowed(JayError):
    default_message = "The specified method is not allowed against this resource."


class StorageFull(JayError):
    """ENOSPC/EDQUOT while writing: nothing was stored."""

    default_message = "Insufficient storage space to complete the request"


class StorageIOError(JayError):
    """EIO or another OS error while writing or reading object bytes."""

    default_message = "An I/O error occurred while processing the request"


class ServiceUnavailable(JayError):
    default_message = "The service is shutting down or not ready"


class InvalidURI(JayError):
    """The request path or query is not valid percent-encoded UTF-8."""

    default_message = "Couldn't parse the specified URI."


class ContentSHA256Mismatch(JayError):
    """x-amz-content-sha256 was a hex digest that does not match the body received."""

    default_message = "The provided 'x-amz-content-sha256' header does not match what was computed."


class MissingContentLength(JayError):
    default_message = "You must provide the Content-Length HTTP header."


# --- POST Object (browser form uploads) -------------------------------------------------------


class InvalidPolicyDocument(JayError):
    """The form's POST policy is not base64 JSON of the documented shape."""

    default_message = "Invalid Policy: The policy document is not valid."


class MalformedPOSTRequest(JayError):
    default_message = "The body of your POST request is not well-formed multipart/form-data."


class MaxPostPreDataLengthExceeded(JayError):
    default_message = "Your POST request fields preceding the upload file were too large."
