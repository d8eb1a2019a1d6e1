"""S3 Object Lock with boto3 against a real jay process, following what ceph/s3-tests
(s3tests_boto3/functional/test_s3.py, ``test_object_lock_*``) and the AWS API reference expect:
lock-enabled buckets, the configuration and its validation, retention and legal hold set by
headers, by the bucket's default and by their own calls, deletes refused for locked versions
(DeleteObject and DeleteObjects), the GOVERNANCE bypass and its permission, COMPLIANCE rules,
Content-MD5 / checksum requirements, HEAD/GET headers, copies and multipart uploads, a restart.
"""

from __future__ import annotations

import datetime
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import code_of, s3_client, status_of
from tests.integration.jayproc import CLEAN_EXIT, JayProcess
from tests.integration.test_access import client, new_account, new_token
from tests.integration.test_s3_awscli import AWS, aws
from tests.integration.test_s3_post_object import form_body, post, presigned

_names = itertools.count()
UTC = datetime.UTC
FAR = datetime.datetime(2099, 1, 1, tzinfo=UTC)
FARTHER = datetime.datetime(2099, 6, 1, tzinfo=UTC)

pytestmark = pytest.mark.usefixtures("server_log_is_clean")


def locked_bucket(s3: Any, rule: dict[str, Any] | None = None) -> str:
    name = f"lock-{next(_names)}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    if rule is not None:
        s3.put_object_lock_configuration(
            Bucket=name,
            ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": rule},
        )
    return name


def in_days(days: float) -> datetime.datetime:
    return datetime.datetime.now(UTC) + datetime.timedelta(days=days)


def test_lock_enabled_bucket_and_its_configuration(s3: Any) -> None:
    bucket = locked_bucket(s3)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled"
    }
    conf = {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 2}},
    }
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=conf)
    assert s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"] == conf
    # Versioning stays Enabled.
    with pytest.raises(ClientError) as err:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert (status_of(err), code_of(err)) == (409, "InvalidBucketState")
    bad_rules: list[tuple[dict[str, Any], str]] = [
        ({"Mode": "GOVERNANCE", "Days": 1, "Years": 1}, "MalformedXML"),
        ({"Mode": "GOVERNANCE"}, "MalformedXML"),
        ({"Mode": "governance", "Days": 1}, "MalformedXML"),
        ({"Mode": "GOVERNANCE", "Days": 0}, "InvalidRetentionPeriod"),
        ({"Mode": "GOVERNANCE", "Years": -1}, "InvalidRetentionPeriod"),
    ]
    for retention, code in bad_rules:
        with pytest.raises(ClientError) as err:
            s3.put_object_lock_configuration(
                Bucket=bucket,
                ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": retention},
                },
            )
        assert (status_of(err), code_of(err)) == (400, code), retention
    with pytest.raises(ClientError) as err:
        s3.put_object_lock_configuration(
            Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Disabled"}
        )
    assert code_of(err) == "MalformedXML"
    # The failed attempts changed nothing.
    assert s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"] == conf
    # Without the rule: the default retention is gone, Object Lock stays.
    s3.put_object_lock_configuration(
        Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}
    )
    assert "Rule" not in s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]


def test_existing_buckets(s3: Any) -> None:
    """An unversioned bucket: InvalidBucketState; a versioned one may enable Object Lock."""
    name = f"lock-{next(_names)}"
    s3.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as err:
        s3.get_object_lock_configuration(Bucket=name)
    assert (status_of(err), code_of(err)) == (404, "ObjectLockConfigurationNotFoundError")
    conf = {"ObjectLockEnabled": "Enabled"}
    with pytest.raises(ClientError) as err:
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=conf)
    assert (status_of(err), code_of(err)) == (409, "InvalidBucketState")
    old = s3.put_object(Bucket=name, Key="k", Body=b"before")
    # Lock requests in a bucket without Object Lock: InvalidRequest, as before.
    for call in (
        lambda: s3.put_object(Bucket=name, Key="x", Body=b"x", ObjectLockLegalHoldStatus="ON"),
        lambda: s3.put_object_retention(
            Bucket=name, Key="k", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": FAR}
        ),
        lambda: s3.get_object_retention(Bucket=name, Key="k"),
        lambda: s3.put_object_legal_hold(Bucket=name, Key="k", LegalHold={"Status": "ON"}),
        lambda: s3.get_object_legal_hold(Bucket=name, Key="k"),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert (status_of(err), code_of(err)) == (400, "InvalidRequest")
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=conf)
    # The object written before is the "null" version; it can be locked now.
    assert "VersionId" not in old
    s3.put_object_legal_hold(Bucket=name, Key="k", VersionId="null", LegalHold={"Status": "ON"})
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=name, Key="k", VersionId="null")
    assert (status_of(err), code_of(err)) == (403, "AccessDenied")
    s3.put_object_legal_hold(Bucket=name, Key="k", VersionId="null", LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=name, Key="k", VersionId="null")


