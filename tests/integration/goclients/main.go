// Command goclients drives jay with the AWS SDK for Go v2 and minio-go v7, the two Go S3
// clients Debian packages, through the operations Go programs rely on. It prints "ok <step>"
// for every step that behaved and "FAIL <step>: <why>" for one that did not, and exits 1 if
// any failed. Usage: goclients <endpoint URL> <access key> <secret key>
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	mcreds "github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/tags"
)

const MiB = 1 << 20

var failed bool

func step(name string, err error) {
	if err != nil {
		failed = true
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("ok %s\n", name)
}

func expect(cond bool, format string, args ...any) error {
	if cond {
		return nil
	}
	return fmt.Errorf(format, args...)
}

func pattern(size int, seed byte) []byte {
	out := make([]byte, 0, size+32)
	block := sha256.Sum256([]byte{seed})
	for len(out) < size {
		block = sha256.Sum256(block[:])
		out = append(out, block[:]...)
	}
	return out[:size]
}

func main() {
	endpoint, access, secret := os.Args[1], os.Args[2], os.Args[3]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	awsSDK(ctx, endpoint, access, secret)
	minioGo(ctx, endpoint, access, secret)
	if failed {
		os.Exit(1)
	}
}

func awsSDK(ctx context.Context, endpoint, access, secret string) {
	c := s3.New(s3.Options{
		Region:           "us-east-1",
		EndpointResolver: s3.EndpointResolverFromURL(endpoint),
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(access, secret, ""),
		RetryMaxAttempts: 1,
	})
	bucket := aws.String("go-sdk")
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bucket})
	step("aws/CreateBucket", err)

	_, err = c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: bucket, Key: aws.String("dir/hello.txt"), Body: strings.NewReader("hello, go"),
		ContentType: aws.String("text/plain"), Metadata: map[string]string{"origin": "go"},
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	})
	step("aws/PutObject+CRC32", err)

	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: aws.String("dir/hello.txt")})
	if err == nil {
		err = expect(head.ContentLength == 9 && aws.ToString(head.ContentType) == "text/plain" &&
			head.Metadata["origin"] == "go" && aws.ToString(head.ETag) == `"a2b0a0b8fa1a6b29ab8c3ebd4a4c1d33"` ||
			head.ContentLength == 9 && head.Metadata["origin"] == "go" && len(aws.ToString(head.ETag)) == 34,
			"head: %d %q %v %q", head.ContentLength, aws.ToString(head.ContentType), head.Metadata, aws.ToString(head.ETag))
	}
	step("aws/HeadObject", err)

	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String("dir/hello.txt"), Range: aws.String("bytes=2-5")})
	if err == nil {
		body, _ := io.ReadAll(got.Body)
		got.Body.Close()
		err = expect(string(body) == "llo," && aws.ToString(got.ContentRange) == "bytes 2-5/9", "range: %q %q", body, aws.ToString(got.ContentRange))
	}
	step("aws/GetObject+Range", err)

	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String("no/such/key")})
	var nsk *types.NoSuchKey
	step("aws/GetObject missing is NoSuchKey", expect(errors.As(err, &nsk), "got %v", err))

	big := pattern(13*MiB+7, 1)
	up := manager.NewUploader(c, func(u *manager.Uploader) { u.PartSize = 5 * MiB; u.Concurrency = 3 })
	res, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String("big.bin"), Body: bytes.NewReader(big)})
	if err == nil {
		err = expect(strings.HasSuffix(aws.ToString(res.ETag), `-3"`), "etag %q", aws.ToString(res.ETag))
	}
	step("aws/manager.Upload multipart", err)

	down := manager.NewDownloader(c, func(d *manager.Downloader) { d.PartSize = 4 * MiB; d.Concurrency = 3 })
	buf := manager.NewWriteAtBuffer(make([]byte, 0, len(big)))
	n, err := down.Download(ctx, buf, &s3.GetObjectInput{Bucket: bucket, Key: aws.String("big.bin")})
	if err == nil {
		err = expect(n == int64(len(big)) && bytes.Equal(buf.Bytes(), big), "downloaded %d bytes, equal=%v", n, bytes.Equal(buf.Bytes(), big))
	}
	step("aws/manager.Download ranged", err)

	for _, k := range []string{"list/a/1", "list/a/2", "list/b", "list/c", "list/d"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			step("aws/PutObject "+k, err)
		}
	}
	var keys, prefixes []string
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: bucket, Prefix: aws.String("list/"), Delimiter: aws.String("/"), MaxKeys: 2})
	npages := 0
	for pages.HasMorePages() && err == nil {
		var page *s3.ListObjectsV2Output
		page, err = pages.NextPage(ctx)
		if err != nil {
			break
		}
		npages++
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		for _, p := range page.CommonPrefixes {
			prefixes = append(prefixes, aws.ToString(p.Prefix))
		}
	}
	if err == nil {
		err = expect(strings.Join(keys, ",") == "list/b,list/c,list/d" && strings.Join(prefixes, ",") == "list/a/" && npages == 2,
			"keys %v prefixes %v pages %d", keys, prefixes, npages)
	}
	step("aws/ListObjectsV2 paginator", err)

	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bucket, Key: aws.String("copy.txt"),
		CopySource: aws.String("go-sdk/dir/hello.txt"), MetadataDirective: types.MetadataDirectiveReplace,
		Metadata: map[string]string{"copied": "yes"}})
	if err == nil {
		var h *s3.HeadObjectOutput
		h, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: aws.String("copy.txt")})
		if err == nil {
			err = expect(h.Metadata["copied"] == "yes" && h.Metadata["origin"] == "" && h.ContentLength == 9, "copy meta %v", h.Metadata)
		}
	}
	step("aws/CopyObject REPLACE", err)

	_, err = c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: bucket, Key: aws.String("copy.txt"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}})
	if err == nil {
		var t *s3.GetObjectTaggingOutput
		t, err = c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: bucket, Key: aws.String("copy.txt")})
		if err == nil {
			err = expect(len(t.TagSet) == 1 && aws.ToString(t.TagSet[0].Value) == "v", "tags %v", t.TagSet)
		}
	}
	step("aws/Put+GetObjectTagging", err)

	presigned, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String("dir/hello.txt")},
		s3.WithPresignExpires(5*time.Minute))
	if err == nil {
		var resp *http.Response
		resp, err = http.Get(presigned.URL)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			err = expect(resp.StatusCode == 200 && string(body) == "hello, go", "presigned %d %q", resp.StatusCode, body)
		}
	}
	step("aws/PresignGetObject", err)

	del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: bucket, Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("list/a/1")}, {Key: aws.String("list/a/2")}, {Key: aws.String("list/b")}}}})
	if err == nil {
		err = expect(len(del.Deleted) == 3 && len(del.Errors) == 0, "deleted %d errors %d", len(del.Deleted), len(del.Errors))
	}
	step("aws/DeleteObjects", err)

	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: bucket})
	var apiErr interface{ ErrorCode() string }
	step("aws/DeleteBucket non-empty is BucketNotEmpty", expect(errors.As(err, &apiErr) && apiErr.ErrorCode() == "BucketNotEmpty", "got %v", err))
}

