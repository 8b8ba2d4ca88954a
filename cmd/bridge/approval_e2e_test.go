package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/queue"
	"github.com/seed-3f9f6f16/bridge/audit"
)

// approvalRules hold delete_records with a filter for security-reviewers.
const approvalRules = `
    - name: deletes-need-review
      tools: [delete_records]
      when: 'args.table != "audit"'
      action: approve
      approval: {approvers: [security-reviewers], min_approvals: 1, timeout: 15m, hold: 50s}
    - name: audit-deletes-need-two
      tools: [delete_records]
      action: approve
      approval: {approvers: [security-reviewers], min_approvals: 2, timeout: 15m, hold: 50s}`

func deleteArgs(table string) map[string]any {
	return map[string]any{"table": table, "where": "id = 7"}
}

// waitHoldEnd advances the clock until the held call answers: the hold's
// timer may be armed just after the request shows as pending.
func (a *agent) waitHoldEnd(w *world, ch chan json.RawMessage, id int) rpcResponse {
	a.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		w.clock.Advance(51 * time.Second)
		select {
		case line := <-ch:
			var r rpcResponse
			if err := json.Unmarshal(line, &r); err != nil {
				a.t.Fatal(err)
			}
			return r
		case <-time.After(50 * time.Millisecond):
		}
	}
	a.t.Fatalf("the hold of request %d never ended", id)
	return rpcResponse{}
}

// waitPending waits for the newest pending approval request.
func (w *world) waitPending(t *testing.T) *queue.Request {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		rs, err := w.queue.List(context.Background(), queue.Filter{States: []queue.State{queue.StatePending}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) > 0 {
			return rs[len(rs)-1]
		}
	}
	t.Fatal("no pending approval request")
	return nil
}

