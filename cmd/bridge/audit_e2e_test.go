package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// TestAuditReplayTranscript: a session with an allowed call, a masked
// response, a denied call and an approved call, replayed from the audit log
// as a transcript that a golden file checks.
func TestAuditReplayTranscript(t *testing.T) {
	w := newWorldWith(t, approvalRules)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "hello"})))
	toolText(t, a.call("tools/call", toolCall("get_customers", map[string]any{"limit": 1})))
	toolText(t, a.call("tools/call", toolCall("delete_records", map[string]any{"table": "customers"})))
	ch, id := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	req := w.waitPending(t)
	if status, body := w.decide(t, "bob", req.ID, "approve", "ok for id 7", nil); status != http.StatusOK {
		t.Fatalf("approve: HTTP %d %s", status, body)
	}
	toolText(t, a.wait(ch, id))

	var sessionID string
	recs, err := audit.Query(context.Background(), w.audit.Store(), audit.Filter{Kind: audit.KindSessionStart})
	if err != nil || len(recs) != 1 {
		t.Fatalf("session start records: %v %v", recs, err)
	}
	sessionID = recs[0].Session
	session, err := audit.Session(context.Background(), w.audit.Store(), sessionID)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := audit.WriteTranscript(&b, session); err != nil {
		t.Fatal(err)
	}
	got := normalizeTranscript(b.String(), sessionID, req.ID)
	for _, secret := range []string{"4111 1111 1111 1111", "536-22-8191"} {
		if strings.Contains(got, secret) {
			t.Errorf("the audit log holds %s in the clear", secret)
		}
	}
	golden(t, filepath.Join("audit", "replay.golden"), got)

	rep, err := audit.Verify(context.Background(), w.audit.Store(), nil)
	if err != nil || !rep.OK() {
		t.Errorf("verify: %+v %v", rep, err)
	}
}

// normalizeTranscript replaces what differs between runs: times, latencies,
// the session and approval ids.
func normalizeTranscript(s, session, approval string) string {
	s = strings.ReplaceAll(s, session, "SESSION")
	s = strings.ReplaceAll(s, approval, "APPROVAL")
	s = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?`).ReplaceAllString(s, "TIME")
	s = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`).ReplaceAllString(s, "TIME")
	s = regexp.MustCompile(` in [0-9.]+(µs|ms|s)`).ReplaceAllString(s, " in N")
	s = regexp.MustCompile(`#\d+ +`).ReplaceAllString(s, "#N ")
	s = regexp.MustCompile(`\d+ records`).ReplaceAllString(s, "N records")
	// Argument digests are keyed per installation, so they differ per run.
	s = regexp.MustCompile(`hmac-sha256:[0-9a-f]{64}`).ReplaceAllString(s, "hmac-sha256:DIGEST")
	return s
}

// TestAuditStoreFailureFailsClosed: while the audit store cannot be written,
// calls are refused with a clear error and nothing reaches the upstream;
// once it can, calls work again and the chain still verifies.
func TestAuditStoreFailureFailsClosed(t *testing.T) {
	w := newWorld(t)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "one"}))); got != "one" {
		t.Fatalf("echo = %q", got)
	}
	w.auditFault.fail.Store(true)
	r := a.call("tools/call", toolCall("echo", map[string]any{"message": "unrecorded"}))
	if r.Error == nil || !strings.Contains(r.Error.Message, "could not write its audit record") {
		t.Fatalf("with the audit store failing: %+v %s", r.Error, r.Result)
	}
	if !strings.Contains(w.logs.String(), `echo called: \"one\"`) {
		t.Fatal("the demo upstream's call log is missing; the check below would prove nothing")
	}
	if strings.Contains(w.logs.String(), "unrecorded") && strings.Contains(w.logs.String(), `echo called: \"unrecorded\"`) {
		t.Error("a call that could not be recorded reached the upstream")
	}
	if !strings.Contains(w.logs.String(), "AUDIT WRITE FAILED") {
		t.Error("the failure was not loud in the gateway log")
	}
	w.auditFault.fail.Store(false)
	if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "two"}))); got != "two" {
		t.Fatalf("after recovery: %q", got)
	}
	rep, err := audit.Verify(context.Background(), w.audit.Store(), nil)
	if err != nil || !rep.OK() {
		t.Errorf("verify after the fault: %+v %v", rep, err)
	}
}

