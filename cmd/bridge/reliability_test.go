package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/queue"
	"github.com/seed-3f9f6f16/bridge/audit"
)

// reliabilityRules hold deletes with a filter for a security reviewer; a
// delete without one is denied by the default no-mass-delete rule.
const reliabilityRules = `
    - name: deletes-need-review
      tools: [delete_records]
      action: approve
      approval: {approvers: [security-reviewers], min_approvals: 1, timeout: 15m, hold: 50s}`

// reliabilityLimits are the gateway limits of the suite's configuration:
// generous, so the suite measures the gateway and not its caps.
const reliabilityLimits = `limits: {sessions_per_user: 512, sessions: 1024, processes_per_user: 512, processes: 1024, streams_per_user: 4096, streams: 8192}`

// reliabilitySessions is N: 50 in CI, 200 with BRIDGE_RELIABILITY_FULL=1.
func reliabilitySessions() int {
	if os.Getenv("BRIDGE_RELIABILITY_FULL") == "1" {
		return 200
	}
	return 50
}

// TestReliabilityConcurrentSessions runs N agent sessions, each through
// its own `bridge connect` process and its own stdio upstream, with mixed
// allowed, denied, masked and approved calls at once. Afterwards every
// answered call has its audit records, `bridge audit verify --db` passes,
// and the goroutines and processes are back to their baseline. It reports
// the memory each session and each held call costs.
func TestReliabilityConcurrentSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("the reliability suite starts many processes")
	}
	n := reliabilitySessions()
	held := n / 5
	w := newWorldWithExtra(t, reliabilityRules, reliabilityLimits)
	baseProcs := len(descendants())
	baseGoroutines, _ := goroutines()
	heap0 := heapInUse()

	users := []string{"alice", "carol"}
	agents := make([]*agent, n)
	for i := range agents {
		agents[i] = w.startAgent("BRIDGE_TOKEN=" + w.token(users[i%len(users)]))
	}
	errs := make(chan error, 10*n)
	var answeredMu sync.Mutex
	var answered []string // JSON ids of every answered call
	run := func(each func(i int, a *agent) error) {
		var wg sync.WaitGroup
		for i, a := range agents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := each(i, a); err != nil {
					errs <- fmt.Errorf("session %d: %w", i, err)
				}
			}()
		}
		wg.Wait()
	}
	note := func(id string) {
		answeredMu.Lock()
		answered = append(answered, `"`+id+`"`)
		answeredMu.Unlock()
	}
	failed := func() bool {
		select {
		case err := <-errs:
			t.Error(err)
			for len(errs) > 0 {
				t.Error(<-errs)
			}
			return true
		default:
			return false
		}
	}

	run(func(i int, a *agent) error { return a.initOK(fmt.Sprintf("s%d-init", i)) })
	if failed() {
		t.FailNow()
	}
	heap1 := heapInUse()
	procs := descendants()
	connectKiB, connects := rssOf(procs, " connect demo")
	upKiB, ups := rssOf(procs, " demo-server")

	// Mixed calls, all sessions at once.
	run(func(i int, a *agent) error {
		calls := []struct {
			name  string
			args  map[string]any
			check func(text string, isErr bool) error
		}{
			{"echo", map[string]any{"message": fmt.Sprintf("hello %d", i)}, func(s string, e bool) error {
				if e || s != fmt.Sprintf("hello %d", i) {
					return fmt.Errorf("echo = %q", s)
				}
				return nil
			}},
			{"delete_records", map[string]any{"table": "t"}, func(s string, e bool) error {
				if !e || !strings.Contains(s, "no-mass-delete") {
					return fmt.Errorf("a delete without a filter was not denied: %q", s)
				}
				return nil
			}},
			{"get_customers", nil, func(s string, e bool) error {
				if e || strings.Contains(s, "4111 1111 1111 1111") || !strings.Contains(s, "Ada") {
					return fmt.Errorf("get_customers was not masked: %q", s)
				}
				return nil
			}},
		}
		for k, c := range calls {
			id := fmt.Sprintf("s%d-c%d", i, k)
			r, err := a.callOK(id, "tools/call", toolCall(c.name, c.args), 60*time.Second)
			if err != nil {
				return err
			}
			note(id)
			if err := c.check(resultText(r)); err != nil {
				return err
			}
		}
		return nil
	})
	if failed() {
		t.FailNow()
	}

	// Held calls: one session in five asks for a reviewed delete; all wait
	// at once, then a reviewer approves each.
	heap2 := heapInUse()
	type pendingCall struct {
		a  *agent
		id string
		ch chan []byte
	}
	var wg sync.WaitGroup
	for i := 0; i < held; i++ {
		a, id := agents[i*5], fmt.Sprintf("s%d-held", i*5)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := a.callOK(id, "tools/call", toolCall("delete_records", map[string]any{"table": "held", "where": "id = " + id}), 120*time.Second)
			if err != nil {
				errs <- err
				return
			}
			note(id)
			if s, e := resultText(r); e || !strings.Contains(s, "deleted") {
				errs <- fmt.Errorf("approved call %s = %q", id, s)
			}
		}()
	}
	if !settle(60*time.Second, func() bool { return w.pendingCount() == held }) {
		t.Fatalf("%d approvals pending, want %d", w.pendingCount(), held)
	}
	heap3 := heapInUse()
	for _, req := range w.pendingList(t) {
		if status, body := w.decide(t, "bob", req, "approve", "reliability", nil); status != http.StatusOK {
			t.Errorf("approve %s: HTTP %d %s", req, status, body)
		}
	}
	wg.Wait()
	if failed() {
		t.FailNow()
	}

	// Every answered call has its request record and its answer
	// (a response, or the decision that answered in its place).
	recs, err := audit.Query(context.Background(), w.audit.Store(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]map[audit.Kind]int{}
	for _, r := range recs {
		if kinds[r.RequestID] == nil {
			kinds[r.RequestID] = map[audit.Kind]int{}
		}
		kinds[r.RequestID][r.Kind]++
	}
	for _, id := range answered {
		k := kinds[id]
		if k[audit.KindRequest] != 1 || k[audit.KindResponse]+k[audit.KindDecision] == 0 {
			t.Errorf("call %s has records %v, want one request and its answer", id, k)
		}
	}
	if want := 3*n + held; len(answered) != want {
		t.Errorf("%d calls answered, want %d", len(answered), want)
	}

	// Sessions end: every process and goroutine they started goes away.
	for _, a := range agents {
		a.stdin.Close()
	}
	for _, a := range agents {
		_ = a.cmd.Wait()
	}
	http.DefaultClient.CloseIdleConnections()
	if !settle(30*time.Second, func() bool { return len(descendants()) <= baseProcs }) {
		for _, p := range descendants() {
			t.Logf("left running: %d %s", p.pid, p.cmdline)
		}
		t.Errorf("%d processes after the sessions ended, %d before", len(descendants()), baseProcs)
	}
	if !settle(30*time.Second, func() bool { g, _ := goroutines(); return g <= baseGoroutines+2 }) {
		g, stacks := goroutines()
		t.Errorf("%d goroutines after the sessions ended, %d before:\n%s", g, baseGoroutines, stacks)
	}

	// The log verifies offline, with the CLI an auditor runs.
	w.stop()
	db := filepath.Join(w.data, "bridge.db")
	out, err := exec.Command(bridgeBin, "audit", "verify", "--db", db).CombinedOutput()
	if err != nil {
		t.Errorf("bridge audit verify --db: %v\n%s", err, out)
	}

	perSession := float64(int64(heap1)-int64(heap0)) / float64(n) / 1024
	perHeld := float64(int64(heap3)-int64(heap2)) / float64(held) / 1024
	t.Logf("N=%d sessions, %d held calls, %d calls answered, %d audit records", n, held, len(answered), len(recs))
	t.Logf("gateway heap per session: %.0f KiB; per held call: %.1f KiB", perSession, perHeld)
	if connects > 0 && ups > 0 {
		t.Logf("RSS per bridge connect: %d KiB (%d processes); per stdio upstream (demo-server): %d KiB (%d processes)",
			connectKiB/connects, connects, upKiB/ups, ups)
	}
	t.Logf("verify: %s", strings.TrimSpace(string(out)))
}

// pendingList is the ids of the pending approval requests.
func (w *world) pendingList(t *testing.T) []string {
	t.Helper()
	rs, err := w.queue.List(context.Background(), queue.Filter{States: []queue.State{queue.StatePending}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}