func minioGo(ctx context.Context, endpoint, access, secret string) {
	u, _ := url.Parse(endpoint)
	m, err := minio.New(u.Host, &minio.Options{Creds: mcreds.NewStaticV4(access, secret, ""), Secure: false, Region: "us-east-1"})
	if err != nil {
		step("minio/New", err)
		return
	}
	const bucket = "minio-go"
	err = m.MakeBucket(ctx, bucket, minio.MakeBucketOptions{})
	if err == nil {
		var exists bool
		exists, err = m.BucketExists(ctx, bucket)
		err = errors.Join(err, expect(exists, "bucket not found after MakeBucket"))
	}
	step("minio/MakeBucket+BucketExists", err)

	big := pattern(21*MiB+3, 2)
	info, err := m.PutObject(ctx, bucket, "big.bin", bytes.NewReader(big), int64(len(big)),
		minio.PutObjectOptions{PartSize: 5 * MiB, NumThreads: 3, ContentType: "application/x-test",
			UserMetadata: map[string]string{"origin": "minio-go"}})
	if err == nil {
		err = expect(info.Size == int64(len(big)) && strings.HasSuffix(info.ETag, "-5"), "put info %d %q", info.Size, info.ETag)
	}
	step("minio/PutObject multipart", err)

	st, err := m.StatObject(ctx, bucket, "big.bin", minio.StatObjectOptions{})
	if err == nil {
		err = expect(st.Size == int64(len(big)) && st.ContentType == "application/x-test" && st.UserMetadata["Origin"] == "minio-go",
			"stat %d %q %v", st.Size, st.ContentType, st.UserMetadata)
	}
	step("minio/StatObject", err)

	obj, err := m.GetObject(ctx, bucket, "big.bin", minio.GetObjectOptions{})
	if err == nil {
		part := make([]byte, 4096)
		var n int
		n, err = obj.ReadAt(part, 17*MiB+5)
		if err == nil || errors.Is(err, io.EOF) {
			err = expect(n == 4096 && bytes.Equal(part, big[17*MiB+5:17*MiB+5+4096]), "ReadAt %d bytes", n)
		}
		obj.Close()
	}
	step("minio/GetObject ReadAt", err)

	for i := 0; i < 5; i++ {
		k := fmt.Sprintf("list/%c/%d", 'a'+i%2, i)
		if _, err := m.PutObject(ctx, bucket, k, strings.NewReader(k), int64(len(k)), minio.PutObjectOptions{}); err != nil {
			step("minio/PutObject "+k, err)
		}
	}
	var flat, top []string
	for o := range m.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "list/", Recursive: true, MaxKeys: 2}) {
		if o.Err != nil {
			err = o.Err
		}
		flat = append(flat, o.Key)
	}
	for o := range m.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "list/"}) {
		if o.Err != nil {
			err = o.Err
		}
		top = append(top, o.Key)
	}
	sort.Strings(top)
	if err == nil {
		err = expect(len(flat) == 5 && strings.Join(top, ",") == "list/a/,list/b/", "flat %v top %v", flat, top)
	}
	step("minio/ListObjects", err)

	// ComposeObject: UploadPartCopy of ranges of two sources into one object.
	_, err = m.ComposeObject(ctx, minio.CopyDestOptions{Bucket: bucket, Object: "composed.bin"},
		minio.CopySrcOptions{Bucket: bucket, Object: "big.bin", MatchRange: true, Start: 0, End: 6*MiB - 1},
		minio.CopySrcOptions{Bucket: bucket, Object: "big.bin", MatchRange: true, Start: 10 * MiB, End: 10*MiB + 99})
	if err == nil {
		var o *minio.Object
		o, err = m.GetObject(ctx, bucket, "composed.bin", minio.GetObjectOptions{})
		if err == nil {
			body, _ := io.ReadAll(o)
			o.Close()
			want := append(append([]byte{}, big[:6*MiB]...), big[10*MiB:10*MiB+100]...)
			err = expect(bytes.Equal(body, want), "composed %d bytes, want %d", len(body), len(want))
		}
	}
	step("minio/ComposeObject (UploadPartCopy)", err)

	t, _ := tags.NewTags(map[string]string{"team": "go"}, true)
	err = m.PutObjectTagging(ctx, bucket, "composed.bin", t, minio.PutObjectTaggingOptions{})
	if err == nil {
		var got *tags.Tags
		got, err = m.GetObjectTagging(ctx, bucket, "composed.bin", minio.GetObjectTaggingOptions{})
		if err == nil {
			err = expect(got.ToMap()["team"] == "go", "tags %v", got.ToMap())
		}
	}
	step("minio/Put+GetObjectTagging", err)

	pu, err := m.PresignedPutObject(ctx, bucket, "presigned.txt", 5*time.Minute)
	if err == nil {
		var req *http.Request
		req, err = http.NewRequest(http.MethodPut, pu.String(), strings.NewReader("via presigned PUT"))
		if err == nil {
			var resp *http.Response
			resp, err = http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				err = expect(resp.StatusCode == 200, "presigned PUT status %d", resp.StatusCode)
			}
		}
	}
	step("minio/PresignedPutObject", err)

	objects := make(chan minio.ObjectInfo)
	go func() {
		defer close(objects)
		for o := range m.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			objects <- o
		}
	}()
	for e := range m.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
		err = e.Err
	}
	if err == nil {
		err = m.RemoveBucket(ctx, bucket)
	}
	step("minio/RemoveObjects+RemoveBucket", err)

	// A HEAD answer has no body, so the client only sees the status.
	_, err = m.StatObject(ctx, bucket, "big.bin", minio.StatObjectOptions{})
	status := minio.ToErrorResponse(err).StatusCode
	step("minio/StatObject after removal is 404", expect(status == 404, "got %d (%v)", status, err))
	_, err = m.GetObjectTagging(ctx, bucket, "big.bin", minio.GetObjectTaggingOptions{})
	code := minio.ToErrorResponse(err).Code
	step("minio/GetObjectTagging after removal is NoSuchBucket", expect(code == "NoSuchBucket", "got %q (%v)", code, err))
}
