"""Bucket lifecycle configuration with boto3 against a real jay process: put/get/delete, S3's
error codes, the x-amz-expiration header, owner-only access, and real expiration by the
maintenance job (run every second here)."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import SEED_ACCOUNT, SEED_SECRET, SEED_TOKEN_ID, s3_client
from tests.integration.jayproc import CLEAN_EXIT, JayProcess
from tests.integration.test_access import client, new_account, new_token

_names = itertools.count()


@pytest.fixture(scope="module")
def jay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JayProcess]:
    workdir: Path = tmp_path_factory.mktemp("jay-lifecycle")
    proc = JayProcess(
        workdir,
        {
            "seed_token": {"account": SEED_ACCOUNT, "id": SEED_TOKEN_ID, "secret": SEED_SECRET},
            "lifecycle_interval_seconds": 1,
        },
    ).start()
    yield proc
    log = proc.log_text()
    assert proc.stop() in CLEAN_EXIT, log[-5000:]
    assert "Unexpected error" not in log and "Traceback" not in log, log[-5000:]


@pytest.fixture
def s3(jay: JayProcess) -> Any:
    return s3_client(jay)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"lc-{next(_names)}"
    s3.create_bucket(Bucket=name)
    return name


def error_of(err: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = err.value.response
    return int(response["ResponseMetadata"]["HTTPStatusCode"]), str(response["Error"]["Code"])


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def test_put_get_delete(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert error_of(err) == (404, "NoSuchLifecycleConfiguration")
    # Deleting a configuration that is not there is fine, as on S3.
    deleted = s3.delete_bucket_lifecycle(Bucket=bucket)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204

    rules = [
        {"ID": "legacy", "Expiration": {"Days": 31}, "Prefix": "logs/", "Status": "Enabled"},
        {
            "ID": "and",
            "Filter": {
                "And": {
                    "Prefix": "tmp/",
                    "Tags": [{"Key": "k", "Value": "v"}],
                    "ObjectSizeGreaterThan": 10,
                }
            },
            "Status": "Disabled",
            "Expiration": {"Date": datetime(2030, 1, 1, tzinfo=UTC)},
        },
        {
            "ID": "uploads",
            "Filter": {"Prefix": ""},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 3},
        },
    ]
    put = s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": rules}
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == rules

    # A rule without an ID gets one.
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [{"Filter": {}, "Status": "Enabled", "Expiration": {"Days": 1}}]
        },
    )
    (generated,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert generated["ID"] and generated["Filter"] == {}

    assert s3.delete_bucket_lifecycle(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as err:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert error_of(err) == (404, "NoSuchLifecycleConfiguration")


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {"ID": "a" * 256, "Prefix": "", "Status": "Enabled", "Expiration": {"Days": 1}},
            "InvalidArgument",
        ),
        ({"ID": "x", "Prefix": "", "Status": "enabled", "Expiration": {"Days": 1}}, "MalformedXML"),
        (
            {"ID": "x", "Prefix": "", "Status": "Enabled", "Expiration": {"Days": 0}},
            "InvalidArgument",
        ),
        (
            {"ID": "x", "Prefix": "", "Status": "Enabled", "Expiration": {"Date": "20200101"}},
            "InvalidArgument",
        ),
        ({"ID": "x", "Prefix": "", "Status": "Enabled"}, "InvalidRequest"),
        ({"ID": "x", "Status": "Enabled", "Expiration": {"Days": 1}}, "MalformedXML"),
        (
            {
                "ID": "x",
                "Filter": {"Tag": {"Key": "k", "Value": "v"}},
                "Status": "Enabled",
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            },
            "InvalidRequest",
        ),
        (
            {
                "ID": "x",
                "Prefix": "",
                "Status": "Enabled",
                "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}],
            },
            "NotImplemented",
        ),
    ],
)
def test_invalid_configurations(s3: Any, bucket: str, rule: dict[str, Any], expected: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": [rule]}
        )
    status, code = error_of(err)
    assert code == expected
    assert status == (501 if expected == "NotImplemented" else 400)
    with pytest.raises(ClientError):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)  # nothing was stored


def test_duplicate_ids_are_refused(s3: Any, bucket: str) -> None:
    rule = {"ID": "same", "Prefix": "a/", "Status": "Enabled", "Expiration": {"Days": 1}}
    with pytest.raises(ClientError) as err:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": [rule, {**rule, "Prefix": "b/"}]}
        )
    assert error_of(err) == (400, "InvalidArgument")


def expiration_header(response: dict[str, Any]) -> tuple[datetime, str] | None:
    value = response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-expiration")
    if value is None:
        return None
    match = re.fullmatch(r'expiry-date="(.+)", rule-id="(.+)"', value)
    assert match, value
    return parsedate_to_datetime(match.group(1)), match.group(2)


def test_expiration_header_on_put_get_and_head(s3: Any, bucket: str) -> None:
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "two-days",
                    "Prefix": "logs/",
                    "Status": "Enabled",
                    "Expiration": {"Days": 2},
                }
            ]
        },
    )
    before = datetime.now(UTC)
    put = s3.put_object(Bucket=bucket, Key="logs/a", Body=b"x")
    after = datetime.now(UTC)
    due = expiration_header(put)
    assert due is not None and due[1] == "two-days"
    # Two days after creation, rounded up to the next midnight UTC.
    midnight = datetime(before.year, before.month, before.day, tzinfo=UTC) + timedelta(days=3)
    if after.date() != before.date():  # the put straddled midnight
        assert due[0] in (midnight, midnight + timedelta(days=1))
    else:
        assert due[0] == midnight
    assert expiration_header(s3.head_object(Bucket=bucket, Key="logs/a")) == due
    assert expiration_header(s3.get_object(Bucket=bucket, Key="logs/a")) == due
    # A copy and a completed multipart upload are new objects too.
    copied = s3.copy_object(
        Bucket=bucket, Key="logs/b", CopySource={"Bucket": bucket, "Key": "logs/a"}
    )
    copied_due = expiration_header(copied)
    assert copied_due is not None and copied_due[1] == "two-days"
    upload = s3.create_multipart_upload(Bucket=bucket, Key="logs/c")
    part = s3.upload_part(
        Bucket=bucket, Key="logs/c", UploadId=upload["UploadId"], PartNumber=1, Body=b"y"
    )
    completed = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="logs/c",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert expiration_header(completed) is not None
    # No rule matches: no header.
    s3.put_object(Bucket=bucket, Key="other", Body=b"x")
    assert expiration_header(s3.head_object(Bucket=bucket, Key="other")) is None
    # Due past the year 9999: no date to name, no header (and no error).
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {"ID": "far", "Prefix": "", "Status": "Enabled", "Expiration": {"Days": 2**31 - 1}}
            ]
        },
    )
    assert expiration_header(s3.get_object(Bucket=bucket, Key="logs/a")) is None
    s3.delete_bucket_lifecycle(Bucket=bucket)
    assert expiration_header(s3.head_object(Bucket=bucket, Key="logs/a")) is None


def test_only_the_owner_manages_lifecycle(jay: JayProcess, s3: Any, bucket: str) -> None:
    other = client(jay, new_token(jay, new_account(jay, "lc-other"), ["*"]))
    rules = {"Rules": [{"ID": "r", "Prefix": "", "Status": "Enabled", "Expiration": {"Days": 1}}]}
    for call, kwargs in (
        (other.put_bucket_lifecycle_configuration, {"LifecycleConfiguration": rules}),
        (other.get_bucket_lifecycle_configuration, {}),
        (other.delete_bucket_lifecycle, {}),
    ):
        with pytest.raises(ClientError) as err:
            call(Bucket=bucket, **kwargs)
        assert error_of(err) == (403, "AccessDenied")
    with pytest.raises(ClientError) as err:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert error_of(err)[1] == "NoSuchLifecycleConfiguration"


def test_the_maintenance_job_expires_objects_and_aborts_uploads(s3: Any, bucket: str) -> None:
    for key in ("old/a", "old/b", "old/c", "new/a"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"data")
    stale = s3.create_multipart_upload(Bucket=bucket, Key="old/upload")["UploadId"]
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                # A date in the past: everything under old/ is due now.
                {
                    "ID": "past",
                    "Filter": {"Prefix": "old/"},
                    "Status": "Enabled",
                    "Expiration": {"Date": datetime(2020, 1, 1, tzinfo=UTC)},
                },
                {
                    "ID": "later",
                    "Filter": {"Prefix": "new/"},
                    "Status": "Enabled",
                    "Expiration": {"Days": 1},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                },
            ]
        },
    )

    def remaining() -> list[str]:
        return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]

    wait_until(lambda: remaining() == ["new/a"])
    # The upload's rule is not due for a day: it stays.
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["UploadId"] for u in uploads] == [stale]
    s3.abort_multipart_upload(Bucket=bucket, Key="old/upload", UploadId=stale)
