package main

// Benchmarks of the relay path against a baseline measured in the same run
// (docs/benchmarks.md has the figures and the commands):
//
//   - BenchmarkToolCall: tools/call round trips from an agent, direct to the
//     demo upstream (`bridge demo-server` over stdio) versus through
//     `bridge connect` → gateway (in this process) → the same upstream;
//     sequential, 16 in flight on one stdio connection, and 4 sessions.
//   - BenchmarkGatewayThroughput: many HTTP clients POSTing tools/call
//     straight to the gateway, versus the same load straight to the
//     upstream processes.
//   - BenchmarkColdStart: process start to the first answered initialize,
//     and peak RSS, of `bridge connect` (and of mcp-remote, a popular
//     Node-based stdio↔HTTP bridge, when it is installed under .tools).
//
// Setup (fake Okta, gateway, subprocesses, handshakes) stays outside the
// timed region. Every benchmark also passes with -benchtime=1x.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/approval/gateway"
	"github.com/seed-3f9f6f16/bridge/auth/fakeokta"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// benchConfig is the gateway configuration of the benchmarks: the demo
// upstream as a stdio subprocess, every call allowed, and otherwise the
// defaults of `bridge serve` (audit log, masking, access log).
const benchConfig = `
listen: 127.0.0.1:0
storage: {path: "{{DATA}}/bridge.db"}
audit: {signing_key_file: "{{DATA}}/audit-key.pem", witness: {file: "{{DATA}}/audit-heads.jsonl"}}
identity:
  issuer: {{ISSUER}}
  audience: api://bridge-bench
  client_id: bridge-bench-cli
  clock_skew: 30s
servers:
  demo:
    transport: stdio
    command: {{BIN}}
    args: [demo-server]
policy:
  default: allow
`

// benchProtocol is the MCP revision the benchmark clients speak.
const benchProtocol = "2025-06-18"

// benchGateway is a fake Okta and a gateway serving in this process, with
// the default pipeline of `bridge serve` (the access log goes, as JSON, to
// io.Discard).
type benchGateway struct {
	url   string // base URL
	token string // a valid access token for alice
}

