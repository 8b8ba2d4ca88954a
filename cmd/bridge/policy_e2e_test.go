package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestEndToEndPolicyAndMasking: through the real binary, policy denials
// reach the model as readable tool errors, tools the caller can never use
// are hidden, the upstream is kept from the user's model and roots, and card
// numbers and SSNs are masked in every place they appear.
func TestEndToEndPolicyAndMasking(t *testing.T) {
	w := newWorldWith(t, `
    - name: no-roots
      tools: [list_roots]
      action: deny
      reason: Reading your roots is off.
    - name: no-sampling
      methods: [sampling/createMessage]
      action: deny
      reason: This server may not use your model.`)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")

	t.Run("denied call is a readable tool error", func(t *testing.T) {
		r := a.call("tools/call", toolCall("delete_records", map[string]any{"table": "customers"}))
		var res struct {
			IsError bool `json:"isError"`
		}
		if r.Error != nil {
			t.Fatalf("JSON-RPC error: %s", r.Error.Message)
		}
		text := toolText(t, r)
		if !strings.Contains(string(r.Result), `"isError":true`) || !strings.Contains(text, `rule "no-mass-delete"`) || !strings.Contains(text, "Deleting every record") {
			t.Errorf("denial = %s (%v)", r.Result, res)
		}
		if w.seen.has(`client→upstream request tools/call {"arguments":{"table":"customers"}`) {
			t.Error("the denied call reached the upstream")
		}
		// The same tool with a filter is allowed.
		if got := toolText(t, a.call("tools/call", toolCall("delete_records", map[string]any{"table": "customers", "where": "id = 7"}))); !strings.Contains(got, "deleted") {
			t.Errorf("filtered delete = %q", got)
		}
	})

	t.Run("never-usable tools are hidden", func(t *testing.T) {
		r := a.call("tools/list", nil)
		if bytes.Contains(r.Result, []byte(`"list_roots"`)) {
			t.Error("tools/list shows list_roots, which policy always denies")
		}
		if !bytes.Contains(r.Result, []byte(`"delete_records"`)) {
			t.Error("tools/list hides delete_records, which is allowed with a filter")
		}
	})

	t.Run("upstream may not use the model", func(t *testing.T) {
		got := toolText(t, a.call("tools/call", toolCall("ask_model", map[string]any{"question": "hi"})))
		if !strings.Contains(got, "sampling failed") {
			t.Errorf("ask_model = %q", got)
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, m := range a.served {
			if m == "sampling/createMessage" {
				t.Error("the agent received a sampling request policy denies")
			}
		}
	})

	t.Run("customer records are masked", func(t *testing.T) {
		r := a.call("tools/call", toolCall("get_customers", nil))
		for _, secret := range []string{"4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "536-22-8191", "412-73-5526", "287-65-4401"} {
			if bytes.Contains(r.Result, []byte(secret)) {
				t.Errorf("%s reached the agent", secret)
			}
		}
		if !bytes.Contains(r.Result, []byte("[REDACTED:credit_card]")) || !bytes.Contains(r.Result, []byte("[REDACTED:us_ssn]")) {
			t.Errorf("no redaction markers in %s", r.Result)
		}
		if !bytes.Contains(r.Result, []byte("Ada Lovelace")) {
			t.Errorf("masking removed more than the sensitive values: %s", r.Result)
		}
		r = a.call("resources/read", map[string]any{"uri": "demo://customers/C-1001"})
		if bytes.Contains(r.Result, []byte("4111 1111 1111 1111")) {
			t.Errorf("resources/read leaked a card: %s", r.Result)
		}
		if !strings.Contains(w.logs.String(), `"masked"`) {
			t.Error("the gateway log does not report what was masked")
		}
		if strings.Contains(w.logs.String(), "4111 1111 1111 1111") {
			t.Error("a card number reached the gateway log")
		}
	})
}
