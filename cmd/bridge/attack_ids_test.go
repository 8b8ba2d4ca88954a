package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// Attack class: id aliasing (issue 9). While a request is pending, another
// whose id equals it by value (7, 7.0, 7e0; "s1", "\u0073\u0031") is
// refused with -32600 and never reaches the upstream; the pending request's
// answer is its own, and a sensitive result never leaves with another
// request's masking or labels.

var aliasCases = []struct{ name, first, second string }{
	{"7 and 7.0", `7`, `7.0`},
	{"7 and 7e0", `7`, `7e0`},
	{"7 and 70e-1", `7`, `70e-1`},
	{"7.0 and 7", `7.0`, `7`},
	{"7 and 7.000", `7`, `7.000`},
	{"0 and -0", `0`, `-0`},
	{`"s1" and its escape`, `"s1"`, `"\u0073\u0031"`},
	{`escaped "s1" then plain`, `"\u0073\u0031"`, `"s1"`},
	{`"s/1" and "s\/1"`, `"s/1"`, `"s\/1"`},
}

// TestAttackIDAliasing: the own upstream holds a harmless echo until the
// test releases it; meanwhile a sensitive hr_lookup (masked by the "hr"
// profile) arrives with an aliased id.
func TestAttackIDAliasing(t *testing.T) {
	w := newAttackWorld(t, false, "", "")
	s := w.openSession("own", "alice", "2025-11-25")
	for i, tc := range aliasCases {
		t.Run(tc.name, func(t *testing.T) {
			hold := w.newRelease(t, fmt.Sprint(i))
			first := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"echo","arguments":{"message":"alias-first-%d","hold_until":%q}}}`, tc.first, i, hold.path)
			done := make(chan []json.RawMessage, 1)
			go func() {
				_, msgs := s.post([]byte(first))
				done <- msgs
			}()
			w.waitReceived(t, "own", fmt.Sprintf("alias-first-%d", i))

			marker := fmt.Sprintf("alias-second-%d", i)
			second := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"hr_lookup","arguments":{"who":%q}}}`, tc.second, marker)
			status, msgs := s.post([]byte(second))
			w.requireRefused(t, "own", marker, status, msgs, []int{bridge.CodeInvalidRequest})
			hold.release()
			got := <-done
			all := append(append([]json.RawMessage(nil), got...), msgs...)
			for _, raw := range all {
				if strings.Contains(string(raw), "EMP-424242") {
					t.Errorf("the sensitive result left unmasked: %s", raw)
				}
			}
			rs := responses(t, got)
			if len(rs) != 1 {
				t.Fatalf("the held call got %d answers: %s", len(rs), got)
			}
			p, ok := parsedFrom(last(got))
			if !ok || p.Name == nil || *p.Name != "echo" || !strings.Contains(string(p.Arguments), fmt.Sprintf("alias-first-%d", i)) {
				t.Errorf("the held call's answer is not its own: %s", got)
			}
		})
	}
}

// TestAttackUpstreamAnswersAnotherID: an upstream that answers with an id
// the gateway never sent (or another pending request's) cannot have its
// answer delivered as some other request's.
func TestAttackUpstreamAnswersAnotherID(t *testing.T) {
	w := newAttackWorld(t, false, "", "")
	s := w.openSession("own", "alice", "2025-11-25")
	hold := w.newRelease(t, "other-id")
	done := make(chan []json.RawMessage, 1)
	go func() {
		_, msgs := s.post([]byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":"victim","method":"tools/call","params":{"name":"echo","arguments":{"message":"victim-call","hold_until":%q}}}`, hold.path)))
		done <- msgs
	}()
	w.waitReceived(t, "own", "victim-call")
	// hr_lookup answers with the victim's id: its (unmasked-by-echo's-
	// profile) result must not be delivered as the victim's answer.
	// The gateway gives each request an upstream id of its own, so the
	// answer to "victim" matches nothing and the attacker's call is never
	// answered: it is posted aside and not waited for.
	go func() {
		_, _, _ = s.tryPost([]byte(`{"jsonrpc":"2.0","id":"attacker","method":"tools/call","params":{"name":"hr_lookup","arguments":{"who":"x","reply_id":"\"victim\""}}}`))
	}()
	w.waitReceived(t, "own", "hr_lookup")
	hold.release()
	got := <-done
	for _, raw := range got {
		if strings.Contains(string(raw), "EMP-424242") {
			t.Errorf("a result left with another request's masking: %s", raw)
		}
	}
	if p, ok := parsedFrom(last(got)); !ok || p.Name == nil || *p.Name != "echo" {
		t.Errorf("the victim's answer is not its own: %s", got)
	}
}
