"""A sans-IO ``multipart/form-data`` parser for POST Object (browser form uploads).

Fed bytes, it returns events (RFC 7578 on RFC 2046 §5.1.1 framing): each form field before the
``file`` field as a whole ``Field``, then the file's content as ``FileData`` chunks between
``FileStart`` and ``FileEnd``, and ``FormEnd`` at the close delimiter. Fields after ``file`` are
parsed only as far as the framing needs and never reported: S3 ignores them.

Memory stays bounded: everything before the file content (boundaries, part headers, values) is
held at most up to ``max_pre_file_bytes``, file content is handed on as it arrives (only the
last ``len(delimiter) - 1`` bytes wait, in case they begin a delimiter), and the content of
parts after the file is dropped the same way. One ``bytearray`` with an offset, compacted once
per ``feed``, keeps the work linear in the input however it is split.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from jay.errors import MalformedPOSTRequest, MaxPostPreDataLengthExceeded, PreconditionFailed

# AWS rejects a POST whose fields before the file exceed 20 KiB with MaxPostPreDataLengthExceeded
# and <MaxPostPreDataLengthBytes>20480</MaxPostPreDataLengthBytes>. A policy document plus the
# usual fields is a few KiB, and the limit is what lets the fields be held in memory whole.
MAX_PRE_FILE_BYTES = 20 * 1024
# The header block of one part after the file (never kept): generous for Content-Disposition and
# Content-Type, small enough that a part without an end of headers cannot grow the buffer.
MAX_PART_HEADER_BYTES = 8 * 1024
# RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
MAX_BOUNDARY_BYTES = 70
# Transport padding (spaces, tabs) allowed between a delimiter and its CRLF (RFC 2046 §5.1.1).
MAX_PADDING_BYTES = 64
# The field that carries the object's content (AWS: "file", which must be the last field).
FILE_FIELD = "file"

NOT_A_FORM_CONDITION = "Bucket POST must be of the enclosure-type multipart/form-data"


@dataclass(frozen=True, slots=True)
class Field:
    """A form field before the file: its name as sent and its value as UTF-8 text."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class FileStart:
    filename: str  # "" when the part has no filename parameter
    content_type: str  # the part's own Content-Type, "" when absent


@dataclass(frozen=True, slots=True)
class FileData:
    data: bytes


@dataclass(frozen=True, slots=True)
class FileEnd:
    pass


@dataclass(frozen=True, slots=True)
class FormEnd:
    pass


Event = Field | FileStart | FileData | FileEnd | FormEnd


class _State(enum.Enum):
    PREAMBLE = "preamble"  # before the first delimiter
    AFTER_DELIMITER = "after-delimiter"  # "--" (close) or padding + CRLF (next part)
    HEADERS = "headers"  # a part's header block, up to the empty line
    FIELD = "field"  # a field value before the file: collected
    FILE = "file"  # the file content: handed on in chunks
    SKIP = "skip"  # a part after the file: dropped
    EPILOGUE = "epilogue"  # after the close delimiter: ignored


def boundary_from_content_type(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type.

    Another media type is S3's 412 PreconditionFailed (the condition names the enclosure type);
    a form without a usable boundary cannot be parsed at all: MalformedPOSTRequest.
    """
    media_type, _, params = content_type.partition(";")
    if media_type.strip().lower() != "multipart/form-data":
        raise PreconditionFailed(condition=NOT_A_FORM_CONDITION)
    for name, value in _split_params(params):
        if name == "boundary":
            raw = value.encode("utf-8", "replace")
            if 1 <= len(raw) <= MAX_BOUNDARY_BYTES:
                return raw
            break
    raise MalformedPOSTRequest()


def _split_params(text: str) -> list[tuple[str, str]]:
    """``; name=value; name="quoted \\" value"`` → [(lower-case name, value)], in order."""
    params: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t;":
            i += 1
        start = i
        while i < n and text[i] not in "=;":
            i += 1
        name = text[start:i].strip().lower()
        value = ""
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] == '"':
                i += 1
                chars: list[str] = []
                while i < n and text[i] != '"':
                    # RFC 7230 quoted-pair; browsers escape a quote as %22 and send a
                    # backslash as is, so only \" and \\ are taken as escapes.
                    if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\':
                        i += 1
                    chars.append(text[i])
                    i += 1
                i += 1  # the closing quote
                value = "".join(chars)
                while i < n and text[i] != ";":
                    i += 1
            else:
                start = i
                while i < n and text[i] != ";":
                    i += 1
                value = text[start:i].strip()
        if name:
            params.append((name, value))
    return params


@dataclass(frozen=True, slots=True)
class _PartHead:
    name: str
    filename: str
    content_type: str


