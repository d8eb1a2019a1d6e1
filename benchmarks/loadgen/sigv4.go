package main

// AWS Signature Version 4, header mode, for S3 (path-style). Standard library only.
//
// The canonical query string is sorted and URI-encoded, and the same string is sent on the
// wire, so servers that check the raw query (upstream Jay) and servers that canonicalise it
// (AWS, SeaweedFS, rclone, jay) all accept the request.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sort"
	"strings"
	"time"
)

const (
	amzDateFormat   = "20060102T150405Z"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	emptySHA256     = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

type signer struct {
	accessKey string
	secretKey string
	region    string
	service   string

	// The signing key only changes with the date; cache it.
	keyDate string
	key     []byte
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// uriEncode is AWS's UriEncode: every byte except A-Z a-z 0-9 - _ . ~ is %XX (upper case);
// '/' is kept when keepSlash is set (object key paths).
func uriEncode(s string, keepSlash bool) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && keepSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexdigits[c>>4])
			b.WriteByte(hexdigits[c&15])
		}
	}
	return b.String()
}

// canonicalQuery sorts parameters by encoded name (then value) and always writes "name=value".
func canonicalQuery(params [][2]string) string {
	enc := make([]string, len(params))
	for i, p := range params {
		enc[i] = uriEncode(p[0], false) + "=" + uriEncode(p[1], false)
	}
	sort.Strings(enc)
	return strings.Join(enc, "&")
}

func (s *signer) signingKey(date string) []byte {
	if s.keyDate != date {
		k := hmacSHA256([]byte("AWS4"+s.secretKey), date)
		k = hmacSHA256(k, s.region)
		k = hmacSHA256(k, s.service)
		s.key = hmacSHA256(k, "aws4_request")
		s.keyDate = date
	}
	return s.key
}

// sign adds X-Amz-Date, X-Amz-Content-Sha256 and Authorization to req. The request's
// URL.RawPath (or EscapedPath) and RawQuery must already be in canonical (encoded) form.
// Signed headers: host, every x-amz-* header present, and content-type / content-md5 if set.
func (s *signer) sign(req *http.Request, payloadHash string, now time.Time) {
	now = now.UTC()
	amzDate := now.Format(amzDateFormat)
	date := amzDate[:8]
	req.Header.Set("X-Amz-Date", amzDate)
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)

	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	names := []string{"host"}
	values := map[string]string{"host": host}
	for name, vals := range req.Header {
		lname := strings.ToLower(name)
		if strings.HasPrefix(lname, "x-amz-") || lname == "content-type" || lname == "content-md5" {
			names = append(names, lname)
			values[lname] = strings.TrimSpace(vals[0])
		}
	}
	sort.Strings(names)
	var canon strings.Builder
	canon.WriteString(req.Method)
	canon.WriteByte('\n')
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canon.WriteString(path)
	canon.WriteByte('\n')
	canon.WriteString(req.URL.RawQuery)
	canon.WriteByte('\n')
	for _, n := range names {
		canon.WriteString(n)
		canon.WriteByte(':')
		canon.WriteString(values[n])
		canon.WriteByte('\n')
	}
	canon.WriteByte('\n')
	signed := strings.Join(names, ";")
	canon.WriteString(signed)
	canon.WriteByte('\n')
	canon.WriteString(payloadHash)

	scope := date + "/" + s.region + "/" + s.service + "/aws4_request"
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + sha256Hex([]byte(canon.String()))
	sig := hex.EncodeToString(hmacSHA256(s.signingKey(date), toSign))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+s.accessKey+"/"+scope+
		", SignedHeaders="+signed+", Signature="+sig)
}