def test_lock_headers_on_put_head_and_get(s3: Any) -> None:
    bucket = locked_bucket(s3)
    put = s3.put_object(
        Bucket=bucket,
        Key="k",
        Body=b"abc",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=FAR,
        ObjectLockLegalHoldStatus="ON",
    )
    for response in (
        s3.head_object(Bucket=bucket, Key="k"),
        s3.get_object(Bucket=bucket, Key="k"),
        s3.head_object(Bucket=bucket, Key="k", VersionId=put["VersionId"]),
    ):
        assert response["ObjectLockMode"] == "GOVERNANCE"
        assert response["ObjectLockRetainUntilDate"] == FAR
        assert response["ObjectLockLegalHoldStatus"] == "ON"
    assert s3.get_object_retention(Bucket=bucket, Key="k")["Retention"] == {
        "Mode": "GOVERNANCE",
        "RetainUntilDate": FAR,
    }
    assert s3.get_object_legal_hold(Bucket=bucket, Key="k")["LegalHold"] == {"Status": "ON"}
    # A version with neither: no headers, and the getters say there is no configuration.
    s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    head = s3.head_object(Bucket=bucket, Key="plain")
    assert "ObjectLockMode" not in head and "ObjectLockLegalHoldStatus" not in head
    for getter in (s3.get_object_retention, s3.get_object_legal_hold):
        with pytest.raises(ClientError) as err:
            getter(Bucket=bucket, Key="plain")
        assert (status_of(err), code_of(err)) == (404, "NoSuchObjectLockConfiguration")
    # Header validation.
    bad: list[dict[str, Any]] = [
        {"ObjectLockMode": "GOVERNANCE"},
        {"ObjectLockRetainUntilDate": FAR},
        {"ObjectLockMode": "FOREVER", "ObjectLockRetainUntilDate": FAR},
        {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": in_days(-1)},
        {"ObjectLockLegalHoldStatus": "MAYBE"},
    ]
    for headers in bad:
        with pytest.raises(ClientError) as err:
            s3.put_object(Bucket=bucket, Key="bad", Body=b"x", **headers)
        assert (status_of(err), code_of(err)) == (400, "InvalidArgument"), headers
    s3.put_object_legal_hold(Bucket=bucket, Key="k", LegalHold={"Status": "OFF"})
    s3.delete_object(
        Bucket=bucket, Key="k", VersionId=put["VersionId"], BypassGovernanceRetention=True
    )


def test_deletes_of_locked_versions(s3: Any) -> None:
    bucket = locked_bucket(s3)
    v1 = s3.put_object(Bucket=bucket, Key="k1", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k2", Body=b"2")["VersionId"]
    s3.put_object_retention(
        Bucket=bucket, Key="k1", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": FAR}
    )
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="k1", VersionId=v1)
    assert (status_of(err), code_of(err)) == (403, "AccessDenied")
    # A plain delete only adds a marker; the locked version stays readable by its id.
    marker = s3.delete_object(Bucket=bucket, Key="k1")
    assert marker["DeleteMarker"] is True
    assert s3.get_object(Bucket=bucket, Key="k1", VersionId=v1)["Body"].read() == b"1"
    s3.delete_object(Bucket=bucket, Key="k1", VersionId=marker["VersionId"])
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "k1", "VersionId": v1}, {"Key": "k2", "VersionId": v2}]},
    )
    assert [(d["Key"], d["VersionId"]) for d in result["Deleted"]] == [("k2", v2)]
    assert [(e["Key"], e["VersionId"], e["Code"]) for e in result["Errors"]] == [
        ("k1", v1, "AccessDenied")
    ]
    # The bucket cannot go while a locked version is in it.
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket=bucket)
    assert code_of(err) == "BucketNotEmpty"
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "k1", "VersionId": v1}]},
        BypassGovernanceRetention=True,
    )
    assert [(d["Key"], d["VersionId"]) for d in result["Deleted"]] == [("k1", v1)]
    assert not result.get("Errors")
    s3.delete_bucket(Bucket=bucket)


