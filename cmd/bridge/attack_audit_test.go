package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Attack class: the audit record names what ran (issue 9). Unusual but
// unambiguous spellings are accepted and decided on what the upstream
// executes; the request's audit record names that target.
func TestAttackAuditNamesWhatRan(t *testing.T) {
	w := newAttackWorld(t, false, "", "")
	s := w.openSession("own", "alice", "2025-11-25")
	cases := []struct {
		name, params, target string
		runs                 bool
	}{
		{"escaped member name", `{"n\u0061me":"echo","arguments":{"message":"{{M}}"}}`, "echo", true},
		{"escaped tool name", `{"name":"\u0065cho","arguments":{"message":"{{M}}"}}`, "echo", true},
		{"NAME only inside arguments", `{"name":"echo","arguments":{"message":"{{M}}","NAME":"secret"}}`, "echo", true},
		{"escaped denied name", `{"name":"s\u0065cret","arguments":{"message":"{{M}}"}}`, "secret", false},
		{"escaped last letter of a denied name", `{"name":"secr\u0065t","arguments":{"message":"{{M}}"}}`, "secret", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			marker := fmt.Sprintf("audit-%d", i)
			id := 5000 + i
			_, msgs := s.post([]byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s}`, id, strings.ReplaceAll(tc.params, "{{M}}", marker))))
			if tc.runs {
				p, ok := parsedFrom(last(msgs))
				if !ok || p.Name == nil || *p.Name != tc.target {
					t.Fatalf("the upstream did not run %s: %s", tc.target, msgs)
				}
			} else {
				w.requireNotRun(t, "own", marker, msgs)
			}
			if rec := w.auditedRequest(t, "tools/call", fmt.Sprint(id)); rec != nil && rec.Tool != tc.target {
				t.Errorf("audit names %q, the upstream ran %q", rec.Tool, tc.target)
			}
		})
	}
}

// TestAttackThroughConnect: the same attacks through the `bridge connect`
// binary over stdio, as an agent would send them.
func TestAttackThroughConnect(t *testing.T) {
	w := newAttackWorld(t, false, "", "")
	a := w.startAgentFor("own", "BRIDGE_TOKEN="+w.token("alice"))
	a.initialize("2025-11-25")
	for i, body := range []string{
		`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"secret","NAME":"echo","arguments":{"message":"%s"}}}`,
		`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"message":"%s"},"ARGUMENTS":{"message":"x"}}}`,
		`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":1,"arguments":{"message":"%s"}}}`,
		"{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"message\":\"%s\xff\"}}}",
	} {
		id := 6000 + i
		marker := fmt.Sprintf("connect-%d", i)
		ch := a.expect(fmt.Sprint(id))
		a.sendRaw([]byte(fmt.Sprintf(body, id, marker)))
		select {
		case line := <-ch:
			m := decodeWire(t, line)
			if m.Error == nil || (m.Error.Code != -32700 && m.Error.Code != -32600 && m.Error.Code != -32602) {
				t.Errorf("case %d: want a strict refusal, got %s", i, line)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("case %d: no answer through bridge connect", i)
		}
		w.requireNotReceived(t, "own", marker)
	}
	// Id aliasing on connect's side: 7 pending, then 7.0.
	hold := w.newRelease(t, "connect")
	first := a.expect("7")
	a.sendRaw([]byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"connect-first","hold_until":%q}}}`, hold.path)))
	w.waitReceived(t, "own", "connect-first")
	second := a.expect("7.0")
	a.sendRaw([]byte(`{"jsonrpc":"2.0","id":7.0,"method":"tools/call","params":{"name":"hr_lookup","arguments":{"who":"connect-second"}}}`))
	select {
	case line := <-second:
		if m := decodeWire(t, line); m.Error == nil || m.Error.Code != -32600 {
			t.Errorf("aliased id through connect: %s", line)
		}
	case line := <-first:
		t.Errorf("the aliased request's answer came as the first's: %s", line)
	case <-time.After(10 * time.Second):
		t.Errorf("no refusal of the aliased id through connect")
	}
	w.requireNotReceived(t, "own", "connect-second")
	hold.release()
}

// startAgentFor runs `bridge connect SERVER` against the world's gateway.
func (w *world) startAgentFor(server string, env ...string) *agent {
	t := w.t
	t.Helper()
	cmd := exec.Command(bridgeBin, "connect", server, "--gateway", w.gwURL, "--log-level", "debug", "--no-browser")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{t: t, cmd: cmd, stdin: stdin, stderr: &syncBuffer{}, waiting: map[string]chan json.RawMessage{}, noted: make(chan struct{}, 1000)}
	cmd.Stderr = a.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go a.read(stdout)
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("bridge connect stderr:\n%s", a.stderr.String())
		}
	})
	return a
}
