package main

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
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// children counts this process's child processes (the gateway runs in the
// test, so its stdio upstreams are children). It skips where /proc is not.
func children(t *testing.T) int {
	t.Helper()
	return len(childPids(t))
}

// childPids lists this process's running child processes.
func childPids(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc to count child processes")
	}
	self := os.Getpid()
	var pids []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:]) // state, ppid, …
		if len(fields) > 1 && fields[0] != "Z" && fields[1] == strconv.Itoa(self) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// settleChildren waits until the child count is want.
func settleChildren(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for children(t) != want {
		if time.Now().After(deadline) {
			t.Fatalf("child processes: %d, want %d", children(t), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const e2eInit = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"limits","version":"1"}}}`

// rpcRefusal reads a JSON-RPC error body.
func rpcRefusal(t *testing.T, resp *http.Response) (string, string) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		ID    json.RawMessage `json:"id"`
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return string(e.ID), e.Error.Message
}

// TestEndToEndProcessLimits: stdio upstreams are bounded per user and in
// total, across sessions; the next one is refused clearly, audited once, and
// no process is left once the sessions end.
func TestEndToEndProcessLimits(t *testing.T) {
	base := children(t)
	w := newWorldWithExtra(t, "", "limits: {processes_per_user: 2, processes: 3}")
	alice, bob, carol := w.token("alice"), w.token("bob"), w.token("carol")
	var aliceSessions []string
	for range 2 {
		resp := w.post("/mcp/demo", alice, "", []byte(e2eInit))
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("alice initialize = %d", resp.StatusCode)
		}
		aliceSessions = append(aliceSessions, resp.Header.Get(bridge.HeaderSessionID))
	}
	settleChildren(t, base+2)
	for range 5 { // a client retrying in a loop
		resp := w.post("/mcp/demo", alice, "", []byte(e2eInit))
		id, msg := rpcRefusal(t, resp)
		if resp.StatusCode != http.StatusTooManyRequests || id != "1" || !strings.Contains(msg, "limits.processes_per_user") || !strings.Contains(msg, "2 running stdio upstream processes") {
			t.Fatalf("alice's third upstream = %d %s", resp.StatusCode, msg)
		}
	}
	// Nothing else is disturbed: alice's sessions answer, bob gets one.
	resp := w.post("/mcp/demo", alice, aliceSessions[0], []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`))
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("echo")) {
		t.Fatalf("alice's session after the refusals = %d %s", resp.StatusCode, b)
	}
	resp = w.post("/mcp/demo", bob, "", []byte(e2eInit))
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bob = %d", resp.StatusCode)
	}
	resp = w.post("/mcp/demo", carol, "", []byte(e2eInit))
	if _, msg := rpcRefusal(t, resp); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(msg, "limits.processes ") {
		t.Fatalf("carol with the gateway full = %d %s", resp.StatusCode, msg)
	}
	// Ending a session ends its process and frees its unit.
	req, _ := http.NewRequest(http.MethodDelete, w.gwURL+"/mcp/demo", nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	req.Header.Set(bridge.HeaderSessionID, aliceSessions[1])
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE = %v %v", resp, err)
	}
	settleChildren(t, base+2)
	resp = w.post("/mcp/demo", carol, "", []byte(e2eInit))
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("carol after a DELETE = %d", resp.StatusCode)
	}
	// Five refusals of alice, one of carol: one record each.
	recs, err := audit.Query(context.Background(), w.audit.Store(), audit.Filter{Kind: audit.KindDecision})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Identity.Subject+" "+r.Rule)
	}
	if want := "[00u-alice limits.processes_per_user 00u-carol limits.processes]"; fmt.Sprint(got) != want {
		t.Errorf("limit records = %v, want %s", got, want)
	}
	w.stop()
	settleChildren(t, base)
}

