"""POST Object: browser form uploads (AWS "Browser-Based Uploads Using POST").

The body is ``multipart/form-data``: form fields, then the ``file`` field with the object's
bytes, then fields S3 ignores. The fields before the file carry the key, the object's headers,
the credentials and the POST policy, so nothing can be decided before they are read:

1. ``FormIntake`` feeds the body to ``jay.s3.formdata.FormDataParser`` and collects the fields
   (bounded: 20 KiB before the file). When the file part begins it pauses the body and fires
   ``head``; the file bytes already parsed wait in a backlog (at most one socket read).
2. The handler checks the signature (``Authenticator.authenticate_post_form``), the policy
   (``jay.auth.postpolicy``) and the bucket's access decision for ``object:put``, exactly as
   PutObject is authorized, before a single file byte is stored.
3. ``start_file`` hands the intake a ``StagingWriter``: the backlog goes first, then the body
   resumes and streams into the writer, which pauses and resumes the body at its water marks
   (the intake passes those calls on). After the file the rest of the form is parsed and
   dropped, and the staged blob is committed as PutObject commits one.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from jay import errors as e
from jay.auth import acl
from jay.auth.postpolicy import PostPolicy, parse_post_policy
from jay.s3 import formdata, tagging
from jay.s3 import headers as h
from jay.s3 import xml as x
from jay.s3.http import BodyDeliveryStopped
from jay.storage import names
from jay.storage.api import BUCKET_CONFIG_OBJECT_LOCK, StagingWriter

if TYPE_CHECKING:
    from jay.s3.app import S3Api, _Call

# Form fields that become object attributes, as the same-named headers do on PutObject.
_ATTRIBUTE_FIELDS = (
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
)
_SUCCESS_STATUSES = frozenset({200, 201, 204})
NO_KEY_MESSAGE = (
    "Bucket POST must contain a field named 'key'.  If it is specified, please check the "
    "order of the fields."
)
NO_FILE_MESSAGE = "POST requires exactly one file upload per request."


class _Phase(enum.Enum):
    FIELDS = "fields"  # reading the fields before the file
    WAITING = "waiting"  # the file began; paused until the handler has authorized it
    FILE = "file"  # streaming the file into the staging writer
    AFTER = "after"  # the file ended (or the form had none); the rest is dropped
    STOPPED = "stopped"  # failed or given up: every further byte is dropped


@implementer(IConsumer, IPushProducer)
class FormIntake:
    """Consumer of the request body; producer (a pass-through) for the staging writer."""

    def __init__(self, parser: formdata.FormDataParser) -> None:
        self._parser = parser
        self._max_file_bytes = 0
        self.fields: list[formdata.Field] = []
        self.file: formdata.FileStart | None = None
        # Fires with the FileStart (or None: the form ended without a file) once the fields
        # are complete; errbacks when the body fails first.
        self.head: Deferred[formdata.FileStart | None] = Deferred()
        self.error: Exception | None = None
        self.is_file_ended = False
        self.file_bytes = 0
        self._phase = _Phase.FIELDS
        self._backlog: list[formdata.Event] = []
        self._body: Any = None  # the RequestBody (an IPushProducer)
        self._writer: StagingWriter | None = None
        self._is_waiting = False
        self._is_writer_paused = False
        self._is_body_paused = False

    # --- IConsumer: the request body writes here ------------------------------------------

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._body = producer

    def unregisterProducer(self) -> None:
        self._body = None

    def write(self, data: bytes) -> None:
        if self._phase is _Phase.STOPPED:
            return
        try:
            events = self._parser.feed(data)
        except e.JayError as exc:
            self._fail(exc)
            return
        self._dispatch(events)

    # --- IPushProducer: the staging writer's back-pressure --------------------------------

    def pauseProducing(self) -> None:
        self._is_writer_paused = True
        self._update_body()

    def resumeProducing(self) -> None:
        self._is_writer_paused = False
        self._update_body()

    def stopProducing(self) -> None:
        self._fail(BodyDeliveryStopped("the staging writer stopped the body"))

    # --- called by the handler -------------------------------------------------------------

    def start_file(self, writer: StagingWriter, *, max_file_bytes: int) -> None:
        """Stream the file into ``writer``: first the backlog, then the rest of the body.

        A file growing past ``max_file_bytes`` (the object size limit, or the policy's
        content-length-range maximum) fails with EntityTooLarge as soon as it does.
        """
        if self._phase is not _Phase.WAITING:
            return
        self._max_file_bytes = max_file_bytes
        self._writer = writer
        writer.registerProducer(self, True)
        self._phase = _Phase.FILE
        backlog, self._backlog = self._backlog, []
        self._dispatch(backlog)
        self._is_waiting = False
        self._update_body()

    def stop(self) -> None:
        """The handler gave up (an error answer): drop whatever still arrives."""
        self._phase = _Phase.STOPPED
        self._detach_writer()
        self._is_waiting = False
        self._update_body()

    def delivery_ended(self, result: Any) -> Any:
        """``deliver_to``'s outcome (passed on): settles ``head`` if the fields never ended."""
        if not self.head.called:
            if isinstance(result, Failure):
                error: BaseException = self.error or result.value
            else:
                error = e.MalformedPOSTRequest()
            self.head.errback(Failure(error))
        return result

    # --- internals ------------------------------------------------------------------------

    def _dispatch(self, events: list[formdata.Event]) -> None:
        for index, event in enumerate(events):
            phase = self._phase
            if phase is _Phase.FIELDS:
                if isinstance(event, formdata.Field):
                    self.fields.append(event)
                elif isinstance(event, formdata.FileStart):
                    self.file = event
                    self._phase = _Phase.WAITING
                    # Everything after the FileStart waits for start_file, in order, before
                    # ``head`` fires: its callbacks may call start_file right away.
                    self._backlog.extend(events[index + 1 :])
                    self._is_waiting = True
                    self._update_body()
                    self.head.callback(event)
                    return
                elif isinstance(event, formdata.FormEnd):
                    self._phase = _Phase.AFTER
                    self.head.callback(None)
                    return
            elif phase is _Phase.WAITING:
                self._backlog.append(event)
            elif phase is _Phase.FILE:
                if isinstance(event, formdata.FileData):
                    self.file_bytes += len(event.data)
                    if self.file_bytes > self._max_file_bytes:
                        self._fail(
                            e.EntityTooLarge(
                                "Your proposed upload exceeds the maximum allowed size",
                                max_size_allowed=self._max_file_bytes,
                            )
                        )
                        return
                    assert self._writer is not None
                    self._writer.write(event.data)
                elif isinstance(event, formdata.FileEnd):
                    self.is_file_ended = True
                    self._phase = _Phase.AFTER
                    self._detach_writer()
            else:
                return  # AFTER / STOPPED: fields after the file are ignored, as S3 does

    def _detach_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.unregisterProducer()
        self._is_writer_paused = False
        self._update_body()

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        self._phase = _Phase.STOPPED
        self._detach_writer()
        if not self.head.called:
            self.head.errback(Failure(error))
        body = self._body
        if body is not None:
            body.stopProducing()

    def _update_body(self) -> None:
        body = self._body
        if body is None:
            return
        is_wanted_paused = self._is_waiting or self._is_writer_paused
        if is_wanted_paused and not self._is_body_paused:
            self._is_body_paused = True
            body.pauseProducing()
        elif not is_wanted_paused and self._is_body_paused:
            self._is_body_paused = False
            body.resumeProducing()