def _parse_part_head(block: bytes) -> _PartHead:
    """A part's header block (without the final empty line) → its form-data name."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPOSTRequest() from None
    disposition: str | None = None
    content_type = ""
    for line in text.split("\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise MalformedPOSTRequest()
        lowered = name.strip().lower()
        if lowered == "content-disposition":
            disposition = value.strip()
        elif lowered == "content-type":
            content_type = value.strip()
    if disposition is None:
        raise MalformedPOSTRequest()
    kind, _, params = disposition.partition(";")
    if kind.strip().lower() != "form-data":
        raise MalformedPOSTRequest()
    values = dict(reversed(_split_params(params)))  # the first of a repeated parameter wins
    field_name = values.get("name")
    if not field_name:
        raise MalformedPOSTRequest()
    return _PartHead(field_name, values.get("filename", ""), content_type)


class FormDataParser:
    """``feed(bytes) -> list[Event]``, then ``finish()`` at the end of the body."""

    def __init__(self, boundary: bytes, *, max_pre_file_bytes: int = MAX_PRE_FILE_BYTES) -> None:
        self._delimiter = b"\r\n--" + boundary
        self._max_pre_file_bytes = max_pre_file_bytes
        # The body is read as if it began with CRLF, so a first delimiter at offset 0 (the
        # usual case, no preamble) is found by the same search as every other one.
        self._buffer = bytearray(b"\r\n")
        self._offset = 0
        self._state = _State.PREAMBLE
        self._is_file_seen = False
        self._pre_file_bytes = -2  # the CRLF put in front is not the client's
        self._part: _PartHead | None = None

    @property
    def is_complete(self) -> bool:
        """The close delimiter has been read."""
        return self._state is _State.EPILOGUE

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        if self._state is _State.EPILOGUE:
            return events
        self._buffer += data
        while self._step(events):
            pass
        if not self._is_file_seen and self._state is not _State.EPILOGUE:
            # Every byte still held is before the file: held and consumed ones together may
            # not pass the limit (the check that keeps this buffer small).
            held = len(self._buffer) - self._offset
            if self._pre_file_bytes + self._offset + held > self._max_pre_file_bytes:
                raise MaxPostPreDataLengthExceeded(max_bytes=self._max_pre_file_bytes)
        self._compact()
        return events

    def finish(self) -> None:
        """The body ended: MalformedPOSTRequest unless the close delimiter came."""
        if self._state is not _State.EPILOGUE:
            raise MalformedPOSTRequest()

    # --- internals -------------------------------------------------------------------------

    def _compact(self) -> None:
        if self._offset:
            if not self._is_file_seen:
                self._pre_file_bytes += self._offset
            del self._buffer[: self._offset]
            self._offset = 0

    def _consume(self, count: int) -> None:
        self._offset += count

    def _step(self, events: list[Event]) -> bool:
        """Advance by one token; False when more bytes are needed."""
        state = self._state
        buffer = self._buffer
        if state is _State.PREAMBLE:
            found = buffer.find(self._delimiter, self._offset)
            if found == -1:
                # Keep only what could still begin a delimiter; the rest is preamble.
                keep = len(self._delimiter) - 1
                self._offset = max(self._offset, len(buffer) - keep)
                return False
            self._offset = found + len(self._delimiter)
            self._state = _State.AFTER_DELIMITER
            return True
        if state is _State.AFTER_DELIMITER:
            return self._after_delimiter(events)
        if state is _State.HEADERS:
            return self._headers(events)
        if state is _State.FIELD:
            found = buffer.find(self._delimiter, self._offset)
            if found == -1:
                return False
            assert self._part is not None
            try:
                value = bytes(buffer[self._offset : found]).decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedPOSTRequest() from None
            events.append(Field(self._part.name, value))
            self._offset = found + len(self._delimiter)
            self._state = _State.AFTER_DELIMITER
            return True
        if state is _State.FILE or state is _State.SKIP:
            found = buffer.find(self._delimiter, self._offset)
            end = (
                found if found != -1 else max(self._offset, len(buffer) - len(self._delimiter) + 1)
            )
            if state is _State.FILE and end > self._offset:
                events.append(FileData(bytes(buffer[self._offset : end])))
            if found == -1:
                self._offset = end
                return False
            if state is _State.FILE:
                events.append(FileEnd())
            self._offset = found + len(self._delimiter)
            self._state = _State.AFTER_DELIMITER
            return True
        return False  # EPILOGUE: nothing more to find

    def _after_delimiter(self, events: list[Event]) -> bool:
        buffer = self._buffer
        start = self._offset
        if len(buffer) - start < 2:
            return False
        if buffer[start : start + 2] == b"--":
            self._offset = len(buffer)  # the epilogue, if any, is ignored
            self._state = _State.EPILOGUE
            events.append(FormEnd())
            return False
        i = start
        while i < len(buffer) and buffer[i] in b" \t":
            i += 1
        if i - start > MAX_PADDING_BYTES:
            raise MalformedPOSTRequest()
        if len(buffer) - i < 2:
            return False
        if buffer[i : i + 2] != b"\r\n":
            raise MalformedPOSTRequest()
        self._offset = i + 2
        self._state = _State.HEADERS
        return True

    def _headers(self, events: list[Event]) -> bool:
        buffer = self._buffer
        start = self._offset
        if buffer[start : start + 2] == b"\r\n":
            end, block = start + 2, b""  # a part without headers (then without a name)
        elif len(buffer) - start < 2:
            return False
        else:
            found = buffer.find(b"\r\n\r\n", start)
            if found == -1:
                if self._is_file_seen and len(buffer) - start > MAX_PART_HEADER_BYTES:
                    raise MalformedPOSTRequest()
                return False
            end, block = found + 4, bytes(buffer[start:found])
        if self._is_file_seen:
            if end - start > MAX_PART_HEADER_BYTES:
                raise MalformedPOSTRequest()
            self._offset = end
            self._state = _State.SKIP
            return True
        part = _parse_part_head(block)
        self._offset = end
        if part.name.lower() == FILE_FIELD:
            self._is_file_seen = True
            # Bytes up to here were before the file; count them now, before compaction stops.
            self._pre_file_bytes += self._offset
            if self._pre_file_bytes > self._max_pre_file_bytes:
                raise MaxPostPreDataLengthExceeded(max_bytes=self._max_pre_file_bytes)
            events.append(FileStart(part.filename, part.content_type))
            self._state = _State.FILE
        else:
            self._part = part
            self._state = _State.FIELD
        return True
