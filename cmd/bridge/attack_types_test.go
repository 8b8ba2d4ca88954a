package main

import (
	"fmt"
	"testing"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// Attack class: type confusion (issue 9). A tools/call whose name is not a
// string, a resources/read whose uri is not a string, arguments that are
// not an object, params that are not an object: refused with -32602 (an
// envelope error may say -32600), never decided as the empty target "" that
// no deny rule, approve rule, condition, pin or mask names.

var typeCases = []struct {
	name string
	body string
	own  bool // uses the own upstream's resources or prompts
}{
	{name: "name is a number", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":1,"arguments":{"message":"{{M}}"}}}`},
	{name: "name is null", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":null,"arguments":{"message":"{{M}}"}}}`},
	{name: "name is an object", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":{"name":"{{DENIED}}"},"arguments":{"message":"{{M}}"}}}`},
	{name: "name is an array", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":["{{DENIED}}"],"arguments":{"message":"{{M}}"}}}`},
	{name: "name is true", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":true,"arguments":{"message":"{{M}}"}}}`},
	{name: "name is missing", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"arguments":{"message":"{{M}}"}}}`},
	{name: "arguments is a string", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":"{\"message\":\"{{M}}\"}"}}`},
	{name: "arguments is an array", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":[{"message":"{{M}}"}]}}`},
	{name: "arguments is a number", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":{"name":"{{ALLOWED}}","arguments":7,"_meta":{"m":"{{M}}"}}}`},
	{name: "params is an array", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":[{"name":"{{DENIED}}","arguments":{"message":"{{M}}"}}]}`},
	{name: "params is a string", body: `{"jsonrpc":"2.0","id":{{ID}},"method":"tools/call","params":"{{DENIED}} {{M}}"}`},
	{name: "method is a number", body: `{"jsonrpc":"2.0","id":{{ID}},"method":7,"params":{"name":"{{DENIED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "id is an object", body: `{"jsonrpc":"2.0","id":{"x":{{ID}}},"method":"tools/call","params":{"name":"{{DENIED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "id is an array", body: `{"jsonrpc":"2.0","id":[{{ID}}],"method":"tools/call","params":{"name":"{{DENIED}}","arguments":{"message":"{{M}}"}}}`},
	{name: "uri is a number", own: true, body: `{"jsonrpc":"2.0","id":{{ID}},"method":"resources/read","params":{"uri":1,"_meta":{"m":"{{M}}"}}}`},
	{name: "uri is an object", own: true, body: `{"jsonrpc":"2.0","id":{{ID}},"method":"resources/read","params":{"uri":{"href":"file:///secret/keys.txt"},"_meta":{"m":"{{M}}"}}}`},
	{name: "uri is null", own: true, body: `{"jsonrpc":"2.0","id":{{ID}},"method":"resources/read","params":{"uri":null,"_meta":{"m":"{{M}}"}}}`},
	{name: "prompt name is a number", own: true, body: `{"jsonrpc":"2.0","id":{{ID}},"method":"prompts/get","params":{"name":1,"arguments":{"topic":"{{M}}"}}}`},
	{name: "prompt arguments is a string", own: true, body: `{"jsonrpc":"2.0","id":{{ID}},"method":"prompts/get","params":{"name":"greeting","arguments":"{{M}}"}}`},
}

// TestAttackTypeConfusion sends every case to both upstreams.
func TestAttackTypeConfusion(t *testing.T) {
	w := newAttackWorld(t, true, "", "")
	codes := []int{bridge.CodeInvalidParams, bridge.CodeInvalidRequest}
	for _, target := range attackTargets {
		s := w.openSession(target.server, "alice", "2025-11-25")
		for i, tc := range typeCases {
			if tc.own && target.server != "own" {
				continue
			}
			t.Run(target.server+"/"+tc.name, func(t *testing.T) {
				marker := fmt.Sprintf("type-%s-%d", target.server, i)
				status, msgs := s.post(fillCase(tc.body, 3000+i, marker, target.denied, target.allowed))
				w.requireRefused(t, target.server, marker, status, msgs, codes)
			})
		}
	}
}

// TestAttackUnknownMemberBesideTarget: {"name":"secret","uri":1} once made
// the one-struct decoding fail and the call was decided as "". The target
// is the name, so the call is denied (or refused), and never runs.
func TestAttackUnknownMemberBesideTarget(t *testing.T) {
	w := newAttackWorld(t, true, "", "")
	for _, target := range attackTargets {
		s := w.openSession(target.server, "alice", "2025-11-25")
		for i, extra := range []string{`"uri":1`, `"uri":{"x":1}`, `"task":"x"`, `"_meta":7`} {
			t.Run(fmt.Sprintf("%s/%s", target.server, extra), func(t *testing.T) {
				marker := fmt.Sprintf("beside-%s-%d", target.server, i)
				body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,%s,"arguments":{"message":%q}}}`, 3500+i, target.denied, extra, marker)
				_, msgs := s.post([]byte(body))
				w.requireNotRun(t, target.server, marker, msgs)
			})
		}
	}
}
