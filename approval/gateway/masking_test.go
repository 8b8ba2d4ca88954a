package gateway

import (
	"context"
	"strings"
	"testing"

	"github.com/seed-3f9f6f16/bridge/bridge"
	"github.com/seed-3f9f6f16/bridge/mask"
)

// TestMaskingStage runs upstream messages through the masking middleware:
// protocol fields and keys are masked in place, a finding in a field the
// protocol needs unchanged withholds the message with an error naming the
// field only, and a clean message is forwarded as it came.
func TestMaskingStage(t *testing.T) {
	set, err := mask.New(mask.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pass := bridge.FilterFunc(func(_ context.Context, _ *bridge.Exchange, m *bridge.Message) (bridge.Verdict, error) {
		return bridge.Verdict{Forward: m}, nil
	})
	stage := Masking(set, map[string]string{}, nil)(pass)
	for _, tc := range []struct {
		name, in, want, refused string
	}{
		{"uri and key", `{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"db://4111111111111111","text":"t"}],"k":{"jane.roe@example.com":1}}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"db://[REDACTED:credit_card]","text":"t"}],"k":{"[REDACTED:email]":1}}}`, ""},
		{"clean", `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"fine"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"fine"}]}}`, ""},
		{"progress token", `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"4111111111111111","progress":1}}`,
			"", `"progressToken" field`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := bridge.Parse([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			ctx, note := withNote(context.Background())
			x := &bridge.Exchange{Session: &bridge.SessionInfo{Server: "demo"}, Direction: bridge.FromUpstream}
			v, err := stage.Filter(ctx, x, m)
			if tc.refused != "" {
				pe, ok := err.(bridge.PublicError)
				if !ok {
					t.Fatalf("got %v, %v; want a refusal", v, err)
				}
				code, msg := pe.Public()
				if code != bridge.CodeRefused || !strings.Contains(msg, tc.refused) || strings.Contains(msg, "4111") || strings.Contains(err.Error(), "4111") {
					t.Errorf("refusal %d %q (%v)", code, msg, err)
				}
				if note.Masked.Total() == 0 {
					t.Error("the findings are not noted for the audit record")
				}
				return
			}
			if err != nil || v.Forward == nil || string(v.Forward.Raw) != tc.want {
				t.Fatalf("got %v, %v; want %s", v.Forward, err, tc.want)
			}
		})
	}
}
