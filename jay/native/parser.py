"""Incremental sans-IO parsers for the native protocol (JAY_SPEC §1.2, §1.3, §1.10).

A parser owns no transport. Bytes go in through ``receive_data``; events come out of
``next_event`` one at a time (None: more bytes are needed), or all at once from ``feed``.
Pulling one event at a time lets a sequential server stop taking events while it works on a
request; whatever it has not pulled stays in the buffer, whose size ``buffered_bytes`` reports
so the caller can pause the transport (the parser never pauses anything itself).

A data section is never collected: it comes out as ``DataChunk`` events holding whatever bytes
have arrived, then one ``RequestEnd``/``ResponseEnd``. ``skip_data()`` turns the rest of the
current data section into a silent discard (the drain rule of §1.10).

Errors are *returned* as the last event, as a :class:`ProtocolError` instance (an exception the
caller may also raise): that keeps them in order behind the requests that arrived before the bad
bytes, which a pipelining client expects to see answered first (§1.9). After an error the parser
is dead: it ignores further bytes and yields nothing.

Buffering is one ``bytearray`` plus a read offset, compacted when the consumed prefix dominates,
so parsing stays linear however the bytes are split (twisted's ``IntNStringReceiver``, h11's
``ReceiveBuffer``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto

from jay.native.codec import (
    HANDSHAKE_PREAMBLE_SIZE,
    HANDSHAKE_REPLY_SIZE,
    HEADER_SIZE,
    MAX_DATA_LEN,
    MAX_META_BYTES,
    CodecError,
    HandshakeStatus,
    Status,
    decode_client_preamble,
    decode_server_handshake,
    split_credentials,
    unpack_header,
)

# Compact the buffer once at least this many consumed bytes sit in front of the unread ones
# and they outnumber the unread ones: each byte is then moved O(1) times on average.
_COMPACT_THRESHOLD = 64 * 1024


class ProtocolError(Exception):
    """The peer broke the framing. Returned as an event; the connection should end.

    ``status_hint`` is the frame status to answer with before closing, or None when nothing
    should be written (upstream closes silently on framing errors, §1.1). ``handshake_status``
    is set when an 8-byte handshake reply should be written first (§1.2). ``should_close`` is
    True for every error this module produces; it is there for callers that map other errors.
    """

    def __init__(
        self,
        reason: str,
        *,
        status_hint: Status | None = None,
        handshake_status: HandshakeStatus | None = None,
        should_close: bool = True,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_hint = status_hint
        self.handshake_status = handshake_status
        self.should_close = should_close

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProtocolError):
            return NotImplemented
        return (type(self), self.reason, self.status_hint, self.handshake_status) == (
            type(other),
            other.reason,
            other.status_hint,
            other.handshake_status,
        )

    def __hash__(self) -> int:
        return hash((type(self), self.reason))


class HandshakeError(ProtocolError):
    """Server side: reply with ``handshake_status`` (01 or 02), then close (§1.2).

    Client side: the server's reply was not a handshake reply at all (bad magic).
    """


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handshake:
    """A well-formed preamble and credentials. Authentication is the server's next step."""

    token_id: str
    secret: str = field(repr=False)  # never in logs or reprs


@dataclass(frozen=True, slots=True)
class HandshakeReply:
    """The server's 8-byte reply, seen by the client; ``status`` 0 means authenticated."""

    status: int


@dataclass(frozen=True, slots=True)
class RequestHead:
    """Header and complete meta of a request; ``op`` may be a code the server does not know."""

    op: int
    stream_id: int
    meta: bytes
    data_len: int


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    stream_id: int
    meta: bytes
    data_len: int


@dataclass(frozen=True, slots=True)
class DataChunk:
    """Some bytes of the current frame's data section, in order, never empty."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class RequestEnd:
    """The request's data section is complete (or was skipped); the next frame may follow."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class ResponseEnd:
    stream_id: int


ServerEvent = Handshake | RequestHead | DataChunk | RequestEnd | ProtocolError
ClientEvent = HandshakeReply | ResponseHead | DataChunk | ResponseEnd | ProtocolError


class _State(Enum):
    HANDSHAKE = auto()  # waiting for the 8-byte preamble (server) or reply (client)
    CREDENTIALS = auto()  # server only: waiting for auth_len credential bytes
    HEADER = auto()  # waiting for a 17-byte frame header
    META = auto()  # waiting for meta_len bytes
    DATA = auto()  # passing data_len bytes through (or discarding them)
    FAILED = auto()  # a ProtocolError was returned; nothing more is parsed