def form_fields(fields: list[formdata.Field]) -> dict[str, str]:
    """Field name (lower-case: S3 form field names are case-insensitive) → the first value."""
    found: dict[str, str] = {}
    for item in fields:
        found.setdefault(item.name.lower(), item.value)
    return found


def success_status(fields: Mapping[str, str]) -> int:
    """``success_action_status``: 200, 201 or 204; anything else (or nothing) is 204."""
    text = fields.get("success_action_status", "").strip()
    return int(text) if text.isdigit() and int(text) in _SUCCESS_STATUSES else 204


def redirect_target(fields: Mapping[str, str]) -> str | None:
    """``success_action_redirect`` (or the legacy ``redirect``) when it is an http(s) URL;
    S3 ignores a value that is not a URL."""
    for name in ("success_action_redirect", "redirect"):
        value = fields.get(name, "").strip()
        if value.lower().startswith(("http://", "https://")) and value.isprintable():
            return value  # printable: no line break can reach the Location header
    return None


def redirect_location(target: str, bucket: str, key: str, etag: str) -> str:
    """The 303 target: ``bucket``, ``key`` and the quoted ``etag`` appended to the query."""
    query = "&".join(
        f"{name}={quote(value, safe='')}"
        for name, value in (("bucket", bucket), ("key", key), ("etag", h.quote_etag(etag)))
    )
    base, hash_mark, fragment = target.partition("#")
    joiner = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        joiner = ""
    return base + joiner + query + hash_mark + fragment


