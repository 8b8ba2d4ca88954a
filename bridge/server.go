package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Header names of the Streamable HTTP transport.
const (
	HeaderSessionID       = "Mcp-Session-Id"
	HeaderProtocolVersion = "Mcp-Protocol-Version"
)

// StatelessProtocolVersion is the first MCP revision without initialize or
// sessions; each request carries its version in params._meta.
const StatelessProtocolVersion = "2026-07-28"

// metaProtocolVersion is the _meta key a stateless request names its version by.
const metaProtocolVersion = "io.modelcontextprotocol/protocolVersion"

// ServerOptions configures a Streamable HTTP server.
type ServerOptions struct {
	// Server names the upstream, for SessionInfo and logs.
	Server string
	// Dial opens the upstream half of a new session. It is called once per
	// session, and once per stateless request.
	Dial func(ctx context.Context, info *SessionInfo) (Conn, error)
	// Identify returns who sent r: the subject that sessions are bound to
	// and the verified identity passed to the Filter. The gateway's
	// authentication middleware has already run. Nil means anonymous.
	Identify func(r *http.Request) (subject string, principal any)
	// Filter sees every message. Nil forwards everything.
	Filter Filter
	// MaxMessageBytes bounds a request body and every message.
	MaxMessageBytes int
	// KeepAlive is the interval of SSE comments on idle streams.
	KeepAlive time.Duration
	// IdleTimeout ends sessions with nothing open for this long. Zero keeps
	// them until DELETE or the upstream ends.
	IdleTimeout time.Duration
	// Logger receives diagnostics; never message bodies.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OnSession, if set, is told when a session starts and ends (with why).
	// Stateless requests have no session and do not call it.
	OnSession func(info *SessionInfo, started bool, reason string)
	// Limits bound the sessions, streams and request bodies of callers.
	Limits ServerLimits
	// OnLimit, if set, is told of each request a limit refused, with the
	// caller's subject and verified identity (the gateway audits them).
	OnLimit func(subject string, principal any, err *LimitError)
	// Expiry, if set, returns when a verified identity stops being valid
	// (its token's expiry): an event stream opened with it ends then, and
	// a pooled stateless upstream started with it is not reused after.
	// The zero time means never.
	Expiry func(principal any) time.Time
}

// Server serves one upstream over the MCP Streamable HTTP transport
// (protocol versions 2025-03-26 through 2026-07-28).
type Server struct {
	opts ServerOptions

	mu       sync.Mutex
	sessions map[string]*Session
	// pool holds idle upstreams of stateless requests, by subject, at most
	// Limits.StatelessPool each.
	pool   map[string][]pooled
	closed bool
}

// NewServer returns a Server with secure defaults filled in.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Dial == nil {
		return nil, errors.New("bridge: ServerOptions.Dial is required")
	}
	if opts.Identify == nil {
		opts.Identify = func(*http.Request) (string, any) { return "", nil }
	}
	if opts.Filter == nil {
		opts.Filter = PassThrough
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{opts: opts, sessions: map[string]*Session{}, pool: map[string][]pooled{}}, nil
}

// ServeHTTP implements the transport's POST, GET and DELETE.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		s.servePost(w, r)
	case http.MethodGet:
		s.serveGet(w, r)
	case http.MethodDelete:
		s.serveDelete(w, r)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

// httpError writes a JSON-RPC error body with an HTTP status, as MCP
// clients expect for transport-level failures.
func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	code := CodeInvalidRequest
	if status == http.StatusRequestEntityTooLarge {
		code = CodeRefused
	}
	_, _ = w.Write(NewError(nil, code, msg).Raw)
	_, _ = w.Write([]byte("\n"))
}

func acceptsType(r *http.Request, typ string) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && (mt == typ || mt == "*/*") {
			return true
		}
	}
	return false
}

