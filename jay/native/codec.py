"""Native protocol v1 wire format: pure encoders and decoders, no Twisted, no I/O.

Everything here must stay byte-compatible with Jay v1 so that the upstream Go client works
unchanged (JAY_SPEC §1, §1.15, §8.3). Encoders return ``bytes``; decoders take ``bytes`` and return
frozen values or raise :class:`CodecError` carrying the status the server should answer with.

Strings (``str`` on the wire) are byte strings in Go. They are mapped to Python ``str`` through
UTF-8 with the ``surrogateescape`` error handler, so any byte sequence survives a decode/encode
round trip unchanged. That matters for ``next_start_after``, which may end in the raw byte ``FF``
(§1.12), and for keys that are not valid UTF-8 (validation is core's job, not the codec's).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import ClassVar, Protocol, TypeVar

from jay.timestamps import utc_second

# --- constants (JAY_SPEC §1.2-§1.4, §1.10) -------------------------------------------------

MAGIC = b"JAY\x00"  # u32 0x4A415900
VERSION = 1
HANDSHAKE_PREAMBLE_SIZE = 8  # magic, version, flags, u16 auth_len
HANDSHAKE_REPLY_SIZE = 8  # magic, version, status, 2 reserved bytes
HEADER_SIZE = 17  # u8 op/status, u32 stream_id, u32 meta_len, u64 data_len
MAX_META_BYTES = 1024 * 1024  # both sides refuse a meta section above 1 MiB (§1.9, §1.10)
MAX_DATA_LEN = (1 << 63) - 1  # data_len with the top bit set is a protocol error (§1.3)
DRAIN_LIMIT_BYTES = 10 * 1024 * 1024  # rejected data sections above this close instead (§1.10)
MAX_STR_BYTES = 0xFFFF  # u16 length prefix (§1.5)
MAX_COUNT = 0xFFFF  # u16 element count of map / strs / u32s / count16 (§1.5)

_HEADER = struct.Struct(">BIIQ")
_PREAMBLE = struct.Struct(">4sBBH")
_REPLY = struct.Struct(">4sBBH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


class Op(IntEnum):
    """Request op codes (§1.4). The parser passes unknown codes through as plain ints."""

    CREATE_BUCKET = 0x01
    DELETE_BUCKET = 0x02
    HEAD_BUCKET = 0x03
    LIST_BUCKETS = 0x04
    PUT_OBJECT = 0x10
    GET_OBJECT = 0x11
    HEAD_OBJECT = 0x12
    DELETE_OBJECT = 0x13
    LIST_OBJECTS = 0x14
    CREATE_MULTIPART_UPLOAD = 0x20
    UPLOAD_PART = 0x21
    COMPLETE_MULTIPART_UPLOAD = 0x22
    ABORT_MULTIPART_UPLOAD = 0x23
    LIST_PARTS = 0x24
    PING = 0xFF


_OPS_BY_CODE: dict[int, Op] = {int(op): op for op in Op}


def known_op(code: int) -> Op | None:
    """The :class:`Op` for ``code``, or None for an op the server answers with UnknownOp.

    A dictionary lookup: ``Op(code)`` costs an enum call and, for unknown codes, an exception,
    once per request."""
    return _OPS_BY_CODE.get(code)


# Ops whose request carries a data section (§1.4); every other op expects data_len = 0.
OPS_WITH_REQUEST_DATA = frozenset({Op.PUT_OBJECT, Op.UPLOAD_PART})


class Status(IntEnum):
    """Response status codes (§1.4), byte 0 of a response header."""

    OK = 0x00
    NOT_FOUND = 0x01
    CONFLICT = 0x02
    BAD_REQUEST = 0x03
    FORBIDDEN = 0x04
    INTERNAL = 0x05


class HandshakeStatus(IntEnum):
    """Byte 5 of the server's 8-byte handshake reply (§1.2)."""

    OK = 0x00
    AUTH_FAILED = 0x01
    VERSION_MISMATCH = 0x02


# Error codes and messages upstream puts in error frames (§1.8); clients key on the code.
CODE_INVALID_ARGUMENT = "InvalidArgument"
CODE_UNKNOWN_OP = "UnknownOp"
CODE_RATE_LIMITED = "RateLimitExceeded"
CODE_INTERNAL = "InternalError"
MESSAGE_INVALID_REQUEST = "invalid request"
MESSAGE_UNKNOWN_OP = "unknown operation"
MESSAGE_RATE_LIMITED = "rate limit exceeded"
MESSAGE_UNKNOWN_ERROR = "unknown error"  # what the Go client shows for undecodable error meta


