// Command loadgen is a small closed-loop load generator for S3-compatible servers (SigV4,
// path-style, keep-alive HTTP/1.1) and for Jay's native protocol v1.
//
// Each of -concurrency workers owns one connection (one native TCP connection, or one pooled
// keep-alive HTTP connection) and issues requests back to back until -duration has passed or
// -count operations have been started. It prints one JSON object with the totals and latency
// percentiles of the measured window. Connection setup (and the native handshake) happens
// before the clock starts.
//
//	loadgen -target s3 -endpoint http://127.0.0.1:9000 -access-key K -secret-key S \
//	        -bucket bench -op put -size 64KiB -concurrency 16 -duration 3s
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// client is what a worker drives; s3Client and nativeConn implement it.
type client interface {
	CreateBucket(bucket string) error
	Put(bucket, key string, body []byte, sha string) error
	Get(bucket, key string, buf []byte) (int64, error)
	Head(bucket, key string) error
	Delete(bucket, key string) error
	List(bucket, prefix string, maxKeys int, after string) (int, string, error)
}

type options struct {
	target, endpoint, op, bucket, prefix string
	size                                 int64
	concurrency                          int
	duration                             time.Duration
	count                                int64
	keys                                 int64
	maxKeys                              int
	listWalk                             bool
	accessKey, secretKey, region         string
	auth, payload, credentials           string
	insecure                             bool
	maxErrors                            int64
	seed                                 int64
}

type latencyMS struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

type result struct {
	Target       string    `json:"target"`
	Endpoint     string    `json:"endpoint"`
	Op           string    `json:"op"`
	Size         int64     `json:"size"`
	Concurrency  int       `json:"concurrency"`
	Ops          int64     `json:"ops"`
	Errors       int64     `json:"errors"`
	FirstError   string    `json:"first_error,omitempty"`
	Bytes        int64     `json:"bytes"`
	ElapsedS     float64   `json:"elapsed_s"`
	OpsPerS      float64   `json:"ops_per_s"`
	MiBPerS      float64   `json:"mib_per_s"`
	LatencyMS    latencyMS `json:"latency_ms"`
	ListEntries  float64   `json:"list_entries_per_page,omitempty"`
	ClientCPUS   float64   `json:"client_cpu_s"`
	ClientCPUPct float64   `json:"client_cpu_pct"`
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&o.target, "target", "s3", "s3 or native")
	fs.StringVar(&o.endpoint, "endpoint", "", "s3: http(s)://host:port[/path]; native: host:port")
	fs.StringVar(&o.op, "op", "put", "put, get, head, delete, list, mkbucket (native also: ping)")
	fs.StringVar(&o.bucket, "bucket", "bench", "bucket name")
	fs.StringVar(&o.prefix, "prefix", "bench/", "key prefix; keys are <prefix><8-digit index>")
	size := fs.String("size", "1KiB", "object size for put (bytes, or with K/KiB/M/MiB suffix); expected size for get")
	fs.IntVar(&o.concurrency, "concurrency", 1, "workers, one connection each")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "measure for this long (0: until -count)")
	fs.Int64Var(&o.count, "count", 0, "stop after this many operations (0: until -duration)")
	fs.Int64Var(&o.keys, "keys", 0, "key space: op i uses key i mod keys (0: key i, unique keys)")
	fs.IntVar(&o.maxKeys, "max-keys", 1000, "list: max-keys per page")
	fs.BoolVar(&o.listWalk, "list-walk", false, "list: each worker pages through the whole prefix (continuation), then starts over; default: always the first page")
	fs.StringVar(&o.accessKey, "access-key", envOr("AWS_ACCESS_KEY_ID", ""), "access key / token id")
	fs.StringVar(&o.secretKey, "secret-key", envOr("AWS_SECRET_ACCESS_KEY", ""), "secret key")
	fs.StringVar(&o.region, "region", envOr("AWS_REGION", "us-east-1"), "SigV4 region")
	fs.StringVar(&o.auth, "auth", "sigv4", "s3 auth: sigv4, bearer (Jay's Authorization: Bearer id:secret) or none")
	fs.StringVar(&o.payload, "payload", "sha256", "s3 put payload hash: sha256 (computed once per body) or unsigned")
	fs.StringVar(&o.credentials, "credentials", "", "native handshake credentials (default access-key:secret-key)")
	fs.BoolVar(&o.insecure, "insecure", false, "s3 over https: skip certificate verification")
	fs.Int64Var(&o.maxErrors, "max-errors", 1000, "stop early after this many errors (0: never)")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the random object body")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if o.size, err = parseSize(*size); err != nil {
		return nil, err
	}
	if o.target != "s3" && o.target != "native" {
		return nil, fmt.Errorf("-target must be s3 or native, not %q", o.target)
	}
	if o.endpoint == "" {
		return nil, errors.New("-endpoint is required")
	}
	if o.concurrency < 1 {
		return nil, errors.New("-concurrency must be >= 1")
	}
	if o.duration <= 0 && o.count <= 0 {
		return nil, errors.New("give -duration or -count")
	}
	if o.credentials == "" {
		o.credentials = o.accessKey + ":" + o.secretKey
	}
	switch o.op {
	case "put", "get", "head", "delete", "list", "mkbucket":
	case "ping":
		if o.target != "native" {
			return nil, errors.New("-op ping is native only")
		}
	default:
		return nil, fmt.Errorf("unknown -op %q", o.op)
	}
	return o, nil
}

