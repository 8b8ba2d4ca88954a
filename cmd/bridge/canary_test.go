package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/bridge/demoserver"
)

// canaryConfig puts a canary secret in every credential a gateway
// configuration can hold: stdio env and args from ${env:} and ${file:}, an
// http upstream's headers and URL (userinfo and query token), an sse
// upstream and an http upstream that cannot be reached (so URL errors are
// logged), a Slack webhook URL, a webhook URL and its signing secret, and
// a webhook that cannot be reached.
const canaryConfig = `
listen: 127.0.0.1:0
storage: {path: "{{DATA}}/bridge.db"}
audit: {signing_key_file: "{{DATA}}/audit-key.pem", witness: {file: "{{DATA}}/audit-heads.jsonl"}, auditors: [security-reviewers]}
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
    env: {DEMO_SECRET: "${env:CANARY_DEMO_ENV}", BRIDGE_DEMO_LOG_CALLS: "1", BRIDGE_DEMO_LEAK: "1"}
  faulty:
    transport: stdio
    command: {{TESTBIN}}
    args: ["--token=${env:CANARY_ARG}", "--key=${file:{{DATA}}/canary-arg}"]
    env: {BRIDGE_FAULT_UPSTREAM: "1", API_TOKEN: "${env:CANARY_STDIO_ENV}", FILE_TOKEN: "${file:{{DATA}}/canary-env}"}
  remote:
    transport: http
    url: "http://svc:${env:CANARY_URL_PASSWORD}@{{HTTPUP}}/mcp?token=${env:CANARY_URL_QUERY}"
    headers: {Authorization: "Bearer ${env:CANARY_HEADER}", X-Api-Key: "${file:{{DATA}}/canary-header}"}
  broken:
    transport: http
    url: "http://svc:${env:CANARY_BROKEN_PASSWORD}@{{DEAD}}/mcp/${env:CANARY_BROKEN_PATH}?token=${env:CANARY_BROKEN_QUERY}"
    headers: {Authorization: "Bearer ${env:CANARY_BROKEN_HEADER}"}
  brokensse:
    transport: sse
    url: "http://svc:${env:CANARY_SSE_PASSWORD}@{{DEAD}}/sse?token=${env:CANARY_SSE_QUERY}"
    headers: {Authorization: "Bearer ${env:CANARY_SSE_HEADER}"}
policy:
  default: allow
  rules:
    - name: no-mass-delete
      tools: [delete_records]
      when: '!has(args.where) || args.where == ""'
      action: deny
      reason: Deleting every record is not allowed from agents.
    - name: deletes-need-review
      tools: [delete_records]
      action: approve
      approval: {approvers: [security-reviewers], min_approvals: 1, timeout: 15m, hold: 50s}
{{RULES}}
{{EXTRA}}
notify:
  - {type: slack, webhook_url: "http://{{HOOKS}}/slack/${env:CANARY_SLACK}"}
  - {type: webhook, url: "http://{{HOOKS}}/hook?k=${env:CANARY_HOOK_URL}", secret: "${env:CANARY_HOOK_SECRET}"}
  - {type: webhook, url: "http://svc:${env:CANARY_DEAD_HOOK_PASSWORD}@{{DEAD}}/hook?k=${env:CANARY_DEAD_HOOK}", secret: "${env:CANARY_DEAD_HOOK_SECRET}"}
`

// canaries are the distinctive secrets of one canary run, by field. Each
// is CANARY-<run>-<field>; the run's random part alone is what the scan
// looks for, so a secret cut short or mangled is found too.
type canaries struct {
	run    string
	values map[string]string
}

func newCanaries(t *testing.T) *canaries {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	c := &canaries{run: "Cz" + hex.EncodeToString(b), values: map[string]string{}}
	for _, f := range []string{"DEMO_ENV", "ARG", "STDIO_ENV", "URL_PASSWORD", "URL_QUERY", "HEADER",
		"BROKEN_PASSWORD", "BROKEN_PATH", "BROKEN_QUERY", "BROKEN_HEADER", "SSE_PASSWORD", "SSE_QUERY", "SSE_HEADER",
		"SLACK", "HOOK_URL", "HOOK_SECRET", "DEAD_HOOK", "DEAD_HOOK_PASSWORD", "DEAD_HOOK_SECRET"} {
		c.values["CANARY_"+f] = c.value(f)
	}
	return c
}

func (c *canaries) value(field string) string {
	return "CANARY-" + c.run + "-" + strings.ReplaceAll(strings.ToLower(field), "_", "")
}

// forms are the spellings of the run's secrets a leak could take: plain,
// and base64 of a canary as it starts (basic auth of userinfo).
func (c *canaries) forms() []string {
	out := []string{c.run}
	for _, v := range c.values {
		out = append(out, base64.StdEncoding.EncodeToString([]byte("svc:" + v))[:16])
	}
	return out
}

