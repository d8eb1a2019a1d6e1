"""XML parsing (hardening, limits, shapes) and rendering, checked with botocore's own parser."""

from __future__ import annotations

import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from botocore.handlers import decode_list_object, decode_list_object_v2, decode_list_object_versions
from botocore.parsers import RestXMLParser
from botocore.session import get_session

from jay import errors
from jay.s3 import xml as sx
from jay.storage.api import (
    BucketInfo,
    DeleteCondition,
    ListedObject,
    ListedVersion,
    ListPage,
    MultipartUpload,
    ObjectAttributes,
    ObjectInfo,
    PartInfo,
    PartsPage,
    UploadsPage,
    VersionsPage,
)

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
T = 1704164645.0  # 2024-01-02T03:04:05Z
MODEL = get_session().get_service_model("s3")


def botocore_parse(operation: str, body: bytes, status: int = 200) -> dict[str, Any]:
    shape = MODEL.operation_model(operation).output_shape
    parsed = RestXMLParser().parse({"body": body, "headers": {}, "status_code": status}, shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def obj(key: str, size: int = 5, etag: str = "5d41402abc4b2a76b9719d911017c592") -> ListedObject:
    return ListedObject(
        key=key,
        size=size,
        etag=etag,
        sha256_hex="00" * 32,
        updated_at=T,
        content_type="application/octet-stream",
    )


def check_document(body: bytes, root: str, *, namespaced: bool = True) -> ET.Element:
    text = body.decode()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    assert text.count("\n") == 1  # one line after the declaration
    element = ET.fromstring(body)
    assert element.tag == (NS + root if namespaced else root)
    return element


# --- parsing ---------------------------------------------------------------------------------

COMPLETE = b"""<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><ETag>"e1"</ETag><PartNumber>1</PartNumber></Part>
  <Part><PartNumber>2</PartNumber><ETag>&quot;e2&quot;</ETag>
        <ChecksumCRC32>AAAAAA==</ChecksumCRC32><ChecksumSHA256>abc=</ChecksumSHA256></Part>
  <Part><PartNumber> 3 </PartNumber></Part>
</CompleteMultipartUpload>"""


def test_parse_complete() -> None:
    parts = sx.parse_complete_multipart_upload(COMPLETE)
    assert [(p.part_number, p.etag) for p in parts] == [(1, "e1"), (2, "e2"), (3, None)]
    assert parts[1].checksums == {"CRC32": "AAAAAA==", "SHA256": "abc="}


def test_parse_complete_without_namespace() -> None:
    body = b"<CompleteMultipartUpload><Part><PartNumber>7</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>"
    assert sx.parse_complete_multipart_upload(body)[0].part_number == 7


def test_parse_complete_keeps_request_order() -> None:
    # order is checked by storage (InvalidPartOrder), so the parser must not sort
    body = b"<CompleteMultipartUpload><Part><PartNumber>2</PartNumber></Part><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>"
    assert [p.part_number for p in sx.parse_complete_multipart_upload(body)] == [2, 1]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<CompleteMultipartUpload>",
        b"<Other><Part><PartNumber>1</PartNumber></Part></Other>",
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>one</PartNumber></Part></CompleteMultipartUpload>",
    ],
)
def test_parse_complete_malformed(body: bytes) -> None:
    with pytest.raises(errors.MalformedXML):
        sx.parse_complete_multipart_upload(body)


