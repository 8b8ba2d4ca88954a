package bridge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// limitRelay is a relay whose callers name themselves in X-User, with the
// demo upstream in process and every refusal by a limit remembered.
type limitRelay struct {
	srv     *bridge.Server
	hs      *httptest.Server
	dials   atomic.Int32
	open    atomic.Int32 // upstreams not yet closed
	mu      sync.Mutex
	refused []string // "subject limit"
}

// expiring is a principal with a token expiry, as the gateway's is.
type expiring struct {
	subject string
	until   time.Time
}

func newLimitRelay(t *testing.T, limits bridge.ServerLimits, expiry map[string]time.Time) *limitRelay {
	t.Helper()
	lr := &limitRelay{}
	dial := pipeUpstream(t)
	srv, err := bridge.NewServer(bridge.ServerOptions{
		Server: "demo", Limits: limits, KeepAlive: time.Hour,
		Dial: func(ctx context.Context, info *bridge.SessionInfo) (bridge.Conn, error) {
			c, err := dial(ctx, info)
			if err != nil {
				return nil, err
			}
			lr.dials.Add(1)
			lr.open.Add(1)
			return &countingConn{Conn: c, closed: new(atomic.Int32), onClose: func() { lr.open.Add(-1) }}, nil
		},
		Identify: func(r *http.Request) (string, any) {
			u := r.Header.Get("X-User")
			return u, &expiring{subject: u, until: expiry[u]}
		},
		Expiry: func(p any) time.Time { return p.(*expiring).until },
		OnLimit: func(subject string, _ any, le *bridge.LimitError) {
			lr.mu.Lock()
			lr.refused = append(lr.refused, subject+" "+le.Limit)
			lr.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	lr.srv = srv
	lr.hs = httptest.NewServer(srv)
	t.Cleanup(func() { lr.hs.Close(); srv.Close() })
	return lr
}

func (lr *limitRelay) refusals() []string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return append([]string(nil), lr.refused...)
}

// do sends one request as user and returns the status and body.
func (lr *limitRelay) do(t *testing.T, method, user, session, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, lr.hs.URL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-User", user)
	if session != "" {
		req.Header.Set(bridge.HeaderSessionID, session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func (lr *limitRelay) initialize(t *testing.T, user string) (int, string, string) {
	t.Helper()
	status, h, body := lr.do(t, http.MethodPost, user, "", initBody)
	return status, h.Get(bridge.HeaderSessionID), body
}

// refusal decodes a JSON-RPC error body.
func refusal(t *testing.T, body string) (id string, code int, msg string) {
	t.Helper()
	var e struct {
		ID    json.RawMessage `json:"id"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("refusal body %q: %v", body, err)
	}
	return string(e.ID), e.Error.Code, e.Error.Message
}

// waitFor polls cond; the bound only stops a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settleGoroutines waits until the goroutine count is back to base.
func settleGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSessionBudgetPerUserAndTotal(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		sessions := bridge.NewBudget("open sessions", "sessions", 2, 3, "close one", "wait")
		lr := newLimitRelay(t, bridge.ServerLimits{Sessions: sessions}, nil)
		var aliceIDs []string
		for range 2 {
			status, sid, body := lr.initialize(t, "alice")
			if status != http.StatusOK || sid == "" {
				t.Fatalf("initialize = %d %s", status, body)
			}
			aliceIDs = append(aliceIDs, sid)
		}
		// The cap is reached: the next attempt is refused, clearly.
		status, h, body := lr.do(t, http.MethodPost, "alice", "", initBody)
		id, code, msg := refusal(t, body)
		if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" || id != "1" || code != bridge.CodeRefused ||
			!strings.Contains(msg, "limits.sessions_per_user") || !strings.Contains(msg, "close one") {
			t.Fatalf("third session of alice = %d %q", status, body)
		}
		// Nothing else is disturbed: alice's sessions work, bob may open one.
		if status, _, body := lr.do(t, http.MethodPost, "alice", aliceIDs[0], `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); status != http.StatusOK || !strings.Contains(body, "echo") {
			t.Fatalf("alice's session after the refusal: %d %s", status, body)
		}
		if status, _, body := lr.initialize(t, "bob"); status != http.StatusOK {
			t.Fatalf("bob = %d %s", status, body)
		}
		// The gateway is full: carol is refused by the total, with 503.
		status, _, body = lr.do(t, http.MethodPost, "carol", "", initBody)
		if _, _, msg := refusal(t, body); status != http.StatusServiceUnavailable || !strings.Contains(msg, "limits.sessions ") {
			t.Fatalf("carol = %d %s", status, body)
		}
		// Ending a session frees its unit.
		if status, _, _ := lr.do(t, http.MethodDelete, "alice", aliceIDs[1], ""); status != http.StatusNoContent {
			t.Fatalf("DELETE = %d", status)
		}
		if status, _, body := lr.initialize(t, "alice"); status != http.StatusOK {
			t.Fatalf("alice after DELETE = %d %s", status, body)
		}
		want := []string{"alice limits.sessions_per_user", "carol limits.sessions"}
		if got := lr.refusals(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("refusals reported = %v, want %v", got, want)
		}
		lr.srv.Close()
		waitFor(t, "every upstream to close", func() bool { return lr.open.Load() == 0 })
		if mine, total := sessions.InUse("alice"); mine != 0 || total != 0 {
			t.Errorf("after Close the budget holds %d of alice's, %d in all", mine, total)
		}
		lr.hs.Close()
	}()
	http.DefaultClient.CloseIdleConnections()
	settleGoroutines(t, base)
}

// statelessCall is a 2026-07-28 request: no session, version in _meta.
func statelessCall(id int, msg string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"message":%q},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}}}}`, id, msg)
}

func TestStatelessRequestsReuseUpstreams(t *testing.T) {
	sessions := bridge.NewBudget("open sessions", "sessions", 3, 10, "", "")
	lr := newLimitRelay(t, bridge.ServerLimits{Sessions: sessions, StatelessPool: 2, StatelessIdleTimeout: time.Hour}, nil)
	// One after another, every request uses the same id, as stateless
	// clients do: one upstream serves them all.
	for i := range 10 {
		status, _, body := lr.do(t, http.MethodPost, "alice", "", statelessCall(1, fmt.Sprint("m", i)))
		if status != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`"m%d"`, i)) {
			t.Fatalf("stateless call %d = %d %s", i, status, body)
		}
	}
	if n := lr.dials.Load(); n != 1 {
		t.Fatalf("10 sequential stateless requests started %d upstreams, want 1", n)
	}
	// Concurrent ones take more, at most the session budget; the pool keeps
	// at most StatelessPool of them once they are done.
	var wg sync.WaitGroup
	var refused atomic.Int32
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, body := lr.do(t, http.MethodPost, "alice", "", statelessCall(i, "c"))
			switch {
			case status == http.StatusTooManyRequests && strings.Contains(body, "limits.sessions_per_user"):
				refused.Add(1)
			case status != http.StatusOK:
				t.Errorf("concurrent stateless call = %d %s", status, body)
			}
		}()
	}
	wg.Wait()
	if n := lr.open.Load(); n > 2 || lr.srv.PooledCount() > 2 {
		t.Errorf("after the burst %d upstreams are open, %d pooled; want at most 2", n, lr.srv.PooledCount())
	}
	if mine, _ := sessions.InUse("alice"); mine > 2 {
		t.Errorf("alice holds %d session units with nothing in flight", mine)
	}
	// Bob gets his own upstream, never alice's.
	before := lr.dials.Load()
	if status, _, _ := lr.do(t, http.MethodPost, "bob", "", statelessCall(1, "b")); status != http.StatusOK {
		t.Fatal("bob's stateless call failed")
	}
	if lr.dials.Load() != before+1 {
		t.Error("bob's request did not start its own upstream")
	}
	lr.srv.Close()
	waitFor(t, "pooled upstreams to close", func() bool { return lr.open.Load() == 0 })
	if _, total := sessions.InUse(""); total != 0 {
		t.Errorf("after Close the session budget holds %d", total)
	}
}

// TestStatelessPoolEndsUpstreamsWithWorkInFlight: an upstream whose request
// was abandoned is not reused, so a late answer cannot reach a later request.
func TestStatelessPoolEndsUpstreamsWithWorkInFlight(t *testing.T) {
	lr := newLimitRelay(t, bridge.ServerLimits{StatelessPool: 2, StatelessIdleTimeout: time.Hour}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, lr.hs.URL, strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow_count","arguments":{"n":100000},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-User", "alice")
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "the slow call's upstream", func() bool { return lr.open.Load() == 1 })
	cancel()
	<-errc
	waitFor(t, "the abandoned upstream to close", func() bool { return lr.open.Load() == 0 })
	if n := lr.srv.PooledCount(); n != 0 {
		t.Errorf("pooled %d upstreams with work in flight", n)
	}
}

// TestStatelessPoolHonoursExpiry: a pooled upstream started with a token
// that has since expired is not reused.
func TestStatelessPoolHonoursExpiry(t *testing.T) {
	expiry := map[string]time.Time{"alice": time.Now().Add(-time.Second)}
	lr := newLimitRelay(t, bridge.ServerLimits{StatelessPool: 2, StatelessIdleTimeout: time.Hour}, expiry)
	for i := range 2 {
		if status, _, body := lr.do(t, http.MethodPost, "alice", "", statelessCall(1, "x")); status != http.StatusOK {
			t.Fatalf("call %d = %d %s", i, status, body)
		}
	}
	if n := lr.dials.Load(); n != 2 {
		t.Fatalf("upstreams started = %d, want 2 (the expired one not reused)", n)
	}
}

func TestStreamBudget(t *testing.T) {
	streams := bridge.NewBudget("open streams", "streams", 1, 10, "wait", "")
	lr := newLimitRelay(t, bridge.ServerLimits{Streams: streams}, nil)
	_, sid, _ := lr.initialize(t, "alice")
	// The GET stream takes alice's only unit.
	get := openGet(t, lr, "alice", sid)
	defer get.Body.Close()
	status, _, body := lr.do(t, http.MethodPost, "alice", sid, `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`)
	if id, _, msg := refusal(t, body); status != http.StatusTooManyRequests || id != "7" || !strings.Contains(msg, "limits.streams_per_user") {
		t.Fatalf("POST with the stream budget used = %d %s", status, body)
	}
	// An initialize refused for want of a stream starts no session.
	dials := lr.dials.Load()
	if status, h, _ := lr.do(t, http.MethodPost, "alice", "", initBody); status != http.StatusTooManyRequests || h.Get(bridge.HeaderSessionID) != "" {
		t.Fatalf("initialize with the stream budget used = %d, session %q", status, h.Get(bridge.HeaderSessionID))
	}
	if lr.dials.Load() != dials || lr.srv.SessionCount() != 1 {
		t.Errorf("a refused initialize started an upstream or a session")
	}
	// Notifications open no stream and still pass.
	if status, _, _ := lr.do(t, http.MethodPost, "alice", sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); status != http.StatusAccepted {
		t.Fatalf("notification = %d", status)
	}
	get.Body.Close()
	waitFor(t, "the GET stream's unit to return", func() bool { mine, _ := streams.InUse("alice"); return mine == 0 })
	if status, _, body := lr.do(t, http.MethodPost, "alice", sid, `{"jsonrpc":"2.0","id":8,"method":"tools/list"}`); status != http.StatusOK {
		t.Fatalf("POST after the stream closed = %d %s", status, body)
	}
}

func openGet(t *testing.T, lr *limitRelay, user, sid string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, lr.hs.URL, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-User", user)
	req.Header.Set(bridge.HeaderSessionID, sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET = %d %s", resp.StatusCode, b)
	}
	return resp
}

// streamEnded reads a stream to its end in the background.
func streamEnded(resp *http.Response) <-chan struct{} {
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, resp.Body); close(done) }()
	return done
}

// TestGetStreamEndsWhenItsTokenExpires: the stream opened with a token that
// expires ends then; one opened with a longer-lived token stays open, and
// the session outlives its stream.
func TestGetStreamEndsWhenItsTokenExpires(t *testing.T) {
	expiry := map[string]time.Time{"alice": time.Now().Add(200 * time.Millisecond), "bob": time.Now().Add(time.Hour)}
	lr := newLimitRelay(t, bridge.ServerLimits{}, expiry)
	_, aliceSID, _ := lr.initialize(t, "alice")
	_, bobSID, _ := lr.initialize(t, "bob")
	bob := openGet(t, lr, "bob", bobSID)
	defer bob.Body.Close()
	bobDone := streamEnded(bob)
	alice := openGet(t, lr, "alice", aliceSID)
	defer alice.Body.Close()
	select {
	case <-streamEnded(alice):
	case <-time.After(20 * time.Second):
		t.Fatal("alice's GET stream outlived her token")
	}
	select {
	case <-bobDone:
		t.Fatal("bob's stream ended with alice's token")
	default:
	}
	if lr.srv.SessionCount() != 2 {
		t.Errorf("sessions = %d, want both still open", lr.srv.SessionCount())
	}
}

func TestIdleGetStreamEnds(t *testing.T) {
	lr := newLimitRelay(t, bridge.ServerLimits{StreamIdleTimeout: 100 * time.Millisecond}, nil)
	_, sid, _ := lr.initialize(t, "alice")
	get := openGet(t, lr, "alice", sid)
	defer get.Body.Close()
	select {
	case <-streamEnded(get):
	case <-time.After(20 * time.Second):
		t.Fatal("an idle GET stream stayed open")
	}
	if lr.srv.SessionCount() != 1 {
		t.Error("the session ended with its idle stream")
	}
}

// TestSlowBodyIsRefused: a client that sends its headers and then trickles
// its body gets 408 naming the limit; others are served meanwhile.
func TestSlowBodyIsRefused(t *testing.T) {
	lr := newLimitRelay(t, bridge.ServerLimits{BodyReadTimeout: 200 * time.Millisecond}, nil)
	conn, err := net.Dial("tcp", lr.hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nX-User: mallory\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: %d\r\n\r\n{\"jsonrpc\":", len(initBody))
	// Meanwhile another client is served.
	if status, _, body := lr.initialize(t, "alice"); status != http.StatusOK {
		t.Fatalf("alice = %d %s", status, body)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if _, code, msg := refusal(t, string(b)); resp.StatusCode != http.StatusRequestTimeout || code != bridge.CodeRefused || !strings.Contains(msg, "limits.body_read_timeout") {
		t.Fatalf("slow body = %d %s", resp.StatusCode, b)
	}
	if got := lr.refusals(); len(got) != 1 || got[0] != "mallory limits.body_read_timeout" {
		t.Errorf("refusals = %v", got)
	}
}
