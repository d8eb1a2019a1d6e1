package main

import (
	"encoding/binary"
	"testing"
)

func TestParseListObjectsTruncatedPage(t *testing.T) {
	b := binary.BigEndian.AppendUint16(nil, 2)
	for _, key := range []string{"k1", "k2"} {
		b = putStr(b, key)
		b = binary.BigEndian.AppendUint64(b, 4096)
		for _, s := range []string{`"etag"`, "", "2026-01-01T00:00:00.000Z", "application/octet-stream"} {
			b = putStr(b, s)
		}
	}
	b = binary.BigEndian.AppendUint16(b, 1)
	b = putStr(b, "dir/")
	b = append(b, 1)
	b = putStr(b, "k2")
	n, next, err := parseListObjects(b)
	if err != nil || n != 3 || next != "k2" {
		t.Fatalf("got %d %q %v, want 3 \"k2\" nil", n, next, err)
	}
	b[len(b)-5] = 0 // is_truncated = false: no next page
	if _, next, err = parseListObjects(b); err != nil || next != "" {
		t.Fatalf("untruncated page: next %q err %v", next, err)
	}
	if _, _, err = parseListObjects(b[:len(b)-3]); err == nil {
		t.Fatal("a cut response must be an error")
	}
}

func TestXMLElementUnescapes(t *testing.T) {
	body := []byte("<R><IsTruncated>true</IsTruncated><NextContinuationToken>a&amp;b=</NextContinuationToken></R>")
	if got := xmlElement(body, "NextContinuationToken"); got != "a&b=" {
		t.Fatalf("token %q", got)
	}
	if got := xmlElement(body, "Missing"); got != "" {
		t.Fatalf("missing element gave %q", got)
	}
}
