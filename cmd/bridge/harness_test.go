package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/approval/gateway"
	"github.com/seed-3f9f6f16/bridge/approval/queue"
	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/auth/fakeokta"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// bridgeBin is the bridge binary built once for the end-to-end tests.
var bridgeBin string

// testBin is this test binary, which serves as the fault upstream
// (faultupstream_test.go) when started with faultUpstreamEnv=1.
var testBin string

func TestMain(m *testing.M) {
	if os.Getenv(faultUpstreamEnv) == "1" { // this binary started as a test upstream
		os.Exit(runFaultUpstream(os.Stdin, os.Stdout, os.Stderr))
	}
	var err error
	if testBin, err = os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "bridge-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bridgeBin = filepath.Join(dir, "bridge")
	// The binary runs `bridge connect`, `serve` and the demo upstream in
	// the end-to-end tests: under -race it is built with the race detector,
	// so those processes are checked as this one is.
	build := []string{"build", "-o", bridgeBin}
	if raceEnabled {
		build = append(build, "-race")
	}
	if out, err := exec.Command("go", append(build, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building bridge: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testUsers are the fake Okta's accounts.
var testUsers = map[string]fakeokta.User{
	"alice": {Subject: "00u-alice", Email: "alice@example.com", Name: "Alice", Groups: []string{"engineering"}},
	"bob":   {Subject: "00u-bob", Email: "bob@example.com", Name: "Bob", Groups: []string{"security-reviewers"}},
	"carol": {Subject: "00u-carol", Email: "carol@example.com", Name: "Carol", Groups: []string{"security-reviewers", "engineering"}},
	"dave":  {Subject: "00u-dave", Email: "dave@example.com", Name: "Dave", Groups: []string{"marketing"}},
}

// world is a fake Okta, a gateway in this process and the demo upstream as
// a real stdio subprocess (the bridge binary's demo-server).
type world struct {
	t       *testing.T
	okta    *fakeokta.Server
	oktaSrv *httptest.Server
	gwURL   string
	gwAddr  string
	logs    *syncBuffer
	seen    *recorder
	rules   string
	extra   string // more top-level YAML
	rugPull string // "1" makes the demo upstream change echo's description
	// template is the configuration YAML with placeholders; empty means
	// e2eConfig (the demo upstream).
	template string
	data     string
	clock    *fakeClock
	queue    *queue.Queue
	audit    *audit.Log
	// auditFault makes the audit store fail while its switch is on.
	auditFault *faultyStore
	// reloads asks the running gateway to reload its configuration.
	reloads chan struct{}
	stop    func()
	// envValues are the variables the configuration's ${env:NAME}
	// expansions see (BRIDGE_E2E_SECRET is always there).
	envValues map[string]string
	// oktaDown makes the fake Okta answer 503 to everything (JWKS too).
	oktaDown atomic.Bool
}

const e2eConfig = `
listen: 127.0.0.1:0
storage: {path: "{{DATA}}/bridge.db"}
audit: {signing_key_file: "{{DATA}}/audit-key.pem", witness: {file: "{{DATA}}/audit-heads.jsonl"}}
identity:
  issuer: {{ISSUER}}
  audience: api://bridge-test
  client_id: bridge-test-cli
  clock_skew: 30s
servers:
  demo:
    transport: stdio
    command: {{BIN}}
    args: [demo-server]
    env: {DEMO_SECRET: "${env:BRIDGE_E2E_SECRET}", BRIDGE_DEMO_RUG_PULL: "{{RUG_PULL}}", BRIDGE_DEMO_LOG_CALLS: "1", BRIDGE_DEMO_LEAK: "1"}
policy:
  default: allow
  rules:
    - name: no-mass-delete
      tools: [delete_records]
      when: '!has(args.where) || args.where == ""'
      action: deny
      reason: Deleting every record is not allowed from agents.
{{RULES}}
{{EXTRA}}
`

func newWorld(t *testing.T) *world { return newWorldWith(t, "") }

// newWorldWith adds policy rules (YAML list items indented four spaces)
// after the default ones.
func newWorldWith(t *testing.T, rules string) *world { return newWorldWithExtra(t, rules, "") }

// newWorldWithExtra also adds top-level YAML sections.
func newWorldWithExtra(t *testing.T, rules, extra string) *world {
	t.Helper()
	return newWorldFrom(t, e2eConfig, "", rules, extra)
}

// newWorldFrom starts a world from a configuration template in data (a
// fresh temporary folder when empty).
func newWorldFrom(t *testing.T, template, data, rules, extra string) *world {
	t.Helper()
	return newWorldOf(t, &world{template: template, data: data, rules: rules, extra: extra})
}

// newWorldOf starts a world from w's configuration fields (template,
// rules, extra, envValues; data may be set beforehand to prepare files
// there).
func newWorldOf(t *testing.T, w *world) *world {
	t.Helper()
	w.t, w.logs, w.seen, w.clock = t, &syncBuffer{}, &recorder{}, newFakeClock()
	if w.data == "" {
		w.data = t.TempDir()
	}
	if w.template == "" {
		w.template = e2eConfig
	}
	okta, err := fakeokta.New(fakeokta.Options{ClientID: "bridge-test-cli", Audience: "api://bridge-test", Users: testUsers, PollInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.okta = okta
	w.oktaSrv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if w.oktaDown.Load() {
			http.Error(rw, "identity provider down (injected)", http.StatusServiceUnavailable)
			return
		}
		okta.ServeHTTP(rw, r)
	}))
	t.Cleanup(w.oktaSrv.Close)
	if err := okta.SetIssuer(w.oktaSrv.URL + fakeokta.DefaultPath); err != nil {
		t.Fatal(err)
	}
	ensureAuditKey(t, w.data)
	w.start("127.0.0.1:0")
	t.Cleanup(func() {
		w.stop()
		if t.Failed() {
			t.Logf("gateway log:\n%s", w.logs.String())
		}
	})
	return w
}

// start runs the gateway on addr until stop.
func (w *world) start(addr string) {
	t := w.t
	env := config.Env{
		Getenv: func(k string) (string, bool) {
			if k == "BRIDGE_E2E_SECRET" {
				return "s3cret-upstream-value", true
			}
			v, ok := w.envValues[k]
			return v, ok
		},
		ReadFile: os.ReadFile,
	}
	load := func() (*config.Config, error) {
		yaml := strings.NewReplacer("{{ISSUER}}", w.okta.Issuer(), "{{BIN}}", bridgeBin, "{{TESTBIN}}", testBin, "{{RULES}}", w.rules, "{{DATA}}", w.data, "{{EXTRA}}", w.extra, "{{RUG_PULL}}", w.rugPull).Replace(w.template)
		return config.Load("e2e.yaml", []byte(yaml), env)
	}
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	w.reloads = make(chan struct{}, 1)
	var ln net.Listener
	for i := 0; ; i++ { // the port of a restarted gateway may linger briefly
		ln, err = net.Listen("tcp", addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	w.gwAddr = ln.Addr().String()
	w.gwURL = "http://" + w.gwAddr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	log := slog.New(slog.NewJSONHandler(w.logs, nil))
	go func() {
		done <- gateway.Serve(ctx, gateway.ServeOptions{
			Config: cfg, Listener: ln, Logger: log, ExtraStages: []gateway.Middleware{w.seen.middleware},
			Reload: load, ReloadRequests: w.reloads,
			Clock:    w.clock,
			Ready:    func(string) { close(ready) },
			Services: func(q *queue.Queue, l *audit.Log) { w.queue, w.audit = q, l },
			WrapAuditStore: func(s audit.Store) audit.Store {
				w.auditFault = &faultyStore{Store: s}
				return w.auditFault
			},
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("gateway did not start: %v", err)
	}
	w.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
		w.stop = func() {}
	}
}

// restart stops the gateway and starts a new one on the same address.
func (w *world) restart() {
	addr := w.gwAddr
	w.stop()
	w.start(addr)
}

// token mints an access token for a user.
func (w *world) token(user string) string {
	tok, err := w.okta.Mint(user, fakeokta.MintOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return tok
}

// recorder remembers the methods of messages the pipeline saw.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) middleware(next bridge.Filter) bridge.Filter {
	return bridge.FilterFunc(func(ctx context.Context, x *bridge.Exchange, m *bridge.Message) (bridge.Verdict, error) {
		r.mu.Lock()
		r.msgs = append(r.msgs, x.Direction.String()+" "+m.Kind.String()+" "+m.Method+" "+string(m.Params))
		r.mu.Unlock()
		return next.Filter(ctx, x, m)
	})
}

func (r *recorder) has(substr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// agent is an MCP client that drives `bridge connect` over its stdio, line
// by line, as Claude Desktop would. It answers the upstream's sampling,
// elicitation and roots requests.
type agent struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *syncBuffer

	mu      sync.Mutex
	nextID  int
	waiting map[string]chan json.RawMessage
	notes   []json.RawMessage
	noted   chan struct{}
	served  []string // methods of server→client requests answered
	raw     []json.RawMessage
}

// startAgent runs `bridge connect demo` with the given environment.
func (w *world) startAgent(env ...string) *agent {
	t := w.t
	t.Helper()
	cmd := exec.Command(bridgeBin, "connect", "demo", "--gateway", w.gwURL, "--log-level", "debug", "--no-browser")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{t: t, cmd: cmd, stdin: stdin, stderr: &syncBuffer{}, waiting: map[string]chan json.RawMessage{}, noted: make(chan struct{}, 1000)}
	cmd.Stderr = a.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go a.read(stdout)
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("bridge connect did not exit when stdin closed")
		}
		if strings.Contains(a.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector found a data race in bridge connect:\n%s", a.stderr.String())
		} else if t.Failed() {
			t.Logf("bridge connect stderr:\n%s", a.stderr.String())
		}
	})
	return a
}

func (a *agent) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 32<<20)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		var env struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if err := json.Unmarshal(line, &env); err != nil {
			a.t.Errorf("bridge connect wrote a line that is not JSON: %q", line)
			continue
		}
		a.mu.Lock()
		a.raw = append(a.raw, line)
		switch {
		case env.Method != "" && env.ID != nil:
			a.served = append(a.served, env.Method)
			a.mu.Unlock()
			a.answerServer(env.ID, env.Method, line)
			continue
		case env.Method != "":
			a.notes = append(a.notes, line)
			a.mu.Unlock()
			a.noted <- struct{}{}
			continue
		}
		ch := a.waiting[string(env.ID)]
		delete(a.waiting, string(env.ID))
		a.mu.Unlock()
		if ch != nil {
			ch <- line
		}
	}
}