def test_retention_changes_governance_and_compliance(s3: Any) -> None:
    bucket = locked_bucket(s3)
    version = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]
    sooner = {"Mode": "GOVERNANCE", "RetainUntilDate": FAR}
    later = {"Mode": "GOVERNANCE", "RetainUntilDate": FARTHER}
    s3.put_object_retention(Bucket=bucket, Key="k", Retention=sooner)
    s3.put_object_retention(Bucket=bucket, Key="k", Retention=later, VersionId=version)
    with pytest.raises(ClientError) as err:
        s3.put_object_retention(Bucket=bucket, Key="k", Retention=sooner)
    assert (status_of(err), code_of(err)) == (403, "AccessDenied")
    s3.put_object_retention(
        Bucket=bucket, Key="k", Retention=sooner, BypassGovernanceRetention=True
    )
    assert s3.get_object_retention(Bucket=bucket, Key="k")["Retention"] == sooner
    with pytest.raises(ClientError) as err:  # a bad document
        s3.put_object_retention(
            Bucket=bucket, Key="k", Retention={"Mode": "governance", "RetainUntilDate": FAR}
        )
    assert (status_of(err), code_of(err)) == (400, "MalformedXML")
    with pytest.raises(ClientError) as err:  # a date in the past
        s3.put_object_retention(
            Bucket=bucket,
            Key="k",
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": in_days(-1)},
        )
    assert (status_of(err), code_of(err)) == (400, "InvalidArgument")
    # To COMPLIANCE: with the bypass; then it only ever extends, bypass or not.
    compliance = {"Mode": "COMPLIANCE", "RetainUntilDate": FAR}
    with pytest.raises(ClientError) as err:
        s3.put_object_retention(Bucket=bucket, Key="k", Retention=compliance)
    assert code_of(err) == "AccessDenied"
    s3.put_object_retention(
        Bucket=bucket, Key="k", Retention=compliance, BypassGovernanceRetention=True
    )
    for retention in (sooner, {"Mode": "COMPLIANCE", "RetainUntilDate": in_days(1)}):
        with pytest.raises(ClientError) as err:
            s3.put_object_retention(
                Bucket=bucket, Key="k", Retention=retention, BypassGovernanceRetention=True
            )
        assert (status_of(err), code_of(err)) == (403, "AccessDenied")
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="k", VersionId=version, BypassGovernanceRetention=True)
    assert code_of(err) == "AccessDenied"
    s3.put_object_retention(
        Bucket=bucket, Key="k", Retention={"Mode": "COMPLIANCE", "RetainUntilDate": FARTHER}
    )
    assert s3.get_object_retention(Bucket=bucket, Key="k")["Retention"]["RetainUntilDate"] == (
        FARTHER
    )


