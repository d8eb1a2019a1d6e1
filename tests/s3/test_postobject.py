"""FormIntake (POST Object's body consumer) without sockets: pausing at the file, the backlog,
back-pressure from the staging writer, limits; and the pure response helpers."""

from __future__ import annotations

from typing import Any

import pytest

from jay import errors
from jay.s3.formdata import FileStart, FormDataParser
from jay.s3.postobject import (
    FormIntake,
    form_fields,
    redirect_location,
    redirect_target,
    render_post_response,
    success_status,
)

BOUNDARY = b"b0undary"


def field(name: str, value: bytes) -> bytes:
    return (
        b"--"
        + BOUNDARY
        + f'\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value
        + b"\r\n"
    )


FILE_HEAD = (
    b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="f.txt"\r\n\r\n'
)
END = b"\r\n--" + BOUNDARY + b"--\r\n"


class FakeBody:
    """The RequestBody side: records pause/resume/stop."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


class FakeWriter:
    def __init__(self) -> None:
        self.data = bytearray()
        self.producer: Any = None

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        self.data += data


def intake_with_body() -> tuple[FormIntake, FakeBody]:
    intake = FormIntake(FormDataParser(BOUNDARY))
    body = FakeBody()
    intake.registerProducer(body, True)
    return intake, body


def test_pauses_at_the_file_and_streams_the_backlog_first() -> None:
    intake, body = intake_with_body()
    heads: list[Any] = []
    intake.head.addCallback(heads.append)
    intake.write(field("key", b"k") + FILE_HEAD + b"first part ")
    assert heads == [FileStart("f.txt", "")]
    assert body.calls == ["pause"]
    assert [(f.name, f.value) for f in intake.fields] == [("key", "k")]
    writer = FakeWriter()
    intake.start_file(writer, max_file_bytes=1000)  # type: ignore[arg-type]
    assert body.calls == ["pause", "resume"]
    assert writer.producer is intake
    intake.write(b"second part" + END)
    assert bytes(writer.data) == b"first part second part"
    assert intake.is_file_ended and writer.producer is None


def test_writer_back_pressure_reaches_the_body() -> None:
    intake, body = intake_with_body()
    intake.write(field("key", b"k") + FILE_HEAD)
    writer = FakeWriter()
    intake.start_file(writer, max_file_bytes=10**9)  # type: ignore[arg-type]
    body.calls.clear()
    writer.producer.pauseProducing()
    writer.producer.resumeProducing()
    assert body.calls == ["pause", "resume"]


def test_fields_after_the_file_are_ignored() -> None:
    intake, _ = intake_with_body()
    intake.write(field("key", b"k") + FILE_HEAD + b"data")
    writer = FakeWriter()
    intake.start_file(writer, max_file_bytes=100)  # type: ignore[arg-type]
    intake.write(b"\r\n" + field("key", b"other") + b"--" + BOUNDARY + b"--\r\n")
    assert [(f.name, f.value) for f in intake.fields] == [("key", "k")]
    assert bytes(writer.data) == b"data"
    assert intake.is_file_ended


def test_a_file_over_its_limit_fails_and_stops_the_body() -> None:
    intake, body = intake_with_body()
    intake.write(field("key", b"k") + FILE_HEAD)
    intake.start_file(FakeWriter(), max_file_bytes=10)  # type: ignore[arg-type]
    intake.write(b"x" * 100)
    assert isinstance(intake.error, errors.EntityTooLarge)
    assert body.calls[-1] == "stop"
    intake.write(b"more")  # dropped, no error


def test_a_parse_error_before_the_file_fails_head() -> None:
    intake, body = intake_with_body()
    failures: list[Any] = []
    intake.head.addErrback(failures.append)
    intake.write(b"--" + BOUNDARY + b"\r\nbroken header\r\n\r\n")
    assert failures and failures[0].check(errors.MalformedPOSTRequest)
    assert body.calls == ["stop"]


def test_form_without_file_fires_head_with_none() -> None:
    intake, _ = intake_with_body()
    heads: list[Any] = []
    intake.head.addCallback(heads.append)
    intake.write(field("key", b"k") + b"--" + BOUNDARY + b"--")
    assert heads == [None]


def test_form_fields_are_case_insensitive_first_value_wins() -> None:
    intake, _ = intake_with_body()
    intake.write(
        field("Key", b"a")
        + field("KEY", b"b")
        + field("Content-Type", b"text/plain")
        + b"--"
        + BOUNDARY
    )
    assert form_fields(intake.fields) == {"key": "a", "content-type": "text/plain"}


@pytest.mark.parametrize(
    ("value", "status"),
    [("200", 200), ("201", 201), ("204", 204), ("404", 204), ("", 204), ("x", 204)],
)
def test_success_status(value: str, status: int) -> None:
    assert success_status({"success_action_status": value}) == status


def test_redirects() -> None:
    assert redirect_target({"redirect": "https://a.example/x"}) == "https://a.example/x"
    assert redirect_target({"success_action_redirect": "javascript:alert(1)"}) is None
    assert redirect_target({"redirect": "https://a.example/\r\nSet-Cookie: x=1"}) is None
    assert (
        redirect_location("https://a.example/done", "b", "dir/a b", "abc")
        == "https://a.example/done?bucket=b&key=dir%2Fa%20b&etag=%22abc%22"
    )
    assert redirect_location("https://a.example/?x=1#top", "b", "k", "e") == (
        "https://a.example/?x=1&bucket=b&key=k&etag=%22e%22#top"
    )


def test_post_response_has_no_namespace() -> None:
    body = render_post_response("http://h/b/k", "b", "k&<", "abc")
    assert b"<PostResponse><Location>http://h/b/k</Location><Bucket>b</Bucket>" in body
    assert b"<Key>k&amp;&lt;</Key><ETag>&#34;abc&#34;</ETag></PostResponse>" in body
