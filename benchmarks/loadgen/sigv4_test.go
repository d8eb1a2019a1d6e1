package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Examples from the AWS S3 SigV4 documentation ("Signature Calculations for the Authorization
// Header: Transferring Payload in a Single Chunk").
func awsSigner() *signer {
	return &signer{
		accessKey: "AKIAIOSFODNN7EXAMPLE",
		secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		region:    "us-east-1",
		service:   "s3",
	}
}

var awsTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func TestSigV4SignedHeaders(t *testing.T) {
	req, _ := http.NewRequest("PUT", "http://127.0.0.1:9000/b/k", nil)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Range", "bytes=0-9") // not an x-amz header: left unsigned
	awsSigner().sign(req, unsignedPayload, awsTime)
	auth := req.Header.Get("Authorization")
	if !strings.Contains(auth, "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,") {
		t.Fatalf("signed headers: %s", auth)
	}
	if req.Header.Get("X-Amz-Content-Sha256") != unsignedPayload || req.Header.Get("X-Amz-Date") != "20130524T000000Z" {
		t.Fatalf("headers: %v", req.Header)
	}
}

func TestSigV4ListObjects(t *testing.T) {
	req, _ := http.NewRequest("GET", "https://examplebucket.s3.amazonaws.com/", nil)
	req.URL.RawQuery = canonicalQuery([][2]string{{"prefix", "J"}, {"max-keys", "2"}})
	if req.URL.RawQuery != "max-keys=2&prefix=J" {
		t.Fatalf("query %q", req.URL.RawQuery)
	}
	awsSigner().sign(req, emptySHA256, awsTime)
	want := "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
		"SignedHeaders=host;x-amz-content-sha256;x-amz-date, " +
		"Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
	if got := req.Header.Get("Authorization"); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestURIEncode(t *testing.T) {
	if got := uriEncode("a b/c~d*é", true); got != "a%20b/c~d%2A%C3%A9" {
		t.Fatal(got)
	}
	if got := uriEncode("a/b", false); got != "a%2Fb" {
		t.Fatal(got)
	}
}
