package bridge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// chanConn is an in-memory upstream: Recv yields what the test feeds,
// Send keeps what the relay sends.
type chanConn struct {
	in   chan *Message
	mu   sync.Mutex
	sent []*Message
	done chan struct{}
	once sync.Once
}

func newChanConn() *chanConn {
	return &chanConn{in: make(chan *Message, 512), done: make(chan struct{})}
}

func (c *chanConn) Send(_ context.Context, m *Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, m)
	return nil
}

func (c *chanConn) Recv(ctx context.Context) (*Message, error) {
	select {
	case m := <-c.in:
		return m, nil
	case <-c.done:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *chanConn) Close() error { c.once.Do(func() { close(c.done) }); return nil }

func (c *chanConn) sentCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sent)
}

func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServerRequestsAreBounded: an upstream that sends requests the client
// never answers cannot grow the session beyond maxServerRequests; beyond
// it each request is answered with an error at once.
func TestServerRequestsAreBounded(t *testing.T) {
	up := newChanConn()
	sess := newSession(&SessionInfo{ID: "s", Server: "demo"}, up, PassThrough, slog.New(slog.DiscardHandler), time.Now)
	sess.start()
	defer sess.close("test over")
	const extra = 10
	for i := range maxServerRequests + extra {
		m, err := NewRequest([]byte(fmt.Sprint(i+1)), "roots/list", nil)
		if err != nil {
			t.Fatal(err)
		}
		up.in <- m
	}
	pollUntil(t, "the refusals", func() bool { return up.sentCount() == extra })
	sess.mu.Lock()
	n := len(sess.serverReqs)
	sess.mu.Unlock()
	if n != maxServerRequests {
		t.Errorf("server requests kept = %d, want %d", n, maxServerRequests)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, m := range up.sent {
		if m.Error == nil || m.Error.Code != CodeRefused {
			t.Errorf("refusal sent upstream = %s", m.Raw)
		}
	}
}

// TestClientCancellationsAreBounded: cancellations of requests that are not
// in flight are not kept, and none is kept once its request is done.
func TestClientCancellationsAreBounded(t *testing.T) {
	hold := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := Parse(mustRead(r.Body))
		if err != nil || m.Kind != KindRequest {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		if m.Method == "slow" {
			<-hold // answered never: the stream ends empty
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(NewError(m.ID, CodeMethodNotFound, "no").Raw)
	}))
	defer hs.Close()
	c, err := NewClient(ClientOptions{URL: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	send := func(raw string) {
		t.Helper()
		m, err := Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 500 { // cancellations of ids never sent
		send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":%d}}`, 10000+i))
	}
	send(`{"jsonrpc":"2.0","id":1,"method":"fast"}`)
	if m, err := c.Recv(ctx); err != nil || string(m.ID) != "1" {
		t.Fatalf("Recv = %v, %v", m, err)
	}
	// The answer reaches Recv just before its post stops tracking it.
	pollUntil(t, "request 1 to end", func() bool { i, _ := c.tracked(); return i == 0 })
	send(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`) // after its answer
	send(`{"jsonrpc":"2.0","id":2,"method":"slow"}`)
	send(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}`)
	if inflight, cancelled := c.tracked(); inflight != 1 || cancelled != 1 {
		t.Errorf("while request 2 is in flight: inflight %d, cancelled %d; want 1, 1", inflight, cancelled)
	}
	close(hold)
	pollUntil(t, "request 2 to end", func() bool { i, _ := c.tracked(); return i == 0 })
	if _, cancelled := c.tracked(); cancelled != 0 {
		t.Errorf("cancellations kept after every request ended: %d", cancelled)
	}
	select {
	case m := <-c.incoming:
		t.Errorf("the cancelled request was answered to the agent: %s", m.Raw)
	default:
	}
}

func mustRead(r io.Reader) []byte {
	b, _ := io.ReadAll(r)
	return b
}
