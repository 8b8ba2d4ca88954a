package main

import (
	"strings"
	"testing"
	"time"
)

// TestReloadKeepsRunningPolicyWhenInvalid: an invalid configuration on
// reload is refused and logged, and the running policy stays; a valid one
// takes effect, and the agent's session survives through re-initialization.
func TestReloadKeepsRunningPolicyWhenInvalid(t *testing.T) {
	w := newWorld(t)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "one"}))); got != "one" {
		t.Fatalf("echo = %q", got)
	}

	w.rules = `
    - name: broken
      when: 'arg.x == 1'
      action: deny`
	w.reloads <- struct{}{}
	waitLog(t, w, "configuration reload refused")
	if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "two"}))); got != "two" {
		t.Fatalf("after an invalid reload: %q", got)
	}

	w.rules = `
    - name: no-echo
      tools: [echo]
      action: deny
      reason: Echo is switched off.`
	w.reloads <- struct{}{}
	waitLog(t, w, "configuration reloaded")
	got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "three"})))
	if !strings.Contains(got, `rule "no-echo"`) {
		t.Fatalf("after a valid reload: %q", got)
	}
}

func waitLog(t *testing.T, w *world, substr string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(w.logs.String(), substr); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway never logged %q", substr)
		}
	}
}