def test_default_retention_copies_and_multipart(s3: Any) -> None:
    bucket = locked_bucket(s3, {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}})
    before = datetime.datetime.now(UTC)
    head = s3.head_object(
        Bucket=bucket, VersionId=s3.put_object(Bucket=bucket, Key="d", Body=b"x")["VersionId"],
        Key="d",
    )  # fmt: skip
    assert head["ObjectLockMode"] == "GOVERNANCE"
    until = head["ObjectLockRetainUntilDate"]
    assert before + datetime.timedelta(days=1) - datetime.timedelta(seconds=5) <= until
    assert until <= datetime.datetime.now(UTC) + datetime.timedelta(days=1, seconds=5)
    # Explicit headers win over the default.
    s3.put_object(
        Bucket=bucket,
        Key="e",
        Body=b"x",
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=FAR,
    )
    assert s3.head_object(Bucket=bucket, Key="e")["ObjectLockMode"] == "COMPLIANCE"
    # A copy never inherits its source's lock: it gets the destination's default, or none.
    plain = f"lock-{next(_names)}"
    s3.create_bucket(Bucket=plain, ObjectLockEnabledForBucket=True)
    s3.copy_object(Bucket=plain, Key="c", CopySource={"Bucket": bucket, "Key": "e"})
    assert "ObjectLockMode" not in s3.head_object(Bucket=plain, Key="c")
    s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "e"})
    assert s3.head_object(Bucket=bucket, Key="c")["ObjectLockMode"] == "GOVERNANCE"
    s3.copy_object(
        Bucket=plain,
        Key="c2",
        CopySource={"Bucket": bucket, "Key": "e"},
        ObjectLockLegalHoldStatus="ON",
    )
    copied = s3.head_object(Bucket=plain, Key="c2")
    assert copied["ObjectLockLegalHoldStatus"] == "ON" and "ObjectLockMode" not in copied
    # Multipart: the upload's headers apply at completion.
    upload = s3.create_multipart_upload(
        Bucket=plain, Key="m", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=FAR
    )
    part = s3.upload_part(
        Bucket=plain, Key="m", UploadId=upload["UploadId"], PartNumber=1, Body=b"abc"
    )
    done = s3.complete_multipart_upload(
        Bucket=plain,
        Key="m",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    assert s3.head_object(Bucket=plain, Key="m")["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(ClientError) as err:
        s3.delete_object(
            Bucket=plain, Key="m", VersionId=done["VersionId"], BypassGovernanceRetention=True
        )
    assert code_of(err) == "AccessDenied"


def test_integrity_header_is_required(jay: JayProcess, s3: Any) -> None:
    """PutObject with lock parameters (or into a bucket with a default retention) and the lock
    PUTs need Content-MD5 or an x-amz-checksum-*: botocore asked to send one only when
    required sends none on PutObject; the retention PUT has its checksum stripped."""
    bare = s3_client(jay, request_checksum_calculation="when_required")
    bucket = locked_bucket(s3)
    with pytest.raises(ClientError) as err:
        bare.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON")
    assert (status_of(err), code_of(err)) == (400, "InvalidRequest")
    assert "Content-MD5" in err.value.response["Error"]["Message"]
    bare.put_object(Bucket=bucket, Key="k", Body=b"x")  # no lock asked for, no default
    s3.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    with pytest.raises(ClientError) as err:
        bare.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert code_of(err) == "InvalidRequest"
    bare.put_object(Bucket=bucket, Key="k", Body=b"x", ContentMD5="ndTkYSaMgDT1yFZOFVxnpg==")
    # The parts of an upload that will be locked (the bucket's default retention) too.
    upload_id = bare.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    with pytest.raises(ClientError) as err:
        bare.upload_part(Bucket=bucket, Key="m", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert (status_of(err), code_of(err)) == (400, "InvalidRequest")
    part = bare.upload_part(
        Bucket=bucket,
        Key="m",
        UploadId=upload_id,
        PartNumber=1,
        Body=b"x",
        ContentMD5="ndTkYSaMgDT1yFZOFVxnpg==",
    )
    bare.complete_multipart_upload(
        Bucket=bucket,
        Key="m",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    assert bare.head_object(Bucket=bucket, Key="m")["ObjectLockMode"] == "GOVERNANCE"

    def strip(request: Any, **_: Any) -> None:
        for name in list(request.headers.keys()):
            if name.lower() in ("content-md5", "x-amz-sdk-checksum-algorithm") or (
                name.lower().startswith("x-amz-checksum-")
            ):
                del request.headers[name]

    s3.meta.events.register("before-sign.s3.PutObjectRetention", strip)
    try:
        with pytest.raises(ClientError) as err:
            s3.put_object_retention(
                Bucket=bucket, Key="k", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": FAR}
            )
        assert (status_of(err), code_of(err)) == (400, "InvalidRequest")
    finally:
        s3.meta.events.unregister("before-sign.s3.PutObjectRetention", strip)


def test_bypass_needs_its_permission(jay: JayProcess, s3: Any) -> None:
    """Another account allowed to delete versions may bypass GOVERNANCE retention only with
    s3:BypassGovernanceRetention granted; the owner's own token scope includes it."""
    other_account = new_account(jay, f"lock-other-{next(_names)}")
    other = client(jay, new_token(jay, other_account, ["*"]))
    bucket = locked_bucket(s3)
    arn = f"arn:aws:iam::{other_account}:root"

    def allow(actions: list[str]) -> None:
        s3.put_bucket_policy(
            Bucket=bucket,
            Policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": arn},
                            "Action": actions,
                            "Resource": f"arn:aws:s3:::{bucket}/*",
                        }
                    ],
                }
            ),
        )

    version = s3.put_object(
        Bucket=bucket,
        Key="k",
        Body=b"x",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=FAR,
    )["VersionId"]
    allow(["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention"])
    with pytest.raises(ClientError) as err:
        other.delete_object(
            Bucket=bucket, Key="k", VersionId=version, BypassGovernanceRetention=True
        )
    assert code_of(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        other.put_object_retention(
            Bucket=bucket,
            Key="k",
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": in_days(1)},
            BypassGovernanceRetention=True,
        )
    assert code_of(err) == "AccessDenied"
    allow(["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"])
    other.delete_object(Bucket=bucket, Key="k", VersionId=version, BypassGovernanceRetention=True)
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="k", VersionId=version)
    assert status_of(err) == 404


