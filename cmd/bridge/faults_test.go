package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/audit"
)

// faultyServer adds the fault upstream (this test binary) to the e2e
// configuration, with a short per-server timeout.
const faultyServer = `servers:
  faulty:
    transport: stdio
    command: {{TESTBIN}}
    timeout: 2s
    env: {BRIDGE_FAULT_UPSTREAM: "1"}
`

// TestReliabilityFaults injects one fault at a time into a running
// gateway and checks that the call it hits is answered clearly, nothing
// hangs, and other sessions carry on.
func TestReliabilityFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("the reliability suite starts many processes")
	}
	w := newWorldOf(t, &world{template: strings.Replace(e2eConfig, "servers:\n", faultyServer, 1), extra: reliabilityLimits})
	healthy := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	if err := healthy.initOK("init"); err != nil {
		t.Fatal(err)
	}
	echoOK := func(t *testing.T, a *agent, id string) {
		t.Helper()
		r, err := a.callOK(id, "tools/call", toolCall("echo", map[string]any{"message": id}), 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if s, e := resultText(r); e || s != id {
			t.Fatalf("echo %s = %q (error %v)", id, s, e)
		}
	}
	faulty := func(t *testing.T) *agent {
		a := w.startAgentFor("faulty", "BRIDGE_TOKEN="+w.token("alice"))
		if err := a.initOK("init"); err != nil {
			t.Fatal(err)
		}
		return a
	}

	t.Run("upstream crashes mid-call", func(t *testing.T) {
		a := faulty(t)
		r, err := a.callOK("crash", "tools/call", toolCall("crash", nil), 30*time.Second)
		if err != nil {
			t.Fatalf("the call the upstream crashed in was never answered: %v", err)
		}
		if s, e := resultText(r); !e {
			t.Errorf("the crashed call = %q, want an error", s)
		}
		// The next call is answered too: by a new upstream, or clearly refused.
		if _, err := a.callOK("after-crash", "tools/call", toolCall("echo", map[string]any{"message": "x"}), 30*time.Second); err != nil {
			t.Errorf("after the crash: %v", err)
		}
		echoOK(t, healthy, "healthy-after-crash")
	})

	t.Run("upstream never answers", func(t *testing.T) {
		a := faulty(t)
		r, err := a.callOK("hang", "tools/call", toolCall("hang", nil), 30*time.Second)
		if err != nil {
			t.Fatalf("a call the upstream never answers was not answered by the timeout: %v", err)
		}
		if s, _ := resultText(r); r.Error == nil || !strings.Contains(s, "servers.faulty.timeout") || !strings.Contains(s, "did not answer") {
			t.Errorf("the timed-out call = %q, want the timeout error naming servers.faulty.timeout", s)
		}
		echoOK(t, a, "same-session-after-timeout")
		waitLog(t, w, `"outcome":"error"`)
	})

	t.Run("upstream floods notifications", func(t *testing.T) {
		a := faulty(t)
		before := heapInUse()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // another session's calls go on meanwhile
			defer wg.Done()
			for i := 0; i < 20; i++ {
				id := fmt.Sprintf("during-flood-%d", i)
				r, err := healthy.callOK(id, "tools/call", toolCall("echo", map[string]any{"message": id}), 30*time.Second)
				if s, _ := resultText(r); err != nil || s != id {
					t.Errorf("echo during the flood: %q %v", s, err)
					return
				}
			}
		}()
		const count, size = 800, 4096 // 3.2 MB of notifications/message
		r, err := a.callOK("flood", "tools/call", toolCall("flood", map[string]any{"count": count, "size": size}), 60*time.Second)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if s, e := resultText(r); e || s != fmt.Sprintf("flooded %d", count) {
			t.Errorf("flood = %q", s)
		}
		if !settle(30*time.Second, func() bool { return len(a.notifications("notifications/message")) == count }) {
			t.Errorf("%d of %d notifications reached the agent", len(a.notifications("notifications/message")), count)
		}
		grown := int64(heapInUse()) - int64(before)
		// The test process holds the gateway and the agent's and recorder's
		// copies of every notification (about 2 x count x size), so this is
		// an upper bound of what the gateway kept.
		t.Logf("test process heap after a %d x %d B flood: %+d KiB (including the test's own two copies)", count, size, grown/1024)
		if grown > 32<<20 {
			t.Errorf("the gateway kept %d MiB after the flood", grown>>20)
		}
	})

	t.Run("audit store fails under load", func(t *testing.T) {
		agents := []*agent{healthy}
		for i := 0; i < 4; i++ {
			a := w.startAgent("BRIDGE_TOKEN=" + w.token("carol"))
			if err := a.initOK("init"); err != nil {
				t.Fatal(err)
			}
			agents = append(agents, a)
		}
		round := func(tag string) (ok, refused int) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			for i, a := range agents {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprintf("%s-%d", tag, i)
					r, err := a.callOK(id, "tools/call", toolCall("echo", map[string]any{"message": id}), 30*time.Second)
					mu.Lock()
					defer mu.Unlock()
					switch s, e := resultText(r); {
					case err != nil:
						t.Errorf("%s: %v", id, err)
					case !e && s == id:
						ok++
					case e && strings.Contains(s, "could not write its audit record"):
						refused++
					default:
						t.Errorf("%s = %q", id, s)
					}
				}()
			}
			wg.Wait()
			return ok, refused
		}
		w.auditFault.fail.Store(true)
		if ok, refused := round("disk-full"); ok != 0 || refused != len(agents) {
			t.Errorf("with the audit store failing: %d answered, %d refused; want all %d refused", ok, refused, len(agents))
		}
		w.auditFault.fail.Store(false)
		if ok, _ := round("recovered"); ok != len(agents) {
			t.Errorf("after recovery: %d of %d answered", ok, len(agents))
		}
		rep, err := audit.Verify(context.Background(), w.audit.Store(), nil)
		if err != nil || !rep.OK() {
			t.Errorf("verify after the fault: %+v %v", rep, err)
		}
	})

	t.Run("identity provider down and keys rotating", func(t *testing.T) {
		init := []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"jwks","version":"1"}}}`)
		status := func(tok string) int {
			resp := w.post("/mcp/demo", tok, "", init)
			return resp.StatusCode
		}
		old := w.token("alice")
		if got := status(old); got != http.StatusOK {
			t.Fatalf("before the outage: HTTP %d", got)
		}
		w.oktaDown.Store(true)
		if got := status(w.token("alice")); got != http.StatusOK { // same key, cached
			t.Errorf("a token under the cached key during the outage: HTTP %d", got)
		}
		if err := w.okta.RotateKeys(); err != nil {
			t.Fatal(err)
		}
		rotated := w.token("alice")
		resp := w.post("/mcp/demo", rotated, "", init)
		if resp.StatusCode == http.StatusOK {
			t.Errorf("a token under a key the gateway cannot fetch was accepted")
		}
		echoOK(t, healthy, "healthy-during-outage")
		w.oktaDown.Store(false)
		w.clock.Advance(10 * time.Minute) // past the JWKS refetch interval
		if !settle(20*time.Second, func() bool { return status(rotated) == http.StatusOK }) {
			t.Errorf("a token under the rotated key is still refused after the provider came back")
		}
	})
}