// decide posts a reviewer's decision through the gateway's reviewer API.
func (w *world) decide(t *testing.T, user, id, decision, comment string, edited any) (int, string) {
	t.Helper()
	body := map[string]any{"decision": decision, "comment": comment}
	if edited != nil {
		body["edited_args"] = edited
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, w.gwURL+"/v1/approvals/"+id+"/decision", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+w.token(user))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// upstreamCalls counts delete_records calls that reached the upstream.
func (w *world) upstreamCalls(substr string) int {
	w.seen.mu.Lock()
	defer w.seen.mu.Unlock()
	n := 0
	for _, m := range w.seen.msgs {
		if strings.HasPrefix(m, "client→upstream request tools/call") && strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

func TestApprovalHeldThenApprovedBySecondUser(t *testing.T) {
	w := newWorldWith(t, approvalRules)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	p := toolCall("delete_records", deleteArgs("customers"))
	p["_meta"] = map[string]any{"progressToken": "held-1"}
	ch, id := a.start("tools/call", p)
	req := w.waitPending(t)
	if req.Requester.Email != "alice@example.com" || req.Tool != "delete_records" || req.Rule != "deletes-need-review" {
		t.Fatalf("approval request = %+v", req)
	}
	note := a.waitNotification("notifications/message")
	if !bytes.Contains(note, []byte(req.ID)) || !bytes.Contains(note, []byte("bridge approvals approve")) {
		t.Errorf("the held call's log message does not name the approval: %s", note)
	}
	w.clock.Advance(11 * time.Second) // a progress tick
	a.waitNotification("notifications/progress")
	if w.upstreamCalls("delete_records") != 0 {
		t.Fatal("a held call reached the upstream")
	}

	// Separation of duties: the requester cannot approve, nor can someone
	// outside the approver groups.
	if status, body := w.decide(t, "alice", req.ID, "approve", "me", nil); status != http.StatusForbidden {
		t.Errorf("self-approval: HTTP %d %s", status, body)
	}
	if status, body := w.decide(t, "dave", req.ID, "approve", "", nil); status != http.StatusForbidden && status != http.StatusNotFound {
		t.Errorf("approval by a non-reviewer: HTTP %d %s", status, body)
	}
	if status, body := w.decide(t, "bob", req.ID, "approve", "looks fine", nil); status != http.StatusOK {
		t.Fatalf("bob approves: HTTP %d %s", status, body)
	}
	if got := toolText(t, a.wait(ch, id)); !strings.Contains(got, "deleted all records from customers") {
		t.Errorf("approved call = %q", got)
	}
	if n := w.upstreamCalls("delete_records"); n != 1 {
		t.Errorf("the approved call reached the upstream %d times", n)
	}
	// A decision on a decided request is refused.
	if status, _ := w.decide(t, "carol", req.ID, "deny", "", nil); status != http.StatusConflict {
		t.Errorf("decision on a decided request: HTTP %d", status)
	}
	// The audit log holds the approval's story.
	recs, err := audit.Query(context.Background(), w.audit.Store(), audit.Filter{Tool: "delete_records"})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[audit.Kind]bool{}
	for _, r := range recs {
		kinds[r.Kind] = true
	}
	for _, k := range []audit.Kind{audit.KindApprovalCreated, audit.KindApprovalExecuted, audit.KindRequest, audit.KindResponse} {
		if !kinds[k] {
			t.Errorf("no %s record for the approved call", k)
		}
	}
}

func TestApprovalEditedArguments(t *testing.T) {
	w := newWorldWith(t, approvalRules)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	ch, id := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	req := w.waitPending(t)
	edited := map[string]any{"table": "customers", "where": "id = 7 AND archived"}
	if status, body := w.decide(t, "bob", req.ID, "approve", "narrowed", edited); status != http.StatusOK {
		t.Fatalf("approve with edits: HTTP %d %s", status, body)
	}
	got := toolText(t, a.wait(ch, id))
	if !strings.Contains(got, "bob@example.com changed the arguments") || !strings.Contains(got, "AND archived") {
		t.Errorf("result does not tell the requester about the edit: %q", got)
	}
	if w.upstreamCalls(`id = 7 AND archived`) != 1 || w.upstreamCalls(`"where":"id = 7"}`) != 0 {
		t.Error("the upstream did not run exactly the edited call")
	}
}

func TestApprovalDeniedByReviewer(t *testing.T) {
	w := newWorldWith(t, approvalRules)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	ch, id := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	req := w.waitPending(t)
	if status, body := w.decide(t, "bob", req.ID, "deny", "not during the freeze", nil); status != http.StatusOK {
		t.Fatalf("deny: HTTP %d %s", status, body)
	}
	r := a.wait(ch, id)
	got := toolText(t, r)
	if !strings.Contains(string(r.Result), `"isError":true`) || !strings.Contains(got, "bob@example.com denied") || !strings.Contains(got, "not during the freeze") {
		t.Errorf("denied call = %s", r.Result)
	}
	if w.upstreamCalls("delete_records") != 0 {
		t.Error("a denied call reached the upstream")
	}
}

// TestApprovalHoldEndsThenRetryRunsOnce: after the hold the agent is told
// the call is pending; once approved, the identical call runs exactly once,
// and a further identical call needs a new approval.
func TestApprovalHoldEndsThenRetryRunsOnce(t *testing.T) {
	w := newWorldWith(t, approvalRules)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	ch, id := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	req := w.waitPending(t)
	got := toolText(t, a.waitHoldEnd(w, ch, id))
	if !strings.Contains(got, "waiting for human approval (request "+req.ID) || !strings.Contains(got, "Call the tool again") {
		t.Fatalf("after the hold: %q", got)
	}
	if status, body := w.decide(t, "bob", req.ID, "approve", "", nil); status != http.StatusOK {
		t.Fatalf("approve: HTTP %d %s", status, body)
	}
	if got := toolText(t, a.call("tools/call", toolCall("delete_records", deleteArgs("customers")))); !strings.Contains(got, "deleted all records") {
		t.Fatalf("retry after approval = %q", got)
	}
	// The approval is spent: the same call again is held anew.
	ch, id = a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	again := w.waitPending(t)
	if again.ID == req.ID {
		t.Fatal("a spent approval was reused")
	}
	a.waitHoldEnd(w, ch, id)
	if n := w.upstreamCalls("delete_records"); n != 1 {
		t.Errorf("the upstream ran the call %d times, want exactly 1", n)
	}
}

func TestApprovalExpires(t *testing.T) {
	w := newWorldWith(t, approvalRules)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	ch, id := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	req := w.waitPending(t)
	a.waitHoldEnd(w, ch, id)
	w.clock.Advance(15 * time.Minute)
	if n, err := w.queue.ExpireDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v", n, err)
	}
	if status, _ := w.decide(t, "bob", req.ID, "approve", "", nil); status != http.StatusConflict {
		t.Errorf("approving an expired request: HTTP %d", status)
	}
	got := toolText(t, a.call("tools/call", toolCall("delete_records", deleteArgs("customers"))))
	if !strings.Contains(got, "approval "+req.ID+" expired") {
		t.Errorf("the next identical call was not told of the expiry: %q", got)
	}
	if w.upstreamCalls("delete_records") != 0 {
		t.Error("an expired approval ran")
	}
}

func TestApprovalCancelledByClient(t *testing.T) {
	w := newWorldWith(t, approvalRules)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	_, id := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	req := w.waitPending(t)
	a.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": map[string]any{"requestId": id}})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r, err := w.queue.Get(context.Background(), req.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == queue.StateCancelled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request state = %s, want cancelled", r.State)
		}
	}
}