// TestGatewayKilledUnderLoad: `bridge serve` killed with SIGKILL while
// answering calls leaves an audit log that verifies, and every call that
// was answered has its response record.
//
// It runs at both audit.durability levels: os (no fsync) must survive a
// process crash as well as group does.
func TestGatewayKilledUnderLoad(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	for _, durability := range []string{"group", "os"} {
		t.Run(durability, func(t *testing.T) { gatewayKilledUnderLoad(t, durability) })
	}
}

func gatewayKilledUnderLoad(t *testing.T, durability string) {
	w := newWorld(t) // for the fake Okta; the gateway under test is a subprocess
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gateway.yaml")
	dbPath := filepath.Join(dir, "bridge.db")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
storage: {path: %q}
audit: {durability: %s, signing_key_file: %q, witness: {file: %q}}
identity: {issuer: %q, audience: api://bridge-test, client_id: bridge-test-cli}
servers:
  demo: {transport: stdio, command: %q, args: [demo-server]}
policy: {default: allow}
`, dbPath, durability, filepath.Join(dir, "audit-key.pem"), filepath.Join(dir, "audit-heads.jsonl"), w.okta.Issuer(), bridgeBin)
	ensureAuditKey(t, dir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := exec.Command(bridgeBin, "serve", "--config", cfgPath, "--listen", "127.0.0.1:0")
	var gwLog syncBuffer
	gw.Stderr = &gwLog
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Process.Kill(); _ = gw.Wait() })
	base := listeningURL(t, &gwLog, 0)

	tok := w.token("alice")
	type answered struct{ session, id string }
	var mu sync.Mutex
	var done []answered
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			sid := initSession(base, tok)
			if sid == "" {
				return
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf(`"c%d-%d"`, c, i)
				body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`, id)
				if ok := postAnswered(base, tok, sid, body); !ok {
					return
				}
				mu.Lock()
				done = append(done, answered{sid, id})
				mu.Unlock()
			}
		}(c)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(done)
		mu.Unlock()
		if n >= 200 || time.Now().After(deadline) {
			break
		}
	}
	if err := gw.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = gw.Wait()
	close(stop)
	wg.Wait()
	if len(done) == 0 {
		t.Fatalf("no call was answered; gateway log:\n%s", gwLog.String())
	}

	store, err := audit.OpenReader(dbPath, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rep, err := audit.Verify(context.Background(), store, nil)
	if err != nil || !rep.OK() {
		t.Fatalf("the log does not verify after SIGKILL: %+v %v", rep, err)
	}
	responses := map[answered]bool{}
	recs, err := audit.Query(context.Background(), store, audit.Filter{Kind: audit.KindResponse})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		responses[answered{r.Session, r.RequestID}] = true
	}
	missing := 0
	for _, d := range done {
		if !responses[d] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d answered calls have no response record", missing, len(done))
	}
	t.Logf("%d calls answered before SIGKILL; %d records verify", len(done), rep.Records)
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
	}
	t.Fatalf("%s never answered", url)
}

// initSession initializes a session and returns its id.
func initSession(base, tok string) string {
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp/demo", strings.NewReader(
		`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"load","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.Header.Get(bridge.HeaderSessionID)
}

// postAnswered posts a call and reports whether its response arrived.
func postAnswered(base, tok, sid, body string) bool {
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp/demo", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(bridge.HeaderSessionID, sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return err == nil && resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"result"`))
}
