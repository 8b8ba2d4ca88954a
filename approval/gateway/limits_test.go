package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge"
	"github.com/seed-3f9f6f16/bridge/bridge/demoserver"
	"github.com/seed-3f9f6f16/bridge/mask"
)

// newTestRecorder is a Recorder on a real bbolt file.
func newTestRecorder(t *testing.T, now func() time.Time) (*Recorder, *audit.Log) {
	t.Helper()
	store, err := audit.OpenBolt(filepath.Join(t.TempDir(), "bridge.db"), audit.BoltOptions{Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	alog, err := audit.Open(store, audit.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close(); store.Close() })
	masks, err := mask.New(mask.Config{})
	if err != nil {
		t.Fatal(err)
	}
	maskFor := func(string) (*mask.Masker, bool) { return masks.Profile("") }
	return NewRecorder(alog, audit.Config{}, maskFor, nil, now, nil), alog
}

func decisions(t *testing.T, alog *audit.Log) []audit.Record {
	t.Helper()
	recs, err := alog.Query(context.Background(), audit.Filter{Kind: audit.KindDecision})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestLimitAuditOncePerWindow: a user refused in a loop is recorded once per
// window, and the next record counts the refusals in between.
func TestLimitAuditOncePerWindow(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	rec, alog := newTestRecorder(t, clock.now)
	la := NewLimitAudit(rec, clock.now)
	alice := &auth.Identity{Subject: "00u-alice", Email: "alice@example.com"}
	le := bridge.NewLimitError("limits.sessions_per_user", http.StatusTooManyRequests, "bridge: refused: you have 16 open sessions")
	for range 100 {
		la.Refused("demo", alice.Subject, alice, le)
	}
	la.Refused("demo", "00u-bob", &auth.Identity{Subject: "00u-bob"}, le)
	la.Refused("demo", alice.Subject, alice, bridge.NewLimitError("limits.streams_per_user", http.StatusTooManyRequests, "streams"))
	if got := decisions(t, alog); len(got) != 3 {
		t.Fatalf("%d records for 102 refusals of three kinds, want 3", len(got))
	}
	clock.advance(limitAuditWindow)
	la.Refused("demo", alice.Subject, alice, le)
	got := decisions(t, alog)
	if len(got) != 4 {
		t.Fatalf("%d records after the window, want 4", len(got))
	}
	last := got[3]
	if last.Rule != "limits.sessions_per_user" || last.Decision != "refused" || last.Identity.Email != "alice@example.com" ||
		last.Server != "demo" || !strings.Contains(last.Outcome, "99 more refusals") {
		t.Errorf("record after the window = %+v", last)
	}
}

// TestRecorderSummarizesClientNotifications: the audit middleware, with a
// fake next stage, stores a client notification the gateway does not act
// on as its size and digest, and the ones it acts on whole.
func TestRecorderSummarizesClientNotifications(t *testing.T) {
	rec, alog := newTestRecorder(t, time.Now)
	forward := bridge.FilterFunc(func(_ context.Context, _ *bridge.Exchange, m *bridge.Message) (bridge.Verdict, error) {
		return bridge.Verdict{Forward: m}, nil
	})
	f := rec.Middleware()(forward)
	info := &bridge.SessionInfo{ID: "s1", Server: "demo"}
	cases := []struct {
		raw       string
		dir       bridge.Direction
		summarize bool
	}{
		{`{"jsonrpc":"2.0","method":"notifications/junk","params":{"pad":"` + strings.Repeat("x", 1<<20) + `"}}`, bridge.FromClient, true},
		{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3,"reason":"` + strings.Repeat("y", 8<<10) + `"}}`, bridge.FromClient, true},
		{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}`, bridge.FromClient, false},
		{`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"hi"}}`, bridge.FromUpstream, false},
	}
	for _, tc := range cases {
		m, err := bridge.Parse([]byte(tc.raw))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Filter(context.Background(), &bridge.Exchange{Session: info, Direction: tc.dir}, m); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := alog.Query(context.Background(), audit.Filter{Kind: audit.KindNotification})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(cases) {
		t.Fatalf("%d records, want %d", len(recs), len(cases))
	}
	for i, r := range recs {
		isSummary := strings.Contains(string(r.Message), `"bridge_summary"`)
		if isSummary != cases[i].summarize || len(r.Message) > 9<<10 {
			t.Errorf("record %d (%s): summary %v, %d bytes: %.120s", i, r.Method, isSummary, len(r.Message), r.Message)
		}
	}
}

// TestGatewayStreamEndsAtTokenExpiry: through the gateway, a GET stream
// ends when the token it was opened with expires; the session stays, and
// a stream opened with a fresh token is served.
func TestGatewayStreamEndsAtTokenExpiry(t *testing.T) {
	upstream := httptest.NewServer(server.NewStreamableHTTPServer(demoserver.New(demoserver.Options{})))
	defer upstream.Close()
	cfg, err := config.Load("gw.yaml", []byte(`
identity: {issuer: "https://issuer.example.com", audience: api://bridge, client_id: cli}
storage: {path: /unused/bridge.db}
audit: {signing_key_file: /unused/key.pem, witness: {file: /unused/heads.jsonl}}
servers:
  demo: {transport: http, url: "`+upstream.URL+`/mcp"}
policy: {default: allow}
`), config.Env{Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	v := &countingVerifier{calls: map[string]int{}, tokens: map[string]*auth.Identity{
		"short": {Subject: "00u-alice", ExpiresAt: now.Add(300 * time.Millisecond)},
		"long":  {Subject: "00u-alice", ExpiresAt: now.Add(time.Hour)},
	}, err: &auth.TokenError{Reason: "unknown"}}
	g, err := New(Options{Config: cfg, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	hs := httptest.NewServer(g.Handler())
	defer hs.Close()
	do := func(method, tok, sid, body string) *http.Response {
		req, _ := http.NewRequest(method, hs.URL+"/mcp/demo", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set(bridge.HeaderSessionID, sid)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	init := do(http.MethodPost, "long", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	io.Copy(io.Discard, init.Body)
	init.Body.Close()
	sid := init.Header.Get(bridge.HeaderSessionID)
	if init.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize = %d", init.StatusCode)
	}
	get := do(http.MethodGet, "short", sid, "")
	defer get.Body.Close()
	if get.StatusCode != http.StatusOK {
		t.Fatalf("GET = %d", get.StatusCode)
	}
	ended := make(chan struct{})
	go func() { io.Copy(io.Discard, get.Body); close(ended) }()
	select {
	case <-ended:
	case <-time.After(20 * time.Second):
		t.Fatal("the GET stream outlived its token")
	}
	again := do(http.MethodGet, "long", sid, "")
	defer again.Body.Close()
	if again.StatusCode != http.StatusOK {
		t.Fatalf("GET with a fresh token = %d", again.StatusCode)
	}
}
