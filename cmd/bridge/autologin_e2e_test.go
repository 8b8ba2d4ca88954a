package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestEndToEndConnectLogsInByItself: a fresh BRIDGE_HOME and no login.
// bridge connect starts the device flow itself, tells the agent where to
// log in (a log message and a URL elicitation), the test approves the code
// at the fake Okta, and the first request is answered instead of failing.
func TestEndToEndConnectLogsInByItself(t *testing.T) {
	w := newWorld(t)
	home := t.TempDir()
	a := w.startAgent("BRIDGE_HOME=" + home)
	// connect was started with --gateway, so it needs nothing else.
	ch, id := a.start("initialize", map[string]any{
		"protocolVersion": "2025-11-25",
		"capabilities":    map[string]any{"elicitation": map[string]any{"form": map[string]any{}, "url": map[string]any{}}},
		"clientInfo":      map[string]any{"name": "e2e-agent", "version": "1"},
	})
	var code string
	for deadline := time.Now().Add(20 * time.Second); code == ""; time.Sleep(20 * time.Millisecond) {
		if codes := w.okta.PendingUserCodes(); len(codes) > 0 {
			code = codes[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no device login started; stderr:\n%s", a.stderr.String())
		}
	}
	n := a.waitNotification("notifications/message")
	if !bytes.Contains(n, []byte("log in")) || !bytes.Contains(n, []byte("/activate")) {
		t.Errorf("the agent was not told where to log in: %s", n)
	}
	if err := w.okta.Approve(code, "alice"); err != nil {
		t.Fatal(err)
	}
	init := a.wait(ch, id)
	if init.Error != nil {
		t.Fatalf("initialize after login: %s", init.Error.Message)
	}
	a.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
	if got := toolText(t, a.call("tools/call", toolCall("echo", map[string]any{"message": "first call"}))); got != "first call" {
		t.Errorf("first call = %q", got)
	}
	if !strings.Contains(strings.ReplaceAll(a.stderr.String(), "-", ""), strings.ReplaceAll(code, "-", "")) {
		t.Errorf("the code was not written to stderr:\n%s", a.stderr.String())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	sawURL := false
	for _, m := range a.served {
		if m == "elicitation/create" {
			sawURL = true
		}
	}
	if !sawURL {
		t.Error("the agent, which supports URL elicitation, was not asked to show the link")
	}
}