// answerServer replies to a server→client request like a real client.
func (a *agent) answerServer(id json.RawMessage, method string, line []byte) {
	var result any
	switch {
	case method == "elicitation/create" && bytes.Contains(line, []byte(`"reason"`)):
		result = map[string]any{"action": "accept", "content": map[string]any{"reason": "quarterly cleanup"}}
	default:
		a.answerServerMethod(id, method)
		return
	}
	a.send(map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
}

func (a *agent) answerServerMethod(id json.RawMessage, method string) {
	var result any
	switch method {
	case "sampling/createMessage":
		result = map[string]any{"role": "assistant", "model": "test-model", "content": map[string]any{"type": "text", "text": "forty-two"}}
	case "elicitation/create":
		result = map[string]any{"action": "accept", "content": map[string]any{"ok": true}}
	case "roots/list":
		result = map[string]any{"roots": []any{map[string]any{"uri": "file:///work/project", "name": "project"}}}
	case "ping":
		result = map[string]any{}
	default:
		a.send(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": -32601, "message": "unknown method"}})
		return
	}
	a.send(map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
}

func (a *agent) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		a.t.Fatal(err)
	}
	a.sendRaw(b)
}

func (a *agent) sendRaw(b []byte) {
	if _, err := a.stdin.Write(append(b, '\n')); err != nil {
		a.t.Errorf("writing to bridge connect: %v", err)
	}
}

// rpcResponse is a decoded JSON-RPC response.
type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// expect registers interest in the response to id.
func (a *agent) expect(id string) chan json.RawMessage {
	ch := make(chan json.RawMessage, 1)
	a.mu.Lock()
	a.waiting[id] = ch
	a.mu.Unlock()
	return ch
}

// call sends a request and waits for its response.
func (a *agent) call(method string, params any) rpcResponse {
	a.t.Helper()
	ch, id := a.start(method, params)
	return a.wait(ch, id)
}

// start sends a request without waiting.
func (a *agent) start(method string, params any) (chan json.RawMessage, int) {
	a.mu.Lock()
	a.nextID++
	id := a.nextID
	a.mu.Unlock()
	ch := a.expect(fmt.Sprint(id))
	msg := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	a.send(msg)
	return ch, id
}

func (a *agent) wait(ch chan json.RawMessage, id int) rpcResponse {
	a.t.Helper()
	select {
	case line := <-ch:
		var r rpcResponse
		if err := json.Unmarshal(line, &r); err != nil {
			a.t.Fatal(err)
		}
		return r
	case <-time.After(30 * time.Second):
		a.t.Fatalf("no response to request %d; stderr:\n%s", id, a.stderr.String())
		return rpcResponse{}
	}
}

// initialize performs the MCP handshake at a protocol version.
func (a *agent) initialize(version string) rpcResponse {
	a.t.Helper()
	r := a.call("initialize", map[string]any{
		"protocolVersion": version,
		"capabilities":    map[string]any{"sampling": map[string]any{}, "elicitation": map[string]any{}, "roots": map[string]any{"listChanged": true}},
		"clientInfo":      map[string]any{"name": "e2e-agent", "version": "1.0"},
	})
	if r.Error != nil {
		a.t.Fatalf("initialize: %s", r.Error.Message)
	}
	a.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
	return r
}

// notifications returns the notifications received so far with a method.
func (a *agent) notifications(method string) []json.RawMessage {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []json.RawMessage
	for _, n := range a.notes {
		var env struct {
			Method string `json:"method"`
		}
		if json.Unmarshal(n, &env) == nil && env.Method == method {
			out = append(out, n)
		}
	}
	return out
}

// waitNotification waits until a notification with the method arrives.
func (a *agent) waitNotification(method string) json.RawMessage {
	a.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if ns := a.notifications(method); len(ns) > 0 {
			return ns[len(ns)-1]
		}
		select {
		case <-a.noted:
		case <-deadline:
			a.t.Fatalf("no %s notification; stderr:\n%s", method, a.stderr.String())
		}
	}
}

