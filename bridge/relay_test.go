package bridge_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/seed-3f9f6f16/bridge/bridge"
	"github.com/seed-3f9f6f16/bridge/bridge/demoserver"
)

// pipeUpstream runs the demo server in-process behind a StreamConn, as a
// stdio subprocess would be.
func pipeUpstream(t testing.TB) func(context.Context, *bridge.SessionInfo) (bridge.Conn, error) {
	return func(context.Context, *bridge.SessionInfo) (bridge.Conn, error) {
		toServerR, toServerW := io.Pipe()
		fromServerR, fromServerW := io.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		stdio := server.NewStdioServer(demoserver.New(demoserver.Options{StepDelay: 10 * time.Millisecond}))
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = stdio.Listen(ctx, toServerR, fromServerW)
			fromServerW.Close()
		}()
		return bridge.NewStreamConn(fromServerR, toServerW, bridge.StreamOptions{Closer: closerFunc(func() error {
			cancel()
			toServerW.Close()
			toServerR.Close()
			<-done
			return nil
		})}), nil
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// newRelay serves the demo upstream through a bridge.Server on loopback.
func newRelay(t testing.TB, f bridge.Filter) (*bridge.Server, *httptest.Server) {
	t.Helper()
	srv, err := bridge.NewServer(bridge.ServerOptions{Server: "demo", Dial: pipeUpstream(t), Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return srv, hs
}

func legacyClient(t testing.TB, url string, opts ...client.ClientOption) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithContinuousListening())
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]client.ClientOption{client.WithProtocolVersion("2025-11-25"), client.WithLegacyProtocolOnly()}, opts...)
	c := client.NewClient(tr, opts...)
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = "2025-11-25"
	req.Params.ClientInfo = mcp.Implementation{Name: "relay-test", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func callText(t testing.TB, c *client.Client, tool string, args map[string]any) string {
	t.Helper()
	res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool, Arguments: args}})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	var b strings.Builder
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func TestRelayToolsAndProgress(t *testing.T) {
	_, hs := newRelay(t, nil)
	c := legacyClient(t, hs.URL)
	tools, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) < 5 {
		t.Fatalf("tools/list returned %d tools", len(tools.Tools))
	}
	if got := callText(t, c, "echo", map[string]any{"message": "hi"}); got != "hi" {
		t.Fatalf("echo = %q", got)
	}
	var mu sync.Mutex
	var progress []float64
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			mu.Lock()
			progress = append(progress, n.Params.AdditionalFields["progress"].(float64))
			mu.Unlock()
		}
	})
	req := mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "slow_count", Arguments: map[string]any{"n": 3}}}
	req.Params.Meta = &mcp.Meta{ProgressToken: "p1"}
	if _, err := c.CallTool(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	// mcp-go may write its last progress just after its result.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(progress)
		mu.Unlock()
		if n >= 3 {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) != 3 || progress[2] != 3 {
		t.Fatalf("progress = %v, want [1 2 3]", progress)
	}
}

func TestRelaySampling(t *testing.T) {
	_, hs := newRelay(t, nil)
	c := legacyClient(t, hs.URL, client.WithSamplingHandler(samplerFunc(func(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
		return &mcp.CreateMessageResult{Model: "test", SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("forty-two")}}, nil
	})))
	if got := callText(t, c, "ask_model", map[string]any{"question": "meaning?"}); got != "the model said: forty-two" {
		t.Fatalf("ask_model = %q", got)
	}
}

type samplerFunc func(context.Context, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error)

func (f samplerFunc) CreateMessage(ctx context.Context, r mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return f(ctx, r)
}

// TestRelayIdleSessionsEnd: a session with nothing open for IdleTimeout is
// ended and its upstream closed; DELETE ends one at once.
func TestRelayIdleSessionsEnd(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var closed atomic.Int32
	dial := pipeUpstream(t)
	srv, err := bridge.NewServer(bridge.ServerOptions{
		Server: "demo", IdleTimeout: 30 * time.Minute, Now: clock,
		Dial: func(ctx context.Context, info *bridge.SessionInfo) (bridge.Conn, error) {
			c, err := dial(ctx, info)
			return &countingConn{Conn: c, closed: &closed}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	c := legacyClient(t, hs.URL)
	_ = c
	if srv.SessionCount() != 1 {
		t.Fatalf("sessions = %d", srv.SessionCount())
	}
	c.Close() // ends the GET stream and sends DELETE
	for deadline := time.Now().Add(10 * time.Second); srv.SessionCount() != 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
	}
	if srv.SessionCount() != 0 || closed.Load() != 1 {
		t.Fatalf("after DELETE: %d sessions, %d upstreams closed", srv.SessionCount(), closed.Load())
	}

	// A session with no stream open (only an initialize was posted).
	resp, err := http.Post(hs.URL, "application/json", strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if srv.SessionCount() != 1 {
		t.Fatalf("sessions = %d", srv.SessionCount())
	}
	if n := srv.ReapIdle(); n != 0 {
		t.Errorf("reaped %d fresh sessions", n)
	}
	mu.Lock()
	now = now.Add(31 * time.Minute)
	mu.Unlock()
	if n := srv.ReapIdle(); n != 1 || srv.SessionCount() != 0 || closed.Load() != 2 {
		t.Fatalf("after idling: reaped %d, %d sessions, %d upstreams closed", n, srv.SessionCount(), closed.Load())
	}
}

type countingConn struct {
	bridge.Conn
	closed  *atomic.Int32
	onClose func()
	once    sync.Once
}

func (c *countingConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.closed.Add(1)
		if c.onClose != nil {
			c.onClose()
		}
	})
	return err
}

// TestRelayCancelIDWithSpace: ids are matched in their compact JSON form,
// so cancelling a request whose string id holds a space ends its stream.
func TestRelayCancelIDWithSpace(t *testing.T) {
	_, hs := newRelay(t, nil)
	post := func(session, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, hs.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set(bridge.HeaderSessionID, session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	init := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	io.Copy(io.Discard, init.Body)
	init.Body.Close()
	sid := init.Header.Get(bridge.HeaderSessionID)
	post(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`).Body.Close()

	call := post(sid, `{"jsonrpc":"2.0","id":"req 1","method":"tools/call","params":{"name":"slow_count","arguments":{"n":100000}}}`)
	defer call.Body.Close()
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, call.Body); close(done) }()
	post(sid, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"req 1"}}`).Body.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled request's stream did not end")
	}
}