// lookup returns the session named by the request, or why not.
func (s *Server) lookup(r *http.Request, subject string) (*Session, int, string) {
	id := r.Header.Get(HeaderSessionID)
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	// A session of another subject is reported exactly like a missing one.
	if sess == nil || sess.Info.Owner != subject || sess.Closed() {
		return nil, http.StatusNotFound, "session not found: start a new one with initialize"
	}
	return sess, 0, ""
}

func (s *Server) servePost(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" {
			httpError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
			return
		}
	}
	subject, principal := s.opts.Identify(r)
	msgs, ok := s.readMessages(w, r, subject, principal)
	if !ok {
		return
	}

	// A POST holding requests is answered on a stream, which takes its
	// unit before any session or upstream is started for it.
	if hasRequest(msgs) {
		release, err := s.opts.Limits.Streams.Acquire(subject)
		if err != nil {
			le, _ := AsLimit(err)
			s.refuse(w, subject, principal, le, singleID(msgs))
			return
		}
		defer release()
	}

	var sess *Session
	var err error
	created := false
	switch {
	case r.Header.Get(HeaderSessionID) != "":
		var status int
		var msg string
		if sess, status, msg = s.lookup(r, subject); sess == nil {
			httpError(w, status, msg)
			return
		}
	case hasInitialize(msgs):
		if sess, err = s.open(r.Context(), subject, principal, false); err != nil {
			s.dialFailed(w, subject, principal, msgs, err)
			return
		}
		created = true
	case isStateless(r, msgs):
		if sess, err = s.takeStateless(r.Context(), subject, principal); err != nil {
			s.dialFailed(w, subject, principal, msgs, err)
			return
		}
		complete := false
		defer func() { s.putStateless(sess, complete) }()
		sess.touch()
		complete = s.relay(w, r, sess, subject, principal, msgs)
		return
	default:
		httpError(w, http.StatusBadRequest, "missing Mcp-Session-Id header: send initialize first")
		return
	}
	sess.touch()
	if created {
		w.Header().Set(HeaderSessionID, sess.Info.ID)
		s.register(sess)
	}
	s.relay(w, r, sess, subject, principal, msgs)
}

// dialFailed answers a POST whose session could not be opened: a limit's
// refusal with its HTTP status, else a JSON-RPC error per request.
func (s *Server) dialFailed(w http.ResponseWriter, subject string, principal any, msgs []*Message, err error) {
	if le, ok := AsLimit(err); ok {
		s.refuse(w, subject, principal, le, singleID(msgs))
		return
	}
	s.opts.Logger.Error("upstream dial failed", "server", s.opts.Server, "err", err)
	code, msg := publicMessage(err)
	writeJSONMessages(w, http.StatusOK, errorsFor(msgs, code, msg))
}

// refuse answers a request a limit refused and reports it to OnLimit.
func (s *Server) refuse(w http.ResponseWriter, subject string, principal any, le *LimitError, id json.RawMessage) {
	s.opts.Logger.Debug("refused by a limit", "server", s.opts.Server, "subject", subject, "limit", le.Limit)
	if s.opts.OnLimit != nil {
		s.opts.OnLimit(subject, principal, le)
	}
	writeLimit(w, le, id)
}

// relay forwards the messages of one POST on sess and answers it. It
// reports whether every request was answered (false if the client left),
// so that a pooled upstream is reused only when nothing of this POST is
// still in flight.
func (s *Server) relay(w http.ResponseWriter, r *http.Request, sess *Session, subject string, principal any, msgs []*Message) bool {
	var requests []*Message
	for _, m := range msgs {
		if m.Kind == KindRequest {
			requests = append(requests, m)
		}
	}
	if len(requests) == 0 {
		for _, m := range msgs {
			s.fromClient(r.Context(), sess, principal, m, nil)
		}
		w.WriteHeader(http.StatusAccepted)
		return true
	}
	return s.answer(w, r, sess, principal, msgs, requests)
}

