package gateway

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// chanConn is an in-memory upstream: what the gateway sends arrives on
// sent, what the test puts on recv is what the gateway reads.
type chanConn struct {
	sent      chan *bridge.Message
	recv      chan *bridge.Message
	closeOnce sync.Once
	closed    chan struct{}
}

func newChanConn() *chanConn {
	return &chanConn{sent: make(chan *bridge.Message, 16), recv: make(chan *bridge.Message, 16), closed: make(chan struct{})}
}

func (c *chanConn) Send(_ context.Context, m *bridge.Message) error { c.sent <- m; return nil }
func (c *chanConn) Recv(ctx context.Context) (*bridge.Message, error) {
	select {
	case m := <-c.recv:
		return m, nil
	case <-c.closed:
		return nil, bridge.ErrClosed
	}
}
func (c *chanConn) Close() error { c.closeOnce.Do(func() { close(c.closed) }); return nil }

// fakeTimers fires deadlines when the test says.
type fakeTimers struct {
	mu      sync.Mutex
	fns     []func()
	stopped int
}

func (f *fakeTimers) after(_ time.Duration, fn func()) func() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fns = append(f.fns, fn)
	return func() bool { f.mu.Lock(); f.stopped++; f.mu.Unlock(); return true }
}

func (f *fakeTimers) fire(i int) {
	f.mu.Lock()
	fn := f.fns[i]
	f.mu.Unlock()
	fn()
}

func mustMsg(t *testing.T, s string) *bridge.Message {
	t.Helper()
	m, err := bridge.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTimeoutConn(t *testing.T) {
	ctx := context.Background()
	req := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"hang"}}`
	answer := `{"jsonrpc":"2.0","id":7,"result":{"content":[]}}`
	tests := []struct {
		name   string
		expire bool
	}{
		{name: "answered in time", expire: false},
		{name: "no answer in time", expire: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, timers := newChanConn(), &fakeTimers{}
			c := newTimeoutConn(up, "slow", 30*time.Second, timers.after)
			defer c.Close()
			if err := c.Send(ctx, mustMsg(t, req)); err != nil {
				t.Fatal(err)
			}
			<-up.sent
			// A notification is never timed.
			if err := c.Send(ctx, mustMsg(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)); err != nil {
				t.Fatal(err)
			}
			<-up.sent
			if len(timers.fns) != 1 {
				t.Fatalf("%d deadlines, want 1 (requests only)", len(timers.fns))
			}
			if !tt.expire {
				up.recv <- mustMsg(t, answer)
				m, err := c.Recv(ctx)
				if err != nil || m.Kind != bridge.KindResponse || m.Error != nil {
					t.Fatalf("Recv = %+v, %v", m, err)
				}
				if timers.stopped != 1 {
					t.Errorf("the deadline of an answered request was not stopped")
				}
				timers.fire(0) // a timer that fires anyway does nothing
				select {
				case m := <-c.answers:
					t.Errorf("an answered request was answered again: %+v", m)
				default:
				}
				return
			}
			timers.fire(0)
			m, err := c.Recv(ctx)
			if err != nil || m.Error == nil || string(m.ID) != "7" {
				t.Fatalf("Recv = %+v, %v; want the timeout error for id 7", m, err)
			}
			for _, want := range []string{"slow", "tools/call", "30s", "servers.slow.timeout"} {
				if !strings.Contains(m.Error.Message, want) {
					t.Errorf("timeout error %q does not name %q", m.Error.Message, want)
				}
			}
			cancel := <-up.sent
			var p struct {
				RequestID json.RawMessage `json:"requestId"`
			}
			if cancel.Method != "notifications/cancelled" || json.Unmarshal(cancel.Params, &p) != nil || string(p.RequestID) != "7" {
				t.Errorf("the upstream was not told: %s %s", cancel.Method, cancel.Params)
			}
			// The late answer is dropped; the next message comes through.
			up.recv <- mustMsg(t, answer)
			up.recv <- mustMsg(t, `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}`)
			if m, err := c.Recv(ctx); err != nil || m.Kind != bridge.KindNotification {
				t.Errorf("after the late answer, Recv = %+v, %v", m, err)
			}
		})
	}
}

func TestTimeoutConnCloseEndsRecv(t *testing.T) {
	up := newChanConn()
	c := newTimeoutConn(up, "s", time.Minute, (&fakeTimers{}).after)
	done := make(chan error, 1)
	go func() { _, err := c.Recv(context.Background()); done <- err }()
	c.Close()
	if err := <-done; err == nil {
		t.Fatal("Recv returned no error after Close")
	}
}
