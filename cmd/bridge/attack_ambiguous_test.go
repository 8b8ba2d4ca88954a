package main

import (
	"fmt"
	"strings"
	"testing"
)

// Attack class: ambiguous messages (issue 9). A message the gateway cannot
// read in exactly one way — a duplicate member name at any depth (also
// after unescaping), two names equal under Unicode case folding, a
// __proto__ member, invalid UTF-8, an unpaired surrogate, a number beyond
// float64 — is refused with a JSON-RPC error before any stage runs, and
// never reaches the upstream, whichever member the upstream's own parser
// would have kept.

// ambiguousCase is one crafted message. In body, {{ID}} is a fresh request
// id, {{M}} a marker that must never reach the upstream, {{DENIED}} a tool
// the policy denies and {{ALLOWED}} one it allows.
type ambiguousCase struct {
	name string
	body string
	// own: the case uses the own upstream's tools or resources only.
	own bool
}

var ambiguousCases = []ambiguousCase{
	// The target name, four ways.
	{name: "duplicate name, denied last", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","name":"{{DENIED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "duplicate name, denied first", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{DENIED}}","name":"{{ALLOWED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "name and NAME", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{DENIED}}","NAME":"{{ALLOWED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "name and Name", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{DENIED}}","Name":"{{ALLOWED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "NAME first", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"NAME":"{{ALLOWED}}","name":"{{DENIED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "name and an escaped name", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","\u006eame":"{{DENIED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "name and an escaped NAME", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"\u004eAME":"{{ALLOWED}}","name":"{{DENIED}}","arguments":{"message":"{{M}}"}}}`},
	// The arguments.
	{name: "arguments and ARGUMENTS", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}"},"ARGUMENTS":{"message":"decoy"}}}`},
	{name: "arguments and argumentſ (long s folds to s)", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"decoy"},"argument\u017f":{"message":"{{M}}"}}}`},
	{name: "duplicate arguments", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"decoy"},"arguments":{"message":"{{M}}"}}}`},
	{name: "duplicate key inside arguments", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"decoy","message":"{{M}}"}}}`},
	{name: "case-variant keys inside arguments", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}","MESSAGE":"decoy"}}}`},
	{name: "duplicate key deep inside arguments", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}","deep":[{"a":{"b":1,"b":2}}]}}}`},
	{name: "escaped duplicate inside arguments", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}","\u006dessage":"decoy"}}}`},
	{name: "__proto__ inside arguments", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}","__proto__":{"isAdmin":true}}}}`},
	{name: "__proto__ in params", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}"},"__proto__":{"name":"{{DENIED}}"}}}`},
	{name: "escaped __proto__", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}","\u005f_proto__":{}}}}`},
	{name: "duplicate key in _meta", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}"},"_meta":{"progressToken":"a","progressToken":"b"}}}`},
	// The envelope.
	{name: "method and METHOD", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","METHOD":"ping","params":{"name":"{{DENIED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "duplicate method", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"ping","method":"tools/call","params":{"name":"{{DENIED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "duplicate params", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"decoy"}},"params":{"name":"{{DENIED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "params and PARAMS", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{DENIED}}","arguments":{"message":"{{M}}"}},"PARAMS":{"name":"{{ALLOWED}}"}}`},
	{name: "duplicate id", body: `{"jsonrpc":"2.0","id":{{ID}},"id":"other","method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "id and ID", body: `{"jsonrpc":"2.0","id":{{ID}},"ID":"other","method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "duplicate jsonrpc", body: `{"jsonrpc":"2.0","jsonrpc":"1.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}"}}}`},
	// Encoding.
	{name: "invalid UTF-8 in a value", body: "{\"jsonrpc\":\"2.0\",\"id\":{{ID}},\"method\":\"tools/call\",\"params\":{\"name\":\"{{ALLOWED}}\",\"arguments\":{\"message\":\"{{M}}\xff\xfe\"}}}"},
	{name: "invalid UTF-8 in the name", body: "{\"jsonrpc\":\"2.0\",\"id\":{{ID}},\"method\":\"tools/call\",\"params\":{\"name\":\"{{ALLOWED}}\xc0\",\"arguments\":{\"message\":\"{{M}}\"}}}"},
	{name: "invalid UTF-8 in a key", body: "{\"jsonrpc\":\"2.0\",\"id\":{{ID}},\"method\":\"tools/call\",\"params\":{\"name\":\"{{ALLOWED}}\",\"arguments\":{\"message\":\"{{M}}\",\"k\xed\xa0\x80\":1}}}"},
	{name: "unpaired high surrogate", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}\ud800"}}}`},
	{name: "unpaired low surrogate in the name", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}\udc00","arguments":{"message":"{{M}}"}}}`},
	{name: "unpaired surrogate in a key", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}","\ud83d":1}}}`},
	{name: "number beyond float64", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}","n":1e400}}}`},
	{name: "negative number beyond float64", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":{"message":"{{M}}","n":-2e308}}}`},
	// Other targets.
	{name: "uri and URI", own: true, body: `{"jsonrpc":"2.0","id":{{ID}},"method":"resources/read","params":{"uri":"file:///secret/keys.txt","URI":"file:///public/readme.txt","_meta":{"m":"{{M}}"}}}`},
	{name: "duplicate uri", own: true, body: `{"jsonrpc":"2.0","id":{{ID}},"method":"resources/read","params":{"uri":"file:///public/readme.txt","uri":"file:///secret/keys.txt","_meta":{"m":"{{M}}"}}}`},
	{name: "prompt name and NAME", own: true, body: `{"jsonrpc":"2.0","id":{{ID}},"method":"prompts/get","params":{"name":"secret_prompt","NAME":"greeting","arguments":{"topic":"{{M}}"}}}`},
	{name: "prompt arguments and Arguments", own: true, body: `{"jsonrpc":"2.0","id":{{ID}},"method":"prompts/get","params":{"name":"greeting","arguments":{"who":"x"},"Arguments":{"who":"{{M}}"}}}`},
	{name: "transfer amount and AMOUNT", own: true, body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"transfer","arguments":{"to":"self","amount":1,"AMOUNT":5000000,"m":"{{M}}"}}}`},
	{name: "transfer amount twice", own: true, body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"transfer","arguments":{"to":"self","amount":1,"amount":5000000,"m":"{{M}}"}}}`},
}

// attackTargets are the upstreams every ambiguous case runs against, with
// a tool the policy denies and one it allows.
var attackTargets = []struct{ server, denied, allowed string }{
	{"own", "secret", "echo"},
	{"everything", "get-env", "echo"},
}

func fillCase(body string, id int, marker, denied, allowed string) []byte {
	return []byte(strings.NewReplacer("{{ID}}", fmt.Sprint(id), "{{M}}", marker, "{{DENIED}}", denied, "{{ALLOWED}}", allowed).Replace(body))
}

// TestAttackAmbiguousMessages sends every ambiguous case to both upstreams.
func TestAttackAmbiguousMessages(t *testing.T) {
	w := newAttackWorld(t, true, "", "")
	for _, target := range attackTargets {
		s := w.openSession(target.server, "alice", "2025-11-25")
		for i, tc := range ambiguousCases {
			if tc.own && target.server != "own" {
				continue
			}
			t.Run(target.server+"/"+tc.name, func(t *testing.T) {
				marker := fmt.Sprintf("amb-%s-%d", target.server, i)
				body := fillCase(tc.body, 1000+i, marker, target.denied, target.allowed)
				status, msgs := s.post(body)
				w.requireRefused(t, target.server, marker, status, msgs, strictRefusal)
			})
		}
		// The session still works after the refusals.
		status, msgs := s.post([]byte(`{"jsonrpc":"2.0","id":"after","method":"tools/call","params":{"name":"echo","arguments":{"message":"still-up"}}}`))
		if rs := responses(t, msgs); status != 200 || len(rs) != 1 || rs[0].Error != nil || !strings.Contains(string(rs[0].Result), "still-up") {
			t.Errorf("%s: echo after the refusals: HTTP %d %s", target.server, status, msgs)
		}
	}
}

// TestAttackAmbiguousInBatch: inside a 2025-03-26 batch the same cases are
// refused, and none of the batch's bad members reaches the upstream.
func TestAttackAmbiguousInBatch(t *testing.T) {
	w := newAttackWorld(t, false, "", "")
	s := w.openSession("own", "alice", "2025-03-26")
	for i, tc := range ambiguousCases {
		t.Run(tc.name, func(t *testing.T) {
			marker := fmt.Sprintf("batch-%d", i)
			bad := fillCase(tc.body, 2000+i, marker, "secret", "echo")
			body := append(append([]byte(`[{"jsonrpc":"2.0","id":"ok-`+fmt.Sprint(i)+`","method":"ping"},`), bad...), ']')
			status, msgs := s.post(body)
			var bads []string
			for _, raw := range msgs {
				m := decodeWire(t, raw)
				if string(m.ID) == `"ok-`+fmt.Sprint(i)+`"` {
					continue // the harmless member may be answered or refused
				}
				bads = append(bads, string(raw))
			}
			if len(bads) == 0 {
				t.Errorf("no error for the ambiguous batch member (HTTP %d %s)", status, msgs)
			}
			for _, raw := range msgs {
				if strings.Contains(string(raw), "UPSTREAM-PARSED") && strings.Contains(string(raw), marker) {
					t.Errorf("the ambiguous member ran: %s", raw)
				}
			}
			for _, b := range bads {
				m := decodeWire(t, []byte(b))
				if m.Error == nil {
					t.Errorf("the ambiguous member got a result: %s", b)
				} else if m.Error.Code != -32700 && m.Error.Code != -32600 && m.Error.Code != -32602 {
					t.Errorf("the ambiguous member got code %d: %s", m.Error.Code, b)
				}
			}
			w.requireNotReceived(t, "own", marker)
		})
	}
}