// toolText returns the concatenated text content of a tools/call result.
func toolText(t *testing.T, r rpcResponse) string {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("tools/call error %d: %s", r.Error.Code, r.Error.Message)
	}
	var res struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		b.WriteString(c.Text)
	}
	return b.String()
}

func toolCall(name string, args map[string]any) map[string]any {
	return map[string]any{"name": name, "arguments": args}
}

// storeToken writes a login into a fresh BRIDGE_HOME, as `bridge login
// --insecure-storage` would.
func (w *world) storeToken(home string, tok *auth.Token) {
	w.t.Helper()
	if err := (&auth.FileStore{Dir: auth.TokensDir(home)}).Save(w.gwURL, tok); err != nil {
		w.t.Fatal(err)
	}
	if err := auth.SaveProfile(home, &auth.Profile{Gateway: w.gwURL, Issuer: w.okta.Issuer(), ClientID: "bridge-test-cli", InsecureStorage: true}); err != nil {
		w.t.Fatal(err)
	}
}

// post sends one raw JSON-RPC body to the gateway.
func (w *world) post(path, token, session string, body []byte) *http.Response {
	w.t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.gwURL+path, bytes.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if session != "" {
		req.Header.Set(bridge.HeaderSessionID, session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// fakeClock runs at wall-clock speed from an offset that tests advance, so
// holds and expiry happen when a test says, without sleeping.
type fakeClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// After fires once Now passes the deadline.
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	deadline := c.Now().Add(d)
	go func() {
		for {
			if now := c.Now(); !now.Before(deadline) {
				ch <- now
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return ch
}

// faultyStore is an audit store whose writes fail while fail is set, as a
// full or unwritable disk would make them.
type faultyStore struct {
	audit.Store
	fail atomic.Bool
}

func (s *faultyStore) Append(ctx context.Context, recs []audit.Record, cps []audit.Checkpoint) error {
	if s.fail.Load() {
		return errors.New("disk full (injected)")
	}
	return s.Store.Append(ctx, recs, cps)
}

// ensureAuditKey makes the audit signing key the test configurations name
// ({{DATA}}/audit-key.pem), unless it exists.
func ensureAuditKey(tb testing.TB, dir string) {
	tb.Helper()
	p := filepath.Join(dir, "audit-key.pem")
	if _, err := os.Stat(p); err == nil {
		return
	}
	if _, err := audit.WriteNewKey(p, rand.Reader); err != nil {
		tb.Fatal(err)
	}
}
