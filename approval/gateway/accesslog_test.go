package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// TestAccessLog runs the access-log stage over a fake next and checks the
// one line it writes per message: who, what, the decision and outcome,
// latency from the injected clock, and never the arguments or results.
func TestAccessLog(t *testing.T) {
	const secretArg, secretResult = "ARG-SECRET-7f3e", "RESULT-SECRET-91ac"
	call := `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"message":"` + secretArg + `"}}}`
	answer := `{"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"` + secretResult + `"}],"isError":true}}`
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { return started.Add(1500 * time.Microsecond) }
	tests := []struct {
		name    string
		msg     string
		request string // the request a response answers
		next    func(m *bridge.Message) (bridge.Verdict, error)
		want    map[string]any
	}{
		{
			name: "forwarded request", msg: call,
			next: func(m *bridge.Message) (bridge.Verdict, error) { return bridge.Verdict{Forward: m}, nil },
			want: map[string]any{"method": "tools/call", "target": "echo", "decision": "forwarded", "id": "5", "kind": "request"},
		},
		{
			name: "answered by the gateway", msg: call,
			next: func(*bridge.Message) (bridge.Verdict, error) {
				return bridge.Verdict{Reply: bridge.NewError([]byte("5"), bridge.CodeRefused, "no")}, nil
			},
			want: map[string]any{"decision": "answered by gateway", "outcome": "error"},
		},
		{
			name: "refused", msg: call,
			next: func(*bridge.Message) (bridge.Verdict, error) { return bridge.Verdict{}, errors.New("audit down") },
			want: map[string]any{"decision": "refused", "err": "audit down"},
		},
		{
			name: "response", msg: answer, request: call,
			next: func(m *bridge.Message) (bridge.Verdict, error) { return bridge.Verdict{Forward: m}, nil },
			want: map[string]any{"kind": "response", "method": "tools/call", "target": "echo", "outcome": "tool_error", "latency_ms": 1.5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			stage := AccessLog(slog.New(slog.NewJSONHandler(&buf, nil)), now)
			calls := 0
			f := stage(bridge.FilterFunc(func(_ context.Context, _ *bridge.Exchange, m *bridge.Message) (bridge.Verdict, error) {
				calls++
				return tt.next(m)
			}))
			m := mustMsg(t, tt.msg)
			x := &bridge.Exchange{
				Session:   &bridge.SessionInfo{ID: "sess-1", Server: "demo", Owner: "00u-alice"},
				Principal: &auth.Identity{Subject: "00u-alice", Email: "alice@example.com"},
				Direction: bridge.FromClient,
			}
			if tt.request != "" {
				x.Direction, x.Request, x.RequestStarted = bridge.FromUpstream, mustMsg(t, tt.request), started
			}
			if _, err := f.Filter(context.Background(), x, m); (err != nil) != (tt.want["err"] != nil) {
				t.Fatalf("err = %v", err)
			}
			if calls != 1 {
				t.Fatalf("next called %d times", calls)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1:\n%s", len(lines), buf.String())
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"msg": "mcp", "session": "sess-1", "server": "demo", "subject": "00u-alice", "email": "alice@example.com"}
			for k, v := range tt.want {
				want[k] = v
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
			if strings.Contains(lines[0], secretArg) || strings.Contains(lines[0], secretResult) {
				t.Errorf("the access log holds arguments or results: %s", lines[0])
			}
		})
	}
}
