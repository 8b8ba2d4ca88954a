package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// afterFunc schedules f after d and returns a function that cancels it;
// time.AfterFunc by default, a fake in tests.
type afterFunc func(d time.Duration, f func()) (stop func() bool)

func realAfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// timeoutConn bounds how long the upstream may take to answer each request
// the gateway forwards to it (servers.X.timeout). When the time is up the
// request is answered with a clear error, as if the upstream had sent it,
// so it runs through the pipeline (audited, logged) like any answer; the
// upstream is told the request is cancelled, and its late answer, if one
// comes, is dropped.
//
// Send is safe for concurrent use; Recv must be called from one goroutine,
// as for every bridge.Conn.
type timeoutConn struct {
	bridge.Conn
	server  string
	timeout time.Duration
	after   afterFunc

	mu       sync.Mutex
	pending  map[string]func() bool // request id → timer stop
	expired  map[string]bool        // ids answered by the gateway, whose late answer is dropped
	answers  chan *bridge.Message   // the gateway's timeout answers
	upstream chan recvResult
	pumpOnce sync.Once
	done     chan struct{}
	closed   sync.Once
}

type recvResult struct {
	m   *bridge.Message
	err error
}

// maxExpired bounds the ids remembered for dropping late answers.
const maxExpired = 1024

func newTimeoutConn(c bridge.Conn, server string, timeout time.Duration, after afterFunc) *timeoutConn {
	if after == nil {
		after = realAfterFunc
	}
	return &timeoutConn{Conn: c, server: server, timeout: timeout, after: after,
		pending: map[string]func() bool{}, expired: map[string]bool{},
		answers: make(chan *bridge.Message, 64), upstream: make(chan recvResult), done: make(chan struct{})}
}

// Send forwards m and, for a request, starts its deadline.
func (c *timeoutConn) Send(ctx context.Context, m *bridge.Message) error {
	if m.Kind == bridge.KindRequest {
		key, id, method := m.IDKey(), m.ID, m.Method
		c.mu.Lock()
		if _, busy := c.pending[key]; !busy {
			delete(c.expired, key)
			c.pending[key] = c.after(c.timeout, func() { c.expire(key, id, method) })
		}
		c.mu.Unlock()
	}
	err := c.Conn.Send(ctx, m)
	if err != nil && m.Kind == bridge.KindRequest {
		c.forget(m.IDKey())
	}
	return err
}

func (c *timeoutConn) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stop, ok := c.pending[key]; ok {
		stop()
		delete(c.pending, key)
	}
}

// expire answers a request the upstream has not answered in time.
func (c *timeoutConn) expire(key string, id json.RawMessage, method string) {
	c.mu.Lock()
	if _, ok := c.pending[key]; !ok {
		c.mu.Unlock()
		return
	}
	delete(c.pending, key)
	if len(c.expired) >= maxExpired {
		clear(c.expired)
	}
	c.expired[key] = true
	c.mu.Unlock()
	msg := fmt.Sprintf("bridge: the upstream MCP server %s did not answer %s within %s (servers.%s.timeout), so the gateway cancelled the request; try again, or ask an admin to raise the timeout",
		c.server, method, c.timeout, c.server)
	select {
	case c.answers <- bridge.NewError(id, bridge.CodeUnavailable, msg):
	case <-c.done:
		return
	}
	if n, err := bridge.NewNotification("notifications/cancelled", map[string]any{"requestId": id, "reason": "timed out at the gateway"}); err == nil {
		_ = c.Conn.Send(context.Background(), n)
	}
}

// Recv returns the next upstream message or timeout answer.
func (c *timeoutConn) Recv(ctx context.Context) (*bridge.Message, error) {
	c.pumpOnce.Do(func() { go c.pump() })
	for {
		select {
		case m := <-c.answers:
			return m, nil
		case r, ok := <-c.upstream:
			if !ok {
				return nil, bridge.ErrClosed
			}
			if r.err != nil {
				return nil, r.err
			}
			if r.m.Kind == bridge.KindResponse {
				key := r.m.IDKey()
				c.mu.Lock()
				late := c.expired[key]
				delete(c.expired, key)
				c.mu.Unlock()
				if late {
					continue
				}
				c.forget(key)
			}
			return r.m, nil
		case <-c.done:
			return nil, bridge.ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// pump reads the upstream until it ends; Recv's single reader is it.
func (c *timeoutConn) pump() {
	for {
		m, err := c.Conn.Recv(context.Background())
		select {
		case c.upstream <- recvResult{m, err}:
		case <-c.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// Close stops every deadline and closes the upstream.
func (c *timeoutConn) Close() error {
	c.closed.Do(func() {
		close(c.done)
		c.mu.Lock()
		for k, stop := range c.pending {
			stop()
			delete(c.pending, k)
		}
		c.mu.Unlock()
	})
	return c.Conn.Close()
}
