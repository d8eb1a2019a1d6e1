"""The AWS SDK for JavaScript v3 (@aws-sdk/client-s3 + @aws-sdk/lib-storage) under Node against
a real jay process. Its defaults differ from boto3's: CRC32 flexible checksums sent as
aws-chunked trailers, x-amz-checksum-mode on GET, its own XML parser.

Skipped unless ``node`` is on PATH and the packages resolve from NODE_PATH or
/opt/jay-node/node_modules (``npm install --prefix /opt/jay-node @aws-sdk/client-s3@3
@aws-sdk/lib-storage@3``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import SEED_SECRET, SEED_TOKEN_ID
from tests.integration.jayproc import JayProcess

NODE = shutil.which("node")
DEFAULT_NODE_MODULES = "/opt/jay-node/node_modules"


def _node_path() -> str | None:
    if NODE is None:
        return None
    candidates = [p for p in os.environ.get("NODE_PATH", "").split(os.pathsep) if p]
    candidates.append(DEFAULT_NODE_MODULES)
    for candidate in candidates:
        if (Path(candidate) / "@aws-sdk" / "client-s3").is_dir() and (
            Path(candidate) / "@aws-sdk" / "lib-storage"
        ).is_dir():
            return candidate
    return None


NODE_PATH = _node_path()

SCRIPT = r"""
const s3 = require("@aws-sdk/client-s3");
const { Upload } = require("@aws-sdk/lib-storage");
const crypto = require("node:crypto");
const { Readable } = require("node:stream");

const md5 = (buf) => crypto.createHash("md5").update(buf).digest("hex");
const client = new s3.S3Client({
  endpoint: process.env.JAY_URL,
  region: "us-east-1",
  forcePathStyle: true,
  maxAttempts: 1,
  credentials: { accessKeyId: process.env.JAY_KEY, secretAccessKey: process.env.JAY_SECRET },
});
const send = (name, input) => client.send(new s3[name + "Command"](input));
const errorOf = async (promise) => {
  try { await promise; return null; }
  catch (e) { return { name: e.name, status: e.$metadata && e.$metadata.httpStatusCode }; }
};

(async () => {
  const out = {};
  const Bucket = "awsjs";
  await send("CreateBucket", { Bucket });
  out.headMissingBucket = await errorOf(send("HeadBucket", { Bucket: "awsjs-absent" }));
  out.createAgain = await errorOf(send("CreateBucket", { Bucket }));

  const put = await send("PutObject", {
    Bucket, Key: "dir/hello.txt", Body: "hello from js", ContentType: "text/plain",
    Metadata: { origin: "node" },
  });
  out.putETag = put.ETag;
  out.putCRC32 = put.ChecksumCRC32 || null;

  const big = Buffer.alloc(12 * 1024 * 1024 + 5);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i >>> 0, i);
  const upload = new Upload({
    client, params: { Bucket, Key: "big.bin", Body: Readable.from([big]) },
    partSize: 5 * 1024 * 1024, queueSize: 2,
  });
  out.multipartETag = (await upload.done()).ETag;

  const got = await send("GetObject", { Bucket, Key: "big.bin", ChecksumMode: "ENABLED" });
  out.bigMd5 = md5(Buffer.from(await got.Body.transformToByteArray()));
  out.bigExpectedMd5 = md5(big);

  const small = await send("GetObject", { Bucket, Key: "dir/hello.txt" });
  out.smallBody = await small.Body.transformToString();
  out.smallType = small.ContentType;
  out.smallMeta = small.Metadata;

  const ranged = await send("GetObject", { Bucket, Key: "dir/hello.txt", Range: "bytes=6-9" });
  out.range = await ranged.Body.transformToString();
  out.rangeHeader = ranged.ContentRange;

  out.headMissingKey = await errorOf(send("HeadObject", { Bucket, Key: "nope" }));
  out.getMissingKey = await errorOf(send("GetObject", { Bucket, Key: "nope" }));

  for (const k of ["p/1", "p/2", "p/3", "q"]) await send("PutObject", { Bucket, Key: k, Body: k });
  const pages = [];
  let token;
  do {
    const page = await send("ListObjectsV2", {
      Bucket, Prefix: "p/", MaxKeys: 2, ContinuationToken: token,
    });
    pages.push((page.Contents || []).map((c) => c.Key));
    token = page.NextContinuationToken;
  } while (token);
  out.pages = pages;
  const top = await send("ListObjectsV2", { Bucket, Delimiter: "/" });
  out.topKeys = (top.Contents || []).map((c) => c.Key);
  out.topPrefixes = (top.CommonPrefixes || []).map((c) => c.Prefix);

  const copied = await send("CopyObject", {
    Bucket, Key: "copy.txt", CopySource: `${Bucket}/dir/hello.txt`,
  });
  out.copyETag = copied.CopyObjectResult.ETag;

  const all = await send("ListObjectsV2", { Bucket });
  const removed = await send("DeleteObjects", {
    Bucket, Delete: { Objects: all.Contents.map((c) => ({ Key: c.Key })) },
  });
  out.deleted = (removed.Deleted || []).length;
  out.deleteErrors = (removed.Errors || []).length;
  await send("DeleteBucket", { Bucket });
  out.listDeleted = await errorOf(send("ListObjectsV2", { Bucket }));
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


pytestmark = [
    pytest.mark.skipif(
        NODE_PATH is None, reason="node or @aws-sdk/client-s3 + @aws-sdk/lib-storage not installed"
    ),
    pytest.mark.usefixtures("server_log_is_clean"),
]


def test_sdk_v3_round_trip(jay: JayProcess, tmp_path: Path) -> None:
    assert NODE is not None and NODE_PATH is not None
    script = tmp_path / "jay-awsjs.cjs"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        NODE_PATH=NODE_PATH,
        NODE_NO_WARNINGS="1",
        JAY_URL=jay.s3_url,
        JAY_KEY=SEED_TOKEN_ID,
        JAY_SECRET=SEED_SECRET,
    )
    result = subprocess.run(
        [NODE, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])

    assert out["headMissingBucket"] == {"name": "NotFound", "status": 404}
    assert out["createAgain"] == {"name": "BucketAlreadyOwnedByYou", "status": 409}
    assert out["putETag"] == f'"{hashlib.md5(b"hello from js").hexdigest()}"'
    assert out["putCRC32"]  # the SDK sent a CRC32 trailer and jay echoed the checksum
    assert out["multipartETag"].endswith('-3"')
    assert out["bigMd5"] == out["bigExpectedMd5"]
    assert out["smallBody"] == "hello from js"
    assert out["smallType"] == "text/plain"
    assert out["smallMeta"] == {"origin": "node"}
    assert out["range"] == "from" and out["rangeHeader"] == "bytes 6-9/13"
    assert out["headMissingKey"] == {"name": "NotFound", "status": 404}
    assert out["getMissingKey"] == {"name": "NoSuchKey", "status": 404}
    assert out["pages"] == [["p/1", "p/2"], ["p/3"]]
    assert out["topKeys"] == ["big.bin", "q"] and out["topPrefixes"] == ["dir/", "p/"]
    assert out["copyETag"] == out["putETag"]
    assert out["deleted"] == 7 and out["deleteErrors"] == 0
    assert out["listDeleted"] == {"name": "NoSuchBucket", "status": 404}