func TestApprovalTwoApproversRequired(t *testing.T) {
	w := newWorldWith(t, approvalRules)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	ch, id := a.start("tools/call", toolCall("delete_records", deleteArgs("audit")))
	req := w.waitPending(t)
	if req.MinApprovals != 2 {
		t.Fatalf("min approvals = %d", req.MinApprovals)
	}
	if status, body := w.decide(t, "bob", req.ID, "approve", "", nil); status != http.StatusOK {
		t.Fatalf("first approval: HTTP %d %s", status, body)
	}
	if status, _ := w.decide(t, "bob", req.ID, "approve", "", nil); status != http.StatusConflict {
		t.Errorf("the same person approving twice: HTTP %d", status)
	}
	if w.upstreamCalls("delete_records") != 0 {
		t.Fatal("ran after one of two approvals")
	}
	if status, body := w.decide(t, "carol", req.ID, "approve", "", nil); status != http.StatusOK {
		t.Fatalf("second approval: HTTP %d %s", status, body)
	}
	if got := toolText(t, a.wait(ch, id)); !strings.Contains(got, "deleted all records from audit") {
		t.Errorf("after two approvals: %q", got)
	}
}

// TestApprovalSurvivesGatewayRestart: a request pending when the gateway
// restarts is still there afterwards, and the identical call runs once it
// is approved.
func TestApprovalSurvivesGatewayRestart(t *testing.T) {
	w := newWorldWith(t, approvalRules)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	ch, id := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	req := w.waitPending(t)
	w.restart()
	a.wait(ch, id) // the held call ends with an error or a pending note
	r, err := w.queue.Get(context.Background(), req.ID)
	if err != nil || r.State != queue.StatePending {
		t.Fatalf("after restart: %v, state %v", err, r)
	}
	if status, body := w.decide(t, "bob", req.ID, "approve", "", nil); status != http.StatusOK {
		t.Fatalf("approve after restart: HTTP %d %s", status, body)
	}
	if got := toolText(t, a.call("tools/call", toolCall("delete_records", deleteArgs("customers")))); !strings.Contains(got, "deleted all records") {
		t.Errorf("retry after restart = %q", got)
	}
}

