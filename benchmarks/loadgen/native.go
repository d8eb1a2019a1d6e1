package main

// A minimal client for Jay's native protocol v1 (JAY_SPEC §1.2-§1.7): one TCP connection, a
// handshake, then strictly sequential 17-byte-header frames. Standard library only.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

const (
	opCreateBucket = 0x01
	opPutObject    = 0x10
	opGetObject    = 0x11
	opHeadObject   = 0x12
	opDeleteObject = 0x13
	opListObjects  = 0x14
	opPing         = 0xFF

	statusOK       = 0x00
	statusConflict = 0x02

	headerSize  = 17
	maxRespMeta = 1 << 20 // the Go client's limit (§1.9); a larger meta means a broken stream
)

var nativeMagic = []byte{0x4A, 0x41, 0x59, 0x00}

// nativeError is a non-OK response frame: status plus ErrorInfo (§1.8).
type nativeError struct {
	Status  byte
	Message string
	Code    string
}

func (e *nativeError) Error() string {
	return fmt.Sprintf("native status %02x: %s (%s)", e.Status, e.Message, e.Code)
}

type nativeConn struct {
	conn   net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	stream uint32
	hdr    [headerSize]byte
	meta   []byte // reused request meta buffer
	resp   []byte // reused response meta buffer
}

// handshakeBytes encodes the 8-byte preamble plus credentials (§1.2).
func handshakeBytes(credentials string) []byte {
	b := make([]byte, 8, 8+len(credentials))
	copy(b, nativeMagic)
	b[4] = 1 // version
	b[5] = 0 // flags
	binary.BigEndian.PutUint16(b[6:], uint16(len(credentials)))
	return append(b, credentials...)
}

func dialNative(addr, credentials string, timeout time.Duration) (*nativeConn, error) {
	if len(credentials) == 0 || len(credentials) > 0xFFFF {
		return nil, errors.New("native credentials must be 1..65535 bytes (token_id:secret)")
	}
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c := &nativeConn{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), w: bufio.NewWriterSize(conn, 64<<10)}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(handshakeBytes(credentials)); err != nil {
		conn.Close()
		return nil, err
	}
	var reply [8]byte
	if _, err := io.ReadFull(c.r, reply[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	if string(reply[:4]) != string(nativeMagic) {
		conn.Close()
		return nil, errors.New("handshake: bad magic in reply")
	}
	switch reply[5] {
	case 0:
		return c, nil
	case 1:
		conn.Close()
		return nil, errors.New("handshake: authentication failed")
	case 2:
		conn.Close()
		return nil, errors.New("handshake: protocol version mismatch")
	default:
		conn.Close()
		return nil, fmt.Errorf("handshake: status %02x", reply[5])
	}
}

func (c *nativeConn) Close() error { return c.conn.Close() }

// --- meta encoders (§1.5) -------------------------------------------------------------------

func putStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func putI32(b []byte, v int32) []byte { return binary.BigEndian.AppendUint32(b, uint32(v)) }

// encodeHeader writes the 17-byte header (§1.3).
func encodeHeader(h []byte, op byte, stream uint32, metaLen uint32, dataLen uint64) {
	h[0] = op
	binary.BigEndian.PutUint32(h[1:], stream)
	binary.BigEndian.PutUint32(h[5:], metaLen)
	binary.BigEndian.PutUint64(h[9:], dataLen)
}

// roundTrip sends one request frame and reads the response header and meta. The response data
// section (GetObject only) is left unread for the caller: its length is returned.
func (c *nativeConn) roundTrip(op byte, meta []byte, data []byte) (resp []byte, dataLen uint64, err error) {
	c.stream++
	encodeHeader(c.hdr[:], op, c.stream, uint32(len(meta)), uint64(len(data)))
	c.w.Write(c.hdr[:])
	c.w.Write(meta)
	if len(data) > 0 {
		c.w.Write(data) // large writes bypass the buffer
	}
	if err = c.w.Flush(); err != nil {
		return nil, 0, err
	}
	if _, err = io.ReadFull(c.r, c.hdr[:]); err != nil {
		return nil, 0, err
	}
	status := c.hdr[0]
	stream := binary.BigEndian.Uint32(c.hdr[1:])
	metaLen := binary.BigEndian.Uint32(c.hdr[5:])
	dataLen = binary.BigEndian.Uint64(c.hdr[9:])
	if stream != c.stream {
		return nil, 0, fmt.Errorf("stream id %d, want %d", stream, c.stream)
	}
	if metaLen > maxRespMeta {
		return nil, 0, fmt.Errorf("response meta of %d bytes", metaLen)
	}
	if cap(c.resp) < int(metaLen) {
		c.resp = make([]byte, metaLen)
	}
	resp = c.resp[:metaLen]
	if _, err = io.ReadFull(c.r, resp); err != nil {
		return nil, 0, err
	}
	if status != statusOK {
		if dataLen != 0 {
			return nil, 0, fmt.Errorf("error frame with data_len %d", dataLen)
		}
		e := &nativeError{Status: status, Message: "unknown error"}
		if msg, rest, ok := getStr(resp); ok {
			if code, _, ok := getStr(rest); ok {
				e.Message, e.Code = msg, code
			}
		}
		return nil, 0, e
	}
	return resp, dataLen, nil
}

func getStr(b []byte) (string, []byte, bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, false
	}
	return string(b[2 : 2+n]), b[2+n:], true
}