// readMessages reads a POST body of one message or a batch, bounded by
// MaxMessageBytes and Limits.BodyReadTimeout. On failure it has answered
// the request and returns false.
func (s *Server) readMessages(w http.ResponseWriter, r *http.Request, subject string, principal any) ([]*Message, bool) {
	var rc *http.ResponseController
	if d := s.opts.Limits.BodyReadTimeout; d > 0 {
		// A deadline on the connection, so wall-clock time: a body that
		// trickles in holds its connection at most d.
		if c := http.NewResponseController(w); c.SetReadDeadline(time.Now().Add(d)) == nil {
			rc = c
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.opts.MaxMessageBytes)+1))
	if rc != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		_ = rc.SetReadDeadline(time.Time{})
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The connection is dropped after the answer: the rest of the
		// body is never waited for (the deadline stays past).
		w.Header().Set("Connection", "close")
		s.refuse(w, subject, principal, NewLimitError("limits.body_read_timeout", http.StatusRequestTimeout,
			fmt.Sprintf("bridge: refused: the request body was not received within %s (limits.body_read_timeout); send the whole body at once and retry", s.opts.Limits.BodyReadTimeout)), nil)
		return nil, false
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, "could not read the request body")
		return nil, false
	}
	if len(body) > s.opts.MaxMessageBytes {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("message over the %d byte limit", s.opts.MaxMessageBytes))
		return nil, false
	}
	msgs, err := ParseBatch(body)
	if err != nil {
		code, id := CodeParseError, json.RawMessage(nil)
		var pe *ParseError
		if errors.As(err, &pe) {
			code, id = pe.Code, pe.ID
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(NewError(id, code, "bridge: "+err.Error()).Raw)
		return nil, false
	}
	return msgs, true
}

// answer forwards a POST that holds requests and writes their responses,
// as an SSE stream when the client accepts one, else as JSON.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, sess *Session, principal any, msgs, requests []*Message) bool {
	st := newStream(acceptsType(r, "text/event-stream"))
	dups := sess.openStream(st, requests)
	defer sess.closeStream(st, "the client closed the request's connection")

	var early []*Message
	for _, d := range dups {
		early = append(early, NewError(d.ID, CodeInvalidRequest, "a request with this id is already in flight"))
	}
	for _, m := range msgs {
		if m.Kind == KindRequest && containsMsg(dups, m) {
			continue
		}
		ctx := r.Context()
		if m.Kind == KindRequest {
			ctx = sess.requestContext(ctx, m)
		}
		go s.fromClient(ctx, sess, principal, m, st)
	}

	awaiting := len(requests) - len(dups)
	if !st.sse {
		return s.answerJSON(w, r, sess, st, awaiting, early)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	flush()
	for _, e := range early {
		_ = writeEvent(w, Event{Name: "message", Data: e.Raw})
	}
	flush()
	keepAlive := time.NewTicker(s.opts.KeepAlive)
	defer keepAlive.Stop()
	for awaiting > 0 {
		select {
		case m := <-st.ch:
			if m.Kind == KindResponse || m.Kind == 0 {
				if !st.awaiting[m.IDKey()] {
					continue
				}
				delete(st.awaiting, m.IDKey())
				awaiting--
				if m.Kind == 0 { // cancelled by the client
					continue
				}
			}
			if err := writeEvent(w, Event{Name: "message", Data: m.Raw}); err != nil {
				return false
			}
			flush()
		case <-keepAlive.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return false
			}
			flush()
		case <-r.Context().Done():
			return false
		}
	}
	return true
}

// answerJSON waits for every response and writes them as one JSON body.
// Other messages meant for this stream go to the session's other streams.
func (s *Server) answerJSON(w http.ResponseWriter, r *http.Request, sess *Session, st *stream, awaiting int, out []*Message) bool {
	var reroute []*Message
	for awaiting > 0 {
		select {
		case m := <-st.ch:
			if m.Kind == KindResponse || m.Kind == 0 {
				if !st.awaiting[m.IDKey()] {
					continue
				}
				delete(st.awaiting, m.IDKey())
				awaiting--
				if m.Kind == KindResponse {
					out = append(out, m)
				}
				continue
			}
			reroute = append(reroute, m)
		case <-r.Context().Done():
			return false
		}
	}
	if len(reroute) > 0 {
		go func() {
			for _, m := range reroute {
				sess.deliverUnsolicited(m)
			}
		}()
	}
	writeJSONMessages(w, http.StatusOK, out)
	return true
}

