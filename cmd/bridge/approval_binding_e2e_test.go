package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/queue"
	"github.com/seed-3f9f6f16/bridge/audit"
)

// bindingRules deny deleting users outright and hold other deletes.
const bindingRules = `
    - name: never-users
      tools: [delete_records]
      when: 'args.table == "users"'
      action: deny
      reason: Agents never delete users.` + approvalRules

// rawToolCall is tools/call params whose arguments keep the given bytes,
// key order and spacing included.
func rawToolCall(name, args string) map[string]any {
	return map[string]any{"name": name, "arguments": json.RawMessage(args)}
}

// approvalStory lists the delete_records records in order, one line each:
// kind, decision and rule, outcome, reason (shortened), the approval's
// position among the approvals of the test (#1, #2…) and whether the
// digest is keyed.
func (w *world) approvalStory(t *testing.T) []string {
	t.Helper()
	recs, err := audit.Query(context.Background(), w.audit.Store(), audit.Filter{Tool: "delete_records"})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	var out []string
	for _, r := range recs {
		line := string(r.Kind)
		if r.Decision != "" {
			line += " " + r.Decision + "/" + r.Rule
		}
		if r.Outcome != "" {
			line += " outcome=" + r.Outcome
		}
		if r.ApprovalID != "" {
			if ids[r.ApprovalID] == 0 {
				ids[r.ApprovalID] = len(ids) + 1
			}
			line += fmt.Sprintf(" approval=#%d", ids[r.ApprovalID])
		}
		if r.ArgsDigest != "" && !strings.HasPrefix(r.ArgsDigest, "hmac-sha256:") {
			line += " UNKEYED-DIGEST"
		}
		if r.Reason != "" {
			reason := r.Reason
			if len(reason) > 40 {
				reason = reason[:40]
			}
			line += " reason=" + reason
		}
		out = append(out, line)
	}
	return out
}

func checkStory(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit records:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestApprovalBindsToWhatRuns: the approval binds to the strictly decoded
// arguments: a retry in another key order runs exactly what the reviewer
// saw, one with other arguments asks anew, and the digests on file are
// keyed.
func TestApprovalBindsToWhatRuns(t *testing.T) {
	w := newWorldWith(t, bindingRules)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	ch, id := a.start("tools/call", rawToolCall("delete_records", `{"table":"customers","where":"id = 7"}`))
	req := w.waitPending(t)
	a.waitHoldEnd(w, ch, id)
	if string(req.Args) != `{"table":"customers","where":"id = 7"}` || !strings.HasPrefix(req.ArgsDigest, "hmac-sha256:") {
		t.Fatalf("stored %s (%s)", req.Args, req.ArgsDigest)
	}
	if status, body := w.decide(t, "bob", req.ID, "approve", "", nil); status != http.StatusOK {
		t.Fatalf("approve: HTTP %d %s", status, body)
	}
	// Other arguments are another call: held anew, the approval untouched.
	ch, id = a.start("tools/call", rawToolCall("delete_records", `{"table":"customers","where":"id = 7","then":"id > 0"}`))
	other := w.waitPending(t)
	if other.ID == req.ID {
		t.Fatal("a call with an extra member matched the approval")
	}
	a.waitHoldEnd(w, ch, id)
	// The same arguments in another order and spacing run, as stored.
	got := toolText(t, a.call("tools/call", rawToolCall("delete_records", `{ "where" : "id = 7", "table" : "customers" }`)))
	if !strings.Contains(got, "deleted all records from customers") {
		t.Fatalf("the retry = %q", got)
	}
	if n := w.upstreamCalls(`"arguments":{"table":"customers","where":"id = 7"}`); n != 1 || w.upstreamCalls("delete_records") != 1 {
		t.Fatalf("the upstream ran %d canonical calls of %d", n, w.upstreamCalls("delete_records"))
	}
	checkStory(t, w.approvalStory(t), []string{
		"approval_created approval=#1",
		"request approve/deletes-need-review approval=#1",
		"response approve/deletes-need-review outcome=answered by gateway: tool_error approval=#1",
		"approval_reviewed approve/deletes-need-review outcome=approved approval=#1",
		"approval_created approval=#2",
		"request approve/deletes-need-review approval=#2",
		"response approve/deletes-need-review outcome=answered by gateway: tool_error approval=#2",
		"approval_executed approval=#1",
		"request approve/deletes-need-review approval=#1",
		"response outcome=ok",
	})
}

// TestApprovalEditDecidedAgain: a reviewer's edit that policy would deny
// is refused to the reviewer at once (the gateway would refuse it again
// when the call runs, see the gateway's tests); an edit by the same rule
// runs, and the note about it is masked.
func TestApprovalEditDecidedAgain(t *testing.T) {
	w := newWorldWith(t, bindingRules)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")

	ch, id := a.start("tools/call", toolCall("delete_records", deleteArgs("orders")))
	req := w.waitPending(t)
	status, body := w.decide(t, "bob", req.ID, "approve", "", map[string]any{"table": "users", "where": "id = 7"})
	if status != http.StatusConflict || !strings.Contains(body, "edit_refused") ||
		!strings.Contains(body, `policy decides the edited call deny by rule \"never-users\", not approve by rule \"deletes-need-review\"`) {
		t.Fatalf("an edit policy denies: HTTP %d %s", status, body)
	}
	if r, _ := w.queue.Get(context.Background(), req.ID); r.State != queue.StatePending || len(r.Reviews) != 0 {
		t.Fatalf("a refused edit changed the request: %+v", r)
	}
	edit := map[string]any{"table": "orders", "where": "card = '4111 1111 1111 1111'"}
	if status, body := w.decide(t, "bob", req.ID, "approve", "", edit); status != http.StatusOK {
		t.Fatalf("approve with edits: HTTP %d %s", status, body)
	}
	got := toolText(t, a.wait(ch, id))
	if !strings.Contains(got, "bob@example.com changed the arguments") || strings.Contains(got, "4111 1111 1111 1111") {
		t.Fatalf("the note about the edit: %q", got)
	}
	if w.upstreamCalls(`4111 1111 1111 1111`) != 1 || w.upstreamCalls("delete_records") != 1 {
		t.Fatal("the upstream did not run exactly the edited call")
	}
	checkStory(t, w.approvalStory(t), []string{
		"approval_created approval=#1",
		"approval_reviewed approve/deletes-need-review outcome=approved approval=#1",
		"approval_executed approval=#1",
		"request approve/deletes-need-review approval=#1",
		"response outcome=ok",
	})
}

// TestApprovalPendingLimit: a requester holds at most
// approvals.max_pending_per_requester calls; the next is refused at once,
// on its own record, and another user is not disturbed.
func TestApprovalPendingLimit(t *testing.T) {
	w := newWorldWithExtra(t, bindingRules, "approvals: {max_pending_per_requester: 2, max_args_bytes: 256}")
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	for _, table := range []string{"t1", "t2"} {
		ch, id := a.start("tools/call", toolCall("delete_records", deleteArgs(table)))
		w.waitPending(t)
		a.waitHoldEnd(w, ch, id)
	}
	got := toolText(t, a.call("tools/call", toolCall("delete_records", deleteArgs("t3"))))
	if !strings.Contains(got, "you already have 2 calls waiting for approval (the limit is 2)") {
		t.Fatalf("over the limit: %q", got)
	}
	got = toolText(t, a.call("tools/call", toolCall("delete_records", map[string]any{"table": strings.Repeat("x", 300), "where": "id = 7"})))
	if !strings.Contains(got, "over the 256-byte limit") {
		t.Fatalf("over the size limit: %q", got)
	}
	rs, err := w.queue.List(context.Background(), queue.Filter{})
	if err != nil || len(rs) != 2 {
		t.Fatalf("%d requests stored, want 2 (%v)", len(rs), err)
	}
	// Another requester still gets a request.
	d := w.startAgent("BRIDGE_TOKEN=" + w.token("dave"))
	d.initialize("2025-11-25")
	ch, id := d.start("tools/call", toolCall("delete_records", deleteArgs("t3")))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if rs, _ := w.queue.List(context.Background(), queue.Filter{States: []queue.State{queue.StatePending}}); len(rs) == 3 && rs[2].Requester.Email == "dave@example.com" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dave's call was not held")
		}
	}
	d.waitHoldEnd(w, ch, id)
	const refused = "bridge: this call cannot be sent for app"
	checkStory(t, w.approvalStory(t), []string{
		"approval_created approval=#1",
		"request approve/deletes-need-review approval=#1",
		"response approve/deletes-need-review outcome=answered by gateway: tool_error approval=#1",
		"approval_created approval=#2",
		"request approve/deletes-need-review approval=#2",
		"response approve/deletes-need-review outcome=answered by gateway: tool_error approval=#2",
		"request refused/deletes-need-review reason=" + refused, // the third: over the count
		"response refused/deletes-need-review outcome=answered by gateway: tool_error reason=" + refused,
		"request refused/deletes-need-review reason=" + refused, // too large
		"response refused/deletes-need-review outcome=answered by gateway: tool_error reason=" + refused,
		"approval_created approval=#3",
		"request approve/deletes-need-review approval=#3",
		"response approve/deletes-need-review outcome=answered by gateway: tool_error approval=#3",
	})
}