class _FrameParser:
    """The part both directions share: buffer, header, meta, data section."""

    def __init__(self, *, max_meta_bytes: int) -> None:
        self._buffer = bytearray()
        self._offset = 0
        # A received chunk that lies inside a data section and arrived with nothing buffered
        # ahead of it: passed on as it is (no copy into the buffer and out again). Never set
        # while the buffer holds anything, so byte order is kept.
        self._direct: bytes | None = None
        self._state = _State.HANDSHAKE
        self._max_meta_bytes = max_meta_bytes
        self._need = 0  # bytes the CREDENTIALS or META state waits for
        self._code = 0
        self._stream_id = 0
        self._data_len = 0
        self._data_remaining = 0
        self._is_discarding = False

    # -- public ------------------------------------------------------------------------------

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet turned into events (for the caller's water marks)."""
        return len(self._buffer) - self._offset + (0 if self._direct is None else len(self._direct))

    @property
    def is_failed(self) -> bool:
        return self._state is _State.FAILED

    @property
    def is_in_data(self) -> bool:
        """True while the data section of the last head is still being passed through."""
        return self._state is _State.DATA

    @property
    def data_remaining(self) -> int:
        """Bytes of the current data section not yet passed through or discarded."""
        return self._data_remaining if self._state is _State.DATA else 0

    def receive_data(self, data: bytes) -> None:
        if self._state is _State.FAILED or not data:
            return
        if self._offset and self._offset == len(self._buffer):
            self._buffer.clear()
            self._offset = 0
        if self._direct is not None:
            self._buffer += self._direct
            self._direct = None
        elif not self._buffer and self._state is _State.DATA and self._data_remaining > 0:
            self._direct = data
            return
        self._buffer += data

    def skip_data(self) -> None:
        """Discard the rest of the current data section: no more DataChunks, then the End event.

        Call it after a head whose request is rejected (§1.10). It acts on the frame being
        parsed *now*, and only on bytes not yet turned into events. With ``next_event()`` (pull
        one, act, pull the next) that is exactly the head just handled. With ``feed()``, later
        events of the same batch (chunks of this frame, even the next frame) are already out:
        the caller must ignore chunks of a frame it drains, and should prefer ``next_event()``.
        """
        if self._state is not _State.DATA:
            raise RuntimeError("skip_data() outside a data section")
        self._is_discarding = True

    # -- machinery ---------------------------------------------------------------------------

    def _take(self, size: int) -> bytes | None:
        """``size`` bytes from the buffer, or None (and nothing consumed) if not all there yet."""
        if len(self._buffer) - self._offset < size:
            return None
        start = self._offset
        self._offset += size
        view = memoryview(self._buffer)  # one copy out, not a bytearray slice and then bytes()
        try:
            chunk = view[start : self._offset].tobytes()
        finally:
            view.release()  # a live export would forbid resizing the bytearray
        self._compact()
        return chunk

    def _compact(self) -> None:
        if self._offset == len(self._buffer):
            self._buffer.clear()
            self._offset = 0
        elif self._offset >= _COMPACT_THRESHOLD and self._offset * 2 >= len(self._buffer):
            del self._buffer[: self._offset]
            self._offset = 0

    def _fail(self, error: ProtocolError) -> ProtocolError:
        self._state = _State.FAILED
        self._buffer = bytearray()
        self._offset = 0
        self._direct = None
        return error

    def _next(self) -> object | None:
        while True:
            state = self._state
            if state is _State.FAILED:
                return None
            if state is _State.HANDSHAKE or state is _State.CREDENTIALS:
                return self._next_handshake_event()
            if state is _State.HEADER:
                header_bytes = self._take(HEADER_SIZE)
                if header_bytes is None:
                    return None
                code, stream_id, meta_len, data_len = unpack_header(header_bytes)
                # Checked on the header, before waiting for (and so holding) any meta: upstream
                # drops any request whose meta exceeds 1 MiB and the Go client drops such
                # responses (§1.9, §1.10), so nothing legitimate is lost and a peer cannot make
                # us hold more. Unlike upstream this also applies to rate-limited frames, whose
                # meta upstream discards at any length (§1.10): jay closes instead.
                if meta_len > self._max_meta_bytes:
                    return self._fail(
                        ProtocolError(f"meta_len {meta_len} exceeds {self._max_meta_bytes}")
                    )
                # A data_len with the top bit set is a protocol error (§1.3): it cannot be a
                # real length, and as a signed Go int64 it would be negative.
                if data_len > MAX_DATA_LEN:
                    return self._fail(ProtocolError("data_len has the top bit set"))
                self._code = code
                self._stream_id = stream_id
                self._data_len = data_len
                self._need = meta_len
                self._state = _State.META
                continue
            if state is _State.META:
                meta = self._take(self._need)
                if meta is None:
                    return None
                self._state = _State.DATA
                self._data_remaining = self._data_len
                self._is_discarding = False
                return self._head(self._code, self._stream_id, meta, self._data_len)
            # DATA
            if self._data_remaining == 0:
                self._state = _State.HEADER
                self._is_discarding = False
                return self._end(self._stream_id)
            direct = self._direct
            if direct is not None:
                # The buffer is empty: pass the chunk on whole, or its head and keep the rest.
                self._direct = None
                size = min(len(direct), self._data_remaining)
                self._data_remaining -= size
                if size < len(direct):
                    self._buffer += memoryview(direct)[size:]
                    direct = direct[:size]
                if self._is_discarding:
                    continue
                return DataChunk(stream_id=self._stream_id, data=direct)
            available = len(self._buffer) - self._offset
            if available == 0:
                return None
            size = min(available, self._data_remaining)
            self._data_remaining -= size
            if self._is_discarding:
                self._offset += size
                self._compact()
                continue
            data = self._take(size)
            assert data is not None  # size <= available
            return DataChunk(stream_id=self._stream_id, data=data)

    def _next_handshake_event(self) -> object | None:
        raise NotImplementedError

    def _head(self, code: int, stream_id: int, meta: bytes, data_len: int) -> object:
        raise NotImplementedError

    def _end(self, stream_id: int) -> object:
        raise NotImplementedError


class ServerFrameParser(_FrameParser):
    """What the server reads: a handshake, then request frames (§1.2, §1.3)."""

    def __init__(self, *, max_meta_bytes: int = MAX_META_BYTES) -> None:
        super().__init__(max_meta_bytes=max_meta_bytes)

    def next_event(self) -> ServerEvent | None:
        """The next event, or None until more bytes arrive (or forever after an error)."""
        # Not typing.cast: its ``ServerEvent | None`` would build a union object per event.
        return self._next()  # type: ignore[return-value]

    def feed(self, data: bytes) -> list[ServerEvent]:
        """``receive_data`` then every event now available, the ProtocolError (if any) last."""
        self.receive_data(data)
        events: list[ServerEvent] = []
        while (event := self.next_event()) is not None:
            events.append(event)
        return events

    def _next_handshake_event(self) -> ServerEvent | None:
        if self._state is _State.HANDSHAKE:
            preamble = self._take(HANDSHAKE_PREAMBLE_SIZE)
            if preamble is None:
                return None
            try:
                # Wrong magic, version ≠ 1 and auth_len = 0 all answer 02 (§1.2). auth_len is a
                # u16, so the credentials we wait for are bounded by 65535 bytes.
                parsed = decode_client_preamble(preamble)
            except CodecError as e:
                return self._fail(
                    HandshakeError(e.reason, handshake_status=HandshakeStatus.VERSION_MISMATCH)
                )
            self._need = parsed.auth_len
            self._state = _State.CREDENTIALS
        credentials = self._take(self._need)
        if credentials is None:
            return None
        split = split_credentials(credentials)
        if split is None:
            # No ':' is an authentication failure (01), not a framing one (§1.2).
            return self._fail(
                HandshakeError(
                    "credentials without ':'", handshake_status=HandshakeStatus.AUTH_FAILED
                )
            )
        self._state = _State.HEADER
        return Handshake(token_id=split[0], secret=split[1])

    def _head(self, code: int, stream_id: int, meta: bytes, data_len: int) -> RequestHead:
        return RequestHead(op=code, stream_id=stream_id, meta=meta, data_len=data_len)

    def _end(self, stream_id: int) -> RequestEnd:
        return RequestEnd(stream_id=stream_id)


class ClientFrameParser(_FrameParser):
    """What the client reads: the 8-byte handshake reply, then response frames."""

    def __init__(self, *, max_meta_bytes: int = MAX_META_BYTES) -> None:
        super().__init__(max_meta_bytes=max_meta_bytes)

    def next_event(self) -> ClientEvent | None:
        """The next event, or None until more bytes arrive (or forever after an error)."""
        return self._next()  # type: ignore[return-value]  # see ServerFrameParser.next_event

    def feed(self, data: bytes) -> list[ClientEvent]:
        """``receive_data`` then every event now available, the ProtocolError (if any) last."""
        self.receive_data(data)
        events: list[ClientEvent] = []
        while (event := self.next_event()) is not None:
            events.append(event)
        return events

    def _next_handshake_event(self) -> ClientEvent | None:
        reply = self._take(HANDSHAKE_REPLY_SIZE)
        if reply is None:
            return None
        try:
            status = decode_server_handshake(reply)  # magic only, like the Go client
        except CodecError as e:
            return self._fail(HandshakeError(e.reason))
        if status != HandshakeStatus.OK:
            # The server closes after a non-zero status; nothing after it is a frame.
            self._state = _State.FAILED
            self._buffer = bytearray()
            self._offset = 0
        else:
            self._state = _State.HEADER
        return HandshakeReply(status=status)

    def _head(self, code: int, stream_id: int, meta: bytes, data_len: int) -> ResponseHead:
        return ResponseHead(status=code, stream_id=stream_id, meta=meta, data_len=data_len)

    def _end(self, stream_id: int) -> ResponseEnd:
        return ResponseEnd(stream_id=stream_id)