// scan reports every place a canary appears in text.
func (c *canaries) scan(t *testing.T, where, text string) {
	t.Helper()
	forms := c.forms()
	for n, line := range strings.Split(text, "\n") {
		for _, f := range forms {
			if i := strings.Index(line, f); i >= 0 {
				lo, hi := max(0, i-300), min(len(line), i+100)
				t.Errorf("a canary secret reached %s (line %d): …%s…", where, n+1, line[lo:hi])
				break
			}
		}
	}
}

// hookSink receives the Slack and webhook deliveries and checks the
// secrets in their URLs arrived, so the test proves they were used.
type hookSink struct {
	mu    sync.Mutex
	paths []string
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h.mu.Lock()
	h.paths = append(h.paths, r.URL.String())
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (h *hookSink) got(substr string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.paths {
		if strings.Contains(p, substr) {
			return true
		}
	}
	return false
}

// TestCanarySecretsNeverLeak runs the whole end-to-end path with a canary
// in every upstream credential, then scans every gateway log line, every
// `bridge connect` stderr line, every audit record (through the audit API
// and in the bbolt file), every response and error, and the output of
// `bridge policy check` and `bridge audit verify`: no canary anywhere.
func TestCanarySecretsNeverLeak(t *testing.T) {
	c := newCanaries(t)
	w := &world{template: canaryConfig, envValues: c.values, data: t.TempDir(), extra: reliabilityLimits}
	for name, field := range map[string]string{"canary-arg": "ARG_FILE", "canary-env": "ENV_FILE", "canary-header": "HEADER_FILE"} {
		c.values["CANARY_"+field] = c.value(field)
		if err := os.WriteFile(filepath.Join(w.data, name), []byte(c.value(field)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// The http upstream: the demo server over Streamable HTTP, refusing
	// any request that lacks its credentials.
	wantAuth := "Bearer " + c.values["CANARY_HEADER"]
	mcpSrv := server.NewStreamableHTTPServer(demoserver.New(demoserver.Options{}))
	var upMu sync.Mutex
	upCalls := 0
	up := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != wantAuth || r.Header.Get("X-Api-Key") != c.values["CANARY_HEADER_FILE"] ||
			r.URL.Query().Get("token") != c.values["CANARY_URL_QUERY"] {
			http.Error(rw, "bad credentials", http.StatusUnauthorized)
			return
		}
		upMu.Lock()
		upCalls++
		upMu.Unlock()
		mcpSrv.ServeHTTP(rw, r)
	}))
	t.Cleanup(up.Close)
	hooks := &hookSink{}
	hookSrv := httptest.NewServer(hooks)
	t.Cleanup(hookSrv.Close)
	dead := deadAddr(t)
	w.template = strings.NewReplacer("{{HTTPUP}}", strings.TrimPrefix(up.URL, "http://"), "{{HOOKS}}", strings.TrimPrefix(hookSrv.URL, "http://"),
		"{{DEAD}}", dead).Replace(canaryConfig)
	w = newWorldOf(t, w)

	var outputs []string // responses and errors the agents saw
	var agents []*agent
	agentFor := func(server string) *agent {
		a := w.startAgentFor(server, "BRIDGE_TOKEN="+w.token("alice"))
		agents = append(agents, a)
		return a
	}

	// demo: allowed, denied, masked and held-then-approved calls.
	a := agentFor("demo")
	a.initialize("2025-11-25")
	if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "allowed"}))); got != "allowed" {
		t.Errorf("echo = %q", got)
	}
	if got := toolText(t, a.call("tools/call", toolCall("delete_records", map[string]any{"table": "t"}))); !strings.Contains(got, "no-mass-delete") {
		t.Errorf("denied call = %q", got)
	}
	if got := toolText(t, a.call("tools/call", toolCall("get_customers", nil))); strings.Contains(got, "4111 1111 1111 1111") {
		t.Errorf("get_customers was not masked: %q", got)
	}
	ch, id := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	req := w.waitPending(t)
	if status, body := w.decide(t, "bob", req.ID, "approve", "fine", nil); status != http.StatusOK {
		t.Fatalf("approve: HTTP %d %s", status, body)
	}
	if got := toolText(t, a.wait(ch, id)); !strings.Contains(got, "deleted") {
		t.Errorf("approved call = %q", got)
	}

	// faulty: a stdio upstream that prints its env and args on stderr.
	f := agentFor("faulty")
	f.initialize("2025-11-25")
	if got := toolText(t, f.call("tools/call", toolCall("echo", map[string]any{"message": "faulty ok"}))); got != "faulty ok" {
		t.Errorf("faulty echo = %q", got)
	}
	waitLog(t, w, "fault upstream env: API_TOKEN=") // its stderr reached the log, redacted or not

	// remote: the http upstream with header, userinfo and query credentials.
	r := agentFor("remote")
	r.initialize("2025-11-25")
	if got := toolText(t, r.call("tools/call", toolCall("echo", map[string]any{"message": "remote ok"}))); got != "remote ok" {
		t.Errorf("remote echo = %q", got)
	}

	// broken and brokensse: upstreams that cannot be reached, so the
	// errors that name URLs are logged and answered.
	for _, name := range []string{"broken", "brokensse"} {
		b := agentFor(name)
		res := b.call("initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "canary", "version": "1"}})
		if res.Error == nil {
			t.Errorf("%s: initialize against an unreachable upstream succeeded", name)
		}
		res = b.call("tools/call", toolCall("echo", map[string]any{"message": "x"}))
		if res.Error == nil {
			t.Errorf("%s: a call to an unreachable upstream succeeded", name)
		}
	}

	// reload, then one more call on each working upstream.
	w.reloads <- struct{}{}
	waitLog(t, w, "configuration reloaded")
	if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "after reload"}))); got != "after reload" {
		t.Errorf("echo after reload = %q", got)
	}
	if got := toolText(t, r.call("tools/call", toolCall("echo", map[string]any{"message": "remote again"}))); got != "remote again" {
		t.Errorf("remote echo after reload = %q", got)
	}

	// The credentials were really used: the upstream accepted them and the
	// notification receivers got the deliveries at their secret URLs.
	waitFor(t, "the slack and webhook deliveries", func() bool {
		return hooks.got(c.values["CANARY_SLACK"]) && hooks.got(c.values["CANARY_HOOK_URL"])
	})
	waitLog(t, w, "notification failed") // the unreachable webhook
	upMu.Lock()
	if upCalls == 0 {
		t.Error("the http upstream never accepted a request")
	}
	upMu.Unlock()

	// The audit log through the API, as an auditor reads it.
	export := w.getAPI(t, "bob", "/v1/audit/export?format=jsonl")
	if !strings.Contains(export, "delete_records") {
		t.Errorf("the audit export lacks the calls: %.300s", export)
	}
	c.scan(t, "the audit export", export)
	recs, err := audit.Query(context.Background(), w.audit.Store(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 10 {
		t.Errorf("only %d audit records", len(recs))
	}
	for _, rec := range recs {
		b, _ := json.Marshal(rec)
		c.scan(t, fmt.Sprintf("audit record %d", rec.Seq), string(b))
	}

	for _, ag := range agents {
		ag.mu.Lock()
		for _, line := range ag.raw {
			outputs = append(outputs, string(line))
		}
		ag.mu.Unlock()
	}
	w.stop()
	for _, ag := range agents {
		ag.stdin.Close()
	}
	for i, ag := range agents {
		_ = ag.cmd.Wait()
		c.scan(t, fmt.Sprintf("bridge connect %d stderr", i), ag.stderr.String())
	}
	c.scan(t, "the gateway log", w.logs.String())
	for i, o := range outputs {
		c.scan(t, fmt.Sprintf("agent output %d", i), o)
	}
	// The bbolt file itself, every byte of it.
	db, err := os.ReadFile(filepath.Join(w.data, "bridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	c.scan(t, "the bbolt file", string(db))

	// The CLI that reads the configuration and the log.
	cfgPath := filepath.Join(w.data, "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.NewReplacer("{{ISSUER}}", w.okta.Issuer(), "{{BIN}}", bridgeBin, "{{TESTBIN}}", testBin,
		"{{RULES}}", "", "{{EXTRA}}", w.extra, "{{DATA}}", w.data).Replace(w.template)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range c.values {
		env = append(env, k+"="+v)
	}
	for _, args := range [][]string{{"policy", "check", "--config", cfgPath}, {"audit", "verify", "--db", filepath.Join(w.data, "bridge.db")}} {
		cmd := exec.Command(bridgeBin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("bridge %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		c.scan(t, "bridge "+strings.Join(args, " "), string(out))
	}
	if t.Failed() {
		t.Logf("canary run %s", c.run)
	}
}

// deadAddr is a loopback address where nothing listens (port 1, tcpmux,
// which no test machine serves), so every dial is refused at once.
func deadAddr(t *testing.T) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:1", time.Second)
	if err == nil {
		conn.Close()
		t.Skip("something listens on 127.0.0.1:1; the unreachable-upstream check needs it free")
	}
	return "127.0.0.1:1"
}

// getAPI reads a gateway API path as a user.
func (w *world) getAPI(t *testing.T, user, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.gwURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+w.token(user))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// waitFor polls cond until it holds, for at most 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
