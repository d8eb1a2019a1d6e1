"""The one implementation of every access decision, called by the S3 and native front ends.

Existence is revealed only to callers who could act on the bucket: an anonymous caller asking
for a bucket that does not exist gets AccessDenied, as for a bucket it may not read
(JAY_SPEC §8.2 item 13).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from jay.auth import acl, public_access
from jay.auth.policy import Decision, decide, denied_by_policy, list_prefix_allowed, scope_allows
from jay.auth.tokens import Principal
from jay.errors import AccessDenied, NoSuchBucket, NoSuchKey
from jay.storage.api import BUCKET_CONFIG_ACL, BucketInfo, Storage


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
            raise self._denied(principal, bucket, key, decision)

    def _decide(
        self, principal: Principal, action: str, bucket: BucketInfo, key: str, client_ip: str
    ) -> Decision:
        return decide(
            token=principal.token,
            account_id=principal.account_id,
            action=action,
            bucket=bucket,
            key=key,
            client_ip=client_ip,
        )

    @staticmethod
    def _denied(
        principal: Principal, bucket: BucketInfo, key: str, decision: Decision
    ) -> Exception:
        return AccessDenied(
            "Authentication required" if principal.token is None else "Access Denied",
            bucket=bucket.name,
            key=key,
            reason=decision.reason,
        )

    async def _existing_bucket(self, principal: Principal, bucket_name: str) -> BucketInfo:
        try:
            return await self._storage.get_bucket(bucket_name)
        except NoSuchBucket:
            if principal.token is None:
                raise AccessDenied("Authentication required") from None
            raise

    @staticmethod
    def _caller(principal: Principal) -> str | None:
        """The account an ACL grant names the caller by (None: anonymous)."""
        return principal.account_id if principal.token is not None else None

    async def authorized_object(
        self,
        principal: Principal,
        action: str,
        permission: str,
        bucket_name: str,
        key: str,
        *,
        client_ip: str = "",
    ) -> BucketInfo:
        """``authorized_bucket``, or else the object's own ACL granting ``permission`` (READ
        for GET/HEAD, READ_ACP / WRITE_ACP for its ACL) — unless a policy denies. A missing
        key is AccessDenied to a caller who may not read the bucket."""
        bucket = await self._existing_bucket(principal, bucket_name)
        decision = self._decide(principal, action, bucket, key, client_ip)
        if decision.allowed:
            return bucket
        if not denied_by_policy(decision) and (
            principal.token is None or scope_allows(principal.token, action, bucket_name, key)
        ):
            try:
                stored = await self._storage.get_object_acl(bucket_name, key)
            except NoSuchKey:
                stored = None
            if stored is not None and acl.has_permission(
                # IgnorePublicAcls: the object's public grants count for nothing.
                public_access.effective_acl(stored, public_access.block_of(bucket)),
                self._caller(principal),
                permission,
            ):
                return bucket
        raise self._denied(principal, bucket, key, decision)

    async def authorized_bucket_acp(
        self, principal: Principal, action: str, permission: str, bucket_name: str, client_ip: str
    ) -> BucketInfo:
        """Reading (READ_ACP) or replacing (WRITE_ACP) a bucket's ACL: its owner, or a caller
        the bucket ACL grants that permission (a policy's deny wins)."""
        bucket = await self._existing_bucket(principal, bucket_name)
        decision = self._decide(principal, action, bucket, "", client_ip)
        if decision.allowed and principal.account_id == bucket.owner_account_id:
            return bucket
        stored = bucket.config(BUCKET_CONFIG_ACL)
        if (
            not denied_by_policy(decision)
            and stored is not None
            and (principal.token is None or scope_allows(principal.token, action, bucket_name, ""))
            and acl.has_permission(
                public_access.effective_acl(stored, public_access.block_of(bucket)),
                self._caller(principal),
                permission,
            )
        ):
            return bucket
        if decision.allowed:
            decision = Decision(False, "only the owner or an ACL grant may use the bucket ACL")
        raise self._denied(principal, bucket, "", decision)
