package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Attack class: approvals bound to what runs (issue 9). The digest is over
// the strictly decoded arguments that run; a retry with a decoy key is
// refused by the strict decoding; arguments a reviewer edits are decided by
// policy again, so an edit a deny rule forbids (or one that leaves the
// approve rule) is refused and never runs.

// heldCall posts a call that policy holds, returning its eventual answer.
func heldCall(s *rawSession, body string) chan []json.RawMessage {
	done := make(chan []json.RawMessage, 1)
	go func() {
		_, msgs, _ := s.tryPost([]byte(body))
		done <- msgs
	}()
	return done
}

// TestAttackApprovalRetryWithDecoy: bob approves transfer {amount:1}; the
// retry smuggles a second amount. It is refused and never runs.
func TestAttackApprovalRetryWithDecoy(t *testing.T) {
	w := newAttackWorld(t, false, "", "")
	s := w.openSession("own", "alice", "2025-11-25")
	call := `{"jsonrpc":"2.0","id":%q,"method":"tools/call","params":{"name":"transfer","arguments":%s}}`
	done := heldCall(s, fmt.Sprintf(call, "t1", `{"amount":1,"to":"bob","m":"approved-once"}`))
	req := w.waitPending(t)
	if status, body := w.decide(t, "bob", req.ID, "approve", "fine", nil); status != http.StatusOK {
		t.Fatalf("bob approves: HTTP %d %s", status, body)
	}
	got := <-done
	if p, ok := parsedFrom(last(got)); !ok || !strings.Contains(string(p.Arguments), `"amount":1,`) {
		t.Fatalf("the approved call did not run as approved: %s", got)
	}
	decoys := []struct{ name, args string }{
		{"second amount after", `{"amount":1,"to":"bob","m":"approved-once","amount":1000000}`},
		{"second amount before", `{"amount":1000000,"amount":1,"to":"bob","m":"approved-once"}`},
		{"AMOUNT beside amount", `{"amount":1,"to":"bob","m":"approved-once","AMOUNT":1000000}`},
		{"escaped amount", `{"amount":1,"to":"bob","m":"approved-once","\u0061mount":1000000}`},
	}
	for i, d := range decoys {
		t.Run(d.name, func(t *testing.T) {
			status, msgs := s.post([]byte(fmt.Sprintf(call, fmt.Sprint("retry-", i), d.args)))
			w.requireRefused(t, "own", "1000000", status, msgs, strictRefusal)
		})
	}
}

// TestAttackApprovalEditsDecidedAgain: a reviewer's edit is decided by
// policy again; one that a deny rule forbids, or that another rule than
// the approve rule would decide, is refused and never runs.
func TestAttackApprovalEditsDecidedAgain(t *testing.T) {
	w := newAttackWorld(t, false, "", "")
	s := w.openSession("own", "alice", "2025-11-25")
	cases := []struct {
		name   string
		edited map[string]any
		marker string
	}{
		{"edit a deny rule forbids", map[string]any{"amount": 5000000, "to": "carol", "m": "edit-denied"}, "edit-denied"},
		{"edit another rule would allow", map[string]any{"amount": 2, "to": "self", "m": "edit-other-rule"}, "edit-other-rule"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			done := heldCall(s, fmt.Sprintf(`{"jsonrpc":"2.0","id":"e%d","method":"tools/call","params":{"name":"transfer","arguments":{"amount":2,"to":"carol","m":"before-edit-%d"}}}`, i, i))
			req := w.waitPending(t)
			status, body := w.decide(t, "bob", req.ID, "approve", "edited", tc.edited)
			got := <-done
			if status == http.StatusOK {
				// The decision was taken; the edited call must still not run.
				for _, r := range responses(t, got) {
					if r.Error == nil && !strings.Contains(string(r.Result), `"isError":true`) {
						t.Errorf("the edited call ran (HTTP %d %s): %s", status, body, r.Result)
					}
				}
			}
			w.requireNotReceived(t, "own", tc.marker)
			if tc.edited["amount"] == 5000000 {
				w.requireNotReceived(t, "own", "5000000")
			}
		})
	}
}

// TestAttackApprovalDigestOverWhatRuns: an approval covers exactly the
// arguments approved (the approve rule here is an args_match); a call with
// other arguments does not run on it.
func TestAttackApprovalDigestOverWhatRuns(t *testing.T) {
	w := newAttackWorld(t, false, "", "")
	s := w.openSession("own", "alice", "2025-11-25")
	done := heldCall(s, `{"jsonrpc":"2.0","id":"d1","method":"tools/call","params":{"name":"delete_records","arguments":{"table":"customers","where":"id = 9"}}}`)
	req := w.waitPending(t)
	if status, body := w.decide(t, "bob", req.ID, "approve", "", nil); status != http.StatusOK {
		t.Fatalf("approve: HTTP %d %s", status, body)
	}
	if p, ok := parsedFrom(last(<-done)); !ok || p.Name == nil || *p.Name != "delete_records" {
		t.Fatal("the approved call did not run")
	}
	// A different call (another where) is not covered by the approval.
	_, msgs, _ := s.tryPost([]byte(`{"jsonrpc":"2.0","id":"d2","method":"tools/call","params":{"name":"delete_records","arguments":{"table":"customers","where":"1 = 1","m":"not-approved"}}}`))
	for _, raw := range msgs {
		if strings.Contains(string(raw), "UPSTREAM-PARSED") {
			t.Errorf("an unapproved call ran on another call's approval: %s", raw)
		}
	}
	w.requireNotReceived(t, "own", "not-approved")
}