class CodecError(ValueError):
    """Meta that cannot be decoded, or a value that cannot be encoded.

    ``status``/``message``/``code`` are what the server should answer with: upstream replies
    ``03 "invalid request" InvalidArgument`` to any meta decode failure (§1.7). An encoder error
    (a string over 65535 bytes, a number out of range) is a local bug or a client-side argument
    error; it carries ``Status.INTERNAL``.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: Status = Status.BAD_REQUEST,
        message: str = MESSAGE_INVALID_REQUEST,
        code: str = CODE_INVALID_ARGUMENT,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.message = message
        self.code = code


def _encode_error(reason: str) -> CodecError:
    return CodecError(reason, status=Status.INTERNAL, message="internal error", code=CODE_INTERNAL)


# --- handshake (§1.2) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientPreamble:
    """The fixed 8 bytes the client sends first; ``auth_len`` credential bytes follow."""

    version: int
    flags: int
    auth_len: int


def encode_client_handshake(token_id: str, secret: str) -> bytes:
    """Preamble plus ``"<token_id>:<secret>"``; the client always sends flags 0."""
    credentials = encode_text(f"{token_id}:{secret}")
    if len(credentials) > MAX_STR_BYTES:
        raise _encode_error("credentials longer than 65535 bytes")
    return _PREAMBLE.pack(MAGIC, VERSION, 0, len(credentials)) + credentials


def decode_client_preamble(preamble: bytes) -> ClientPreamble:
    """Validate the 8-byte preamble. Every failure is VERSION_MISMATCH (02), as upstream does."""
    if len(preamble) != HANDSHAKE_PREAMBLE_SIZE:
        raise CodecError("short handshake preamble")
    magic, version, flags, auth_len = _PREAMBLE.unpack(preamble)
    if magic != MAGIC:
        raise CodecError("bad magic")
    if version != VERSION:
        raise CodecError(f"unsupported version {version}")
    if auth_len == 0:
        raise CodecError("empty credentials")
    return ClientPreamble(version=version, flags=flags, auth_len=auth_len)


def split_credentials(credentials: bytes) -> tuple[str, str] | None:
    """Split at the first ``:`` (the secret may contain more); None means AUTH_FAILED (01)."""
    text = decode_text(credentials)
    token_id, colon, secret = text.partition(":")
    if not colon:
        return None
    return token_id, secret


def encode_server_handshake(status: HandshakeStatus | int) -> bytes:
    """The server's reply is always exactly 8 bytes (§1.15 item 1)."""
    return _REPLY.pack(MAGIC, VERSION, int(status), 0)


def decode_server_handshake(reply: bytes) -> int:
    """The status byte. Like the Go client, check only the magic, not the version."""
    if len(reply) != HANDSHAKE_REPLY_SIZE:
        raise CodecError("short handshake reply")
    magic, _version, status, _reserved = _REPLY.unpack(reply)
    if magic != MAGIC:
        raise CodecError("bad magic in handshake reply")
    return int(status)


# --- frame header (§1.3) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """``code`` is the op in a request and the status in a response."""

    code: int
    stream_id: int
    meta_len: int
    data_len: int


def encode_header(code: int, stream_id: int, meta_len: int, data_len: int) -> bytes:
    if not 0 <= code <= 0xFF:
        raise _encode_error("op/status out of range")
    if not 0 <= stream_id <= 0xFFFFFFFF:
        raise _encode_error("stream_id out of range")
    if not 0 <= meta_len <= 0xFFFFFFFF:
        raise _encode_error("meta_len out of range")
    if not 0 <= data_len <= MAX_DATA_LEN:
        raise _encode_error("data_len out of range")
    return _HEADER.pack(code, stream_id, meta_len, data_len)


def decode_header(header: bytes) -> FrameHeader:
    """Unpack 17 bytes. Limits (meta size, data_len top bit) are the parser's business."""
    code, stream_id, meta_len, data_len = unpack_header(header)
    return FrameHeader(code=code, stream_id=stream_id, meta_len=meta_len, data_len=data_len)