func startBenchGateway(tb testing.TB) *benchGateway {
	tb.Helper()
	okta, err := fakeokta.New(fakeokta.Options{ClientID: "bridge-bench-cli", Audience: "api://bridge-bench",
		Users: map[string]fakeokta.User{"alice": {Subject: "00u-alice", Email: "alice@example.com", Name: "Alice", Groups: []string{"engineering"}}}})
	if err != nil {
		tb.Fatal(err)
	}
	oktaSrv := httptest.NewServer(okta)
	tb.Cleanup(oktaSrv.Close)
	if err := okta.SetIssuer(oktaSrv.URL + fakeokta.DefaultPath); err != nil {
		tb.Fatal(err)
	}
	dataDir := benchStorageDir(tb)
	ensureAuditKey(tb, dataDir)
	yaml := strings.NewReplacer("{{ISSUER}}", okta.Issuer(), "{{BIN}}", bridgeBin, "{{DATA}}", filepath.ToSlash(dataDir)).Replace(benchConfig)
	cfg, err := config.Load("bench.yaml", []byte(yaml), config.Env{
		Getenv:   func(string) (string, bool) { return "", false },
		ReadFile: os.ReadFile,
	})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- gateway.Serve(ctx, gateway.ServeOptions{
			Config: cfg, Listener: ln,
			// What `bridge serve` does: JSON logs at info, here discarded,
			// so the access log's cost is counted.
			Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		})
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("gateway: %v", err)
		}
	})
	tok, err := okta.Mint("alice", fakeokta.MintOptions{TTL: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	return &benchGateway{url: "http://" + ln.Addr().String(), token: tok}
}

// benchStorageDir is where the gateway's database goes: a temporary
// directory, under $BRIDGE_BENCH_STORAGE_DIR when that is set. The audit log
// makes each message durable (fsync) before it moves on, so the disk's
// fsync latency is part of every round trip; BRIDGE_BENCH_STORAGE_DIR=/dev/shm
// (tmpfs) takes it out to measure the relay and the pipeline alone.
func benchStorageDir(tb testing.TB) string {
	base := os.Getenv("BRIDGE_BENCH_STORAGE_DIR")
	if base == "" {
		return tb.TempDir()
	}
	dir, err := os.MkdirTemp(base, "bridge-bench-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// lockedBuffer collects a subprocess's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // keep the last words, not everything
		l.b.Reset()
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rpcProc is a lean MCP client on a subprocess's stdio: one writer, one
// reader that hands each response to the caller waiting for its id. The
// direct and bridged benchmarks use the same client, so its own cost
// cancels out of the added latency.
type rpcProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *lockedBuffer

	wmu     sync.Mutex
	nextID  atomic.Int64
	mu      sync.Mutex
	waiting map[int64]chan []byte
	eof     chan struct{}
}

// startProc starts a subprocess speaking JSON-RPC lines on its stdio.
func startProc(path string, args []string, env []string) (*rpcProc, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &rpcProc{cmd: cmd, stdin: stdin, stderr: &lockedBuffer{}, waiting: map[int64]chan []byte{}, eof: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go p.read(stdout)
	return p, nil
}

func (p *rpcProc) read(r io.Reader) {
	defer close(p.eof)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		var env struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(line, &env) != nil || len(env.ID) == 0 || string(env.ID) == "null" {
			continue // notifications and noise
		}
		if env.Method != "" { // a server→client request (ping): answer it
			_ = p.write([]byte(`{"jsonrpc":"2.0","id":` + string(env.ID) + `,"result":{}}`))
			continue
		}
		id, err := strconv.ParseInt(string(env.ID), 10, 64)
		if err != nil {
			continue
		}
		p.mu.Lock()
		ch := p.waiting[id]
		delete(p.waiting, id)
		p.mu.Unlock()
		if ch != nil {
			ch <- line
		}
	}
}

func (p *rpcProc) write(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err := p.stdin.Write(append(b, '\n'))
	return err
}

// call sends a request (method, params as JSON) and waits for its response.
func (p *rpcProc) call(method, params string, timeout time.Duration) ([]byte, error) {
	id := p.nextID.Add(1)
	ch := make(chan []byte, 1)
	p.mu.Lock()
	p.waiting[id] = ch
	p.mu.Unlock()
	if err := p.write([]byte(`{"jsonrpc":"2.0","id":` + strconv.FormatInt(id, 10) + `,"method":"` + method + `","params":` + params + `}`)); err != nil {
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-ch:
		if !bytes.Contains(line, []byte(`"result"`)) {
			return line, fmt.Errorf("%s answered with an error: %s", method, line)
		}
		return line, nil
	case <-p.eof:
		return nil, fmt.Errorf("%s: the process closed its stdout; stderr:\n%s", method, p.stderr.String())
	case <-t.C:
		return nil, fmt.Errorf("%s: no answer in %s; stderr:\n%s", method, timeout, p.stderr.String())
	}
}

const initializeParams = `{"protocolVersion":"` + benchProtocol + `","capabilities":{},"clientInfo":{"name":"bridge-bench","version":"1"}}`

// handshake performs initialize and notifications/initialized.
func (p *rpcProc) handshake() error {
	if _, err := p.call("initialize", initializeParams, 30*time.Second); err != nil {
		return err
	}
	return p.write([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
}

// close ends the process by closing its stdin, as an agent does.
func (p *rpcProc) close() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes,
// or 0 where /proc is not available.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

func benchEnv(tb testing.TB, extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + tb.TempDir()}, extra...)
}

// startDirect starts the demo upstream and completes its handshake.
func startDirect(b *testing.B) *rpcProc {
	b.Helper()
	p, err := startProc(bridgeBin, []string{"demo-server"}, benchEnv(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.close)
	if err := p.handshake(); err != nil {
		b.Fatal(err)
	}
	return p
}

// startBridged starts `bridge connect demo` against the gateway and
// completes its handshake (which starts the session's upstream).
func startBridged(b *testing.B, gw *benchGateway) *rpcProc {
	b.Helper()
	p, err := startProc(bridgeBin, []string{"connect", "demo", "--gateway", gw.url}, benchEnv(b, "BRIDGE_TOKEN="+gw.token))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.close)
	if err := p.handshake(); err != nil {
		b.Fatal(err)
	}
	return p
}

// echoParams is the small tools/call of every benchmark.
const echoParams = `{"name":"echo","arguments":{"message":"hello from the benchmark"}}`

// percentile returns the q-quantile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// loadResult is what one timed run measured.
type loadResult struct {
	lat     []time.Duration // sorted
	elapsed time.Duration
}

func (r loadResult) report(b *testing.B) {
	b.ReportMetric(float64(percentile(r.lat, 0.50).Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(percentile(r.lat, 0.99).Nanoseconds())/1e3, "p99-µs")
	if r.elapsed > 0 {
		b.ReportMetric(float64(len(r.lat))/r.elapsed.Seconds(), "calls/s")
	}
}

// runLoad makes b.N calls with inflight workers, spread round-robin over
// the callers, timing each call and the whole run.
func runLoad(b *testing.B, inflight int, callers []func() error) loadResult {
	b.Helper()
	var next atomic.Int64
	lats := make([][]time.Duration, inflight)
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range inflight {
		call := callers[w%len(callers)]
		wg.Go(func() {
			mine := make([]time.Duration, 0, b.N/inflight+1)
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := call(); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			lats[w] = mine
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := firstErr.Load(); err != nil {
		b.Fatal(*err)
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	return loadResult{lat: all, elapsed: elapsed}
}

func echoCaller(p *rpcProc) func() error {
	return func() error {
		line, err := p.call("tools/call", echoParams, 30*time.Second)
		if err == nil && !bytes.Contains(line, []byte("hello from the benchmark")) {
			err = fmt.Errorf("unexpected tools/call answer: %s", line)
		}
		return err
	}
}

// BenchmarkToolCall compares tools/call round trips direct to the demo
// upstream with the same calls through `bridge connect` and the gateway.
// Shapes: sequential (one call at a time), concurrent-16 (16 in flight on
// one stdio connection) and sessions-4x4 (4 agents, 4 in flight each).
func BenchmarkToolCall(b *testing.B) {
	gw := startBenchGateway(b)
	shapes := []struct {
		name              string
		sessions, perSess int
	}{
		{"sequential", 1, 1},
		{"concurrent-16", 1, 16},
		{"sessions-4x4", 4, 4},
	}
	for _, sh := range shapes {
		for _, path := range []string{"direct", "bridge"} {
			b.Run(sh.name+"/"+path, func(b *testing.B) {
				var callers []func() error
				for range sh.sessions {
					var p *rpcProc
					if path == "direct" {
						p = startDirect(b)
					} else {
						p = startBridged(b, gw)
					}
					// One warm-up call: connections, lazy initialisation.
					if err := echoCaller(p)(); err != nil {
						b.Fatal(err)
					}
					callers = append(callers, echoCaller(p))
				}
				runLoad(b, sh.sessions*sh.perSess, callers).report(b)
			})
		}
	}
}

// httpSession is one MCP session opened straight on the gateway.
type httpSession struct {
	hc       *http.Client
	endpoint string
	token    string
	id       string
	nextID   atomic.Int64
}

func (s *httpSession) post(body string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, s.endpoint, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	// The headers `bridge connect` sends.
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set(bridge.HeaderProtocolVersion, benchProtocol)
	if s.id != "" {
		req.Header.Set(bridge.HeaderSessionID, s.id)
	}
	return s.hc.Do(req)
}

func (s *httpSession) callRaw(method, params string) ([]byte, *http.Response, error) {
	id := s.nextID.Add(1)
	resp, err := s.post(`{"jsonrpc":"2.0","id":` + strconv.FormatInt(id, 10) + `,"method":"` + method + `","params":` + params + `}`)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"result"`)) {
		return body, resp, fmt.Errorf("%s: HTTP %d: %s", method, resp.StatusCode, body)
	}
	return body, resp, nil
}

func openHTTPSession(hc *http.Client, gw *benchGateway) (*httpSession, error) {
	s := &httpSession{hc: hc, endpoint: gw.url + "/mcp/demo", token: gw.token}
	_, resp, err := s.callRaw("initialize", initializeParams)
	if err != nil {
		return nil, err
	}
	s.id = resp.Header.Get(bridge.HeaderSessionID)
	if s.id == "" {
		return nil, errors.New("initialize: no session id")
	}
	resp, err = s.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("notifications/initialized: HTTP %d", resp.StatusCode)
	}
	return s, nil
}

func (s *httpSession) close() {
	req, err := http.NewRequest(http.MethodDelete, s.endpoint, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set(bridge.HeaderSessionID, s.id)
	if resp, err := s.hc.Do(req); err == nil {
		resp.Body.Close()
	}
}

// BenchmarkGatewayThroughput loads the gateway with HTTP clients POSTing
// tools/call straight to it on 4 sessions, 64 in flight (and, to split the
// bridged latency, one at a time on one session), against the same load
// straight to the upstream processes over stdio. Load generator, gateway
// and upstreams share the machine's cores.
func BenchmarkGatewayThroughput(b *testing.B) {
	gw := startBenchGateway(b)
	shapes := []struct {
		name               string
		sessions, inflight int
	}{
		{"sequential", 1, 1},
		{"inflight-64", 4, 64},
	}
	for _, sh := range shapes {
		b.Run(sh.name+"/upstream", func(b *testing.B) {
			var callers []func() error
			for range sh.sessions {
				p := startDirect(b)
				if err := echoCaller(p)(); err != nil {
					b.Fatal(err)
				}
				callers = append(callers, echoCaller(p))
			}
			runLoad(b, sh.inflight, callers).report(b)
		})
		b.Run(sh.name+"/gateway", func(b *testing.B) {
			tr := &http.Transport{MaxIdleConns: 2 * sh.inflight, MaxIdleConnsPerHost: 2 * sh.inflight, IdleConnTimeout: time.Minute}
			b.Cleanup(tr.CloseIdleConnections)
			hc := &http.Client{Transport: tr}
			var callers []func() error
			for range sh.sessions {
				s, err := openHTTPSession(hc, gw)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(s.close)
				call := func() error {
					body, _, err := s.callRaw("tools/call", echoParams)
					if err == nil && !bytes.Contains(body, []byte("hello from the benchmark")) {
						err = fmt.Errorf("unexpected tools/call answer: %s", body)
					}
					return err
				}
				if err := call(); err != nil {
					b.Fatal(err)
				}
				callers = append(callers, call)
			}
			runLoad(b, sh.inflight, callers).report(b)
		})
	}
}

// mcpRemoteScript is mcp-remote's entry point when it is installed with
// `npm install --prefix .tools/mcp-remote mcp-remote` (see
// docs/benchmarks.md); MCP_REMOTE overrides it.
func mcpRemoteScript() string {
	if p := os.Getenv("MCP_REMOTE"); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join("..", "..", ".tools", "mcp-remote", "node_modules", "mcp-remote", "dist", "proxy.js"))
	if err != nil {
		return ""
	}
	return p
}

// BenchmarkColdStart measures what an agent pays at every launch for each
// configured server: process start to the first answered initialize
// (which, through bridge, includes the gateway's session and upstream
// start), and the process's peak RSS. mcp-remote, a popular Node-based
// stdio↔HTTP MCP bridge, is measured against the same gateway when it is
// installed; the bare demo upstream is a reference.
func BenchmarkColdStart(b *testing.B) {
	gw := startBenchGateway(b)
	type subject struct {
		name string
		argv func(b *testing.B) ([]string, []string) // argv, env
	}
	subjects := []subject{
		{"bridge-connect", func(b *testing.B) ([]string, []string) {
			return []string{bridgeBin, "connect", "demo", "--gateway", gw.url}, benchEnv(b, "BRIDGE_TOKEN="+gw.token)
		}},
		{"mcp-remote", func(b *testing.B) ([]string, []string) {
			script := mcpRemoteScript()
			node, err := exec.LookPath("node")
			if _, serr := os.Stat(script); serr != nil || err != nil {
				b.Skip("mcp-remote is not installed: npm install --prefix .tools/mcp-remote mcp-remote (or set MCP_REMOTE)")
			}
			return []string{node, script, gw.url + "/mcp/demo", "--transport", "http-only",
				"--header", "Authorization:Bearer " + gw.token, "--silent"}, benchEnv(b)
		}},
		{"demo-server-direct", func(b *testing.B) ([]string, []string) {
			return []string{bridgeBin, "demo-server"}, benchEnv(b)
		}},
	}
	for _, s := range subjects {
		b.Run(s.name, func(b *testing.B) {
			argv, env := s.argv(b)
			starts := make([]time.Duration, 0, b.N)
			var peak int64
			for range b.N {
				t0 := time.Now()
				p, err := startProc(argv[0], argv[1:], env)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.call("initialize", initializeParams, 30*time.Second); err != nil {
					p.close()
					b.Fatal(err)
				}
				starts = append(starts, time.Since(t0))
				// Let the process settle into its steady state (an agent
				// goes on with tools/list) before reading its peak.
				_ = p.write([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
				if _, err := p.call("tools/list", `{}`, 30*time.Second); err != nil {
					p.close()
					b.Fatal(err)
				}
				peak = max(peak, peakRSS(p.cmd.Process.Pid))
				p.close()
			}
			b.StopTimer()
			slices.Sort(starts)
			b.ReportMetric(float64(percentile(starts, 0.5).Microseconds())/1e3, "p50-start-ms")
			b.ReportMetric(float64(percentile(starts, 0.99).Microseconds())/1e3, "p99-start-ms")
			if runtime.GOOS == "linux" {
				b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
			}
		})
	}
}