def render_post_response(location: str, bucket: str, key: str, etag: str) -> bytes:
    """The 201 body. S3 sends it without a namespace (clients look up ``Key`` plainly)."""
    return (
        x.XML_DECLARATION
        + "<PostResponse>"
        + f"<Location>{x.escape(location)}</Location>"
        + f"<Bucket>{x.escape(bucket)}</Bucket>"
        + f"<Key>{x.escape(key)}</Key>"
        + f"<ETag>{x.escape(h.quote_etag(etag))}</ETag>"
        + "</PostResponse>"
    ).encode("utf-8")


def _object_url(call: _Call, key: str) -> str:
    request = call.request
    scheme = "https" if request.isSecure() else "http"
    host = call.headers.get("host", "")
    path = quote(key, safe="/~")
    if call.route.is_virtual_host:
        return f"{scheme}://{host}/{path}"
    return f"{scheme}://{host}/{quote(call.route.bucket, safe='')}/{path}"


def _check_policy(
    policy: PostPolicy | None, fields: Mapping[str, str], bucket: str, key: str
) -> None:
    if policy is None:
        return
    # The bucket is a field for the policy even though it comes from the URL (a form field
    # named bucket does not override it), and the key is checked after ${filename}.
    checked = dict(fields)
    checked["bucket"] = bucket
    checked["key"] = key
    policy.check_fields(checked)


