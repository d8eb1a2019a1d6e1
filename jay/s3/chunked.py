"""Sans-IO decoder for ``Content-Encoding: aws-chunked`` request bodies (JAY_SPEC §8.2 item 2).

Wire format (each line ends in CRLF)::

    <hex size>[;chunk-signature=<64 hex>]      chunk header (signature only in signed modes)
    <size bytes of data>
    ...                                        more chunks
    0[;chunk-signature=<64 hex>]               the final, empty chunk
    name:value                                 zero or more trailers (trailer modes)
    x-amz-trailer-signature:<64 hex>           (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER)
                                               an empty line ends the body

Payload bytes are released as they arrive and never collected into a whole chunk, so a 64 MiB
chunk costs no 64 MiB buffer. A chunk's signature can only be checked once its last byte is in,
so ``feed`` may already have returned bytes of a chunk whose signature then fails: the caller
must treat everything as provisional until ``finish()`` returns and abort the upload (delete the
staging file) on any exception. Nothing unverified is ever committed that way.

Like h11's receive buffer, one ``bytearray`` plus a read offset keeps the work O(n) whatever the
split of the input; every limit is checked before bytes pile up.
"""

from __future__ import annotations

import enum
import hashlib
import re

from jay.auth.sigv4 import EMPTY_SHA256, PayloadMode, SigningContext, signatures_equal
from jay.errors import IncompleteBody, InvalidRequest, SignatureDoesNotMatch

# A chunk header is at most ~90 bytes ("ffffffffffffffff;chunk-signature=" + 64 hex); 4 KiB
# leaves room for extensions other clients add while refusing to buffer a line that never ends.
MAX_CHUNK_LINE_BYTES = 4096
# The trailer section holds a few checksum headers and one signature (< 1 KiB); 16 KiB is the
# usual HTTP header budget and bounds what a client can make us hold after the last chunk.
MAX_TRAILER_BYTES = 16384
# 16 hex digits is 2**64 - 1 bytes: anything longer is garbage, not a big chunk.
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SIGNATURE = re.compile(rb"[0-9a-f]{64}")
TRAILER_SIGNATURE = "x-amz-trailer-signature"


class _State(enum.Enum):
    CHUNK_HEADER = enum.auto()
    DATA = enum.auto()
    DATA_END = enum.auto()  # the CRLF after a chunk's data
    TRAILERS = enum.auto()  # after the final chunk, until the empty line
    DONE = enum.auto()
    FAILED = enum.auto()


