package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// TestReliabilityKillRestartKeepsApprovals: `bridge serve` killed with
// SIGKILL under load, with approvals pending, and started again on the same
// file: the pending approvals are still there, one approved afterwards
// lets its identical call run, and the log verifies offline.
func TestReliabilityKillRestartKeepsApprovals(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	if testing.Short() {
		t.Skip("the reliability suite starts many processes")
	}
	w := newWorld(t) // for the fake Okta; the gateway under test is a subprocess
	dir := t.TempDir()
	cfgPath, dbPath := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "bridge.db")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
storage: {path: %q}
audit: {signing_key_file: %q, witness: {file: %q}}
identity: {issuer: %q, audience: api://bridge-test, client_id: bridge-test-cli}
servers:
  demo: {transport: stdio, command: %q, args: [demo-server]}
policy:
  default: allow
  rules:
    - name: deletes-need-review
      tools: [delete_records]
      action: approve
      approval: {approvers: [security-reviewers], min_approvals: 1, timeout: 15m, hold: 1s}
`, dbPath, filepath.Join(dir, "audit-key.pem"), filepath.Join(dir, "audit-heads.jsonl"), w.okta.Issuer(), bridgeBin)
	ensureAuditKey(t, dir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The gateway picks its own port (127.0.0.1:0) and the test reads it
	// from the "gateway listening" line: no port is chosen, closed and
	// hoped to be free.
	var base string
	var gwLog syncBuffer
	start := func() *exec.Cmd {
		seen := listenings(&gwLog)
		gw := exec.Command(bridgeBin, "serve", "--config", cfgPath, "--listen", "127.0.0.1:0")
		gw.Stderr = &gwLog
		if err := gw.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = gw.Process.Kill(); _ = gw.Wait() })
		base = listeningURL(t, &gwLog, seen)
		return gw
	}
	gw := start()
	tok := w.token("alice")
	call := func(sid, id, tool string, args map[string]any) string {
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": map[string]any{"name": tool, "arguments": args}})
		req, _ := http.NewRequest(http.MethodPost, base+"/mcp/demo", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	// Three calls held, then answered "pending" when their hold ends.
	sid := initSession(base, tok)
	const held = 3
	for i := 0; i < held; i++ {
		out := call(sid, fmt.Sprintf("held-%d", i), "delete_records", map[string]any{"table": fmt.Sprintf("t%d", i), "where": "id = 1"})
		if !strings.Contains(out, "waiting for human approval") {
			t.Fatalf("held call %d = %s", i, out)
		}
	}
	// Load while the gateway dies.
	stop := make(chan struct{})
	var answered atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			s := initSession(base, tok)
			for i := 0; s != ""; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if !postAnswered(base, tok, s, fmt.Sprintf(`{"jsonrpc":"2.0","id":"l%d-%d","method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`, c, i)) {
					return
				}
				answered.Add(1)
			}
		}(c)
	}
	waitFor(t, "calls answered under load", func() bool { return answered.Load() >= 40 })
	if err := gw.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = gw.Wait()
	close(stop)
	wg.Wait()

	gw = start()
	var list struct {
		Approvals []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"approvals"`
	}
	raw := w.apiAt(t, base, "bob", http.MethodGet, "/v1/approvals?state=pending", nil)
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		t.Fatalf("approvals list: %v: %s", err, raw)
	}
	if len(list.Approvals) != held {
		t.Fatalf("%d approvals pending after SIGKILL and restart, want %d: %s", len(list.Approvals), held, raw)
	}
	w.apiAt(t, base, "bob", http.MethodPost, "/v1/approvals/"+list.Approvals[0].ID+"/decision", map[string]any{"decision": "approve", "comment": "after restart"})
	// The identical call, in a new session, now runs: find which one.
	sid = initSession(base, tok)
	ran := 0
	for i := 0; i < held; i++ {
		out := call(sid, fmt.Sprintf("again-%d", i), "delete_records", map[string]any{"table": fmt.Sprintf("t%d", i), "where": "id = 1"})
		if strings.Contains(out, "deleted") {
			ran++
		}
	}
	if ran != 1 {
		t.Errorf("%d calls ran after one approval survived the restart, want 1", ran)
	}
	if err := gw.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = gw.Wait()
	if out, err := exec.Command(bridgeBin, "audit", "verify", "--db", dbPath).CombinedOutput(); err != nil {
		t.Errorf("bridge audit verify --db after two SIGKILLs: %v\n%s", err, out)
	} else {
		t.Logf("%s", bytes.TrimSpace(out))
	}
	if t.Failed() {
		t.Logf("gateway log:\n%s", gwLog.String())
	}
}

// apiAt calls a gateway API as a user and returns the body of a 200.
func (w *world) apiAt(t *testing.T, base, user, method, path string, body any) string {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Authorization", "Bearer "+w.token(user))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d %s", method, path, resp.StatusCode, b)
	}
	return string(b)
}