// newClients makes one client per worker (connected, for native).
func newClients(o *options, n int) ([]client, func(), error) {
	clients := make([]client, 0, n)
	if o.target == "native" {
		var conns []*nativeConn
		closeAll := func() {
			for _, c := range conns {
				c.Close()
			}
		}
		for i := 0; i < n; i++ {
			c, err := dialNative(o.endpoint, o.credentials, 10*time.Second)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			conns = append(conns, c)
			clients = append(clients, c)
		}
		return clients, closeAll, nil
	}
	base, err := url.Parse(o.endpoint)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, nil, fmt.Errorf("bad s3 endpoint %q", o.endpoint)
	}
	transport := newS3Transport(n, o.insecure)
	hc := &http.Client{Transport: transport, Timeout: 10 * time.Minute}
	var sg *signer
	bearer := ""
	switch o.auth {
	case "sigv4":
		sg = &signer{accessKey: o.accessKey, secretKey: o.secretKey, region: o.region, service: "s3"}
	case "bearer":
		bearer = o.accessKey + ":" + o.secretKey
	case "none":
	default:
		return nil, nil, fmt.Errorf("unknown -auth %q", o.auth)
	}
	for i := 0; i < n; i++ {
		var s *signer
		if sg != nil {
			cp := *sg // the signing-key cache is per worker
			s = &cp
		}
		clients = append(clients, &s3Client{base: base, http: hc, signer: s, bearer: bearer,
			payloadMode: o.payload, buf: make([]byte, 256<<10)})
	}
	return clients, transport.CloseIdleConnections, nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i]) / 1e6
}