def test_lock_survives_a_restart(jay: JayProcess) -> None:
    s3 = s3_client(jay)
    bucket = locked_bucket(s3, {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 3}})
    version = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]
    s3.put_object_legal_hold(Bucket=bucket, Key="k", LegalHold={"Status": "ON"})
    assert jay.stop() in CLEAN_EXIT
    jay.start()
    s3 = s3_client(jay)
    head = s3.head_object(Bucket=bucket, Key="k", VersionId=version)
    assert (head["ObjectLockMode"], head["ObjectLockLegalHoldStatus"]) == ("COMPLIANCE", "ON")
    rule = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]["Rule"]
    assert rule == {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 3}}
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="k", VersionId=version)
    assert code_of(err) == "AccessDenied"


def test_readme_boto3_example(s3: Any) -> None:
    """README.rst's Object Lock example, as written there (in a bucket of its own)."""
    s3.create_bucket(Bucket="vault", ObjectLockEnabledForBucket=True)
    until = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    version = s3.put_object(
        Bucket="vault",
        Key="ledger.csv",
        Body=b"...",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
    )["VersionId"]
    assert s3.head_object(Bucket="vault", Key="ledger.csv")["ObjectLockRetainUntilDate"] == until
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket="vault", Key="ledger.csv", VersionId=version)
    assert code_of(err) == "AccessDenied"
    s3.put_object_retention(
        Bucket="vault",
        Key="ledger.csv",
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until},
    )
    s3.delete_object(
        Bucket="vault", Key="ledger.csv", VersionId=version, BypassGovernanceRetention=True
    )
    assert "Versions" not in s3.list_object_versions(Bucket="vault")


@pytest.mark.skipif(not AWS.exists(), reason="awscli is not installed in the venv")
def test_readme_aws_cli_example(jay: JayProcess, tmp_path: Path) -> None:
    """README.rst's AWS CLI commands for Object Lock."""
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 report")
    aws(jay, tmp_path, "s3api", "create-bucket", "--bucket", "vault-cli",
        "--object-lock-enabled-for-bucket")  # fmt: skip
    aws(jay, tmp_path, "s3api", "put-object-lock-configuration", "--bucket", "vault-cli",
        "--object-lock-configuration",
        '{"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE",'
        ' "Days": 30}}}')  # fmt: skip
    aws(jay, tmp_path, "s3api", "put-object", "--bucket", "vault-cli", "--key", "report.pdf",
        "--body", "report.pdf", "--object-lock-legal-hold-status", "ON")  # fmt: skip
    retention = json.loads(
        aws(
            jay,
            tmp_path,
            "s3api",
            "get-object-retention",
            "--bucket",
            "vault-cli",
            "--key",
            "report.pdf",
        ).stdout  # fmt: skip
    )["Retention"]
    assert retention["Mode"] == "GOVERNANCE"
    s3 = s3_client(jay)
    assert s3.get_object_legal_hold(Bucket="vault-cli", Key="report.pdf")["LegalHold"] == {
        "Status": "ON"
    }


def test_post_object_form_fields(jay: JayProcess, s3: Any) -> None:
    """A browser form's x-amz-object-lock-* fields lock the version like a PutObject's headers;
    into a bucket without Object Lock they are refused (InvalidRequest)."""
    bucket = locked_bucket(s3)
    fields = {
        "x-amz-object-lock-mode": "GOVERNANCE",
        "x-amz-object-lock-retain-until-date": "2099-01-01T00:00:00Z",
        "x-amz-object-lock-legal-hold": "ON",
    }
    conditions: list[Any] = [{name: value} for name, value in fields.items()]
    path, form = presigned(s3, bucket, "form.txt", Fields=fields, Conditions=conditions)
    reply = post(jay, path, form_body(form, b"from a form"))
    assert reply.status == 204, reply.body
    head = s3.head_object(Bucket=bucket, Key="form.txt")
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"] == FAR
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    plain = f"lock-{next(_names)}"
    s3.create_bucket(Bucket=plain)
    path, form = presigned(s3, plain, "form.txt", Fields=fields, Conditions=conditions)
    reply = post(jay, path, form_body(form, b"from a form"))
    assert reply.status == 400 and b"InvalidRequest" in reply.body