// statelessEcho is a 2026-07-28 tools/call.
func statelessEcho(id int) []byte {
	return []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"message":"s%d"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"limits","version":"1"}}}}`, id, id))
}

// TestEndToEndStatelessReusesProcesses: sequential 2026-07-28 requests are
// served by one pooled stdio process, not one process each.
func TestEndToEndStatelessReusesProcesses(t *testing.T) {
	base := children(t)
	w := newWorld(t)
	alice := w.token("alice")
	var first string
	for i := range 12 {
		resp := w.post("/mcp/demo", alice, "", statelessEcho(i))
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(fmt.Sprintf(`s%d`, i))) {
			t.Fatalf("stateless call %d = %d %s", i, resp.StatusCode, b)
		}
		pids := childPids(t)
		if n := len(pids) - base; n != 1 {
			t.Fatalf("after stateless call %d, %d upstream processes run, want 1", i, n)
		}
		if i == 0 {
			first = strings.Join(pids, ",")
		} else if got := strings.Join(pids, ","); got != first {
			t.Fatalf("stateless call %d ran in processes %s, the first in %s: not reused", i, got, first)
		}
	}
	w.stop()
	settleChildren(t, base)
}

// TestEndToEndJunkNotificationsAreSummarized: notifications the gateway
// does not act on are audited as size and digest: 24 of 4 MiB leave the
// database about as it was (they grew it by 128 MiB before).
func TestEndToEndJunkNotificationsAreSummarized(t *testing.T) {
	w := newWorldWith(t, "")
	alice := w.token("alice")
	resp := w.post("/mcp/demo", alice, "", []byte(e2eInit))
	io.Copy(io.Discard, resp.Body)
	sid := resp.Header.Get(bridge.HeaderSessionID)
	dbPath := w.data + "/bridge.db"
	before, err := os.Stat(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	junk := []byte(`{"jsonrpc":"2.0","method":"notifications/junk","params":{"pad":"` + strings.Repeat("x", 4<<20) + `"}}`)
	for range 24 {
		resp := w.post("/mcp/demo", alice, sid, junk)
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("notification = %d", resp.StatusCode)
		}
	}
	recs, err := audit.Query(context.Background(), w.audit.Store(), audit.Filter{Kind: audit.KindNotification})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Method != "notifications/junk" {
			continue
		}
		n++
		if len(r.Message) > 200 || !bytes.Contains(r.Message, []byte(`"bytes":`+strconv.Itoa(len(junk)))) || !bytes.Contains(r.Message, []byte(`"sha256":"`)) {
			t.Fatalf("notification record holds %d bytes: %.200s", len(r.Message), r.Message)
		}
	}
	if n != 24 {
		t.Errorf("%d notification records, want 24", n)
	}
	w.stop() // closes the database, so its size is final
	after, err := os.Stat(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if grew := after.Size() - before.Size(); grew > 8<<20 {
		t.Errorf("24 junk notifications of 4 MiB grew the database by %d bytes", grew)
	}
}

// TestEndToEndListenNeedsSecret: `bridge connect --listen` refuses requests
// without the secret it printed, and serves those with it (Streamable HTTP
// and the legacy HTTP+SSE transport, whose message endpoint carries it).
func TestEndToEndListenNeedsSecret(t *testing.T) {
	w := newWorld(t)
	cmd := exec.Command(bridgeBin, "connect", "demo", "--listen", "127.0.0.1:0", "--gateway", w.gwURL)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "BRIDGE_TOKEN=" + w.token("alice")}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("bridge connect stderr:\n%s", stderr.String())
		}
	})
	urls := regexp.MustCompile(`Streamable HTTP: (http://(\S+)/mcp\?token=(\S+))\n\s+HTTP\+SSE:\s+(\S+)`)
	var m []string
	deadline := time.Now().Add(30 * time.Second)
	for m = urls.FindStringSubmatch(stderr.String()); m == nil; m = urls.FindStringSubmatch(stderr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no URLs printed:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	mcpURL, addr, secret, sseURL := m[1], m[2], m[3], m[4]
	if strings.Count(stderr.String(), secret) != 2 {
		t.Errorf("the secret appears outside the two printed URLs:\n%s", stderr.String())
	}
	post := func(url, auth string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(e2eInit))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := post("http://"+addr+"/mcp", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the secret: %d", resp.StatusCode)
	}
	if resp := post("http://"+addr+"/mcp", "Bearer not-the-secret"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("with a wrong secret: %d", resp.StatusCode)
	}
	if resp := post(mcpURL, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("with the printed URL: %d", resp.StatusCode)
	}
	if resp := post("http://"+addr+"/mcp", "Bearer "+secret); resp.StatusCode != http.StatusOK {
		t.Fatalf("with the bearer secret: %d", resp.StatusCode)
	}
	// Legacy SSE: the endpoint event names a URL that carries the secret.
	req, _ := http.NewRequest(http.MethodGet, sseURL, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /sse = %v %v", resp, err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var endpoint string
	for endpoint == "" {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			endpoint = strings.TrimSpace(strings.TrimPrefix(line, "data: "))
		}
	}
	if !strings.Contains(endpoint, "token=") {
		t.Fatalf("endpoint %q carries no secret", endpoint)
	}
	if r := post("http://"+addr+endpoint, ""); r.StatusCode != http.StatusAccepted {
		t.Fatalf("POST to the SSE endpoint = %d", r.StatusCode)
	}
}