// TestApprovalWebhookDown: a notification receiver that is down never
// delays a decision.
func TestApprovalWebhookDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	wd := newWorldWithExtra(t, approvalRules, fmt.Sprintf("notify:\n  - {type: webhook, url: \"http://%s/hook\", secret: \"${env:BRIDGE_E2E_SECRET}\"}", ln.Addr()))
	a := wd.startAgent("BRIDGE_TOKEN=" + wd.token("alice"))
	a.initialize("2025-11-25")
	ch, id := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	req := wd.waitPending(t)
	if status, body := wd.decide(t, "bob", req.ID, "approve", "", nil); status != http.StatusOK {
		t.Fatalf("approve: HTTP %d %s", status, body)
	}
	if got := toolText(t, a.wait(ch, id)); !strings.Contains(got, "deleted all records") {
		t.Errorf("approved call = %q", got)
	}
	for deadline := time.Now().Add(20 * time.Second); hits.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the webhook was never tried")
		}
	}
}

// TestApprovalJustification: a rule that requires a justification asks the
// user with an elicitation where the client supports one; without it the
// call is refused with how to give a reason in _meta; reviewers see it.
func TestApprovalJustification(t *testing.T) {
	w := newWorldWith(t, `
    - name: exports-need-a-reason
      tools: [delete_records]
      action: approve
      justification: required
      approval: {approvers: [security-reviewers], min_approvals: 1, timeout: 15m, hold: 50s}`)

	t.Run("elicitation", func(t *testing.T) {
		a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
		a.initialize("2025-11-25") // declares elicitation
		ch, id := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
		req := w.waitPending(t)
		if req.Justification != "quarterly cleanup" {
			t.Errorf("justification = %q", req.Justification)
		}
		w.decide(t, "bob", req.ID, "deny", "", nil)
		a.wait(ch, id)
	})

	t.Run("no elicitation", func(t *testing.T) {
		a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
		r := a.call("initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{},
			"clientInfo": map[string]any{"name": "plain", "version": "1"}})
		if r.Error != nil {
			t.Fatal(r.Error.Message)
		}
		a.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
		got := toolText(t, a.call("tools/call", toolCall("delete_records", deleteArgs("orders"))))
		if !strings.Contains(got, "needs a justification") || !strings.Contains(got, "io.bridge/justification") {
			t.Fatalf("without a reason: %q", got)
		}
		p := toolCall("delete_records", deleteArgs("orders"))
		p["_meta"] = map[string]any{"io.bridge/justification": "ticket OPS-42"}
		ch, id := a.start("tools/call", p)
		req := w.waitPending(t)
		if req.Justification != "ticket OPS-42" {
			t.Errorf("justification = %q", req.Justification)
		}
		w.decide(t, "bob", req.ID, "deny", "", nil)
		a.wait(ch, id)
	})
}

// TestApprovalIdenticalCallsShareOneRequest: two identical calls arriving
// together make one approval request; once approved, exactly one runs.
func TestApprovalIdenticalCallsShareOneRequest(t *testing.T) {
	w := newWorldWith(t, approvalRules)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	ch1, id1 := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	ch2, id2 := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	req := w.waitPending(t)
	// Both calls are held once each has told the agent it waits.
	for deadline := time.Now().Add(20 * time.Second); len(a.notifications("notifications/message")) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the two calls were not both held")
		}
	}
	rs, err := w.queue.List(context.Background(), queue.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("%d approval requests for two identical calls, want 1", len(rs))
	}
	if status, body := w.decide(t, "bob", req.ID, "approve", "", nil); status != http.StatusOK {
		t.Fatalf("approve: HTTP %d %s", status, body)
	}
	r1, r2 := toolText(t, a.wait(ch1, id1)), toolText(t, a.wait(ch2, id2))
	ran := 0
	for _, r := range []string{r1, r2} {
		if strings.Contains(r, "deleted all records") {
			ran++
		}
	}
	if ran != 1 || w.upstreamCalls("delete_records") != 1 {
		t.Errorf("results %q and %q; upstream calls %d; want exactly one run", r1, r2, w.upstreamCalls("delete_records"))
	}
}
