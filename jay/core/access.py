"""The one implementation of every access decision, called by the S3 and native front ends.

Existence is revealed only to callers who could act on the bucket: an anonymous caller asking
for a bucket that does not exist gets AccessDenied, as for a bucket it may not read
(JAY_SPEC §8.2 item 13).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from jay.auth.policy import decide, list_prefix_allowed, scope_allows
from jay.auth.tokens import Principal
from jay.errors import AccessDenied, NoSuchBucket
from jay.storage.api import BucketInfo, Storage


class AccessControl:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def authorize_service(self, principal: Principal, action: str, bucket_name: str = "") -> None:
        """Operations without an existing bucket: ListBuckets, CreateBucket."""
        if principal.token is None:
            raise AccessDenied("Authentication required")
        if not scope_allows(principal.token, action, bucket_name, ""):
            raise AccessDenied()

    def authorize_bucket(
        self,
        principal: Principal,
        action: str,
        bucket_name: str,
        key: str = "",
        *,
        client_ip: str = "",
        list_prefix: str | None = None,
    ) -> Deferred[BucketInfo]:
        return Deferred.fromCoroutine(
            self.authorized_bucket(
                principal, action, bucket_name, key, client_ip=client_ip, list_prefix=list_prefix
            )
        )

    async def authorized_bucket(
        self,
        principal: Principal,
        action: str,
        bucket_name: str,
        key: str = "",
        *,
        client_ip: str = "",
        list_prefix: str | None = None,
    ) -> BucketInfo:
        """``authorize_bucket`` as a coroutine, for callers that await it from a coroutine of
        their own (the S3 handlers): no Deferred wrapped around it per request."""
        try:
            bucket = await self._storage.get_bucket(bucket_name)
        except NoSuchBucket:
            if principal.token is None:
                raise AccessDenied("Authentication required") from None
            raise
        self.check(principal, action, bucket, key, client_ip)
        if list_prefix is not None and not list_prefix_allowed(principal.token, list_prefix):
            raise AccessDenied("The token may list only under its prefixes", bucket=bucket_name)
        return bucket

    def check(
        self, principal: Principal, action: str, bucket: BucketInfo, key: str, client_ip: str
    ) -> None:
        """The decision for an already loaded bucket (DeleteObjects checks every key)."""
        decision = decide(
            token=principal.token,
            account_id=principal.account_id,
            action=action,
            bucket=bucket,
            key=key,
            client_ip=client_ip,
        )
        if not decision.allowed:
            raise AccessDenied(
                "Authentication required" if principal.token is None else "Access Denied",
                bucket=bucket.name,
                key=key,
                reason=decision.reason,
            )
