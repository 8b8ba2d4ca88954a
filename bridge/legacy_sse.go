package bridge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// This file holds the legacy HTTP+SSE transport of MCP 2024-11-05, which
// some agents still speak: the client opens GET /sse, the server names a
// message endpoint in an "endpoint" event, the client POSTs each message
// there, and everything the server sends arrives on the SSE stream.

// ServeSSE serves the legacy transport's event stream (GET). messagePath is
// the path the client is told to POST to, which may hold a query; the session
// id is added as a query parameter.
func (s *Server) ServeSSE(w http.ResponseWriter, r *http.Request, messagePath string) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	subject, principal := s.opts.Identify(r)
	release, err := s.opts.Limits.Streams.Acquire(subject)
	if err != nil {
		le, _ := AsLimit(err)
		s.refuse(w, subject, principal, le, nil)
		return
	}
	defer release()
	sess, err := s.open(r.Context(), subject, principal, false)
	if le, ok := AsLimit(err); ok {
		s.refuse(w, subject, principal, le, nil)
		return
	}
	if err != nil {
		s.opts.Logger.Error("upstream dial failed", "server", s.opts.Server, "err", err)
		_, msg := publicMessage(err)
		httpError(w, http.StatusBadGateway, msg)
		return
	}
	s.register(sess)
	defer sess.close("the client closed the SSE stream")
	st := newStream(true)
	if !sess.openGet(st) {
		httpError(w, http.StatusConflict, "session is closed")
		return
	}
	defer sess.closeGet(st)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	sep := "?"
	if strings.Contains(messagePath, "?") {
		sep = "&"
	}
	endpoint := messagePath + sep + "sessionId=" + url.QueryEscape(sess.Info.ID)
	if err := writeEvent(w, Event{Name: "endpoint", Data: []byte(endpoint)}); err != nil {
		return
	}
	if flusher != nil {
		flusher.Flush()
	}
	s.pump(w, r, sess, st, principal)
}

// ServeSSEMessage accepts one message of the legacy transport (POST).
// Answers go out on the session's event stream.
func (s *Server) ServeSSEMessage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	subject, principal := s.opts.Identify(r)
	s.mu.Lock()
	sess := s.sessions[r.URL.Query().Get("sessionId")]
	s.mu.Unlock()
	if sess == nil || sess.Info.Owner != subject || sess.Closed() {
		httpError(w, http.StatusNotFound, "session not found: reconnect to the SSE endpoint")
		return
	}
	msgs, ok := s.readMessages(w, r, subject, principal)
	if !ok {
		return
	}
	sess.touch()
	st := sess.currentGet()
	if st == nil {
		httpError(w, http.StatusNotFound, "session has no open SSE stream")
		return
	}
	for _, m := range msgs {
		if m.Kind == KindRequest {
			if dup := sess.register(st, m); dup {
				sess.deliver(st, NewError(m.ID, CodeInvalidRequest, "a request with this id is already in flight"))
				continue
			}
		}
		go s.fromClient(sess.ctx, sess, principal, m, st)
	}
	w.WriteHeader(http.StatusAccepted)
}

// currentGet returns the session's GET stream.
func (s *Session) currentGet() *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.getStream
}

// register records a request whose response goes to st, without making st a
// POST stream. It reports whether the id is already in flight.
func (s *Session) register(st *stream, req *Message) (dup bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.pending[req.IDKey()]; busy {
		return true
	}
	p := &pendingRequest{req: req, stream: st, started: s.now()}
	if tok := req.ProgressToken(); tok != nil {
		p.progress = valueKey(tok)
		s.progress[p.progress] = st
	}
	s.pending[req.IDKey()] = p
	return false
}

// SSEClientOptions configures a connection to a legacy HTTP+SSE server.
type SSEClientOptions struct {
	URL             string
	HTTPClient      *http.Client
	Header          func(ctx context.Context, h http.Header) error
	MaxMessageBytes int
	Logger          *slog.Logger
}

// sseClient is a Conn to a legacy HTTP+SSE server.
type sseClient struct {
	opts     SSEClientOptions
	endpoint string
	body     io.ReadCloser
	events   *EventReader
	closeMu  sync.Once
}

// DialSSE opens the event stream and waits for the message endpoint. The
// endpoint must be on the same origin as the stream, so credentials in
// Header never go anywhere else.
func DialSSE(ctx context.Context, opts SSEClientOptions) (Conn, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	base, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("bridge: invalid SSE URL: %w", err)
	}
	// The stream outlives ctx, which bounds only the dial.
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, opts.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if opts.Header != nil {
		if err := opts.Header(ctx, req.Header); err != nil {
			return nil, err
		}
	}
	resp, err := opts.HTTPClient.Do(req)
	if err != nil {
		return nil, Errorf(CodeUnavailable, "bridge: the upstream MCP server is unreachable", redactURLError(err))
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, Errorf(CodeUnavailable, fmt.Sprintf("bridge: the upstream MCP server answered HTTP %d", resp.StatusCode), nil)
	}
	c := &sseClient{opts: opts, body: resp.Body, events: NewEventReader(resp.Body, opts.MaxMessageBytes)}
	type result struct {
		ev  Event
		err error
	}
	got := make(chan result, 1)
	go func() {
		for {
			ev, err := c.events.Next()
			if err != nil || ev.Name == "endpoint" {
				got <- result{ev, err}
				return
			}
		}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			resp.Body.Close()
			return nil, Errorf(CodeUnavailable, "bridge: the upstream SSE stream ended before naming its endpoint", r.err)
		}
		ep, err := base.Parse(string(bytes.TrimSpace(r.ev.Data)))
		if err != nil || ep.Scheme != base.Scheme || ep.Host != base.Host {
			resp.Body.Close()
			return nil, Errorf(CodeUnavailable, "bridge: the upstream SSE server named an endpoint on another origin; refused", nil)
		}
		c.endpoint = ep.String()
	case <-ctx.Done():
		resp.Body.Close()
		return nil, ctx.Err()
	}
	return c, nil
}

// Send posts one message to the endpoint.
func (c *sseClient) Send(ctx context.Context, m *Message) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(m.Raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.opts.Header != nil {
		if err := c.opts.Header(ctx, req.Header); err != nil {
			return err
		}
	}
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return redactURLError(err)
	}
	drain(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("upstream answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// Recv returns the next message from the event stream.
func (c *sseClient) Recv(ctx context.Context) (*Message, error) {
	for {
		ev, err := c.events.Next()
		if err != nil {
			return nil, err
		}
		if ev.Name != "" && ev.Name != "message" {
			continue
		}
		m, err := Parse(ev.Data)
		if err != nil {
			c.opts.Logger.Warn("upstream sent an invalid message; skipped", "err", err)
			continue
		}
		return m, nil
	}
}

// Close ends the event stream.
func (c *sseClient) Close() error {
	c.closeMu.Do(func() { c.body.Close() })
	return nil
}
