package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ClientOptions configures a Streamable HTTP client connection.
type ClientOptions struct {
	// URL is the MCP endpoint, such as https://gw.example.com/mcp/github.
	URL string
	// HTTPClient sends the requests; http.DefaultClient's settings are not
	// assumed. It must not follow redirects to other hosts with credentials.
	HTTPClient *http.Client
	// Header adds headers, such as credentials, to every request. It is
	// called per request so that tokens can be refreshed.
	Header func(ctx context.Context, h http.Header) error
	// OnUnauthorized is called after a 401 with the request's headers. If it
	// returns nil the request is retried once.
	OnUnauthorized func(ctx context.Context) error
	// Reinitialize makes the client replay the agent's initialize when the
	// server has lost the session (HTTP 404), so the agent never notices a
	// restarted server.
	Reinitialize bool
	// Name is how errors refer to the server ("the gateway").
	Name string
	// MaxMessageBytes bounds each message received.
	MaxMessageBytes int
	Logger          *slog.Logger
	// RetryDelay returns how long to wait before reopening the GET stream
	// after the n-th consecutive failure. Defaults to capped doubling.
	RetryDelay func(n int) time.Duration
}

// Client is a Conn to a server over the Streamable HTTP transport. Requests
// are posted concurrently; notifications and responses are posted in order.
// A request that cannot be delivered is answered with a JSON-RPC error from
// the client itself, so the agent is never left waiting.
type Client struct {
	opts     ClientOptions
	incoming chan *Message
	ctx      context.Context
	cancel   context.CancelFunc
	closed   atomic.Bool

	mu              sync.Mutex
	sessionID       string
	protocolVersion string
	initReq         *Message // the agent's initialize, for replay
	initialized     *Message // the agent's notifications/initialized
	getStarted      bool
	// initPending is closed once an in-flight initialize has its answer;
	// later messages wait for it, since they need its session id.
	initPending chan struct{}

	// inflight counts the requests being posted, by id; cancelled holds
	// the ids of those the agent cancelled, whose unanswered streams end
	// silently. A cancellation of a request not in flight is not kept, and
	// an entry goes when its request's post ends, so both maps are bounded
	// by the requests in flight.
	inflight  map[string]int
	cancelled map[string]bool

	reinitMu sync.Mutex
	reinitN  atomic.Int64
}