// TestApprovalOneWaiterCancels: two identical calls share one request;
// one cancelling leaves it for the other, which runs once approved.
func TestApprovalOneWaiterCancels(t *testing.T) {
	w := newWorldWith(t, bindingRules)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	_, id1 := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	ch2, id2 := a.start("tools/call", toolCall("delete_records", deleteArgs("customers")))
	req := w.waitPending(t)
	for deadline := time.Now().Add(20 * time.Second); len(a.notifications("notifications/message")) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the two calls were not both held")
		}
	}
	a.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": map[string]any{"requestId": id1}})
	// The cancelled call ends with its request record; wait for it.
	for deadline := time.Now().Add(20 * time.Second); !slices.Contains(w.approvalStory(t), "request approve/deletes-need-review outcome=refused approval=#1"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the cancelled call never ended")
		}
	}
	if r, _ := w.queue.Get(context.Background(), req.ID); r.State != queue.StatePending {
		t.Fatalf("one of two waiters cancelling left the request %s", r.State)
	}
	if status, body := w.decide(t, "bob", req.ID, "approve", "", nil); status != http.StatusOK {
		t.Fatalf("approve: HTTP %d %s", status, body)
	}
	if got := toolText(t, a.wait(ch2, id2)); !strings.Contains(got, "deleted all records") {
		t.Fatalf("the remaining waiter: %q", got)
	}
	if w.upstreamCalls("delete_records") != 1 {
		t.Fatalf("the upstream ran %d calls, want 1", w.upstreamCalls("delete_records"))
	}
	checkStory(t, w.approvalStory(t), []string{
		"approval_created approval=#1",
		"request approve/deletes-need-review outcome=refused approval=#1", // the cancelled call
		"approval_reviewed approve/deletes-need-review outcome=approved approval=#1",
		"approval_executed approval=#1",
		"request approve/deletes-need-review approval=#1",
		"response outcome=ok",
	})
}
