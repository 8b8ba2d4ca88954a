package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/approval/pins"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// TestPinningWithholdsUnreadable: a tools/list entry the strict decoding
// cannot read is withheld from what the client sees, and a pinned tool
// listed that way is then held like any changed tool.
func TestPinningWithholdsUnreadable(t *testing.T) {
	tests := []struct {
		name    string
		result  string
		listed  []string // tool names the client sees
		changed bool     // echo's pin marked changed
		errText string   // the client gets an error instead
	}{
		{"all readable", `{"tools":[{"name":"echo","description":"Echoes."},{"name":"add"}],"nextCursor":"c2"}`, []string{"echo", "add"}, false, ""},
		{"a name that is not a string", `{"tools":[{"name":"echo","description":"Echoes."},{"name":7}]}`, []string{"echo"}, false, ""},
		{"a pinned tool unreadable", `{"tools":[{"name":"echo","description":{"text":"Echoes."}},{"name":"add"}]}`, []string{"add"}, true, ""},
		{"annotations changed", `{"tools":[{"name":"echo","description":"Echoes.","annotations":{"destructiveHint":true}},{"name":"add"}]}`, []string{"echo", "add"}, true, ""},
		{"tools not an array", `{"tools":{"echo":{}}}`, nil, false, "could not be read strictly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := bolt.Open(filepath.Join(t.TempDir(), "p.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			store, err := pins.Open(db, func() time.Time { return time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) })
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			first, _, _ := pins.ParseTools(json.RawMessage(`{"tools":[{"name":"echo","description":"Echoes."}]}`))
			if _, err := store.Observe(ctx, "demo", first); err != nil {
				t.Fatal(err)
			}
			p := NewPinning(store, config.Pinning{}, nil, nil, slog.New(slog.DiscardHandler))
			var seen *bridge.Message
			next := bridge.FilterFunc(func(_ context.Context, _ *bridge.Exchange, m *bridge.Message) (bridge.Verdict, error) {
				seen = m
				return bridge.Verdict{Forward: m}, nil
			})
			req, _ := bridge.Parse([]byte(`{"jsonrpc":"2.0","id":3,"method":"tools/list"}`))
			resp, err := bridge.Parse([]byte(`{"jsonrpc":"2.0","id":3,"result":` + tt.result + `}`))
			if err != nil {
				t.Fatal(err)
			}
			x := &bridge.Exchange{Session: &bridge.SessionInfo{ID: "s1", Server: "demo"}, Principal: holdAlice, Direction: bridge.FromUpstream, Request: req}
			if _, err := p.Middleware()(next).Filter(ctx, x, resp); err != nil {
				t.Fatal(err)
			}
			if tt.errText != "" {
				if seen.Error == nil || !strings.Contains(seen.Error.Message, tt.errText) {
					t.Fatalf("passed on %s", seen.Raw)
				}
				return
			}
			var got struct {
				Tools []struct {
					Name string `json:"name"`
				} `json:"tools"`
				NextCursor string `json:"nextCursor"`
			}
			if err := json.Unmarshal(seen.Result, &got); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tl := range got.Tools {
				names = append(names, tl.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.listed, ",") {
				t.Fatalf("listed %v, want %v", names, tt.listed)
			}
			if strings.Contains(tt.result, "nextCursor") && got.NextCursor != "c2" {
				t.Error("the rest of the result was not kept")
			}
			pin, err := store.Get(ctx, "demo", "echo")
			if err != nil || (pin.Changed != "") != tt.changed {
				t.Fatalf("echo's pin %+v, %v; changed want %v", pin, err, tt.changed)
			}
		})
	}
}