// NewClient returns a Client; it does not touch the network until Send.
func NewClient(opts ClientOptions) (*Client, error) {
	if _, err := url.Parse(opts.URL); err != nil || opts.URL == "" {
		return nil, fmt.Errorf("bridge: invalid MCP URL %q", opts.URL)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.Name == "" {
		opts.Name = "the server"
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RetryDelay == nil {
		opts.RetryDelay = func(n int) time.Duration {
			d := 500 * time.Millisecond << min(n, 6)
			return min(d, 30*time.Second)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{opts: opts, incoming: make(chan *Message, 256), ctx: ctx, cancel: cancel}, nil
}

// SessionID returns the current session id, if any.
func (c *Client) SessionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID
}

// Recv returns the next message from the server.
func (c *Client) Recv(ctx context.Context) (*Message, error) {
	select {
	case m := <-c.incoming:
		return m, nil
	case <-c.ctx.Done():
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Send posts m. Requests are posted in the background and their answers
// arrive through Recv; notifications and responses are posted before Send
// returns, which keeps them in order.
func (c *Client) Send(ctx context.Context, m *Message) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if m.Kind == KindRequest && m.Method == "initialize" {
		done := make(chan struct{})
		c.mu.Lock()
		c.initReq, c.initPending = m, done
		c.mu.Unlock()
		c.begin(m)
		go func() {
			defer close(done)
			c.exchange(c.ctx, m)
		}()
		return nil
	}
	c.mu.Lock()
	pending := c.initPending
	if m.Kind == KindNotification && m.Method == "notifications/initialized" {
		c.initialized = m
	}
	if m.Kind == KindNotification && m.Method == "notifications/cancelled" {
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
		}
		if json.Unmarshal(m.Params, &p) == nil && p.RequestID != nil {
			if id := valueKey(p.RequestID); c.inflight[id] > 0 {
				if c.cancelled == nil {
					c.cancelled = map[string]bool{}
				}
				c.cancelled[id] = true
			}
		}
	}
	c.mu.Unlock()
	if pending != nil {
		select {
		case <-pending:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.ctx.Done():
			return ErrClosed
		}
	}
	if m.Kind == KindRequest {
		c.begin(m)
		go c.exchange(c.ctx, m)
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	c.exchange(ctx, m)
	return nil
}

// exchange posts one message and delivers everything the server answers.
func (c *Client) exchange(ctx context.Context, m *Message) {
	if m.Kind == KindRequest {
		defer c.end(m) // Send began it
	}
	answered, err := c.post(ctx, m, true)
	if err != nil {
		c.opts.Logger.Warn("post failed", "to", c.opts.Name, "method", m.Method, "err", err)
	}
	if m.Kind == KindRequest && !answered && !c.takeCancelled(m) {
		msg := fmt.Sprintf("bridge: %s did not answer", c.opts.Name)
		code := CodeUnavailable
		if err != nil {
			code, msg = c.describe(err)
		}
		c.push(NewError(m.ID, code, msg))
	}
}

// begin counts request m as in flight.
func (c *Client) begin(m *Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight == nil {
		c.inflight = map[string]int{}
	}
	c.inflight[m.IDKey()]++
}

// end forgets request m once no post of its id is in flight.
func (c *Client) end(m *Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := m.IDKey()
	if c.inflight[id]--; c.inflight[id] <= 0 {
		delete(c.inflight, id)
		delete(c.cancelled, id)
	}
}

// tracked returns the sizes of the in-flight and cancelled maps, for tests.
func (c *Client) tracked() (inflight, cancelled int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inflight), len(c.cancelled)
}

// takeCancelled reports, once, whether the agent cancelled request m.
func (c *Client) takeCancelled(m *Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancelled[m.IDKey()] {
		delete(c.cancelled, m.IDKey())
		return true
	}
	return false
}

// statusError is an unexpected HTTP status from the server.
type statusError struct {
	status int
	body   *Message // a JSON-RPC error body, if the server sent one
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d", e.status) }

// describe turns a delivery failure into a JSON-RPC error for the agent.
func (c *Client) describe(err error) (int, string) {
	var se *statusError
	if errors.As(err, &se) {
		switch {
		case se.status == http.StatusUnauthorized:
			return CodeUnavailable, fmt.Sprintf("bridge: %s refused the login (HTTP 401): run `bridge login`, then retry", c.opts.Name)
		case se.status == http.StatusForbidden:
			return CodeRefused, fmt.Sprintf("bridge: %s refused access (HTTP 403)", c.opts.Name)
		case se.body != nil && se.body.Error != nil:
			return se.body.Error.Code, se.body.Error.Message
		}
		return CodeUnavailable, fmt.Sprintf("bridge: %s answered HTTP %d", c.opts.Name, se.status)
	}
	var pe PublicError
	if errors.As(err, &pe) {
		return pe.Public()
	}
	if errors.Is(err, context.Canceled) {
		return CodeUnavailable, "bridge: the connection is closing"
	}
	return CodeUnavailable, fmt.Sprintf("bridge: cannot reach %s at %s (%s); check that it is running and reachable, bridge keeps trying on every request",
		c.opts.Name, hostOf(c.opts.URL), shortNetError(err))
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Host
}

// shortNetError names a network failure without the URL (which the
// message already gives) or any header.
func shortNetError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// post sends m and reads the answer. It reports whether the response to a
// request was delivered. retry allows one re-login and one re-initialize.
func (c *Client) post(ctx context.Context, m *Message, retry bool) (bool, error) {
	resp, sentSession, err := c.do(ctx, http.MethodPost, m)
	if err != nil {
		return false, err
	}
	defer releaseBody(resp.Body)
	switch {
	case resp.StatusCode == http.StatusUnauthorized && retry && c.opts.OnUnauthorized != nil:
		drain(resp.Body)
		if err := c.opts.OnUnauthorized(ctx); err != nil {
			return false, err
		}
		return c.post(ctx, m, false)
	case resp.StatusCode == http.StatusNotFound && sentSession != "" && retry && c.opts.Reinitialize:
		drain(resp.Body)
		if err := c.reinitialize(ctx, sentSession); err != nil {
			return false, err
		}
		if m.Kind == KindNotification && m.Method == "notifications/initialized" {
			return true, nil // the replay sent it already
		}
		return c.post(ctx, m, false)
	case resp.StatusCode == http.StatusAccepted:
		drain(resp.Body)
		return false, nil
	case resp.StatusCode >= 300:
		return false, c.statusErr(resp)
	}
	if m.Kind == KindRequest && m.Method == "initialize" {
		c.noteSession(resp)
	}
	return c.readAnswer(ctx, resp, m, c.push)
}

// readAnswer reads a JSON or SSE answer, handing each message to deliver.
// It reports whether the response to m arrived.
func (c *Client) readAnswer(ctx context.Context, resp *http.Response, m *Message, deliver func(*Message)) (bool, error) {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	answered := false
	note := func(msg *Message) {
		if msg.Kind == KindResponse && m != nil && m.Kind == KindRequest && msg.IDKey() == m.IDKey() {
			answered = true
			if m.Method == "initialize" {
				c.noteProtocol(msg)
			}
		}
		deliver(msg)
	}
	switch mt {
	case "text/event-stream":
		er := NewEventReader(resp.Body, c.opts.MaxMessageBytes)
		for !answered {
			ev, err := er.Next()
			if err != nil {
				if err == io.EOF || ctx.Err() != nil {
					return answered, nil
				}
				return answered, err
			}
			if ev.Name != "" && ev.Name != "message" {
				continue
			}
			msgs, err := ParseBatch(ev.Data)
			if err != nil {
				c.opts.Logger.Warn("dropped an invalid message", "from", c.opts.Name, "err", err)
				continue
			}
			for _, msg := range msgs {
				note(msg)
			}
		}
		return answered, nil
	case "application/json":
		body, err := io.ReadAll(io.LimitReader(resp.Body, int64(c.opts.MaxMessageBytes)+1))
		if err != nil {
			return false, err
		}
		if len(body) > c.opts.MaxMessageBytes {
			return false, Errorf(CodeRefused, fmt.Sprintf("bridge: the answer from %s is over the %d byte limit", c.opts.Name, c.opts.MaxMessageBytes), nil)
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return false, nil
		}
		msgs, err := ParseBatch(body)
		if err != nil {
			return false, Errorf(CodeInternalError, fmt.Sprintf("bridge: %s sent an invalid answer", c.opts.Name), err)
		}
		for _, msg := range msgs {
			note(msg)
		}
		return answered, nil
	default:
		drain(resp.Body)
		return false, nil
	}
}

func (c *Client) statusErr(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	se := &statusError{status: resp.StatusCode}
	if m, err := Parse(body); err == nil && m.Kind == KindResponse && m.Error != nil {
		se.body = m
	}
	return se
}

func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10)) }

// releaseGrace bounds how long releaseBody waits for the end of a body.
const releaseGrace = 5 * time.Second

// releaseBody closes a response body once the rest of it, if any, has been
// read, so that the HTTP connection goes back to the pool. A POST answered
// with an SSE stream returns as soon as its response arrives, a moment
// before the server ends the stream; closing it then would throw the
// connection away and make the next request dial a new one. Reading waits
// in the background, at most releaseGrace and 64 KiB, so a stream kept open
// costs a goroutine for a while, never the caller.
func releaseBody(body io.ReadCloser) {
	go func() {
		t := time.AfterFunc(releaseGrace, func() { _ = body.Close() })
		drain(body)
		t.Stop()
		_ = body.Close()
	}()
}

// do sends one HTTP request with the session headers and credentials.
func (c *Client) do(ctx context.Context, method string, m *Message) (*http.Response, string, error) {
	var body io.Reader
	if m != nil {
		body = bytes.NewReader(m.Raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.opts.URL, body)
	if err != nil {
		return nil, "", err
	}
	switch method {
	case http.MethodPost:
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	case http.MethodGet:
		req.Header.Set("Accept", "text/event-stream")
	}
	c.mu.Lock()
	sid, pv := c.sessionID, c.protocolVersion
	c.mu.Unlock()
	if m != nil && m.Kind == KindRequest && m.Method == "initialize" {
		sid, pv = "", ""
	}
	if sid != "" {
		req.Header.Set(HeaderSessionID, sid)
	}
	if pv == "" && m != nil {
		var v string
		if raw, ok := m.ParamsMeta()[metaProtocolVersion]; ok && json.Unmarshal(raw, &v) == nil {
			pv = v
		}
	}
	if pv != "" && pv != "2025-03-26" {
		req.Header.Set(HeaderProtocolVersion, pv)
	}
	if c.opts.Header != nil {
		if err := c.opts.Header(ctx, req.Header); err != nil {
			return nil, "", err
		}
	}
	resp, err := c.opts.HTTPClient.Do(req)
	return resp, sid, redactURLError(err)
}

func (c *Client) noteSession(resp *http.Response) {
	if sid := resp.Header.Get(HeaderSessionID); sid != "" {
		c.mu.Lock()
		c.sessionID = sid
		c.mu.Unlock()
	}
}

func (c *Client) noteProtocol(resp *Message) {
	var r struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if resp.Error != nil || json.Unmarshal(resp.Result, &r) != nil {
		return
	}
	c.mu.Lock()
	c.protocolVersion = r.ProtocolVersion
	start := !c.getStarted && c.sessionID != ""
	c.getStarted = c.getStarted || start
	c.mu.Unlock()
	if start {
		go c.listen()
	}
}

// reinitialize replays the agent's initialize after the server lost the
// session that failed. Concurrent callers share one replay.
func (c *Client) reinitialize(ctx context.Context, failed string) error {
	c.reinitMu.Lock()
	defer c.reinitMu.Unlock()
	if c.closed.Load() {
		// Close's DELETE ends the GET stream with a 404; replaying the
		// initialize then would leave a new session, and its upstream,
		// on the server until its idle timeout.
		return ErrClosed
	}
	c.mu.Lock()
	current, initReq, initialized := c.sessionID, c.initReq, c.initialized
	c.mu.Unlock()
	if current != failed {
		return nil // another request already re-initialized
	}
	if initReq == nil {
		return Errorf(CodeUnavailable, fmt.Sprintf("bridge: %s lost the session and there is no initialize to replay; restart the MCP client", c.opts.Name), nil)
	}
	c.opts.Logger.Info("session lost; re-initializing", "to", c.opts.Name)
	id := json.RawMessage(strconv.Quote("bridge-reinit-" + strconv.FormatInt(c.reinitN.Add(1), 10)))
	replay, err := withID(initReq, id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.sessionID = ""
	c.mu.Unlock()
	ok := false
	defer func() {
		if !ok {
			// The replay failed (the gateway is still restarting, say):
			// keep the lost session as the current one, so the next
			// request meets the 404 again and retries the replay instead
			// of going out with no session at all.
			c.mu.Lock()
			if c.sessionID == "" {
				c.sessionID = failed
			}
			c.mu.Unlock()
		}
	}()
	resp, _, err := c.do(ctx, http.MethodPost, replay)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.statusErr(resp)
	}
	c.noteSession(resp)
	var initResp *Message
	answered, err := c.readAnswer(ctx, resp, replay, func(msg *Message) {
		if msg.Kind == KindResponse && msg.IDKey() == replay.IDKey() {
			initResp = msg // the agent already has its initialize answer
			return
		}
		c.push(msg)
	})
	if err != nil {
		return err
	}
	if !answered || initResp.Error != nil {
		return Errorf(CodeUnavailable, fmt.Sprintf("bridge: %s refused to re-initialize the session", c.opts.Name), nil)
	}
	ok = true
	if initialized != nil {
		r2, _, err := c.do(ctx, http.MethodPost, initialized)
		if err != nil {
			return err
		}
		drain(r2.Body)
		r2.Body.Close()
	}
	return nil
}

// withID returns a copy of a message with another id. Only the id's bytes
// change when Parse located them; otherwise the message is re-encoded.
func withID(m *Message, id json.RawMessage) (*Message, error) {
	if m.idEnd > m.idStart && m.idEnd <= len(m.Raw) {
		b := make([]byte, 0, len(m.Raw)-(m.idEnd-m.idStart)+len(id))
		b = append(append(append(b, m.Raw[:m.idStart]...), id...), m.Raw[m.idEnd:]...)
		return Parse(b)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(m.Raw, &fields); err != nil {
		return nil, err
	}
	fields["id"] = id
	b, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// listen keeps the standalone GET stream open for server-initiated messages,
// reopening it after failures until the client is closed.
func (c *Client) listen() {
	failures := 0
	for c.ctx.Err() == nil {
		resp, sent, err := c.do(c.ctx, http.MethodGet, nil)
		if err == nil {
			switch {
			case resp.StatusCode == http.StatusMethodNotAllowed:
				resp.Body.Close()
				return // the server has no GET stream
			case resp.StatusCode == http.StatusNotFound && sent != "" && c.opts.Reinitialize:
				resp.Body.Close()
				if rerr := c.reinitialize(c.ctx, sent); rerr != nil {
					c.opts.Logger.Debug("re-initialize from the GET stream failed", "err", rerr)
				} else {
					failures = 0
					continue
				}
			case resp.StatusCode == http.StatusOK:
				failures = 0
				_, err = c.readAnswer(c.ctx, resp, nil, c.push)
				resp.Body.Close()
			default:
				resp.Body.Close()
			}
		}
		if c.ctx.Err() != nil {
			return
		}
		if err != nil {
			c.opts.Logger.Debug("GET stream failed", "to", c.opts.Name, "err", err)
		}
		failures++
		select {
		case <-time.After(c.opts.RetryDelay(failures)):
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *Client) push(m *Message) {
	select {
	case c.incoming <- m:
	case <-c.ctx.Done():
	}
}

// Close ends the session on the server (best effort) and the connection.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.SessionID() != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if resp, _, err := c.do(ctx, http.MethodDelete, nil); err == nil {
			drain(resp.Body)
			resp.Body.Close()
		}
		cancel()
	}
	c.cancel()
	return nil
}
