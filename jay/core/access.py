"""The one implementation of every access decision, called by the S3 and native front ends.

Existence is revealed only to callers who could act on the bucket: an anonymous caller asking
for a bucket that does not exist gets AccessDenied, as for a bucket it may not read
(JAY_SPEC §8.2 item 13).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred

from jay.auth import acl, public_access
from jay.auth.policy import (
    EXISTING_OBJECT_TAG,
    EXISTING_TAG_ACTIONS,
    PRINCIPAL_KEYS,
    TIME_KEYS,
    ConditionContext,
    ConditionSource,
    Decision,
    decide,
    denied_by_policy,
    list_prefix_allowed,
    policy_condition_keys,
    scope_allows,
)
from jay.auth.tokens import Principal
from jay.errors import AccessDenied, NoSuchKey
from jay.storage.api import BUCKET_CONFIG_ACL, BucketInfo, Storage


class AccessControl:
    def __init__(self, storage: Storage, clock: Any = None) -> None:
        self._storage = storage
        if clock is None:
            from twisted.internet import reactor as clock
        self._clock = clock  # IReactorTime: aws:CurrentTime / aws:EpochTime

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
        conditions: ConditionSource | None = None,
    ) -> Deferred[BucketInfo]:
        return Deferred.fromCoroutine(
            self.authorized_bucket(
                principal,
                action,
                bucket_name,
                key,
                client_ip=client_ip,
                list_prefix=list_prefix,
                conditions=conditions,
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
        conditions: ConditionSource | None = None,
    ) -> BucketInfo:
        """``authorize_bucket`` as a coroutine, for callers that await it from a coroutine of
        their own (the S3 handlers): no Deferred wrapped around it per request."""
        bucket = await self._existing_bucket(principal, bucket_name)
        context = None
        if bucket.policy_json:  # a policy's conditions may need the request's values
            context = await self._context(principal, action, bucket, key, conditions)
        self.check(principal, action, bucket, key, client_ip, context=context)
        if list_prefix is not None and not list_prefix_allowed(principal.token, list_prefix):
            raise AccessDenied("The token may list only under its prefixes", bucket=bucket_name)
        return bucket

    def check(
        self,
        principal: Principal,
        action: str,
        bucket: BucketInfo,
        key: str,
        client_ip: str,
        *,
        conditions: ConditionSource | None = None,
        context: ConditionContext | None = None,
    ) -> None:
        """The decision for an already loaded bucket (DeleteObjects checks every key). Here
        a policy's s3:ExistingObjectTag keys are absent: reading them needs the object."""
        if context is None and bucket.policy_json:
            keys = policy_condition_keys(bucket.policy_json)
            if keys:
                context = self._base_context(principal, keys, conditions)
        decision = decide(
            token=principal.token,
            account_id=principal.account_id,
            action=action,
            bucket=bucket,
            key=key,
            client_ip=client_ip,
            context=context,
        )
        if not decision.allowed:
            raise self._denied(principal, bucket, key, decision)

    async def _decide(
        self,
        principal: Principal,
        action: str,
        bucket: BucketInfo,
        key: str,
        client_ip: str,
        conditions: ConditionSource | None,
    ) -> Decision:
        context = None
        if bucket.policy_json:
            context = await self._context(principal, action, bucket, key, conditions)
        return decide(
            token=principal.token,
            account_id=principal.account_id,
            action=action,
            bucket=bucket,
            key=key,
            client_ip=client_ip,
            context=context,
        )

    def _base_context(
        self, principal: Principal, keys: frozenset[str], conditions: ConditionSource | None
    ) -> ConditionContext:
        """The values of ``keys`` that the front end, the principal and the clock give."""
        values = dict(conditions.condition_values(keys)) if conditions is not None else {}
        if not keys.isdisjoint(TIME_KEYS):
            now = self._clock.seconds()
            values["aws:epochtime"] = (str(int(now)),)
            values["aws:currenttime"] = (
                datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        if principal.token is not None and not keys.isdisjoint(PRINCIPAL_KEYS):
            values["aws:principalaccount"] = (principal.account_id,)
            values["aws:username"] = values["aws:userid"] = (principal.token_id,)
        return ConditionContext(values)

    async def _context(
        self,
        principal: Principal,
        action: str,
        bucket: BucketInfo,
        key: str,
        conditions: ConditionSource | None,
    ) -> ConditionContext | None:
        """The request's condition values when the bucket's policy reads any (else None). The
        object's tags (s3:ExistingObjectTag/…) are loaded only when a condition names one."""
        keys = policy_condition_keys(bucket.policy_json or "")
        if not keys:
            return None
        context = self._base_context(principal, keys, conditions)
        if (
            key
            and action in EXISTING_TAG_ACTIONS
            and any(k.startswith(EXISTING_OBJECT_TAG) for k in keys)
        ):
            try:
                info = await self._storage.get_object_info(bucket.name, key)
            except NoSuchKey:
                return context
            values = dict(context.values)
            for tag, value in info.attributes.tags.items():
                values[EXISTING_OBJECT_TAG + tag] = (value,)
            context = ConditionContext(values)
        return context

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
        # A missing bucket is NoSuchBucket to anyone, anonymous callers included, as on S3
        # (bucket names are public; what a bucket holds is what access control guards).
        return await self._storage.get_bucket(bucket_name)

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
        conditions: ConditionSource | None = None,
    ) -> BucketInfo:
        """``authorized_bucket``, or else the object's own ACL granting ``permission`` (READ
        for GET/HEAD, READ_ACP / WRITE_ACP for its ACL) — unless a policy denies. A missing
        key is AccessDenied to a caller who may not list the bucket, NoSuchKey to one who may
        (S3's rule: listing would tell it anyway)."""
        bucket = await self._existing_bucket(principal, bucket_name)
        decision = await self._decide(principal, action, bucket, key, client_ip, conditions)
        if decision.allowed:
            return bucket
        if not denied_by_policy(decision) and (
            principal.token is None or scope_allows(principal.token, action, bucket_name, key)
        ):
            try:
                stored = await self._storage.get_object_acl(bucket_name, key)
            except NoSuchKey:
                listing = await self._decide(
                    principal, "object:list", bucket, "", client_ip, conditions
                )
                if listing.allowed:
                    raise
                stored = None
            if stored is not None and acl.has_permission(
                # IgnorePublicAcls: the object's public grants count for nothing.
                public_access.effective_acl(stored, bucket),
                self._caller(principal),
                permission,
            ):
                return bucket
        raise self._denied(principal, bucket, key, decision)

    async def authorized_bucket_acp(
        self,
        principal: Principal,
        action: str,
        permission: str,
        bucket_name: str,
        client_ip: str,
        conditions: ConditionSource | None = None,
    ) -> BucketInfo:
        """Reading (READ_ACP) or replacing (WRITE_ACP) a bucket's ACL: its owner, or a caller
        the bucket ACL grants that permission (a policy's deny wins)."""
        bucket = await self._existing_bucket(principal, bucket_name)
        decision = await self._decide(principal, action, bucket, "", client_ip, conditions)
        if decision.allowed and principal.account_id == bucket.owner_account_id:
            return bucket
        stored = bucket.config(BUCKET_CONFIG_ACL)
        if (
            not denied_by_policy(decision)
            and stored is not None
            and (principal.token is None or scope_allows(principal.token, action, bucket_name, ""))
            and acl.has_permission(
                public_access.effective_acl(stored, bucket),
                self._caller(principal),
                permission,
            )
        ):
            return bucket
        if decision.allowed:
            decision = Decision(False, "only the owner or an ACL grant may use the bucket ACL")
        raise self._denied(principal, bucket, "", decision)
