"""AccessControl: the coroutine the S3 handlers await and the Deferred API decide alike."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import fail, succeed

from jay.auth.tokens import ANONYMOUS, Principal
from jay.core.access import AccessControl
from jay.errors import AccessDenied, NoSuchBucket
from jay.storage.api import BucketInfo, TokenRecord

BUCKET = BucketInfo(bucket_id="id-1", name="b", owner_account_id="acct", created_at=0.0)


class Buckets:
    def get_bucket(self, name: str) -> Any:
        return succeed(BUCKET) if name == "b" else fail(NoSuchBucket(bucket=name))


def token(**kw: Any) -> TokenRecord:
    fields: dict[str, Any] = {
        "token_id": "t",
        "account_id": "acct",
        "name": "t",
        "secret_hash": "",
        "secret_key": "",
        "allowed_actions": ("*",),
        "created_at": 0.0,
    }
    fields.update(kw)
    return TokenRecord(**fields)


OWNER = Principal(token(), "acct", "sigv4")
SCOPED = Principal(token(prefix_scope=("p/",)), "acct", "sigv4")


async def both(
    principal: Principal, action: str, bucket: str, key: str = "", **kw: Any
) -> tuple[Any, Any]:
    """(coroutine outcome, Deferred outcome): a BucketInfo or the error's type and reason."""
    access = AccessControl(Buckets())  # type: ignore[arg-type]
    outcomes = []
    for call in (access.authorized_bucket, access.authorize_bucket):
        try:
            outcomes.append(await call(principal, action, bucket, key, **kw))
        except (AccessDenied, NoSuchBucket) as exc:
            outcomes.append((type(exc), exc.message, exc.details.get("reason")))
    return outcomes[0], outcomes[1]


@pytest.mark.parametrize(
    ("principal", "action", "bucket", "key", "kw"),
    [
        (OWNER, "object:get", "b", "k", {}),
        (ANONYMOUS, "object:get", "b", "k", {}),
        (ANONYMOUS, "object:get", "missing", "k", {}),
        (OWNER, "object:get", "missing", "k", {}),
        (SCOPED, "object:get", "b", "p/k", {}),
        (SCOPED, "object:get", "b", "q/k", {}),
        (SCOPED, "object:list", "b", "", {"list_prefix": "q/"}),
        (SCOPED, "object:list", "b", "", {"list_prefix": "p/x"}),
        (OWNER, "object:put", "b", "k", {"client_ip": "10.0.0.1"}),
    ],
)
@pytest_twisted.ensureDeferred
async def test_the_coroutine_decides_as_the_deferred_api(
    principal: Principal, action: str, bucket: str, key: str, kw: dict[str, Any]
) -> None:
    awaited, deferred = await both(principal, action, bucket, key, **kw)
    assert awaited == deferred


@pytest_twisted.ensureDeferred
async def test_outcomes() -> None:
    assert (await both(OWNER, "object:get", "b", "k"))[0] == BUCKET
    # A missing bucket is NoSuchBucket to anyone, as on S3 (bucket names are public).
    assert (await both(ANONYMOUS, "object:get", "missing"))[0][0] is NoSuchBucket
    denied = (await both(ANONYMOUS, "object:put", "b", "k"))[0]
    assert denied[:2] == (AccessDenied, "Authentication required")
    assert (await both(OWNER, "object:get", "missing"))[0][0] is NoSuchBucket
    listed = (await both(SCOPED, "object:list", "b", list_prefix="q/"))[0]
    assert listed[:2] == (AccessDenied, "The token may list only under its prefixes")
