"""Turn a request's credentials into a Principal; used by the S3 front end (and the native
handshake through ``TokenVerifier.verify_bearer``).

Supported, in this order: Jay presigned URLs (X-Jay-*), SigV4 presigned query (X-Amz-*), SigV2
presigned query (AWSAccessKeyId/Expires/Signature), ``Authorization: Bearer id:secret``,
``Authorization: AWS4-HMAC-SHA256 …``, ``Authorization: AWS id:signature`` (SigV2 header). No
credentials → anonymous. Bad credentials are errors with their own S3 codes (never silently
anonymous, unlike upstream §2.1). POST Object forms carry their credentials in the body:
``authenticate_post_form`` checks them once the fields before the file are read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from jay.auth import postpolicy, presign, sigv4
from jay.auth.tokens import ANONYMOUS, Principal, TokenVerifier
from jay.errors import AccessDenied, InvalidArgument, SignatureDoesNotMatch

HeaderPairs = Sequence[tuple[bytes, bytes]]


@dataclass(slots=True)  # not frozen: built per request (see jay.s3.routing.Route)
class AuthResult:
    principal: Principal
    # Set for SigV4: what the body decoder needs for chunk signatures and payload checks.
    signing: sigv4.SigningContext | None = None


def _first_header(headers: HeaderPairs, name: bytes) -> bytes | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


class Authenticator:
    def __init__(self, verifier: TokenVerifier, *, signing_secret: str, clock: IReactorTime):
        self._verifier = verifier
        self._signing_secret = signing_secret
        self._clock = clock

    def authenticate(
        self,
        method: str,
        raw_path: bytes,
        raw_query: bytes,
        headers: HeaderPairs,
        *,
        virtual_host_bucket: str = "",
    ) -> Deferred[AuthResult]:
        """``virtual_host_bucket``: the bucket named by the Host header, which SigV2 signs as
        the first path segment of its resource."""
        return Deferred.fromCoroutine(
            self.authenticate_async(
                method, raw_path, raw_query, headers, virtual_host_bucket=virtual_host_bucket
            )
        )

    async def authenticate_async(
        self,
        method: str,
        raw_path: bytes,
        raw_query: bytes,
        headers: HeaderPairs,
        *,
        virtual_host_bucket: str = "",
        header_index: Mapping[str, list[bytes]] | None = None,
    ) -> AuthResult:
        """``header_index``: ``headers`` by lower-case name, values in arrival order, when the
        caller already built it (saves indexing the headers again for SigV4)."""
        now = self._clock.seconds()
        if raw_query:
            if presign.has_jay_presign(raw_query):
                jp = presign.verify_jay_url(
                    signing_secret=self._signing_secret,
                    method=method,
                    raw_path=raw_path,
                    raw_query=raw_query,
                    now=now,
                )
                try:
                    principal = await self._verifier.principal_for(jp.token_id, "jay-presigned")
                except Exception:
                    raise AccessDenied("Invalid presigned URL") from None
                return AuthResult(principal)
            if sigv4.has_presigned_query(raw_query):
                parsed = sigv4.parse_presigned_request(method, raw_path, raw_query, headers)
                return await self._verify_sigv4(parsed, now, "sigv4-presigned")
            if presign.has_sigv2_query(raw_query):
                p2 = presign.parse_sigv2_query(method, raw_path, raw_query, headers)
                _, _, secret = await self._verifier.secret_for(p2.access_key)
                presign.verify_sigv2_query(p2, secret, now=now)
                principal = await self._verifier.principal_for(p2.access_key, "sigv2")
                return AuthResult(principal)
        if header_index is not None:
            found = header_index.get("authorization")
            authorization = found[0] if found else None
        else:
            authorization = _first_header(headers, b"authorization")
        if authorization is None:
            return AuthResult(ANONYMOUS)
        if authorization.startswith(b"Bearer "):
            token_id, sep, secret = authorization[7:].decode("utf-8", "replace").partition(":")
            if not sep or not token_id:
                raise InvalidArgument("Bearer credentials must be token_id:secret")
            return AuthResult(await self._verifier.verify_bearer(token_id, secret))
        if authorization.startswith(b"AWS4-HMAC-SHA256"):
            parsed = sigv4.parse_header_request(
                method, raw_path, raw_query, headers, header_index=header_index
            )
            return await self._verify_sigv4(parsed, now, "sigv4")
        if presign.has_sigv2_header(authorization):
            h2 = presign.parse_sigv2_header(
                method, raw_path, raw_query, headers, virtual_host_bucket=virtual_host_bucket
            )
            _, _, secret = await self._verifier.secret_for(h2.access_key)
            presign.verify_sigv2_header(h2, secret, now=now)
            return AuthResult(await self._verifier.principal_for(h2.access_key, "sigv2"))
        raise InvalidArgument("Unsupported Authorization type")

    async def authenticate_post_form(
        self, fields: Mapping[str, str]
    ) -> tuple[Principal, postpolicy.FormCredentials | None]:
        """The principal of a POST Object form (``fields`` by lower-case name).

        A form without credential fields is anonymous. Otherwise the signature over the
        ``policy`` field is checked with the token's secret; the caller still has to enforce
        the policy itself (``postpolicy.parse_post_policy``).
        """
        credentials = postpolicy.parse_form_credentials(fields)
        if credentials is None:
            return ANONYMOUS, None
        found = self._verifier.cached_secret(credentials.access_key)
        if found is None:
            found = await self._verifier.secret_for(credentials.access_key)
        token, account, secret = found
        if not postpolicy.verify_form_signature(credentials, secret):
            raise SignatureDoesNotMatch()
        return Principal(token, account.account_id, credentials.auth_method), credentials

    async def _verify_sigv4(
        self, parsed: sigv4.ParsedRequest, now: float, method: str
    ) -> AuthResult:
        # A cached secret is used without a Deferred; a miss loads (and caches) it.
        found = self._verifier.cached_secret(parsed.access_key)
        if found is None:
            found = await self._verifier.secret_for(parsed.access_key)
        token, account, secret = found
        context = sigv4.verify(parsed, secret, now=now)
        return AuthResult(Principal(token, account.account_id, method), context)