func writeJSONMessages(w http.ResponseWriter, status int, msgs []*Message) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if len(msgs) == 1 {
		_, _ = w.Write(msgs[0].Raw)
		return
	}
	raws := make([]json.RawMessage, len(msgs))
	for i, m := range msgs {
		raws[i] = m.Raw
	}
	b, _ := json.Marshal(raws)
	_, _ = w.Write(b)
}

func errorsFor(msgs []*Message, code int, text string) []*Message {
	var out []*Message
	for _, m := range msgs {
		if m.Kind == KindRequest {
			out = append(out, NewError(m.ID, code, text))
		}
	}
	if len(out) == 0 {
		out = append(out, NewError(nil, code, text))
	}
	return out
}

func containsMsg(list []*Message, m *Message) bool {
	for _, x := range list {
		if x == m {
			return true
		}
	}
	return false
}

// fromClient filters one client message and forwards it upstream, or
// answers it directly. st carries the answer to a request.
func (s *Server) fromClient(ctx context.Context, sess *Session, principal any, m *Message, st *stream) {
	x := &Exchange{Session: sess.Info, Principal: principal, Direction: FromClient}
	switch m.Kind {
	case KindRequest:
		if m.Method == "initialize" {
			sess.Info.noteInitialize(m)
		}
		x.Notify = func(n *Message) { sess.deliver(st, n) }
		if st != nil && st.sse {
			x.Ask = func(ctx context.Context, method string, params any) (*Message, error) {
				return sess.ask(ctx, st, method, params)
			}
		}
	case KindResponse:
		if sess.answerAsk(m) {
			return
		}
		x.Request = sess.takeServerRequest(m)
	case KindNotification:
		if m.Method == "notifications/cancelled" {
			defer sess.clientCancelled(m)
		}
	}
	v, err := sess.filter.Filter(ctx, x, m)
	if err != nil {
		s.opts.Logger.Warn("client message refused", "session", sess.Info.ID, "server", sess.Info.Server,
			"method", m.Method, "kind", m.Kind.String(), "err", err)
		if m.Kind != KindRequest {
			return
		}
		code, msg := publicMessage(err)
		v = Verdict{Reply: NewError(m.ID, code, msg)}
	}
	if v.Reply != nil {
		if m.Kind == KindRequest {
			sess.answerDirect(m, v.Reply)
		}
		return
	}
	if v.Forward == nil {
		if m.Kind == KindRequest { // a filter must not leave a request unanswered
			sess.answerDirect(m, NewError(m.ID, CodeRefused, "bridge: the gateway dropped this request"))
		}
		return
	}
	out := v.Forward
	switch {
	case m.Kind == KindRequest && out.Kind == KindRequest:
		if out, err = sess.upstreamRequest(m, out); err != nil {
			sess.answerDirect(m, NewError(m.ID, CodeInternalError, "bridge: the gateway could not relay this request"))
			return
		}
	case out.Kind == KindNotification && out.Method == "notifications/cancelled":
		var ok bool
		if out, ok = sess.upstreamCancel(out); !ok {
			return // the request never reached the upstream
		}
		// Stop awaiting the answer before the upstream hears of the
		// cancellation, so an answer it sends at once is dropped.
		sess.clientCancelled(m)
	}
	if err := sess.upstream.Send(sess.ctx, out); err != nil {
		s.opts.Logger.Warn("send upstream failed", "session", sess.Info.ID, "server", sess.Info.Server, "err", err)
		if m.Kind == KindRequest {
			sess.answerDirect(m, NewError(m.ID, CodeUnavailable, "bridge: the upstream MCP server is unavailable"))
		}
	}
}