// discard reads n bytes of response data into buf (reused) and returns how many arrived.
func (c *nativeConn) discard(n uint64, buf []byte) (int64, error) {
	var got int64
	for n > 0 {
		chunk := buf
		if uint64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		k, err := io.ReadFull(c.r, chunk)
		got += int64(k)
		n -= uint64(k)
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

func (c *nativeConn) bucketKeyMeta(bucket, key string) []byte {
	c.meta = putStr(putStr(c.meta[:0], bucket), key)
	return c.meta
}

func (c *nativeConn) CreateBucket(bucket string) error {
	c.meta = putStr(c.meta[:0], bucket)
	_, _, err := c.roundTrip(opCreateBucket, c.meta, nil)
	var ne *nativeError
	if errors.As(err, &ne) && ne.Status == statusConflict {
		return nil // already exists
	}
	return err
}

func (c *nativeConn) Put(bucket, key string, body []byte, _ string) error {
	m := c.bucketKeyMeta(bucket, key)
	m = putStr(m, "application/octet-stream")
	m = binary.BigEndian.AppendUint16(m, 0) // empty metadata map
	c.meta = m
	_, _, err := c.roundTrip(opPutObject, m, body)
	return err
}

func (c *nativeConn) Get(bucket, key string, buf []byte) (int64, error) {
	_, n, err := c.roundTrip(opGetObject, c.bucketKeyMeta(bucket, key), nil)
	if err != nil {
		return 0, err
	}
	return c.discard(n, buf)
}

func (c *nativeConn) Head(bucket, key string) error {
	_, _, err := c.roundTrip(opHeadObject, c.bucketKeyMeta(bucket, key), nil)
	return err
}

func (c *nativeConn) Delete(bucket, key string) error {
	_, _, err := c.roundTrip(opDeleteObject, c.bucketKeyMeta(bucket, key), nil)
	return err
}

// List fetches one page starting after the cursor "after" ("" = from the start) and returns
// the number of object entries plus common prefixes, and the cursor of the next page ("" when
// the listing is complete).
func (c *nativeConn) List(bucket, prefix string, maxKeys int, after string) (int, string, error) {
	m := putStr(c.meta[:0], bucket)
	m = putStr(m, prefix)
	m = putStr(m, "") // delimiter
	m = putStr(m, after)
	m = putI32(m, int32(maxKeys))
	c.meta = m
	resp, _, err := c.roundTrip(opListObjects, m, nil)
	if err != nil {
		return 0, "", err
	}
	n, next, err := parseListObjects(resp)
	return n, next, err
}

// parseListObjects decodes a ListObjects response meta (§1.6): the entry count plus common
// prefixes, and next_start_after when is_truncated is set.
func parseListObjects(b []byte) (int, string, error) {
	short := errors.New("short ListObjects response")
	if len(b) < 2 {
		return 0, "", short
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	var ok bool
	for i := 0; i < n; i++ {
		if _, b, ok = getStr(b); !ok { // key
			return 0, "", short
		}
		if len(b) < 8 { // size
			return 0, "", short
		}
		b = b[8:]
		for j := 0; j < 4; j++ { // etag, checksum_sha256, last_modified, content_type
			if _, b, ok = getStr(b); !ok {
				return 0, "", short
			}
		}
	}
	if len(b) < 2 {
		return 0, "", short
	}
	prefixes := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	for i := 0; i < prefixes; i++ {
		if _, b, ok = getStr(b); !ok {
			return 0, "", short
		}
	}
	if len(b) < 1 {
		return 0, "", short
	}
	truncated := b[0] != 0
	next, _, ok := getStr(b[1:])
	if !ok {
		return 0, "", short
	}
	if !truncated {
		next = ""
	}
	return n + prefixes, next, nil
}

func (c *nativeConn) Ping() error {
	_, _, err := c.roundTrip(opPing, nil, nil)
	return err
}