async def post_object(api: S3Api, call: _Call) -> bytes:
    """The PostObject operation (see the module docstring for the order of the steps)."""
    boundary = formdata.boundary_from_content_type(call.headers.get("content-type", ""))
    max_object_size = api._settings.max_object_size
    parser = formdata.FormDataParser(boundary)
    intake = FormIntake(parser)
    delivered = call.request.body.deliver_to(intake)
    delivered.addBoth(intake.delivery_ended)
    writer: StagingWriter | None = None
    try:
        file = await intake.head
        fields = form_fields(intake.fields)
        if file is None:
            raise e.InvalidArgument(NO_FILE_MESSAGE, argument_name="file", argument_value="0")
        try:
            principal, credentials = await api._auth.authenticate_post_form(fields)
        except CancelledError:
            raise
        except Exception as auth_error:
            if api._limits is not None:
                # A wrong form signature is a guess like a wrong header one (JAY_SPEC §8.2
                # item 14): counted per client IP, which may turn it into SlowDown.
                api._limits.auth_failed(call.client_ip, auth_error)
            raise
        if credentials is not None:
            call.principal = principal  # else the request's own (usually anonymous) principal
        policy: PostPolicy | None = None
        if "policy" in fields:
            policy = parse_post_policy(fields["policy"])
            policy.check_expiration(api._clock.seconds())
        template = fields.get("key")
        if not template:
            raise e.InvalidArgument(NO_KEY_MESSAGE, argument_name="key", argument_value="")
        key = template.replace("${filename}", file.filename)
        _check_policy(policy, fields, call.route.bucket, key)
        names.validate_key(key)
        call.form_fields = fields  # a policy's conditions read the form's fields as headers
        bucket = await api._bucket(call, "object:put", key)
        lock = bucket.config(BUCKET_CONFIG_OBJECT_LOCK) if bucket.configs else None
        requested = h.check_write_features(fields, is_lock_enabled=lock is not None)
        # The form's "acl" field is the x-amz-acl header of a PUT; grant fields keep their name.
        acl_fields = {name: value for name, value in fields.items() if name in acl.GRANT_HEADERS}
        if "acl" in fields:
            acl_fields["x-amz-acl"] = fields["acl"]
        acl_json = (
            await api._new_object_acl(call, acl_fields, bucket)
            if api._needs_object_acl(call, acl_fields, bucket)
            else None
        )
        tags: dict[str, str] = {}
        if "tagging" in fields:
            # The form's tag set is a Tagging XML document, as a PutObjectTagging body.
            tags = tagging.parse_tagging(fields["tagging"].encode("utf-8"))
            if tags:
                api._access.check(
                    call.principal,
                    "object:put-tagging",
                    bucket,
                    key,
                    call.client_ip,
                    conditions=call,
                )
        attributes = api._attributes(
            {name: value for name, value in fields.items() if name in _ATTRIBUTE_FIELDS}
            | {name: value for name, value in fields.items() if name.startswith("x-amz-meta-")},
            tags,
        )
        if lock is not None:
            # The x-amz-object-lock-* fields, as a PutObject's headers.
            attributes = api._requested_lock(
                call, bucket, attributes, lock, is_put=False, fields=fields
            )
        content_md5 = fields.get("content-md5")
        expected_md5 = h.parse_content_md5(content_md5) if content_md5 is not None else None
        given = h.parse_checksum_headers(fields)
        # The form's x-amz-server-side-encryption[-customer-*] fields, as a PUT's headers.
        sealing = api._sealing(requested, bucket)
        if sealing is not None:
            attributes = dataclasses.replace(attributes, encryption=sealing.record.to_json())
        writer = api._storage.begin_write(sorted(given), sealing=sealing)
        max_file_bytes = max_object_size
        if policy is not None and policy.length_range is not None:
            max_file_bytes = min(max_file_bytes, policy.length_range[1])
        intake.start_file(writer, max_file_bytes=max_file_bytes)
        try:
            await delivered
        except BodyDeliveryStopped:
            if intake.error is not None:
                raise intake.error from None
            raise
        if intake.error is not None:
            raise intake.error
        parser.finish()
        if not intake.is_file_ended:
            raise e.MalformedPOSTRequest()
        staged = await writer.finish()
        writer = None  # the staged blob is ours now; discarded below on a failed check
    except BaseException:
        intake.stop()
        delivered.addErrback(lambda _: None)  # the error answered is the handler's
        if writer is not None:
            await writer.abort()
        raise
    try:
        if policy is not None:
            policy.check_size(staged.size)
        if expected_md5 is not None and expected_md5 != staged.md5:
            raise e.BadDigest("The Content-MD5 you specified did not match what we received.")
        h.check_given_checksums(given, staged.checksums)
    except BaseException:
        await api._storage.discard(staged)
        raise
    call.bytes_in = staged.size
    info = await api._storage.put_object(
        call.route.bucket,
        key,
        staged,
        attributes,
        acl_json=acl_json,
        etag=api._etag_for(sealing, staged),
    )
    request = call.request
    api._encryption_headers(call, info.attributes.encryption, with_context=True)
    request.setHeader(b"ETag", h.quote_etag(info.etag).encode())
    api._version_header(call, info)
    for algorithm, value in info.checksums.items():
        request.setHeader(f"x-amz-checksum-{algorithm.lower()}".encode(), value.encode())
    location = _object_url(call, key)
    target = redirect_target(fields)
    if target is not None:
        request.setHeader(
            b"Location",
            redirect_location(target, call.route.bucket, key, info.etag).encode("utf-8"),
        )
        return api._empty(call, 303)
    request.setHeader(b"Location", location.encode("utf-8"))
    status = success_status(fields)
    if status == 201:
        return api._xml(
            call, render_post_response(location, call.route.bucket, key, info.etag), 201
        )
    return api._empty(call, status)