// answerDirect answers a pending client request without the upstream.
func (sess *Session) answerDirect(req *Message, resp *Message) {
	sess.mu.Lock()
	p, ok := sess.takePendingLocked(req.IDKey())
	sess.mu.Unlock()
	if ok {
		sess.deliver(p.stream, resp)
	}
}

func (s *Server) serveGet(w http.ResponseWriter, r *http.Request) {
	if !acceptsType(r, "text/event-stream") {
		httpError(w, http.StatusNotAcceptable, "GET needs Accept: text/event-stream")
		return
	}
	subject, principal := s.opts.Identify(r)
	if r.Header.Get(HeaderSessionID) == "" {
		httpError(w, http.StatusBadRequest, "missing Mcp-Session-Id header")
		return
	}
	sess, status, msg := s.lookup(r, subject)
	if sess == nil {
		httpError(w, status, msg)
		return
	}
	release, err := s.opts.Limits.Streams.Acquire(subject)
	if err != nil {
		le, _ := AsLimit(err)
		s.refuse(w, subject, principal, le, nil)
		return
	}
	defer release()
	st := newStream(true)
	if !sess.openGet(st) {
		httpError(w, http.StatusConflict, "this session already has a GET stream open")
		return
	}
	defer sess.closeGet(st)
	sess.touch()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	s.pump(w, r, sess, st, principal)
}