class AwsChunkedDecoder:
    """Feed the raw body; get decoded payload pieces; call ``finish()`` at end of body.

    ``signing_context`` is required for the signed modes (chunk signatures chain from its seed
    signature). ``decoded_length`` is ``x-amz-decoded-content-length`` when the client sent it.
    After ``finish()``, ``trailers`` maps lower-case trailer names to values (the trailer
    signature included); the caller compares ``x-amz-checksum-*`` with what it computed.
    """

    def __init__(
        self,
        mode: PayloadMode,
        signing_context: SigningContext | None,
        trailer_expected: bool,
        decoded_length: int | None,
    ) -> None:
        if not mode.is_aws_chunked:
            raise ValueError(f"{mode} is not an aws-chunked payload mode")
        self._signed = mode.has_chunk_signatures
        if self._signed and signing_context is None:
            raise ValueError("signed aws-chunked bodies need a signing context")
        self._context = signing_context
        self._previous_signature = signing_context.seed_signature if signing_context else ""
        self._trailer_signed = mode is PayloadMode.STREAMING_SIGNED_TRAILER
        self._trailer_expected = trailer_expected or mode.has_trailer
        self._decoded_length = decoded_length
        self._buf = bytearray()
        self._pos = 0  # bytes of _buf already consumed
        self._scan_from = 0  # where to resume looking for CRLF (keeps line search O(n))
        self._state = _State.CHUNK_HEADER
        self._remaining = 0  # data bytes left in the current chunk
        self._chunk_signature = b""
        self._chunk_hash = hashlib.sha256()
        self._decoded_total = 0
        self._trailer_bytes = 0
        self._canonical_trailers: list[bytes] = []
        self.trailers: dict[str, str] = {}

    @property
    def decoded_total(self) -> int:
        return self._decoded_total

    @property
    def is_done(self) -> bool:
        return self._state is _State.DONE

    def feed(self, data: bytes) -> list[bytes]:
        if self._state is _State.FAILED:
            raise InvalidRequest("the aws-chunked decoder already failed")
        if not data:
            return []
        self._buf += data
        out: list[bytes] = []
        try:
            self._process(out)
        except Exception:
            self._state = _State.FAILED
            raise
        # Drop consumed bytes once per feed: CPython deletes a bytearray prefix without moving
        # the rest in most cases, and what remains is at most one partial line.
        del self._buf[: self._pos]
        self._scan_from = max(0, self._scan_from - self._pos)
        self._pos = 0
        return out

    def finish(self) -> None:
        """Raise unless the body ended exactly after the final chunk and its trailers."""
        if self._state is _State.FAILED:
            raise InvalidRequest("the aws-chunked decoder already failed")
        if self._state is not _State.DONE:
            self._state = _State.FAILED
            raise IncompleteBody("the aws-chunked body ended before its final chunk")
        if self._decoded_length is not None and self._decoded_total != self._decoded_length:
            self._state = _State.FAILED
            raise IncompleteBody(
                "the decoded body length does not match x-amz-decoded-content-length"
            )

    # --- internals ---------------------------------------------------------------------------

    def _take_line(self, limit: int) -> bytes | None:
        """The next CRLF-terminated line without its CRLF, or None if it is not all here."""
        end = self._buf.find(b"\r\n", max(self._scan_from, self._pos))
        if end < 0:
            pending = len(self._buf) - self._pos
            if pending > limit:
                raise InvalidRequest("aws-chunked line is too long")
            # A CR at the very end may be the first half of the CRLF: look again from there.
            self._scan_from = len(self._buf) - 1
            return None
        if end - self._pos > limit:
            raise InvalidRequest("aws-chunked line is too long")
        line = bytes(self._buf[self._pos : end])
        self._pos = end + 2
        self._scan_from = self._pos
        return line

    def _process(self, out: list[bytes]) -> None:
        while True:
            state = self._state
            if state is _State.DATA:
                available = len(self._buf) - self._pos
                if available == 0:
                    return
                n = min(available, self._remaining)
                piece = bytes(self._buf[self._pos : self._pos + n])
                self._pos += n
                self._remaining -= n
                if self._signed:
                    self._chunk_hash.update(piece)
                out.append(piece)
                if self._remaining == 0:
                    self._end_of_chunk_data()
            elif state is _State.DATA_END:
                if len(self._buf) - self._pos < 2:
                    return
                if self._buf[self._pos : self._pos + 2] != b"\r\n":
                    raise InvalidRequest("aws-chunked data is not followed by CRLF")
                self._pos += 2
                self._scan_from = self._pos
                self._state = _State.CHUNK_HEADER
            elif state is _State.CHUNK_HEADER:
                line = self._take_line(MAX_CHUNK_LINE_BYTES)
                if line is None:
                    return
                self._start_chunk(line)
            elif state is _State.TRAILERS:
                line = self._take_line(MAX_TRAILER_BYTES - self._trailer_bytes)
                if line is None:
                    if len(self._buf) - self._pos + self._trailer_bytes > MAX_TRAILER_BYTES:
                        raise InvalidRequest("aws-chunked trailer section is too large")
                    return
                self._trailer_bytes += len(line) + 2
                if self._trailer_bytes > MAX_TRAILER_BYTES:
                    raise InvalidRequest("aws-chunked trailer section is too large")
                if line:
                    self._add_trailer(line)
                else:
                    self._end_of_trailers()
            elif state is _State.DONE:
                if len(self._buf) > self._pos:
                    raise InvalidRequest("data after the end of the aws-chunked body")
                return
            else:  # pragma: no cover - FAILED is handled in feed()
                return

    def _start_chunk(self, line: bytes) -> None:
        size_text, _, extensions = line.partition(b";")
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise InvalidRequest("aws-chunked chunk size is not hexadecimal")
        size = int(size_text, 16)
        if self._signed:
            signature = b""
            for extension in extensions.split(b";"):
                name, _, value = extension.partition(b"=")
                if name.strip() == b"chunk-signature":
                    signature = value.strip()
            if not _SIGNATURE.fullmatch(signature):
                raise InvalidRequest("aws-chunked chunk header has no valid chunk-signature")
            self._chunk_signature = signature
            self._chunk_hash = hashlib.sha256()
        if self._decoded_length is not None and self._decoded_total + size > self._decoded_length:
            raise IncompleteBody("aws-chunked chunks exceed x-amz-decoded-content-length")
        self._decoded_total += size
        if size == 0:
            if self._signed:
                self._check_chunk_signature(EMPTY_SHA256)
            self._state = _State.TRAILERS
        else:
            self._remaining = size
            self._state = _State.DATA

    def _end_of_chunk_data(self) -> None:
        if self._signed:
            self._check_chunk_signature(self._chunk_hash.hexdigest())
        self._state = _State.DATA_END

    def _check_chunk_signature(self, chunk_sha256_hex: str) -> None:
        assert self._context is not None
        expected = self._context.chunk_signature(self._previous_signature, chunk_sha256_hex)
        given = self._chunk_signature.decode("ascii")
        if not signatures_equal(expected, given):
            raise SignatureDoesNotMatch("The chunk signature does not match")
        self._previous_signature = given

    def _add_trailer(self, line: bytes) -> None:
        if not self._trailer_expected:
            raise InvalidRequest("aws-chunked body has trailers but none were announced")
        name_bytes, sep, value_bytes = line.partition(b":")
        name = name_bytes.decode("latin-1").strip().lower()
        if not sep or not name:
            raise InvalidRequest("aws-chunked trailer is not 'name:value'")
        if name in self.trailers:
            raise InvalidRequest(f"aws-chunked trailer {name} is repeated")
        value = value_bytes.decode("latin-1").strip()
        self.trailers[name] = value
        if name != TRAILER_SIGNATURE:
            self._canonical_trailers.append(f"{name}:{value}\n".encode("latin-1"))

    def _end_of_trailers(self) -> None:
        if self._trailer_signed:
            assert self._context is not None
            given = self.trailers.get(TRAILER_SIGNATURE, "")
            expected = self._context.trailer_signature(
                self._previous_signature, b"".join(self._canonical_trailers)
            )
            if not signatures_equal(expected, given):
                raise SignatureDoesNotMatch("The trailer signature does not match")
        self._state = _State.DONE
