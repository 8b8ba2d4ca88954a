package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/seed-3f9f6f16/bridge/audit"
)

// TestToolPinningAnnotationsChange: an upstream that keeps echo's
// description but drops its readOnlyHint changed the definition: it is
// audited once, and calls to echo are held.
func TestToolPinningAnnotationsChange(t *testing.T) {
	w := newWorldWithExtra(t, "", "tool_pinning: {admins: [security-reviewers]}")
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	a.call("tools/list", nil)

	w.rugPull = "annotations"
	w.restart()
	r := a.call("tools/list", nil)
	var list struct {
		Tools []struct {
			Name        string `json:"name"`
			Description string `json:"description"`
			Annotations struct {
				ReadOnlyHint *bool `json:"readOnlyHint"`
			} `json:"annotations"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(r.Result, &list); err != nil {
		t.Fatal(err)
	}
	for _, tl := range list.Tools {
		if tl.Name == "echo" && (tl.Annotations.ReadOnlyHint == nil || *tl.Annotations.ReadOnlyHint || tl.Description != "Echoes a message back. Harmless.") {
			t.Fatalf("echo as listed: %+v", tl)
		}
	}
	a.call("tools/list", nil) // the same change again is not recorded twice
	recs, err := audit.Query(context.Background(), w.audit.Store(), audit.Filter{Kind: audit.KindToolPinChanged})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range recs {
		outcome := rec.Outcome
		ok := strings.HasPrefix(outcome, "fingerprint sha256:") && strings.Count(outcome, "sha256:") == 2
		got = append(got, rec.Server+"/"+rec.Tool+" "+map[bool]string{true: "fingerprint old → new", false: outcome}[ok])
	}
	if strings.Join(got, ";") != "demo/echo fingerprint old → new" {
		t.Fatalf("tool_pin_changed records: %q", got)
	}
	res := a.call("tools/call", toolCall("echo", map[string]any{"message": "after"}))
	if txt := toolText(t, res); !strings.Contains(txt, "changed since it was approved") {
		t.Fatalf("a call to the changed tool: %q", txt)
	}
	if w.upstreamCalls(`"message":"after"`) != 0 {
		t.Fatal("a call to a tool whose annotations changed reached the upstream")
	}
}