@pytest.mark.parametrize("number", ["0", "10001", "-1"])
def test_parse_complete_part_number_range(number: str) -> None:
    body = f"<CompleteMultipartUpload><Part><PartNumber>{number}</PartNumber></Part></CompleteMultipartUpload>"
    with pytest.raises(errors.InvalidArgument):
        sx.parse_complete_multipart_upload(body.encode())


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Delete><Object><Key>&lol3;</Key></Object></Delete>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Delete><Object><Key>&xxe;</Key></Object></Delete>"""

DTD_ONLY = b"""<?xml version="1.0"?><!DOCTYPE Delete SYSTEM "http://example.com/x.dtd">
<Delete><Object><Key>k</Key></Object></Delete>"""


def test_parse_delete_per_object_preconditions() -> None:
    body = (
        b"<Delete><Object><Key>a</Key><ETag>&quot;e1&quot;</ETag></Object>"
        b"<Object><Key>b</Key><Size>7</Size>"
        b"<LastModifiedTime>2024-01-02T03:04:05.000Z</LastModifiedTime></Object>"
        b"<Object><Key>c</Key></Object></Delete>"
    )
    objects = sx.parse_delete(body).objects
    rfc822 = b"<LastModifiedTime>Tue, 02 Jan 2024 03:04:05 GMT</LastModifiedTime>"
    http_date = sx.parse_delete(b"<Delete><Object><Key>d</Key>" + rfc822 + b"</Object></Delete>")
    assert http_date.objects[0].condition == DeleteCondition(last_modified=1704164645.0)
    assert objects[0].condition == DeleteCondition(if_match="e1")
    assert objects[1].condition == DeleteCondition(last_modified=1704164645.0, size=7)
    assert objects[2].condition is None
    for element in (
        b"<Size>-1</Size>",
        b"<Size>x</Size>",
        b"<LastModifiedTime>no</LastModifiedTime>",
    ):
        with pytest.raises(errors.MalformedXML):
            sx.parse_delete(b"<Delete><Object><Key>a</Key>" + element + b"</Object></Delete>")


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, DTD_ONLY])
def test_hostile_xml_rejected(body: bytes) -> None:
    with pytest.raises(errors.MalformedXML):
        sx.parse_delete(body)


def test_size_cap_checked_before_parsing() -> None:
    body = b"<Delete><Object><Key>k</Key></Object></Delete>"
    assert sx.parse_delete(body, max_bytes=len(body)).objects == (sx.ObjectToDelete("k"),)
    with pytest.raises(errors.MalformedXML):
        sx.parse_delete(body, max_bytes=len(body) - 1)
    # an oversize body is refused even when it would not parse at all
    with pytest.raises(errors.MalformedXML, match="larger than"):
        sx.parse_complete_multipart_upload(b"\xff" * (sx.DEFAULT_MAX_XML_BYTES + 1))


def test_parse_delete() -> None:
    body = (
        b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>'
        b"<Object><Key>a/b</Key></Object><Object><Key>c&amp;d</Key><VersionId>null</VersionId></Object></Delete>"
    )
    request = sx.parse_delete(body)
    assert request.is_quiet
    assert request.objects == (sx.ObjectToDelete("a/b"), sx.ObjectToDelete("c&d", "null"))
    assert not sx.parse_delete(b"<Delete><Object><Key>k</Key></Object></Delete>").is_quiet


def test_parse_delete_limits() -> None:
    many = b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1000 + b"</Delete>"
    assert len(sx.parse_delete(many).objects) == 1000
    too_many = b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>"
    with pytest.raises(errors.MalformedXML):
        sx.parse_delete(too_many)
    for bad in (
        b"<Delete></Delete>",
        b"<Delete><Object></Object></Delete>",
        b"<Delete><Object><Key></Key></Object></Delete>",
        b"<Delete><Quiet>maybe</Quiet><Object><Key>k</Key></Object></Delete>",
    ):
        with pytest.raises(errors.MalformedXML):
            sx.parse_delete(bad)


def test_botocore_delete_request_parses() -> None:
    # the body botocore serialises for DeleteObjects
    from botocore.serialize import create_serializer

    request = create_serializer("rest-xml").serialize_to_request(
        {"Bucket": "b", "Delete": {"Objects": [{"Key": "a+b c"}, {"Key": "x"}], "Quiet": True}},
        MODEL.operation_model("DeleteObjects"),
    )
    parsed = sx.parse_delete(request["body"])
    assert parsed.is_quiet
    assert [o.key for o in parsed.objects] == ["a+b c", "x"]


def test_botocore_complete_request_parses() -> None:
    from botocore.serialize import create_serializer

    request = create_serializer("rest-xml").serialize_to_request(
        {
            "Bucket": "b",
            "Key": "k",
            "UploadId": "u",
            "MultipartUpload": {
                "Parts": [
                    {"PartNumber": 1, "ETag": '"aa"', "ChecksumCRC32": "AAAAAA=="},
                    {"PartNumber": 2, "ETag": '"bb"'},
                ]
            },
        },
        MODEL.operation_model("CompleteMultipartUpload"),
    )
    parts = sx.parse_complete_multipart_upload(request["body"])
    assert [(p.part_number, p.etag, dict(p.checksums)) for p in parts] == [
        (1, "aa", {"CRC32": "AAAAAA=="}),
        (2, "bb", {}),
    ]


def test_parse_create_bucket_configuration() -> None:
    assert sx.parse_create_bucket_configuration(b"") == ""
    assert sx.parse_create_bucket_configuration(b"  \n") == ""
    body = (
        b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"
    )
    assert sx.parse_create_bucket_configuration(body) == "eu-west-1"
    assert sx.parse_create_bucket_configuration(b"<CreateBucketConfiguration/>") == ""
    with pytest.raises(errors.MalformedXML):
        sx.parse_create_bucket_configuration(b"<Bogus/>")
    with pytest.raises(errors.MalformedXML):
        sx.parse_create_bucket_configuration(BILLION_LAUGHS)


# --- rendering: exact vectors (JAY_SPEC §9.5, with milliseconds per §8.2 item 5) ------------------


def test_render_vectors() -> None:
    assert sx.render_initiate_multipart_upload(
        "photos", "big.bin", "0f8fad5b-d9cb-469f-a165-70867728950e"
    ) == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Bucket>photos</Bucket><Key>big.bin</Key>"
        b"<UploadId>0f8fad5b-d9cb-469f-a165-70867728950e</UploadId></InitiateMultipartUploadResult>"
    )
    assert sx.render_complete_multipart_upload(
        "photos", "big.bin", "e09e4fd6265b36115fe3db32df945d84-2"
    ) == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Location>/photos/big.bin</Location><Bucket>photos</Bucket><Key>big.bin</Key>"
        b"<ETag>&#34;e09e4fd6265b36115fe3db32df945d84-2&#34;</ETag></CompleteMultipartUploadResult>"
    )
    assert sx.render_list_buckets([], "ACCOUNT_ID") == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Owner><ID>ACCOUNT_ID</ID><DisplayName>ACCOUNT_ID</DisplayName></Owner>"
        b"<Buckets></Buckets></ListAllMyBucketsResult>"
    )
    assert sx.render_error(
        "NoSuchKey", "Object not found", "/photos/a.txt", "9f86d081884c7d65"
    ) == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<Error><Code>NoSuchKey</Code><Message>Object not found</Message>"
        b"<Resource>/photos/a.txt</Resource><RequestId>9f86d081884c7d65</RequestId></Error>"
    )


def test_format_timestamp() -> None:
    assert sx.format_timestamp(T) == "2024-01-02T03:04:05.000Z"
    assert sx.format_timestamp(T + 0.25) == "2024-01-02T03:04:05.250Z"
    assert sx.format_timestamp(T + 0.9996) == "2024-01-02T03:04:06.000Z"
    assert sx.format_timestamp(0) == "1970-01-01T00:00:00.000Z"


def test_escape() -> None:
    assert sx.escape("a<b>&\"'") == "a&lt;b&gt;&amp;&#34;&#39;"
    assert sx.escape("tab\tnl\n") == "tab\tnl\n"
    assert sx.escape("cr\r") == "cr&#13;"
    assert sx.escape("ctl\x01") == "ctl&#x1;"


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),
        ("a+b", "a%2Bb"),
        ("dir/file", "dir/file"),
        ("100%", "100%25"),
        ("café", "caf%C3%A9"),
        ("ctl\x01", "ctl%01"),
        ("a&b=c?d#e", "a%26b%3Dc%3Fd%23e"),
        ("~_.-", "~_.-"),
    ],
)
def test_url_encode_round_trips_through_botocore_unquote(raw: str, encoded: str) -> None:
    from botocore.compat import unquote_str

    assert sx.url_encode(raw) == encoded
    assert unquote_str(encoded) == raw
    assert urllib.parse.unquote(encoded) == raw  # clients that decode without form rules


def test_list_v1_leaves_top_level_prefix_unencoded_v2_encodes_it() -> None:
    page = ListPage(
        objects=(), common_prefixes=("a b/\n/",), is_truncated=False, next_start_after=""
    )
    v1 = sx.render_list_objects_v1(
        page, bucket="b", prefix="a b/\n", delimiter="/", encoding_type="url", owner_id="o"
    )
    assert b"<Prefix>a b/\n</Prefix>" in v1
    assert b"<CommonPrefixes><Prefix>a%20b/%0A/</Prefix></CommonPrefixes>" in v1
    v2 = sx.render_list_objects_v2(
        page, bucket="b", prefix="a b/\n", delimiter="/", encoding_type="url"
    )
    assert b"<Prefix>a%20b/%0A</Prefix>" in v2
    assert b"ContinuationToken" not in v2
    echoed = sx.render_list_objects_v2(page, bucket="b", continuation_token="")
    assert b"<ContinuationToken></ContinuationToken>" in echoed


# --- rendering: botocore reads what we write -------------------------------------------------


def test_list_objects_v2_botocore() -> None:
    page = ListPage(
        objects=(obj("a.txt"), obj("b&c<d>.txt", 7, "abc-2")),
        common_prefixes=("dir/",),
        is_truncated=True,
        next_start_after="dir/",
    )
    body = sx.render_list_objects_v2(
        page,
        bucket="photos",
        prefix="",
        delimiter="/",
        max_keys=3,
        start_after="0",
        continuation_token="tok1",
        next_continuation_token="tok2",
    )
    check_document(body, "ListBucketResult")
    parsed = botocore_parse("ListObjectsV2", body)
    assert parsed["Name"] == "photos"
    assert parsed["Prefix"] == ""
    assert parsed["Delimiter"] == "/"
    assert parsed["MaxKeys"] == 3
    assert parsed["IsTruncated"] is True
    assert parsed["KeyCount"] == 3
    assert parsed["StartAfter"] == "0"
    assert parsed["ContinuationToken"] == "tok1"
    assert parsed["NextContinuationToken"] == "tok2"
    assert [c["Key"] for c in parsed["Contents"]] == ["a.txt", "b&c<d>.txt"]
    assert parsed["Contents"][0]["ETag"] == '"5d41402abc4b2a76b9719d911017c592"'
    assert parsed["Contents"][1]["Size"] == 7
    assert parsed["Contents"][0]["StorageClass"] == "STANDARD"
    assert parsed["Contents"][0]["LastModified"].isoformat() == "2024-01-02T03:04:05+00:00"
    assert "Owner" not in parsed["Contents"][0]
    assert parsed["CommonPrefixes"] == [{"Prefix": "dir/"}]
    assert "EncodingType" not in parsed


def test_list_objects_v2_minimal_shape() -> None:
    body = sx.render_list_objects_v2(
        ListPage(objects=(), common_prefixes=(), is_truncated=False, next_start_after=""),
        bucket="photos",
    )
    root = check_document(body, "ListBucketResult")
    names = [child.tag.removeprefix(NS) for child in root]
    assert names == ["Name", "Prefix", "MaxKeys", "IsTruncated", "KeyCount"]


def test_list_objects_v2_url_encoding_botocore() -> None:
    keys = ["a b+c", "100%/x", "caf\u00e9", "ctl\x01", "amp&lt"]
    page = ListPage(
        objects=tuple(obj(k) for k in keys),
        common_prefixes=("p q+/",),
        is_truncated=False,
        next_start_after="",
    )
    body = sx.render_list_objects_v2(
        page,
        bucket="photos",
        prefix="",
        delimiter="+/",
        encoding_type="url",
        start_after="s t+",
        owner_id="acct",
    )
    check_document(body, "ListBucketResult")  # the control character is encoded, so XML is valid
    parsed = botocore_parse("ListObjectsV2", body)
    assert parsed["EncodingType"] == "url"
    decode_list_object_v2(parsed, context={"encoding_type_auto_set": True})
    assert [c["Key"] for c in parsed["Contents"]] == keys
    assert parsed["CommonPrefixes"] == [{"Prefix": "p q+/"}]
    assert parsed["Delimiter"] == "+/"
    assert parsed["StartAfter"] == "s t+"
    assert parsed["Contents"][0]["Owner"] == {"ID": "acct", "DisplayName": "acct"}


def test_list_objects_v1_botocore() -> None:
    page = ListPage(
        objects=(obj("a"), obj("b c")),
        common_prefixes=("d/",),
        is_truncated=True,
        next_start_after="d/",
    )
    body = sx.render_list_objects_v1(
        page,
        bucket="photos",
        delimiter="/",
        marker="0 0",
        max_keys=3,
        encoding_type="url",
        owner_id="acct",
    )
    check_document(body, "ListBucketResult")
    parsed = botocore_parse("ListObjects", body)
    decode_list_object(parsed, context={"encoding_type_auto_set": True})
    assert parsed["Marker"] == "0 0"
    assert parsed["NextMarker"] == "d/"
    assert parsed["IsTruncated"] is True
    assert [c["Key"] for c in parsed["Contents"]] == ["a", "b c"]
    assert parsed["Contents"][0]["Owner"]["ID"] == "acct"


def test_list_objects_v1_next_marker_only_with_delimiter() -> None:
    page = ListPage(
        objects=(obj("a"),), common_prefixes=(), is_truncated=True, next_start_after="a"
    )
    parsed = botocore_parse(
        "ListObjects", sx.render_list_objects_v1(page, bucket="b", owner_id="o")
    )
    assert "NextMarker" not in parsed
    assert parsed["Marker"] == ""


def test_list_object_versions_botocore() -> None:
    o = obj("a b")
    page = VersionsPage(
        versions=(
            ListedVersion(o.key, "null", True, False, o.size, o.etag, o.updated_at),
            ListedVersion("a b", "0b5a7c3e-1111-4222-8333-444455556666", False, True, 0, "", 1.0),
        ),
        common_prefixes=("p/",),
        is_truncated=True,
        next_key_marker="p/",
        next_version_id_marker="",
    )
    body = sx.render_list_object_versions(
        page, bucket="photos", delimiter="/", encoding_type="url", owner_id="acct"
    )
    check_document(body, "ListVersionsResult")
    parsed = botocore_parse("ListObjectVersions", body)
    decode_list_object_versions(parsed, context={"encoding_type_auto_set": True})
    version = parsed["Versions"][0]
    assert version["Key"] == "a b"
    assert version["VersionId"] == "null"
    assert version["IsLatest"] is True
    assert version["Size"] == 5
    assert parsed["NextKeyMarker"] == "p/"
    assert "NextVersionIdMarker" not in parsed  # the page ended on a common prefix
    assert parsed["CommonPrefixes"] == [{"Prefix": "p/"}]
    marker = parsed["DeleteMarkers"][0]
    assert (marker["Key"], marker["IsLatest"]) == ("a b", False)
    assert marker["VersionId"] == "0b5a7c3e-1111-4222-8333-444455556666"


def test_location_and_versioning() -> None:
    body = sx.render_location()
    root = check_document(body, "LocationConstraint")
    assert root.text is None
    assert check_document(sx.render_location("eu-west-1"), "LocationConstraint").text == "eu-west-1"
    body = sx.render_versioning()
    assert len(check_document(body, "VersioningConfiguration")) == 0
    assert botocore_parse("GetBucketVersioning", body) == {}
    parsed = botocore_parse("GetBucketVersioning", sx.render_versioning("Suspended"))
    assert parsed == {"Status": "Suspended"}


def upload(key: str = "big.bin", upload_id: str = "u1") -> MultipartUpload:
    return MultipartUpload(
        upload_id=upload_id,
        bucket="photos",
        bucket_id="b1",
        key=key,
        attributes=ObjectAttributes(),
        initiated_by="acct",
        created_at=T,
        checksum_algorithm="CRC32",
        checksum_type="COMPOSITE",
    )


def test_list_multipart_uploads_botocore() -> None:
    page = UploadsPage(
        uploads=(upload("a b"), upload("c", "u2")),
        common_prefixes=("d/",),
        is_truncated=True,
        next_key_marker="c",
        next_upload_id_marker="u2",
    )
    body = sx.render_list_multipart_uploads(
        page, bucket="photos", delimiter="/", max_uploads=3, encoding_type="url"
    )
    check_document(body, "ListMultipartUploadsResult")
    parsed = botocore_parse("ListMultipartUploads", body)
    assert parsed["Bucket"] == "photos"
    assert parsed["IsTruncated"] is True
    assert parsed["NextKeyMarker"] == "c"
    assert parsed["NextUploadIdMarker"] == "u2"
    assert parsed["MaxUploads"] == 3
    assert [u["Key"] for u in parsed["Uploads"]] == ["a%20b", "c"]  # url-encoded on the wire
    first = parsed["Uploads"][0]
    assert first["UploadId"] == "u1"
    assert first["Initiator"] == {"ID": "acct", "DisplayName": "acct"}
    assert first["Initiated"].isoformat() == "2024-01-02T03:04:05+00:00"
    assert first["ChecksumAlgorithm"] == "CRC32"
    assert parsed["CommonPrefixes"] == [{"Prefix": "d/"}]


def test_list_parts_botocore() -> None:
    parts = tuple(
        PartInfo(
            part_number=n,
            size=5 * 1024 * 1024,
            etag=f"{n:032x}",
            sha256_hex="00" * 32,
            created_at=T + n,
            checksums={"CRC32": "AAAAAA=="},
        )
        for n in (3, 4)
    )
    page = PartsPage(upload=upload(), parts=parts, is_truncated=True, next_part_number_marker=4)
    body = sx.render_list_parts(page, part_number_marker=2, max_parts=2)
    check_document(body, "ListPartsResult")
    parsed = botocore_parse("ListParts", body)
    assert parsed["Bucket"] == "photos"
    assert parsed["Key"] == "big.bin"
    assert parsed["UploadId"] == "u1"
    assert parsed["PartNumberMarker"] == 2
    assert parsed["NextPartNumberMarker"] == 4
    assert parsed["MaxParts"] == 2
    assert parsed["IsTruncated"] is True
    assert parsed["StorageClass"] == "STANDARD"
    assert parsed["Owner"]["ID"] == "acct"
    assert parsed["ChecksumAlgorithm"] == "CRC32"
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parsed["Parts"]] == [
        (3, f'"{3:032x}"', 5 * 1024 * 1024),
        (4, f'"{4:032x}"', 5 * 1024 * 1024),
    ]
    assert parsed["Parts"][0]["ChecksumCRC32"] == "AAAAAA=="
    assert parsed["Parts"][1]["LastModified"].isoformat() == "2024-01-02T03:04:09+00:00"


def test_complete_multipart_botocore() -> None:
    body = sx.render_complete_multipart_upload(
        "photos",
        "dir/a b+c",
        "abc-2",
        checksums={"CRC32": "AAAAAA=="},
        checksum_type="COMPOSITE",
    )
    parsed = botocore_parse("CompleteMultipartUpload", body)
    assert parsed["Location"] == "/photos/dir/a%20b%2Bc"
    assert parsed["Key"] == "dir/a b+c"
    assert parsed["ETag"] == '"abc-2"'
    assert parsed["ChecksumCRC32"] == "AAAAAA=="
    assert parsed["ChecksumType"] == "COMPOSITE"


def test_initiate_botocore() -> None:
    body = sx.render_initiate_multipart_upload("b", "k&", "u", checksum_algorithm="SHA256")
    parsed = botocore_parse("CreateMultipartUpload", body)
    assert (parsed["Bucket"], parsed["Key"], parsed["UploadId"]) == ("b", "k&", "u")


def test_copy_results_botocore() -> None:
    body = sx.render_copy_object_result("abc", T, checksums={"SHA256": "x="})
    check_document(body, "CopyObjectResult")
    parsed = botocore_parse("CopyObject", body)["CopyObjectResult"]
    assert parsed["ETag"] == '"abc"'
    assert parsed["LastModified"].isoformat() == "2024-01-02T03:04:05+00:00"
    assert parsed["ChecksumSHA256"] == "x="
    body = sx.render_copy_part_result("def", T)
    check_document(body, "CopyPartResult")
    parsed = botocore_parse("UploadPartCopy", body)["CopyPartResult"]
    assert parsed["ETag"] == '"def"'


def test_list_buckets_botocore() -> None:
    buckets = [
        BucketInfo(bucket_id="1", name="alpha", owner_account_id="acct", created_at=T),
        BucketInfo(bucket_id="2", name="beta", owner_account_id="acct", created_at=T + 1.5),
    ]
    parsed = botocore_parse("ListBuckets", sx.render_list_buckets(buckets, "acct"))
    assert [b["Name"] for b in parsed["Buckets"]] == ["alpha", "beta"]
    assert parsed["Buckets"][1]["CreationDate"].isoformat() == "2024-01-02T03:04:06.500000+00:00"
    assert parsed["Owner"] == {"ID": "acct", "DisplayName": "acct"}


def test_delete_result_botocore() -> None:
    deleted = [
        sx.DeletedObject("a"),
        sx.DeletedObject("b", "null"),
        sx.DeletedObject("m", None, "0b5a7c3e-1111-4222-8333-444455556666"),
    ]
    failures = [sx.DeleteError("c", "AccessDenied", "Access Denied")]
    body = sx.render_delete_result(deleted, failures)
    check_document(body, "DeleteResult")
    parsed = botocore_parse("DeleteObjects", body)
    assert parsed["Deleted"] == [
        {"Key": "a"},
        {"Key": "b", "VersionId": "null"},
        {
            "Key": "m",
            "DeleteMarker": True,
            "DeleteMarkerVersionId": "0b5a7c3e-1111-4222-8333-444455556666",
        },
    ]
    assert parsed["Errors"] == [{"Key": "c", "Code": "AccessDenied", "Message": "Access Denied"}]
    quiet = botocore_parse(
        "DeleteObjects", sx.render_delete_result(deleted, failures, is_quiet=True)
    )
    assert "Deleted" not in quiet
    assert len(quiet["Errors"]) == 1


def test_acl_botocore() -> None:
    from jay.auth import acl

    body = acl.render("acct", None)
    check_document(body, "AccessControlPolicy")
    parsed = botocore_parse("GetBucketAcl", body)
    assert parsed["Owner"]["ID"] == "acct"
    assert parsed["Grants"] == [
        {
            "Grantee": {"ID": "acct", "DisplayName": "acct", "Type": "CanonicalUser"},
            "Permission": "FULL_CONTROL",
        }
    ]
    assert botocore_parse("GetObjectAcl", body)["Grants"][0]["Permission"] == "FULL_CONTROL"
    public = acl.render("acct", acl.canned("public-read", "acct"))
    check_document(public, "AccessControlPolicy")
    assert botocore_parse("GetObjectAcl", public)["Grants"][0] == {
        "Grantee": {"Type": "Group", "URI": acl.ALL_USERS},
        "Permission": "READ",
    }


def test_error_botocore() -> None:
    body = sx.render_error(
        "NoSuchBucket", "The specified bucket does not exist", "/b", "rid", [("BucketName", "b")]
    )
    root = check_document(body, "Error", namespaced=False)
    assert root.findtext("BucketName") == "b"
    parsed = botocore_parse("HeadBucket", body, status=404)
    assert parsed["Error"]["Code"] == "NoSuchBucket"
    assert parsed["Error"]["Message"] == "The specified bucket does not exist"
    assert parsed["Error"]["BucketName"] == "b"


def test_versioning_configuration() -> None:
    doc = b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">%s'
    assert sx.parse_versioning_configuration(
        doc % b"<Status>Suspended</Status></VersioningConfiguration>"
    ) == ("Suspended", "")
    assert sx.parse_versioning_configuration(
        doc % b"<MfaDelete>Disabled</MfaDelete><Status>Enabled</Status></VersioningConfiguration>"
    ) == ("Enabled", "Disabled")
    for bad in (b"<Status>On</Status>", b"<MfaDelete>Maybe</MfaDelete>"):
        with pytest.raises(errors.MalformedXML):
            sx.parse_versioning_configuration(doc % bad + b"</VersioningConfiguration>")
    with pytest.raises(errors.MalformedXML):
        sx.parse_versioning_configuration(b"<Other/>")


# --- GetObjectAttributes ----------------------------------------------------------------------


def attributes_info(**kw: Any) -> ObjectInfo:
    fields: dict[str, Any] = {
        "bucket": "b",
        "bucket_id": "bid",
        "key": "k",
        "object_id": "o1",
        "size": 17,
        "etag": "0123456789abcdef0123456789abcdef-2",
        "sha256_hex": "00" * 32,
        "attributes": ObjectAttributes(),
        "created_at": T,
        "updated_at": T,
    }
    fields.update(kw)
    return ObjectInfo(**fields)


ALL_ATTRIBUTES = sx.OBJECT_ATTRIBUTE_NAMES


def test_object_attributes_simple_object() -> None:
    info = attributes_info(size=5, etag="5d41402abc4b2a76b9719d911017c592")
    body = sx.render_object_attributes(info, ALL_ATTRIBUTES)
    check_document(body, "GetObjectAttributesResponse")
    assert botocore_parse("GetObjectAttributes", body) == {
        "ETag": "5d41402abc4b2a76b9719d911017c592",  # unquoted, as S3 sends it here
        "StorageClass": "STANDARD",
        "ObjectSize": 5,
    }
    # Order of the document is S3's, whatever order was asked for; only what was asked for.
    body = sx.render_object_attributes(info, ["ObjectSize", "ETag"])
    assert body.decode().index("<ETag>") < body.decode().index("<ObjectSize>")
    assert botocore_parse("GetObjectAttributes", body).keys() == {"ETag", "ObjectSize"}


def test_object_attributes_checksum_type_defaults_to_full_object() -> None:
    info = attributes_info(part_sizes=(), checksums={"SHA256": "c2hh"})
    parsed = botocore_parse("GetObjectAttributes", sx.render_object_attributes(info, ["Checksum"]))
    assert parsed == {"Checksum": {"ChecksumSHA256": "c2hh", "ChecksumType": "FULL_OBJECT"}}
    composite = attributes_info(checksums={"CRC32": "AAAAAA==-2"}, checksum_type="COMPOSITE")
    parsed = botocore_parse(
        "GetObjectAttributes", sx.render_object_attributes(composite, ["Checksum"])
    )
    assert parsed["Checksum"] == {"ChecksumCRC32": "AAAAAA==-2", "ChecksumType": "COMPOSITE"}


def test_object_attributes_parts_without_part_checksums() -> None:
    info = attributes_info(part_sizes=(10, 7))
    body = sx.render_object_attributes(info, ["ObjectParts"])
    assert b"<ObjectParts><PartsCount>2</PartsCount>" in body
    assert botocore_parse("GetObjectAttributes", body) == {
        "ObjectParts": {
            "TotalPartsCount": 2,
            "PartNumberMarker": 0,
            "NextPartNumberMarker": 2,
            "MaxParts": 1000,
            "IsTruncated": False,
            "Parts": [{"PartNumber": 1, "Size": 10}, {"PartNumber": 2, "Size": 7}],
        }
    }
    # A single-part object has no ObjectParts at all.
    body = sx.render_object_attributes(attributes_info(), ["ObjectParts"])
    assert b"ObjectParts" not in body


@pytest.mark.parametrize(
    ("marker", "max_parts", "numbers", "truncated", "next_marker"),
    [
        (0, 1000, [1, 2, 3, 4, 5], False, 5),
        (0, 2, [1, 2], True, 2),
        (2, 2, [3, 4], True, 4),
        (4, 2, [5], False, 5),
        (5, 2, [], False, 5),
        (9, 2, [], False, 9),
        (0, 0, [], True, 0),
    ],
)
def test_object_attributes_part_pages(
    marker: int, max_parts: int, numbers: list[int], truncated: bool, next_marker: int
) -> None:
    sizes = (5, 5, 5, 5, 3)
    checksums = [{"CRC32": f"AAAAA{n}==" if n < 10 else "x"} for n in range(1, 6)]
    info = attributes_info(part_sizes=sizes)
    body = sx.render_object_attributes(
        info, ["ObjectParts"], checksums, max_parts=max_parts, part_number_marker=marker
    )
    parts = botocore_parse("GetObjectAttributes", body)["ObjectParts"]
    assert parts["TotalPartsCount"] == 5
    assert parts["PartNumberMarker"] == marker
    assert parts["MaxParts"] == max_parts
    assert parts["IsTruncated"] is truncated
    assert parts["NextPartNumberMarker"] == next_marker
    listed = parts.get("Parts", [])
    assert [p["PartNumber"] for p in listed] == numbers
    assert [(p["Size"], p["ChecksumCRC32"]) for p in listed] == [
        (sizes[n - 1], f"AAAAA{n}==") for n in numbers
    ]
