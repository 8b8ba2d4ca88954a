package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// leakCase is one row of testdata/mask-leaks.json: what the demo upstream's
// leak tool returns (and the notifications it sends first), the texts the
// agent must never see and those it must see instead.
type leakCase struct {
	Name    string           `json:"name"`
	Result  json.RawMessage  `json:"result"`
	Notify  []map[string]any `json:"notify"`
	Absent  []string         `json:"absent"`
	Present []string         `json:"present"`
	Notes   int              `json:"notes"` // notifications that must arrive
}

type leakFixtures struct {
	Cases []leakCase `json:"cases"`
	Big   struct {
		PEMBegin  string `json:"pem_begin"`
		PEMEnd    string `json:"pem_end"`
		JWTHeader string `json:"jwt_header"`
	} `json:"big"`
}

func readLeakFixtures(t *testing.T) leakFixtures {
	t.Helper()
	raw, err := os.ReadFile("testdata/mask-leaks.json")
	if err != nil {
		t.Fatal(err)
	}
	var f leakFixtures
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("testdata/mask-leaks.json: %v", err)
	}
	return f
}

// TestMaskingOnTheWire runs each masking attack of issue 9 through the
// gateway: the demo upstream (a real stdio subprocess) returns the crafted
// result, and the test reads everything `bridge connect` hands the agent.
// Every string is checked, keys included, and base64 content is decoded
// first, so a secret cannot hide in a blob.
func TestMaskingOnTheWire(t *testing.T) {
	f := readLeakFixtures(t)
	line := strings.Repeat("MIIEowIBAAKCAQEAx4Ud", 3) + "\n"
	pemBody := strings.Repeat(line, (3<<20)/2/len(line)) // 1.5 MiB
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"` + strings.Repeat("y", 70<<10) + `"}`))
	big, _ := json.Marshal(map[string]any{"content": []any{
		map[string]any{"type": "text", "text": "key:\n" + f.Big.PEMBegin + "\n" + pemBody + f.Big.PEMEnd + "\nend"},
		map[string]any{"type": "text", "text": "Bearer " + f.Big.JWTHeader + "." + payload + ".c2lnbmF0dXJl"},
	}})
	f.Cases = append(f.Cases, leakCase{
		Name: "pem over 1 MiB and jwt payload over 64 KiB", Result: big,
		Absent:  []string{line[:40], payload[:64], payload[len(payload)-64:]},
		Present: []string{"key:\n[REDACTED:private_key]\nend", "Bearer [REDACTED:jwt]"},
	})

	w := newWorld(t)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")
	for _, tc := range f.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			a.mu.Lock()
			before, notesBefore := len(a.raw), len(a.notes)
			a.mu.Unlock()
			args := map[string]any{"result": tc.Result}
			if tc.Notify != nil {
				args["notify"] = tc.Notify
			}
			r := a.call("tools/call", toolCall("leak", args))
			if r.Error != nil {
				t.Fatalf("leak: %d %s", r.Error.Code, r.Error.Message)
			}
			waitNotes(t, a, notesBefore+tc.Notes)
			a.mu.Lock()
			lines := append([]json.RawMessage(nil), a.raw[before:]...)
			a.mu.Unlock()
			seen := visibleText(t, lines)
			for _, s := range tc.Absent {
				if strings.Contains(seen, s) {
					t.Errorf("the agent received %+q", s)
				}
			}
			for _, s := range tc.Present {
				if !strings.Contains(seen, s) {
					t.Errorf("the agent did not receive %+q", s)
				}
			}
			if t.Failed() && len(seen) < 4096 {
				t.Logf("received:\n%s", seen)
			}
		})
	}
}

// waitNotes waits until the agent has received n notifications.
func waitNotes(t *testing.T, a *agent, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		a.mu.Lock()
		got := len(a.notes)
		a.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-a.noted:
		case <-deadline:
			t.Fatalf("%d notifications, want %d", got, n)
		}
	}
}

// visibleText is every string (object keys included) in lines, one a line,
// with base64 "data" and "blob" values decoded as well.
func visibleText(t *testing.T, lines []json.RawMessage) string {
	t.Helper()
	var b strings.Builder
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				b.WriteString(k + "\n")
				walk(k, e)
			}
		case []any:
			for _, e := range x {
				walk(key, e)
			}
		case string:
			b.WriteString(x + "\n")
			if key == "data" || key == "blob" {
				if raw, err := base64.StdEncoding.DecodeString(x); err == nil {
					b.Write(raw)
					b.WriteByte('\n')
				}
			}
		}
	}
	for _, l := range lines {
		var v any
		if err := json.Unmarshal(l, &v); err != nil {
			t.Fatalf("not JSON: %.200q", l)
		}
		walk("", v)
	}
	return b.String()
}