def unpack_header(header: bytes) -> tuple[int, int, int, int]:
    """``decode_header`` as a plain tuple (code, stream_id, meta_len, data_len), for the
    parser's per-frame path: no FrameHeader object is built."""
    if len(header) != HEADER_SIZE:
        raise CodecError("short frame header")
    code, stream_id, meta_len, data_len = _HEADER.unpack(header)
    return code, stream_id, meta_len, data_len


def encode_frame(code: int, stream_id: int, meta: bytes = b"", data_len: int = 0) -> bytes:
    """Header and meta. The ``data_len`` data bytes, if any, are written after this by the caller."""
    return encode_header(code, stream_id, len(meta), data_len) + meta


def encode_response(stream_id: int, meta: MetaValue | None = None, *, data_len: int = 0) -> bytes:
    """A success frame (status 00) with the encoded meta (None: the bare 17-byte frame)."""
    return encode_frame(Status.OK, stream_id, b"" if meta is None else meta.encode(), data_len)


def encode_error_frame(status: Status | int, stream_id: int, message: str, code: str) -> bytes:
    """An error response: status ≠ 00, meta = ErrorInfo, never a data section (§1.8)."""
    if int(status) == Status.OK:
        raise _encode_error("an error frame needs a non-zero status")
    return encode_frame(status, stream_id, ErrorInfo(message=message, code=code).encode())


# --- primitives (§1.5) -----------------------------------------------------------------------


def encode_text(value: str) -> bytes:
    """UTF-8, with lone surrogates U+DC80..U+DCFF standing for raw bytes (see module doc)."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise _encode_error("string holds a surrogate that is not an escaped byte") from None


def decode_text(value: bytes) -> str:
    """Never fails: bytes that are not UTF-8 become escaped surrogates, so nothing is lost."""
    return value.decode("utf-8", "surrogateescape")


class MetaWriter:
    """Accumulates primitives. Every writer refuses what the u16/u32/i64 cannot hold."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def getvalue(self) -> bytes:
        return b"".join(self._parts)

    def u16(self, value: int) -> None:
        if not 0 <= value <= 0xFFFF:
            raise _encode_error(f"u16 out of range: {value}")
        self._parts.append(_U16.pack(value))

    def u32(self, value: int) -> None:
        if not 0 <= value <= 0xFFFFFFFF:
            raise _encode_error(f"u32 out of range: {value}")
        self._parts.append(_U32.pack(value))

    def i32(self, value: int) -> None:
        if not -(1 << 31) <= value < (1 << 31):
            raise _encode_error(f"i32 out of range: {value}")
        self._parts.append(_I32.pack(value))

    def i64(self, value: int) -> None:
        if not -(1 << 63) <= value < (1 << 63):
            raise _encode_error(f"i64 out of range: {value}")
        self._parts.append(_I64.pack(value))

    def flag(self, value: bool) -> None:
        self._parts.append(b"\x01" if value else b"\x00")

    def text(self, value: str) -> None:
        # ``blob(encode_text(value))`` written out: every string of every response passes here.
        try:
            data = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise _encode_error("string holds a surrogate that is not an escaped byte") from None
        if len(data) > MAX_STR_BYTES:
            raise _encode_error(f"string of {len(data)} bytes exceeds 65535")
        self._parts.append(_U16.pack(len(data)) + data)

    def raw(self, value: bytes) -> None:
        """Bytes already in wire form (a record encoded ahead), appended as they are."""
        self._parts.append(value)

    def blob(self, value: bytes) -> None:
        # GAP IN UPSTREAM (§1.5, §8.2 #26): Go wraps the u16 silently; refuse instead.
        if len(value) > MAX_STR_BYTES:
            raise _encode_error(f"string of {len(value)} bytes exceeds 65535")
        self._parts.append(_U16.pack(len(value)))
        self._parts.append(value)

    def count(self, value: int) -> None:
        if value > MAX_COUNT:
            raise _encode_error(f"{value} elements exceed the u16 count")
        self.u16(value)

    def texts(self, values: Iterable[str]) -> None:
        items = list(values)
        self.count(len(items))
        for item in items:
            self.text(item)

    def u32s(self, values: Iterable[int]) -> None:
        items = list(values)
        self.count(len(items))
        for item in items:
            self.u32(item)

    def mapping(self, values: Mapping[str, str]) -> None:
        # Any entry order is valid: upstream's own order is random (§1.5).
        self.count(len(values))
        for key, value in values.items():
            self.text(key)
            self.text(value)


