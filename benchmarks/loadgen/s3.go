package main

// A minimal path-style S3 client over keep-alive HTTP/1.1: PutObject, GetObject, HeadObject,
// DeleteObject, ListObjectsV2 and CreateBucket, signed with SigV4 (or Jay's Bearer header).

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

type s3Client struct {
	base        *url.URL // scheme://host[:port] plus an optional path prefix
	http        *http.Client
	signer      *signer // nil with bearer auth
	bearer      string  // "token_id:secret" when auth is bearer
	payloadMode string  // "sha256" or "unsigned"
	buf         []byte  // per-worker scratch buffer for bodies that are read and dropped
}

func newS3Transport(conns int, insecure bool) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      64 << 10,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: insecure}, //nolint:gosec // opt-in flag
		ForceAttemptHTTP2:   false,
	}
}

type s3Error struct {
	Status int
	Body   string
}

func (e *s3Error) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }

// request builds, signs and sends one request. path is the unescaped "/bucket[/key]".
func (c *s3Client) request(method, path string, query [][2]string, body []byte, bodySHA string,
	extra map[string]string) (*http.Response, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(c.base.Path, "/") + path
	u.RawPath = uriEncode(u.Path, true)
	u.RawQuery = canonicalQuery(query)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.URL = &u // keep our exact RawPath/RawQuery
	if body != nil {
		req.ContentLength = int64(len(body))
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	if c.signer != nil {
		hash := emptySHA256
		if body != nil {
			hash = bodySHA
			if c.payloadMode == "unsigned" || hash == "" {
				hash = unsignedPayload
			}
		}
		c.signer.sign(req, hash, time.Now())
	} else if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, &s3Error{Status: resp.StatusCode, Body: string(snippet)}
	}
	return resp, nil
}

// finish drains and closes the body so the connection goes back to the pool.
func finish(resp *http.Response, buf []byte) (int64, error) {
	var n int64
	for {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			resp.Body.Close()
			return n, err
		}
	}
	return n, resp.Body.Close()
}

func (c *s3Client) CreateBucket(bucket string) error {
	resp, err := c.request("PUT", "/"+bucket, nil, nil, "", nil)
	var se *s3Error
	if errors.As(err, &se) && se.Status == http.StatusConflict {
		return nil // BucketAlreadyOwnedByYou / BucketAlreadyExists
	}
	if err != nil {
		return err
	}
	_, err = finish(resp, c.buf)
	return err
}

func (c *s3Client) Put(bucket, key string, body []byte, sha string) error {
	resp, err := c.request("PUT", "/"+bucket+"/"+key, nil, body, sha,
		map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return err
	}
	_, err = finish(resp, c.buf)
	return err
}

func (c *s3Client) Get(bucket, key string, buf []byte) (int64, error) {
	resp, err := c.request("GET", "/"+bucket+"/"+key, nil, nil, "", nil)
	if err != nil {
		return 0, err
	}
	return finish(resp, buf)
}

func (c *s3Client) Head(bucket, key string) error {
	resp, err := c.request("HEAD", "/"+bucket+"/"+key, nil, nil, "", nil)
	if err != nil {
		return err
	}
	_, err = finish(resp, c.buf)
	return err
}

func (c *s3Client) Delete(bucket, key string) error {
	resp, err := c.request("DELETE", "/"+bucket+"/"+key, nil, nil, "", nil)
	if err != nil {
		return err
	}
	_, err = finish(resp, c.buf)
	return err
}

var keyTag = []byte("<Key>")
var prefixTag = []byte("<CommonPrefixes>")

// List fetches one ListObjectsV2 page and returns the number of keys plus common prefixes, and
// the cursor of the next page ("" when the listing is complete). A cursor is "t:<continuation
// token>", or "a:<last key>" (start-after) for a server that truncates without a token.
func (c *s3Client) List(bucket, prefix string, maxKeys int, after string) (int, string, error) {
	q := [][2]string{{"list-type", "2"}, {"max-keys", strconv.Itoa(maxKeys)}}
	if prefix != "" {
		q = append(q, [2]string{"prefix", prefix})
	}
	switch {
	case strings.HasPrefix(after, "t:"):
		q = append(q, [2]string{"continuation-token", after[2:]})
	case strings.HasPrefix(after, "a:"):
		q = append(q, [2]string{"start-after", after[2:]})
	}
	resp, err := c.request("GET", "/"+bucket, q, nil, "", nil)
	if err != nil {
		return 0, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, "", err
	}
	n := bytes.Count(body, keyTag) + bytes.Count(body, prefixTag)
	if xmlElement(body, "IsTruncated") != "true" {
		return n, "", nil
	}
	if token := xmlElement(body, "NextContinuationToken"); token != "" {
		return n, "t:" + token, nil
	}
	if i := bytes.LastIndex(body, keyTag); i >= 0 {
		if last := xmlElement(body[i:], "Key"); last != "" {
			return n, "a:" + last, nil
		}
	}
	return n, "", errors.New("truncated ListObjectsV2 page without a continuation token or key")
}

// xmlElement returns the unescaped text of the first <name>…</name> in body ("" if absent).
func xmlElement(body []byte, name string) string {
	open, end := []byte("<"+name+">"), []byte("</"+name+">")
	i := bytes.Index(body, open)
	if i < 0 {
		return ""
	}
	rest := body[i+len(open):]
	j := bytes.Index(rest, end)
	if j < 0 {
		return ""
	}
	return html.UnescapeString(string(rest[:j]))
}