func run(o *options) (*result, error) {
	workers := o.concurrency
	if o.op == "mkbucket" {
		workers = 1
	}
	clients, closeAll, err := newClients(o, workers)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	if o.op == "mkbucket" {
		if err := clients[0].CreateBucket(o.bucket); err != nil {
			return nil, err
		}
		return &result{Target: o.target, Endpoint: o.endpoint, Op: o.op, Ops: 1}, nil
	}

	body := make([]byte, o.size)
	rand.New(rand.NewSource(o.seed)).Read(body)
	bodySHA := sha256Hex(body)

	var (
		next       atomic.Int64
		errCount   atomic.Int64
		firstErr   atomic.Pointer[string]
		stop       atomic.Bool
		totalBytes atomic.Int64
		listed     atomic.Int64
		wg         sync.WaitGroup
	)
	lat := make([][]int64, workers)
	start := make(chan struct{})
	var deadline time.Time

	keyFor := func(i int64) string {
		if o.keys > 0 {
			i %= o.keys
		}
		return fmt.Sprintf("%s%08d", o.prefix, i)
	}

	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := clients[w]
			buf := make([]byte, 256<<10)
			mine := make([]int64, 0, 4096)
			cursor := "" // list-walk: where this worker's next page starts
			<-start
			for !stop.Load() {
				i := next.Add(1) - 1
				if o.count > 0 && i >= o.count {
					break
				}
				key := keyFor(i)
				t := time.Now()
				if o.duration > 0 && t.After(deadline) {
					break
				}
				var n int64
				var err error
				switch o.op {
				case "put":
					err = c.Put(o.bucket, key, body, bodySHA)
					n = o.size
				case "get":
					n, err = c.Get(o.bucket, key, buf)
					if err == nil && n != o.size {
						err = fmt.Errorf("GET %s: %d bytes, want %d", key, n, o.size)
					}
				case "head":
					err = c.Head(o.bucket, key)
				case "delete":
					err = c.Delete(o.bucket, key)
				case "list":
					var k int
					var next string
					k, next, err = c.List(o.bucket, o.prefix, o.maxKeys, cursor)
					listed.Add(int64(k))
					if o.listWalk && err == nil {
						cursor = next
					}
				case "ping":
					err = c.(*nativeConn).Ping()
				}
				d := time.Since(t)
				if err != nil {
					if errCount.Add(1) == 1 {
						msg := err.Error()
						firstErr.Store(&msg)
					}
					if o.maxErrors > 0 && errCount.Load() >= o.maxErrors {
						stop.Store(true)
					}
					var ne *nativeError
					if o.target == "native" && !errors.As(err, &ne) {
						// transport or framing error: this connection is unusable now
						nc := c.(*nativeConn)
						nc.Close()
						if fresh, derr := dialNative(o.endpoint, o.credentials, 10*time.Second); derr == nil {
							*nc = *fresh
						} else {
							return
						}
					}
					continue
				}
				totalBytes.Add(n)
				mine = append(mine, int64(d))
			}
			lat[w] = mine
		}(w)
	}

	cpu0 := cpuSeconds()
	t0 := time.Now()
	deadline = t0.Add(o.duration)
	close(start)
	wg.Wait()
	elapsed := time.Since(t0).Seconds()
	cpu := cpuSeconds() - cpu0

	var all []int64
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	var sum int64
	for _, v := range all {
		sum += v
	}
	r := &result{
		Target: o.target, Endpoint: o.endpoint, Op: o.op, Size: o.size, Concurrency: workers,
		Ops: int64(len(all)), Errors: errCount.Load(), Bytes: totalBytes.Load(), ElapsedS: elapsed,
		ClientCPUS: cpu,
	}
	if p := firstErr.Load(); p != nil {
		r.FirstError = *p
	}
	if elapsed > 0 {
		r.OpsPerS = float64(r.Ops) / elapsed
		r.MiBPerS = float64(r.Bytes) / elapsed / (1 << 20)
		r.ClientCPUPct = 100 * cpu / elapsed
	}
	if len(all) > 0 {
		r.LatencyMS = latencyMS{
			Mean: float64(sum) / float64(len(all)) / 1e6,
			P50:  percentile(all, 0.50), P90: percentile(all, 0.90), P99: percentile(all, 0.99),
			Max: float64(all[len(all)-1]) / 1e6,
		}
	}
	if o.op == "list" && r.Ops > 0 {
		r.ListEntries = float64(listed.Load()) / float64(r.Ops)
	}
	return r, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	r, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(r); err != nil {
		os.Exit(1)
	}
}