class MetaReader:
    """Reads primitives from one meta section. Reading past the end is a CodecError.

    Trailing bytes are never checked: upstream ignores them (§1.5).
    """

    __slots__ = ("_data", "_offset")

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._offset = 0

    def _take(self, size: int) -> memoryview:
        end = self._offset + size
        if end > len(self._data):
            raise CodecError("short buffer")
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def u16(self) -> int:
        return int(_U16.unpack(self._take(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self._take(4))[0])

    def i32(self) -> int:
        return int(_I32.unpack(self._take(4))[0])

    def i64(self) -> int:
        return int(_I64.unpack(self._take(8))[0])

    def flag(self) -> bool:
        return self._take(1)[0] != 0  # any non-zero byte is true (§1.5)

    def blob(self) -> bytes:
        return bytes(self._take(self.u16()))

    def text(self) -> str:
        return decode_text(self.blob())

    def texts(self) -> tuple[str, ...]:
        return tuple(self.text() for _ in range(self.u16()))

    def u32s(self) -> tuple[int, ...]:
        return tuple(self.u32() for _ in range(self.u16()))

    def mapping(self) -> dict[str, str]:
        result: dict[str, str] = {}
        for _ in range(self.u16()):
            key = self.text()
            result[key] = self.text()  # duplicate keys: last wins (§1.5)
        return result


# --- times (§1.6) ----------------------------------------------------------------------------


def format_wire_time(epoch_seconds: float) -> str:
    """RFC3339 in UTC with whole seconds and a literal Z, e.g. ``2024-01-02T03:04:05Z``."""
    return utc_second(int(epoch_seconds // 1)) + "Z"


def parse_wire_time(text: str) -> float:
    """Inverse of :func:`format_wire_time`; raises CodecError on any other shape."""
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise CodecError(f"not an RFC3339 time: {text!r}") from None
    return moment.timestamp()


# --- meta values -----------------------------------------------------------------------------


class MetaValue(Protocol):
    def encode(self) -> bytes: ...


_M = TypeVar("_M", bound="_Meta")


class _Meta:
    """Mixin: ``encode()`` through ``_write``; ``decode(meta)`` through ``_read``."""

    __slots__ = ()

    def encode(self) -> bytes:
        writer = MetaWriter()
        self._write(writer)
        return writer.getvalue()

    @classmethod
    def decode(cls: type[_M], meta: bytes) -> _M:
        return cls._read(MetaReader(meta))

    def _write(self, w: MetaWriter) -> None:
        raise NotImplementedError

    @classmethod
    def _read(cls: type[_M], r: MetaReader) -> _M:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Empty(_Meta):
    """meta_len 0. Upstream ignores any meta sent with ListBuckets and Ping requests."""

    def _write(self, w: MetaWriter) -> None:
        pass

    @classmethod
    def _read(cls, r: MetaReader) -> Empty:
        return cls()


# composite records (§1.6)


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketInfo(_Meta):
    bucket_id: str
    name: str
    created_at: str  # RFC3339 seconds, see format_wire_time
    visibility: str = "private"

    def _write(self, w: MetaWriter) -> None:
        w.text(self.bucket_id)
        w.text(self.name)
        w.text(self.created_at)
        w.text(self.visibility)

    @classmethod
    def _read(cls, r: MetaReader) -> BucketInfo:
        return cls(bucket_id=r.text(), name=r.text(), created_at=r.text(), visibility=r.text())


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectInfo(_Meta):
    """GetObject / HeadObject response meta. The map is always written, ``00 00`` when empty."""

    content_type: str
    size: int
    etag: str  # unquoted hex, or "<hex>-<N>" for multipart
    checksum_sha256: str  # 64 lowercase hex
    last_modified: str  # RFC3339 seconds
    metadata: Mapping[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return encode_object_info(
            self.content_type,
            self.size,
            self.etag,
            self.checksum_sha256,
            self.last_modified,
            self.metadata,
        )

    @classmethod
    def _read(cls, r: MetaReader) -> ObjectInfo:
        return cls(
            content_type=r.text(),
            size=r.i64(),
            etag=r.text(),
            checksum_sha256=r.text(),
            last_modified=r.text(),
            metadata=r.mapping(),
        )


@dataclass(frozen=True, slots=True)
class PutResult(_Meta):
    """PutObject and UploadPart response meta."""

    etag: str
    checksum_sha256: str

    def _write(self, w: MetaWriter) -> None:
        w.text(self.etag)
        w.text(self.checksum_sha256)

    @classmethod
    def _read(cls, r: MetaReader) -> PutResult:
        return cls(etag=r.text(), checksum_sha256=r.text())


@dataclass(frozen=True, slots=True)
class ErrorInfo(_Meta):
    """Meta of every error frame (§1.8)."""

    message: str
    code: str

    def _write(self, w: MetaWriter) -> None:
        w.text(self.message)
        w.text(self.code)

    @classmethod
    def _read(cls, r: MetaReader) -> ErrorInfo:
        return cls(message=r.text(), code=r.text())


def decode_error_info_lenient(meta: bytes) -> ErrorInfo:
    """What the Go client shows: undecodable error meta becomes "unknown error" (§1.8)."""
    try:
        return ErrorInfo.decode(meta)
    except CodecError:
        return ErrorInfo(message=MESSAGE_UNKNOWN_ERROR, code="")


@dataclass(frozen=True, slots=True)
class BucketEntry:
    """One ListBuckets entry."""

    name: str
    created_at: str  # RFC3339 seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectEntry:
    """One ListObjects entry (§1.7)."""

    key: str
    size: int
    etag: str
    checksum_sha256: str
    last_modified: str
    content_type: str


_I64_U16 = struct.Struct(">qH")
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


class ObjectEntryEncoder:
    """Encodes ListObjects entries (§1.7) as the wire carries them, each text once.

    The server's LIST path encodes every entry of a page through one encoder and measures the
    bytes against the meta budget, so nothing is encoded twice. The entries of a page mostly
    share a few times and content types: their encoded fields are kept. Limits as
    ``MetaWriter``: strings up to 65535 bytes, ``size`` an i64.
    """

    __slots__ = ("_fields",)

    def __init__(self) -> None:
        self._fields: dict[str, bytes] = {}

    def _field(self, text: str) -> bytes:
        value = encode_text(text)
        if len(value) > MAX_STR_BYTES:
            raise _encode_error(f"string of {len(value)} bytes exceeds 65535")
        field = self._fields[text] = _U16.pack(len(value)) + value
        return field

    def encode(
        self,
        key: str,
        size: int,
        etag: str,
        checksum_sha256: str,
        last_modified: str,
        content_type: str,
    ) -> bytes:
        try:
            k = key.encode("utf-8", "surrogateescape")
            e = etag.encode("utf-8", "surrogateescape")
            s = checksum_sha256.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise _encode_error("string holds a surrogate that is not an escaped byte") from None
        if len(k) > MAX_STR_BYTES or len(e) > MAX_STR_BYTES or len(s) > MAX_STR_BYTES:
            raise _encode_error(f"string of {max(len(k), len(e), len(s))} bytes exceeds 65535")
        if not _I64_MIN <= size <= _I64_MAX:
            raise _encode_error(f"i64 out of range: {size}")
        fields = self._fields
        time_field = fields.get(last_modified) or self._field(last_modified)
        type_field = fields.get(content_type) or self._field(content_type)
        pack = _U16.pack
        return b"%b%b%b%b%b%b%b%b" % (
            pack(len(k)),
            k,
            _I64_U16.pack(size, len(e)),
            e,
            pack(len(s)),
            s,
            time_field,
            type_field,
        )


def encode_object_info(
    content_type: str,
    size: int,
    etag: str,
    checksum_sha256: str,
    last_modified: str,
    metadata: Mapping[str, str],
) -> bytes:
    """An ``ObjectInfo`` meta straight from its fields: every GetObject and HeadObject answer
    carries one, so it is built in one formatting step, with no ObjectInfo in between.

    The layout is text(content_type), i64(size), text(etag), text(checksum_sha256),
    text(last_modified), map(metadata). A value ``MetaWriter`` would refuse is written through
    ``MetaWriter`` after all, so the error (and which field it names first) stays its own.
    """
    try:
        c = content_type.encode("utf-8", "surrogateescape")
        e = etag.encode("utf-8", "surrogateescape")
        s = checksum_sha256.encode("utf-8", "surrogateescape")
        t = last_modified.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        c = e = s = t = b"\xff" * (MAX_STR_BYTES + 1)  # refused below, by MetaWriter
    if (
        len(c) > MAX_STR_BYTES
        or len(e) > MAX_STR_BYTES
        or len(s) > MAX_STR_BYTES
        or len(t) > MAX_STR_BYTES
        or not _I64_MIN <= size <= _I64_MAX
        or metadata
    ):
        w = MetaWriter()
        w.text(content_type)
        w.i64(size)
        w.text(etag)
        w.text(checksum_sha256)
        w.text(last_modified)
        w.mapping(metadata)
        return w.getvalue()
    pack = _U16.pack
    return b"%b%b%b%b%b%b%b%b\x00\x00" % (
        pack(len(c)),
        c,
        _I64_U16.pack(size, len(e)),
        e,
        pack(len(s)),
        s,
        pack(len(t)),
        t,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PartInfo:
    """One ListParts entry; ``part_number`` is a signed i32 on the wire."""

    part_number: int
    size: int
    etag: str
    checksum_sha256: str


# requests (§1.7)


@dataclass(frozen=True, slots=True)
class BucketRequest(_Meta):
    """CreateBucket, DeleteBucket, HeadBucket."""

    bucket: str

    def _write(self, w: MetaWriter) -> None:
        w.text(self.bucket)

    @classmethod
    def _read(cls, r: MetaReader) -> BucketRequest:
        return cls(bucket=r.text())


@dataclass(frozen=True, slots=True)
class ObjectRequest(_Meta):
    """GetObject, HeadObject, DeleteObject."""

    bucket: str
    key: str

    def _write(self, w: MetaWriter) -> None:
        w.text(self.bucket)
        w.text(self.key)

    @classmethod
    def _read(cls, r: MetaReader) -> ObjectRequest:
        return cls(bucket=r.text(), key=r.text())


@dataclass(frozen=True, slots=True, kw_only=True)
class PutObjectRequest(_Meta):
    """An empty ``content_type`` means application/octet-stream; metadata is stored verbatim."""

    bucket: str
    key: str
    content_type: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    def _write(self, w: MetaWriter) -> None:
        w.text(self.bucket)
        w.text(self.key)
        w.text(self.content_type)
        w.mapping(self.metadata)

    @classmethod
    def _read(cls, r: MetaReader) -> PutObjectRequest:
        return cls(bucket=r.text(), key=r.text(), content_type=r.text(), metadata=r.mapping())


@dataclass(frozen=True, slots=True, kw_only=True)
class ListObjectsRequest(_Meta):
    """``max_keys`` is a signed i32 as sent; the server clamps it (≤ 0 → 1000, > 10000 → 10000)."""

    bucket: str
    prefix: str = ""
    delimiter: str = ""
    start_after: str = ""
    max_keys: int = 1000

    def _write(self, w: MetaWriter) -> None:
        w.text(self.bucket)
        w.text(self.prefix)
        w.text(self.delimiter)
        w.text(self.start_after)
        w.i32(self.max_keys)

    @classmethod
    def _read(cls, r: MetaReader) -> ListObjectsRequest:
        return cls(
            bucket=r.text(),
            prefix=r.text(),
            delimiter=r.text(),
            start_after=r.text(),
            max_keys=r.i32(),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateMultipartUploadRequest(_Meta):
    bucket: str
    key: str
    content_type: str = ""

    def _write(self, w: MetaWriter) -> None:
        w.text(self.bucket)
        w.text(self.key)
        w.text(self.content_type)

    @classmethod
    def _read(cls, r: MetaReader) -> CreateMultipartUploadRequest:
        return cls(bucket=r.text(), key=r.text(), content_type=r.text())


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadRequest(_Meta):
    """AbortMultipartUpload, ListParts."""

    bucket: str
    key: str
    upload_id: str

    def _write(self, w: MetaWriter) -> None:
        w.text(self.bucket)
        w.text(self.key)
        w.text(self.upload_id)

    @classmethod
    def _read(cls, r: MetaReader) -> UploadRequest:
        return cls(bucket=r.text(), key=r.text(), upload_id=r.text())


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadPartRequest(_Meta):
    """``part_number`` is read as a signed i32, so ``FFFFFFFF`` is −1 (invalid, §1.7)."""

    bucket: str
    key: str
    upload_id: str
    part_number: int

    def _write(self, w: MetaWriter) -> None:
        w.text(self.bucket)
        w.text(self.key)
        w.text(self.upload_id)
        w.i32(self.part_number)

    @classmethod
    def _read(cls, r: MetaReader) -> UploadPartRequest:
        return cls(bucket=r.text(), key=r.text(), upload_id=r.text(), part_number=r.i32())


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteMultipartUploadRequest(_Meta):
    """Part numbers only, unsigned u32; order and duplicates do not matter (§1.7, §2.9)."""

    bucket: str
    key: str
    upload_id: str
    part_numbers: tuple[int, ...] = ()

    def _write(self, w: MetaWriter) -> None:
        w.text(self.bucket)
        w.text(self.key)
        w.text(self.upload_id)
        w.u32s(self.part_numbers)

    @classmethod
    def _read(cls, r: MetaReader) -> CompleteMultipartUploadRequest:
        return cls(bucket=r.text(), key=r.text(), upload_id=r.text(), part_numbers=r.u32s())


# responses (§1.7)


@dataclass(frozen=True, slots=True)
class ListBucketsResponse(_Meta):
    buckets: tuple[BucketEntry, ...] = ()

    def _write(self, w: MetaWriter) -> None:
        w.count(len(self.buckets))
        for entry in self.buckets:
            w.text(entry.name)
            w.text(entry.created_at)

    @classmethod
    def _read(cls, r: MetaReader) -> ListBucketsResponse:
        count = r.u16()
        return cls(tuple(BucketEntry(name=r.text(), created_at=r.text()) for _ in range(count)))


@dataclass(frozen=True, slots=True, kw_only=True)
class ListObjectsResponse(_Meta):
    """The prefix list, the bool and the string are always present (§1.15 item 4)."""

    objects: tuple[ObjectEntry, ...] = ()
    common_prefixes: tuple[str, ...] = ()
    is_truncated: bool = False
    next_start_after: str = ""

    # Fixed cost of the meta without entries: count16, strs count, bool, str length.
    BASE_SIZE: ClassVar[int] = 2 + 2 + 1 + 2

    def _write(self, w: MetaWriter) -> None:
        w.count(len(self.objects))
        encoder = ObjectEntryEncoder()
        for entry in self.objects:
            w.raw(
                encoder.encode(
                    entry.key,
                    entry.size,
                    entry.etag,
                    entry.checksum_sha256,
                    entry.last_modified,
                    entry.content_type,
                )
            )
        w.texts(self.common_prefixes)
        w.flag(self.is_truncated)
        w.text(self.next_start_after)

    @classmethod
    def _read(cls, r: MetaReader) -> ListObjectsResponse:
        objects = tuple(
            ObjectEntry(
                key=r.text(),
                size=r.i64(),
                etag=r.text(),
                checksum_sha256=r.text(),
                last_modified=r.text(),
                content_type=r.text(),
            )
            for _ in range(r.u16())
        )
        return cls(
            objects=objects,
            common_prefixes=r.texts(),
            is_truncated=r.flag(),
            next_start_after=r.text(),
        )


def common_prefix_size(prefix: str) -> int:
    """Meta bytes one common prefix costs in a ListObjects response."""
    return 2 + len(encode_text(prefix))


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodedListObjectsResponse:
    """A ListObjects response whose object entries are already encoded (``ObjectEntryEncoder``).

    The server measures every entry against the meta budget (§1.12), which means encoding it;
    keeping those bytes saves encoding each entry again and building an ``ObjectEntry`` per
    object. ``encode()`` gives exactly the meta of the equivalent ``ListObjectsResponse``.
    """

    object_records: tuple[bytes, ...] = ()
    common_prefixes: tuple[str, ...] = ()
    is_truncated: bool = False
    next_start_after: str = ""

    def encode(self) -> bytes:
        head = MetaWriter()
        head.count(len(self.object_records))
        tail = MetaWriter()
        tail.texts(self.common_prefixes)
        tail.flag(self.is_truncated)
        tail.text(self.next_start_after)
        return b"".join((head.getvalue(), *self.object_records, tail.getvalue()))

    def decoded(self) -> ListObjectsResponse:
        """The same response as values (for tests and checks; the server only sends bytes)."""
        return ListObjectsResponse.decode(self.encode())


@dataclass(frozen=True, slots=True)
class CreateMultipartUploadResponse(_Meta):
    upload_id: str

    def _write(self, w: MetaWriter) -> None:
        w.text(self.upload_id)

    @classmethod
    def _read(cls, r: MetaReader) -> CreateMultipartUploadResponse:
        return cls(upload_id=r.text())


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteMultipartUploadResponse(_Meta):
    """``size`` is ignored by the Go client but must be present (§1.7)."""

    etag: str
    checksum_sha256: str
    size: int

    def _write(self, w: MetaWriter) -> None:
        w.text(self.etag)
        w.text(self.checksum_sha256)
        w.i64(self.size)

    @classmethod
    def _read(cls, r: MetaReader) -> CompleteMultipartUploadResponse:
        return cls(etag=r.text(), checksum_sha256=r.text(), size=r.i64())


@dataclass(frozen=True, slots=True)
class ListPartsResponse(_Meta):
    """All parts of the upload in ascending part-number order."""

    parts: tuple[PartInfo, ...] = ()

    def _write(self, w: MetaWriter) -> None:
        w.count(len(self.parts))
        for part in self.parts:
            w.i32(part.part_number)
            w.i64(part.size)
            w.text(part.etag)
            w.text(part.checksum_sha256)

    @classmethod
    def _read(cls, r: MetaReader) -> ListPartsResponse:
        count = r.u16()
        return cls(
            tuple(
                PartInfo(part_number=r.i32(), size=r.i64(), etag=r.text(), checksum_sha256=r.text())
                for _ in range(count)
            )
        )


# --- per-op tables ---------------------------------------------------------------------------

RequestMeta = (
    Empty
    | BucketRequest
    | ObjectRequest
    | PutObjectRequest
    | ListObjectsRequest
    | CreateMultipartUploadRequest
    | UploadPartRequest
    | CompleteMultipartUploadRequest
    | UploadRequest
)
ResponseMeta = (
    Empty
    | BucketInfo
    | ListBucketsResponse
    | PutResult
    | ObjectInfo
    | ListObjectsResponse
    | CreateMultipartUploadResponse
    | CompleteMultipartUploadResponse
    | ListPartsResponse
)

REQUEST_TYPES: Mapping[Op, type[RequestMeta]] = {
    Op.CREATE_BUCKET: BucketRequest,
    Op.DELETE_BUCKET: BucketRequest,
    Op.HEAD_BUCKET: BucketRequest,
    Op.LIST_BUCKETS: Empty,
    Op.PUT_OBJECT: PutObjectRequest,
    Op.GET_OBJECT: ObjectRequest,
    Op.HEAD_OBJECT: ObjectRequest,
    Op.DELETE_OBJECT: ObjectRequest,
    Op.LIST_OBJECTS: ListObjectsRequest,
    Op.CREATE_MULTIPART_UPLOAD: CreateMultipartUploadRequest,
    Op.UPLOAD_PART: UploadPartRequest,
    Op.COMPLETE_MULTIPART_UPLOAD: CompleteMultipartUploadRequest,
    Op.ABORT_MULTIPART_UPLOAD: UploadRequest,
    Op.LIST_PARTS: UploadRequest,
    Op.PING: Empty,
}

RESPONSE_TYPES: Mapping[Op, type[ResponseMeta]] = {
    Op.CREATE_BUCKET: BucketInfo,
    Op.DELETE_BUCKET: Empty,
    Op.HEAD_BUCKET: BucketInfo,
    Op.LIST_BUCKETS: ListBucketsResponse,
    Op.PUT_OBJECT: PutResult,
    Op.GET_OBJECT: ObjectInfo,
    Op.HEAD_OBJECT: ObjectInfo,
    Op.DELETE_OBJECT: Empty,
    Op.LIST_OBJECTS: ListObjectsResponse,
    Op.CREATE_MULTIPART_UPLOAD: CreateMultipartUploadResponse,
    Op.UPLOAD_PART: PutResult,
    Op.COMPLETE_MULTIPART_UPLOAD: CompleteMultipartUploadResponse,
    Op.ABORT_MULTIPART_UPLOAD: Empty,
    Op.LIST_PARTS: ListPartsResponse,
    Op.PING: Empty,
}


# Looked up by plain int: an Op member's hash is Enum.__hash__, a Python-level call per request.
_REQUEST_TYPES_BY_CODE: dict[int, type[RequestMeta]] = {
    int(op): cls for op, cls in REQUEST_TYPES.items()
}


def decode_request(op: Op, meta: bytes) -> RequestMeta:
    """Decode a request's meta for a known op; CodecError → answer 03 invalid request."""
    return _REQUEST_TYPES_BY_CODE[int(op)].decode(meta)


def decode_response(op: Op, meta: bytes) -> ResponseMeta:
    """Decode a success response's meta for the op that was sent."""
    return RESPONSE_TYPES[op].decode(meta)


def encode_meta(value: MetaValue) -> bytes:
    """Same as ``value.encode()``; here for symmetry with the decode_* functions."""
    return value.encode()
