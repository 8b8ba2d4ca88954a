package main

import (
	"fmt"
	"strings"
	"testing"
)

// Attack class: methods the policy never decided (issue 9). Every client
// request is decided by policy: completion/complete and resources/subscribe
// with their targets; prompts/list, resources/list and
// resources/templates/list are filtered like tools/list; an unknown method
// goes through `default` (deny here); initialize, ping and notifications
// are plumbing.

// TestAttackUndecidedMethods: requests that reach denied targets, or
// methods no rule allows, are refused and never reach the upstream.
func TestAttackUndecidedMethods(t *testing.T) {
	w := newAttackWorld(t, false, "", "")
	s := w.openSession("own", "alice", "2025-11-25")
	cases := []struct{ name, method, params string }{
		{"completion on a denied prompt", "completion/complete", `{"ref":{"type":"ref/prompt","name":"secret_prompt"},"argument":{"name":"topic","value":"{{M}}"}}`},
		{"completion on a denied resource template", "completion/complete", `{"ref":{"type":"ref/resource","uri":"file:///secret/{name}"},"argument":{"name":"name","value":"{{M}}"}}`},
		{"subscribe to a denied resource", "resources/subscribe", `{"uri":"file:///secret/keys.txt","_meta":{"m":"{{M}}"}}`},
		{"unknown method", "x/exfiltrate", `{"name":"secret","_meta":{"m":"{{M}}"}}`},
		{"unknown method without params target", "vendor/run", `{"cmd":"{{M}}"}`},
		{"tasks/result of a task that is not the caller's", "tasks/result", `{"taskId":"task-1","_meta":{"m":"{{M}}"}}`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			marker := fmt.Sprintf("method-%d", i)
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, 4000+i, tc.method, strings.ReplaceAll(tc.params, "{{M}}", marker))
			_, msgs := s.post([]byte(body))
			w.requireNotRun(t, "own", marker, msgs)
			for _, raw := range msgs {
				if strings.Contains(string(raw), "canary-7f3a") || strings.Contains(string(raw), "parsed") {
					t.Errorf("the answer came from the upstream: %s", raw)
				}
			}
		})
	}
	// Plumbing passes.
	if _, msgs := s.post([]byte(`{"jsonrpc":"2.0","id":"p","method":"ping"}`)); len(responses(t, msgs)) != 1 || responses(t, msgs)[0].Error != nil {
		t.Errorf("ping: %s", msgs)
	}
}

// TestAttackListsAreFiltered: what the caller can never use is not listed.
func TestAttackListsAreFiltered(t *testing.T) {
	w := newAttackWorld(t, false, "", "")
	s := w.openSession("own", "alice", "2025-11-25")
	cases := []struct{ method, hidden, shown string }{
		{"tools/list", `"secret"`, `"echo"`},
		{"prompts/list", `"secret_prompt"`, `"greeting"`},
		{"resources/list", `file:///secret/keys.txt`, `file:///public/readme.txt`},
		{"resources/templates/list", `file:///secret/{name}`, `file:///public/{name}`},
	}
	for i, tc := range cases {
		t.Run(tc.method, func(t *testing.T) {
			_, msgs := s.post([]byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q}`, 4100+i, tc.method)))
			rs := responses(t, msgs)
			if len(rs) != 1 || rs[0].Error != nil {
				t.Fatalf("%s: %s", tc.method, msgs)
			}
			if strings.Contains(string(rs[0].Result), tc.hidden) {
				t.Errorf("%s lists %s, which the caller can never use: %s", tc.method, tc.hidden, rs[0].Result)
			}
			if !strings.Contains(string(rs[0].Result), tc.shown) {
				t.Errorf("%s does not list %s, which the caller may use: %s", tc.method, tc.shown, rs[0].Result)
			}
		})
	}
}

// TestAttackRulesNameAnyMethod: an admin can write rules for any method,
// known or not; such a rule allows exactly what it names.
func TestAttackRulesNameAnyMethod(t *testing.T) {
	rules := `
    - name: vendor-run
      methods: [x/allowed]
      action: allow
    - name: public-completion
      methods: [completion/complete, resources/subscribe]
      tools: [greeting, "file:///public/*"]
      action: allow`
	w := newAttackWorld(t, false, rules, "")
	s := w.openSession("own", "alice", "2025-11-25")
	allowed := []string{
		`{"jsonrpc":"2.0","id":1,"method":"x/allowed","params":{"m":"named-1"}}`,
		`{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"greeting"},"argument":{"name":"who","value":"named-2"}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":{"uri":"file:///public/readme.txt","_meta":{"m":"named-3"}}}`,
	}
	for i, body := range allowed {
		_, msgs := s.post([]byte(body))
		if rs := responses(t, msgs); len(rs) != 1 || rs[0].Error != nil {
			t.Errorf("allowed request %d refused: %s", i+1, msgs)
		}
		w.waitReceived(t, "own", fmt.Sprintf("named-%d", i+1))
	}
	denied := []string{
		`{"jsonrpc":"2.0","id":11,"method":"x/other","params":{"m":"named-11"}}`,
		`{"jsonrpc":"2.0","id":12,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"secret_prompt"},"argument":{"name":"topic","value":"named-12"}}}`,
		`{"jsonrpc":"2.0","id":13,"method":"resources/subscribe","params":{"uri":"file:///secret/keys.txt","_meta":{"m":"named-13"}}}`,
	}
	for i, body := range denied {
		_, msgs := s.post([]byte(body))
		w.requireNotRun(t, "own", fmt.Sprintf("named-%d", 11+i), msgs)
	}
}
