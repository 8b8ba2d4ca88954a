package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/seed-3f9f6f16/bridge/audit"
)

// TestToolPinningRugPull: the gateway remembers the demo's tools; when the
// upstream later changes echo's description, the change is logged and
// audited, calls to echo are refused until an admin accepts it, and other
// tools keep working.
func TestToolPinningRugPull(t *testing.T) {
	w := newWorldWithExtra(t, "", "tool_pinning: {admins: [security-reviewers]}")
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	a.call("tools/list", nil)
	if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "before"}))); got != "before" {
		t.Fatalf("echo = %q", got)
	}

	// The upstream is updated with a poisoned description.
	w.rugPull = "1"
	w.restart()
	r := a.call("tools/list", nil)
	if !bytes.Contains(r.Result, []byte("id_rsa")) {
		t.Fatalf("the changed definition was not listed: %s", r.Result)
	}
	if !strings.Contains(w.logs.String(), "TOOL DEFINITION CHANGED") {
		t.Error("the change was not logged")
	}
	recs, err := audit.Query(context.Background(), w.audit.Store(), audit.Filter{Kind: audit.KindToolPinChanged})
	if err != nil || len(recs) != 1 || recs[0].Tool != "echo" {
		t.Errorf("tool_pin_changed records = %v, %v", recs, err)
	}
	res := a.call("tools/call", toolCall("echo", map[string]any{"message": "after"}))
	if got := toolText(t, res); !strings.Contains(got, "changed since it was approved") || !strings.Contains(got, "bridge policy pins accept demo/echo") {
		t.Errorf("call to the changed tool = %q", got)
	}
	if w.upstreamCalls(`"message":"after"`) != 0 {
		t.Error("a call to a changed tool reached the upstream")
	}
	if got := toolText(t, a.call("tools/call", toolCall("slow_count", map[string]any{"n": 1}))); got != "counted to 1" {
		t.Errorf("an unchanged tool stopped working: %q", got)
	}

	// `bridge policy pins`: alice is no admin; bob is.
	pins := func(user string) (*PinsOptions, *bytes.Buffer) {
		f, out, _ := testFactory()
		tok := w.token(user)
		f.Getenv = func(k string) string {
			if k == "BRIDGE_TOKEN" {
				return tok
			}
			return ""
		}
		return &PinsOptions{F: f, Gateway: w.gwURL}, out
	}
	o, _ := pins("alice")
	o.Target = "demo/echo"
	if err := pinsAcceptRun(context.Background(), o); err == nil {
		t.Error("a non-admin accepted a pin")
	}
	o, out := pins("bob")
	if err := pinsListRun(context.Background(), o); err != nil || !strings.Contains(out.String(), "CHANGED") {
		t.Errorf("pins list = %q, %v", out.String(), err)
	}
	o.Target = "demo/echo"
	if err := pinsAcceptRun(context.Background(), o); err != nil {
		t.Fatalf("accept: %v", err)
	}
	if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "accepted"}))); got != "accepted" {
		t.Errorf("echo after accept = %q", got)
	}
}
