package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"net"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// JAY_SPEC §1.14 (a): handshake for tok-1:s3cr3t.
func TestHandshakeVector(t *testing.T) {
	want := unhex(t, "4A 41 59 00 01 00 00 0C 74 6F 6B 2D 31 3A 73 33 63 72 33 74")
	if got := handshakeBytes("tok-1:s3cr3t"); !bytes.Equal(got, want) {
		t.Fatalf("%x", got)
	}
}

// fakeServer answers the handshake, records the request frames and replies with canned frames.
func fakeServer(t *testing.T, replies [][]byte) (addr string, got chan []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got = make(chan []byte, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		hs := make([]byte, 20)
		if _, err := r.Read(hs); err != nil {
			return
		}
		c.Write([]byte{0x4A, 0x41, 0x59, 0x00, 0x01, 0x00, 0x00, 0x00})
		var all []byte
		for _, reply := range replies {
			buf := make([]byte, 4096)
			n, _ := r.Read(buf)
			all = append(all, buf[:n]...)
			c.Write(reply)
		}
		got <- all
	}()
	return ln.Addr().String(), got
}

// JAY_SPEC §1.14 (b) request bytes, with stream id 1 instead of 7, and the (c) error frame.
func TestPutVectorAndErrorFrame(t *testing.T) {
	putResp := unhex(t, `00 00 00 00 01 00 00 00 64 00 00 00 00 00 00 00 00 00 20`+
		hex.EncodeToString([]byte("5d41402abc4b2a76b9719d911017c592"))+"0040"+
		hex.EncodeToString([]byte("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")))
	errResp := unhex(t, `01 00 00 00 02 00 00 00 1D 00 00 00 00 00 00 00 00
		00 10 6F 62 6A 65 63 74 20 6E 6F 74 20 66 6F 75 6E 64 00 09 4E 6F 53 75 63 68 4B 65 79`)
	addr, got := fakeServer(t, [][]byte{putResp, errResp})
	c, err := dialNative(addr, "tok-1:s3cr3t", 5e9)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The vector's content type and metadata differ from what Put sends; build it by hand.
	m := putStr(putStr(putStr(nil, "photos"), "a.txt"), "text/plain")
	m = append(m, 0x00, 0x01)
	m = putStr(putStr(m, "author"), "ann")
	if _, _, err := c.roundTrip(opPutObject, m, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get("photos", "a.txt", make([]byte, 16))
	ne, ok := err.(*nativeError)
	if !ok || ne.Status != 1 || ne.Code != "NoSuchKey" || ne.Message != "object not found" {
		t.Fatalf("err %v", err)
	}
	wantPut := unhex(t, `10 00 00 00 01 00 00 00 2A 00 00 00 00 00 00 00
		05 00 06 70 68 6F 74 6F 73 00 05 61 2E 74 78 74
		00 0A 74 65 78 74 2F 70 6C 61 69 6E 00 01 00 06
		61 75 74 68 6F 72 00 03 61 6E 6E 68 65 6C 6C 6F`)
	wantGet := unhex(t, `11 00 00 00 02 00 00 00 0F 00 00 00 00 00 00 00
		00 00 06 70 68 6F 74 6F 73 00 05 61 2E 74 78 74`)
	all := <-got
	if !bytes.Equal(all, append(wantPut, wantGet...)) {
		t.Fatalf("requests\n%x\nwant\n%x", all, append(wantPut, wantGet...))
	}
}