// pump writes what the session sends to a standalone event stream (the GET
// stream, or the legacy transport's stream), with keep-alives, until the
// client or the session goes, the stream has been idle for
// Limits.StreamIdleTimeout, or the identity that opened it (principal)
// expires. The client then opens it again, with a fresh token.
func (s *Server) pump(w http.ResponseWriter, r *http.Request, sess *Session, st *stream, principal any) {
	flusher, _ := w.(http.Flusher)
	keepAlive := time.NewTicker(s.opts.KeepAlive)
	defer keepAlive.Stop()
	var expired <-chan time.Time
	if s.opts.Expiry != nil {
		if until := s.opts.Expiry(principal); !until.IsZero() {
			t := time.NewTimer(until.Sub(s.opts.Now()))
			defer t.Stop()
			expired = t.C
		}
	}
	var idle <-chan time.Time
	var idleTimer *time.Timer
	if d := s.opts.Limits.StreamIdleTimeout; d > 0 {
		idleTimer = time.NewTimer(d)
		defer idleTimer.Stop()
		idle = idleTimer.C
	}
	for {
		select {
		case m := <-st.ch:
			if m.Kind == 0 {
				continue
			}
			if err := writeEvent(w, Event{Name: "message", Data: m.Raw}); err != nil {
				return
			}
			if idleTimer != nil {
				idleTimer.Reset(s.opts.Limits.StreamIdleTimeout)
			}
		case <-expired:
			s.opts.Logger.Debug("event stream ends: the token that opened it expired", "session", sess.Info.ID, "server", sess.Info.Server)
			return
		case <-idle:
			s.opts.Logger.Debug("event stream ends: idle", "session", sess.Info.ID, "server", sess.Info.Server)
			return
		case <-keepAlive.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-sess.ctx.Done():
			return
		case <-r.Context().Done():
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request) {
	subject, _ := s.opts.Identify(r)
	sess, status, msg := s.lookup(r, subject)
	if sess == nil {
		httpError(w, status, msg)
		return
	}
	sess.close("the client ended the session")
	w.WriteHeader(http.StatusNoContent)
}

func hasRequest(msgs []*Message) bool {
	for _, m := range msgs {
		if m.Kind == KindRequest {
			return true
		}
	}
	return false
}

func hasInitialize(msgs []*Message) bool {
	for _, m := range msgs {
		if m.Kind == KindRequest && m.Method == "initialize" {
			return true
		}
	}
	return false
}

// isStateless reports whether a session-less POST uses protocol 2026-07-28.
func isStateless(r *http.Request, msgs []*Message) bool {
	if r.Header.Get(HeaderProtocolVersion) >= StatelessProtocolVersion {
		return true
	}
	for _, m := range msgs {
		if m.Kind != KindRequest {
			continue
		}
		var v string
		if raw, ok := m.ParamsMeta()[metaProtocolVersion]; ok && json.Unmarshal(raw, &v) == nil && v >= StatelessProtocolVersion {
			return true
		}
	}
	return false
}

// open starts a session. When a limit refuses it, the caller's own idle
// pooled upstreams of this server are ended and the start tried once more,
// so that idle ones never stand in the way of a live one.
func (s *Server) open(ctx context.Context, subject string, principal any, stateless bool) (*Session, error) {
	sess, err := s.newSession(ctx, subject, principal, stateless)
	if _, ok := AsLimit(err); ok && s.drainPool(subject) > 0 {
		sess, err = s.newSession(ctx, subject, principal, stateless)
	}
	return sess, err
}

// newSession takes a unit of the session budget and dials the upstream.
func (s *Server) newSession(ctx context.Context, subject string, principal any, stateless bool) (*Session, error) {
	release, err := s.opts.Limits.Sessions.Acquire(subject)
	if err != nil {
		return nil, err
	}
	info := &SessionInfo{ID: newSessionID(), Server: s.opts.Server, Owner: subject, Principal: principal, Stateless: stateless}
	if stateless {
		info.protocolVersion = StatelessProtocolVersion
	}
	up, err := s.opts.Dial(ctx, info)
	if err != nil {
		release()
		return nil, err
	}
	sess := newSession(info, up, s.opts.Filter, s.opts.Logger, s.opts.Now)
	sess.release = release
	sess.start()
	return sess, nil
}

func (s *Server) register(sess *Session) {
	s.mu.Lock()
	s.sessions[sess.Info.ID] = sess
	s.mu.Unlock()
	sess.mu.Lock()
	sess.onClose = func(why string) {
		s.mu.Lock()
		delete(s.sessions, sess.Info.ID)
		s.mu.Unlock()
		s.opts.Logger.Info("session ended", "session", sess.Info.ID, "server", sess.Info.Server, "subject", sess.Info.Owner, "reason", why)
		if s.opts.OnSession != nil {
			s.opts.OnSession(sess.Info, false, why)
		}
	}
	sess.mu.Unlock()
	if s.opts.OnSession != nil {
		s.opts.OnSession(sess.Info, true, "")
	}
	s.opts.Logger.Info("session started", "session", sess.Info.ID, "server", sess.Info.Server, "subject", sess.Info.Owner)
}

// ReapIdle ends sessions that have had nothing open for IdleTimeout, and
// pooled stateless upstreams unused for Limits.StatelessIdleTimeout. The
// caller runs it periodically; it returns how many sessions it ended.
func (s *Server) ReapIdle() int {
	if s.opts.IdleTimeout <= 0 {
		s.reapPool(s.opts.Now())
		return 0
	}
	now := s.opts.Now()
	s.reapPool(now)
	s.mu.Lock()
	var idle []*Session
	for _, sess := range s.sessions {
		last, busy := sess.idleSince()
		if !busy && now.Sub(last) >= s.opts.IdleTimeout {
			idle = append(idle, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range idle {
		s.opts.Logger.Info("session idle; ending it", "session", sess.Info.ID, "server", sess.Info.Server)
		sess.close("the session was idle too long")
	}
	return len(idle)
}

// SessionCount returns the number of live sessions.
func (s *Server) SessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Close ends every session and pooled upstream.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	all := make([]*Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	for subject, list := range s.pool {
		for _, p := range list {
			all = append(all, p.sess)
		}
		delete(s.pool, subject)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.close("the gateway is shutting down")
	}
}

func newSessionID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("bridge: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}
