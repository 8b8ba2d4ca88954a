package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// SessionInfo describes one relay session. It is fixed when the session
// starts, except ProtocolVersion and the client's name, which the initialize
// exchange fills in.
type SessionInfo struct {
	ID     string
	Server string // the configured upstream name, as in /mcp/<server>
	// Owner is the subject the session is bound to; only the same subject
	// may use it.
	Owner string
	// Principal is the owner's identity as the gateway verified it.
	Principal any
	// Stateless is set for a 2026-07-28 request that came without a session.
	Stateless bool

	mu              sync.Mutex
	protocolVersion string
	clientName      string
	clientVersion   string
	elicitation     bool // the client declared the elicitation capability
}

// CanElicit reports whether the client declared the elicitation capability
// (form mode) in initialize.
func (si *SessionInfo) CanElicit() bool {
	si.mu.Lock()
	defer si.mu.Unlock()
	return si.elicitation
}

// ProtocolVersion returns the negotiated MCP protocol version, if known.
func (si *SessionInfo) ProtocolVersion() string {
	si.mu.Lock()
	defer si.mu.Unlock()
	return si.protocolVersion
}

// Client returns the client's name and version from initialize, if known.
func (si *SessionInfo) Client() (name, version string) {
	si.mu.Lock()
	defer si.mu.Unlock()
	return si.clientName, si.clientVersion
}

func (si *SessionInfo) noteInitialize(req *Message) {
	var p struct {
		ProtocolVersion string `json:"protocolVersion"`
		ClientInfo      struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"clientInfo"`
		Capabilities struct {
			Elicitation *struct {
				URL json.RawMessage `json:"url"`
			} `json:"elicitation"`
		} `json:"capabilities"`
	}
	if json.Unmarshal(req.Params, &p) != nil {
		return
	}
	si.mu.Lock()
	defer si.mu.Unlock()
	si.protocolVersion = p.ProtocolVersion
	si.clientName, si.clientVersion = p.ClientInfo.Name, p.ClientInfo.Version
	si.elicitation = p.Capabilities.Elicitation != nil
}

func (si *SessionInfo) noteInitialized(resp *Message) {
	var r struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if resp.Result == nil || json.Unmarshal(resp.Result, &r) != nil || r.ProtocolVersion == "" {
		return
	}
	si.mu.Lock()
	defer si.mu.Unlock()
	si.protocolVersion = r.ProtocolVersion
}

// stream is one HTTP response that carries messages to the client: the SSE
// or JSON answer to a POST, or the standalone GET stream.
type stream struct {
	ch   chan *Message
	done chan struct{} // closed when the HTTP handler stops writing
	sse  bool
	// mu is held for reading while a message is handed to ch, and for
	// writing by finish, so that no message is left in ch unread.
	mu       sync.RWMutex
	finished bool
	// awaiting holds the ids of requests whose responses this stream
	// carries; guarded by the session's mutex.
	awaiting map[string]bool
}

func newStream(sse bool) *stream {
	return &stream{ch: make(chan *Message, 64), done: make(chan struct{}), sse: sse, awaiting: map[string]bool{}}
}

// finish marks the stream as no longer read and returns the messages that
// were handed to it but not written, so they can go elsewhere.
func (st *stream) finish() []*Message {
	close(st.done)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.finished = true
	var left []*Message
	for {
		select {
		case m := <-st.ch:
			left = append(left, m)
		default:
			return left
		}
	}
}

// offer hands m to the stream. It reports false if the stream is finished.
func (st *stream) offer(m *Message, sessionDone <-chan struct{}) bool {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.finished {
		return false
	}
	select {
	case st.ch <- m:
		return true
	case <-st.done:
		return false
	case <-sessionDone:
		return true // the session is closing; nothing more will be read
	}
}

// pendingRequest is a client request forwarded upstream and not yet answered.
type pendingRequest struct {
	req      *Message
	stream   *stream
	progress string // the progress token's key, if any
	started  time.Time
	// upstreamID is the id the gateway gave the request upstream, and
	// upstreamKey its key in Session.upstreamIDs; empty until forwarded.
	upstreamID  json.RawMessage
	upstreamKey string
	// cancel ends the context the request is filtered and forwarded
	// under, so a call held by the pipeline learns the client gave up.
	cancel context.CancelFunc
}

// maxBacklog bounds the upstream messages kept while the client has no open
// stream to receive them.
const maxBacklog = 1024

// maxServerRequests bounds the upstream→client requests (sampling,
// elicitation, roots/list) awaiting the client's answer in one session. A
// client that never answers them would otherwise grow the session without
// end; beyond the bound the gateway answers the upstream itself.
const maxServerRequests = 256

// Session relays between one client and one upstream Conn. The HTTP handler
// feeds it client messages; its reader goroutine routes what the upstream
// sends to the stream it belongs to.
type Session struct {
	Info     *SessionInfo
	upstream Conn
	filter   Filter
	log      *slog.Logger
	now      func() time.Time
	ctx      context.Context
	cancel   context.CancelFunc

	mu      sync.Mutex
	pending map[string]*pendingRequest // by request id
	// upstreamIDs maps the id a forwarded request carries upstream to its
	// client id: the upstream never sees the client's ids, so an answer
	// can only ever be matched to the request the gateway sent it with.
	upstreamIDs map[string]string
	upstreamN   uint64
	progress    map[string]*stream       // by progress token
	serverReqs  map[string]*Message      // upstream→client requests awaiting the client's response
	asks        map[string]chan *Message // the gateway's own requests to the client, by id
	askN        int
	postStreams []*stream // open SSE answers to POSTs, oldest first
	getStream   *stream
	backlog     []*Message
	lastActive  time.Time
	closed      bool
	onClose     func(why string)
	// release returns the session's unit of the session budget.
	release func()
}

func newSession(info *SessionInfo, up Conn, f Filter, log *slog.Logger, now func() time.Time) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		Info: info, upstream: up, filter: f, log: log, now: now, ctx: ctx, cancel: cancel,
		pending: map[string]*pendingRequest{}, upstreamIDs: map[string]string{}, progress: map[string]*stream{}, serverReqs: map[string]*Message{},
		asks:       map[string]chan *Message{},
		lastActive: now(),
	}
	return s
}

// start begins reading from the upstream.
func (s *Session) start() { go s.readUpstream() }

func (s *Session) touch() {
	s.mu.Lock()
	s.lastActive = s.now()
	s.mu.Unlock()
}

// idleSince reports when the session was last used, and whether anything is
// still open on it.
func (s *Session) idleSince() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	busy := len(s.pending) > 0 || len(s.postStreams) > 0 || s.getStream != nil
	return s.lastActive, busy
}

// readUpstream routes each upstream message until the upstream ends.
//
// Messages are filtered concurrently, up to upstreamPipeline at a time, so
// that slow stages (the audit log's durable writes) overlap and share an
// fsync; they are delivered strictly in the order the upstream sent them.
func (s *Session) readUpstream() {
	prev := make(chan struct{})
	close(prev)
	slots := make(chan struct{}, upstreamPipeline)
	for {
		m, err := s.upstream.Recv(s.ctx)
		if err != nil {
			<-prev // deliver what is in flight first
			if s.ctx.Err() == nil {
				s.log.Warn("upstream ended", "session", s.Info.ID, "server", s.Info.Server, "err", err)
			}
			s.close("the upstream MCP server ended the session")
			return
		}
		s.touch()
		slots <- struct{}{}
		done := make(chan struct{})
		go func(m *Message, prev <-chan struct{}) {
			defer func() { <-slots }()
			s.fromUpstream(m, prev)
			<-prev
			close(done)
		}(m, prev)
		prev = done
	}
}

// upstreamPipeline bounds the upstream messages filtered at once.
const upstreamPipeline = 64

// fromUpstream filters one upstream message and, once every earlier
// message is delivered (prev is closed), delivers it.
func (s *Session) fromUpstream(m *Message, prev <-chan struct{}) {
	x := &Exchange{Session: s.Info, Principal: s.Info.Principal, Direction: FromUpstream}
	var target *stream
	var upstreamKey string // of the request a response answers
	s.mu.Lock()
	switch m.Kind {
	case KindResponse:
		if p, ok := s.pending[s.upstreamIDs[m.IDKey()]]; ok {
			// From here on the answer carries its request's client id: the
			// pipeline, the audit record and the client see that id.
			if re, err := withID(m, p.req.ID); err == nil {
				re.Unreadable = m.Unreadable
				m = re
			} else {
				m = NewError(p.req.ID, CodeInternalError, "bridge: the gateway could not relay the answer")
			}
			upstreamKey = p.upstreamKey
			x.Request = p.req
			x.RequestStarted = p.started
			target = p.stream
		}
	case KindRequest:
		if len(s.serverReqs) >= maxServerRequests {
			s.mu.Unlock()
			<-prev
			s.log.Warn("too many server requests await the client; refusing one", "session", s.Info.ID, "server", s.Info.Server, "method", m.Method)
			refusal := NewError(m.ID, CodeRefused, fmt.Sprintf("bridge: %d requests to the client are already awaiting its answer", maxServerRequests))
			if err := s.upstream.Send(s.ctx, refusal); err != nil {
				s.log.Warn("reply to upstream failed", "session", s.Info.ID, "err", err)
			}
			return
		}
		s.serverReqs[m.IDKey()] = m
	}
	s.mu.Unlock()

	v, err := s.filter.Filter(s.ctx, x, m)
	<-prev
	if err != nil {
		s.log.Warn("upstream message refused", "session", s.Info.ID, "method", m.Method, "kind", m.Kind.String(), "err", err)
		code, msg := publicMessage(err)
		switch m.Kind {
		case KindResponse:
			v = Verdict{Forward: NewError(m.ID, code, msg)}
		case KindRequest:
			v = Verdict{Reply: NewError(m.ID, code, msg)}
		default:
			return
		}
	}
	if v.Reply != nil {
		if m.Kind == KindRequest {
			s.mu.Lock()
			delete(s.serverReqs, m.IDKey())
			s.mu.Unlock()
		}
		if err := s.upstream.Send(s.ctx, v.Reply); err != nil {
			s.log.Warn("reply to upstream failed", "session", s.Info.ID, "err", err)
		}
		return
	}
	if v.Forward == nil {
		return
	}
	out := v.Forward
	if m.Kind == KindResponse {
		if x.Request != nil && x.Request.Method == "initialize" {
			s.Info.noteInitialized(out)
		}
		s.mu.Lock()
		var p *pendingRequest
		ok := upstreamKey != ""
		if ok {
			p, ok = s.takePendingLocked(s.upstreamIDs[upstreamKey])
		}
		s.mu.Unlock()
		if !ok || target == nil {
			s.log.Debug("dropped a response nobody waits for", "session", s.Info.ID, "id", string(m.ID))
			return
		}
		if !bytes.Equal(out.ID, p.req.ID) {
			// A stage answered with another id: the client gets its own.
			re, err := withID(out, p.req.ID)
			if err != nil {
				re = NewError(p.req.ID, CodeInternalError, "bridge: the gateway could not relay the answer")
			}
			out = re
		}
		s.deliver(target, out)
		return
	}
	s.deliverUnsolicited(out)
}

// deliverUnsolicited sends an upstream notification or request to the stream
// it most likely belongs to: the stream of the request whose progress token
// it carries, else the newest open POST stream, else the GET stream, else the
// backlog until a stream opens.
func (s *Session) deliverUnsolicited(m *Message) {
	s.mu.Lock()
	var target *stream
	if m.Method == "notifications/progress" {
		if tok := progressTokenOf(m); tok != "" {
			target = s.progress[tok]
		}
	}
	if target == nil {
		for i := len(s.postStreams) - 1; i >= 0; i-- {
			if s.postStreams[i].sse {
				target = s.postStreams[i]
				break
			}
		}
	}
	if target == nil {
		target = s.getStream
	}
	if target == nil {
		if len(s.backlog) >= maxBacklog {
			s.backlog = s.backlog[1:]
			s.log.Warn("client backlog full; dropping the oldest message", "session", s.Info.ID)
		}
		s.backlog = append(s.backlog, m)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.deliver(target, m)
}

// deliver hands m to a stream, or reroutes it if the stream has finished.
// A response whose stream has finished has no reader left and is dropped.
func (s *Session) deliver(st *stream, m *Message) {
	if !st.offer(m, s.ctx.Done()) {
		s.reroute([]*Message{m})
	}
}

// reroute sends messages left on a finished stream elsewhere.
func (s *Session) reroute(msgs []*Message) {
	for _, m := range msgs {
		if m.Kind == KindRequest || m.Kind == KindNotification {
			s.deliverUnsolicited(m)
		}
	}
}

// progressTokenOf returns params.progressToken of a progress notification.
func progressTokenOf(m *Message) string {
	var p struct {
		Token json.RawMessage `json:"progressToken"`
	}
	if json.Unmarshal(m.Params, &p) != nil || p.Token == nil {
		return ""
	}
	return valueKey(p.Token)
}

// valueKey returns the key ids and progress tokens are looked up by: equal
// values share it (7 and 7.0, "s1" and "\u0073\u0031"), as the upstream's
// parser reads them as one (see CanonicalKey).
func valueKey(raw json.RawMessage) string {
	key, ok := CanonicalKey(raw)
	if !ok {
		return "raw" + string(raw)
	}
	return key
}

// openStream registers a stream that will carry the responses to reqs.
// It returns ids that are already in flight, which the caller must refuse.
func (s *Session) openStream(st *stream, reqs []*Message) (dup []*Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range reqs {
		if _, busy := s.pending[r.IDKey()]; busy || st.awaiting[r.IDKey()] {
			dup = append(dup, r)
			continue
		}
		p := &pendingRequest{req: r, stream: st, started: s.now()}
		if tok := r.ProgressToken(); tok != nil {
			p.progress = valueKey(tok)
			s.progress[p.progress] = st
		}
		s.pending[r.IDKey()] = p
		st.awaiting[r.IDKey()] = true
	}
	s.postStreams = append(s.postStreams, st)
	if st.sse && len(s.backlog) > 0 {
		backlog := s.backlog
		s.backlog = nil
		go func() {
			for _, m := range backlog {
				s.deliver(st, m)
			}
		}()
	}
	return dup
}

// closeStream unregisters a POST stream. Requests it still awaited lose
// their reader: they are withdrawn upstream with notifications/cancelled.
func (s *Session) closeStream(st *stream, reason string) {
	s.mu.Lock()
	for i, ps := range s.postStreams {
		if ps == st {
			s.postStreams = append(s.postStreams[:i], s.postStreams[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	s.reroute(st.finish())
	s.mu.Lock()
	var orphaned []*pendingRequest
	for id := range st.awaiting {
		if p, ok := s.pending[id]; ok && p.stream == st {
			orphaned = append(orphaned, p)
			s.takePendingLocked(id)
		}
	}
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return
	}
	for _, p := range orphaned {
		if p.req.Method == "initialize" || p.upstreamID == nil {
			continue // initialize must not be cancelled; nor what was never sent
		}
		s.cancelUpstream(p.upstreamID, reason)
	}
}

// cancelUpstream tells the upstream the request it knows as upstreamID
// was withdrawn.
func (s *Session) cancelUpstream(upstreamID json.RawMessage, reason string) {
	n, err := NewNotification("notifications/cancelled", map[string]any{"requestId": upstreamID, "reason": reason})
	if err != nil {
		return
	}
	x := &Exchange{Session: s.Info, Principal: s.Info.Principal, Direction: FromClient}
	v, err := s.filter.Filter(s.ctx, x, n)
	if err != nil || v.Forward == nil {
		return
	}
	if err := s.upstream.Send(s.ctx, v.Forward); err != nil {
		s.log.Debug("cancel to upstream failed", "session", s.Info.ID, "err", err)
	}
}

// clientCancelled handles notifications/cancelled from the client: the
// request's stream stops waiting for its response.
func (s *Session) clientCancelled(m *Message) {
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if json.Unmarshal(m.Params, &p) != nil || p.RequestID == nil {
		return
	}
	id := valueKey(p.RequestID)
	s.mu.Lock()
	pr, ok := s.takePendingLocked(id)
	s.mu.Unlock()
	if ok && pr.cancel != nil {
		pr.cancel()
	}
	if ok {
		// A nil message tells the stream to stop awaiting id.
		s.deliver(pr.stream, &Message{Kind: 0, ID: pr.req.ID, idKey: id})
	}
}

// takePendingLocked forgets the pending request with client id key key,
// with its progress token and upstream id. s.mu must be held.
func (s *Session) takePendingLocked(key string) (*pendingRequest, bool) {
	p, ok := s.pending[key]
	if !ok {
		return nil, false
	}
	delete(s.pending, key)
	if p.progress != "" {
		delete(s.progress, p.progress)
	}
	if p.upstreamKey != "" {
		delete(s.upstreamIDs, p.upstreamKey)
	}
	return p, true
}

// upstreamRequest gives the request fwd, decided for the client request
// req, an id of the gateway's own for the upstream and remembers it, so
// that only the upstream's answer to that id reaches req's stream. A
// request no longer pending (the client gave up) still gets a fresh id,
// whose answer is dropped.
func (s *Session) upstreamRequest(req, fwd *Message) (*Message, error) {
	s.mu.Lock()
	s.upstreamN++
	id := json.RawMessage(`"bridge-` + strconv.FormatUint(s.upstreamN, 10) + `"`)
	if p, ok := s.pending[req.IDKey()]; ok && p.req == req {
		p.upstreamID, p.upstreamKey = id, valueKey(id)
		s.upstreamIDs[p.upstreamKey] = req.IDKey()
	}
	s.mu.Unlock()
	return withID(fwd, id)
}

// upstreamCancel turns a client's notifications/cancelled into one naming
// the upstream id of the request it cancels; ok is false when that
// request was never forwarded, so there is nothing upstream to cancel.
func (s *Session) upstreamCancel(m *Message) (*Message, bool) {
	var p struct {
		RequestID jsontext.Value `json:"requestId"`
		Reason    *string        `json:"reason"`
	}
	if jsonv2.Unmarshal(m.Params, &p) != nil || p.RequestID == nil {
		return nil, false
	}
	s.mu.Lock()
	pr, ok := s.pending[valueKey(json.RawMessage(p.RequestID))]
	var up json.RawMessage
	if ok {
		up = pr.upstreamID
	}
	s.mu.Unlock()
	if up == nil {
		return nil, false
	}
	params := map[string]any{"requestId": up}
	if p.Reason != nil {
		params["reason"] = *p.Reason
	}
	n, err := NewNotification("notifications/cancelled", params)
	return n, err == nil
}

// requestContext returns a context for filtering and forwarding a request
// that ends when the client cancels the request or its stream closes.
func (s *Session) requestContext(parent context.Context, req *Message) context.Context {
	ctx, cancel := context.WithCancel(parent)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pending[req.IDKey()]; ok && p.req == req {
		p.cancel = cancel
	} else {
		cancel()
	}
	return ctx
}

// openGet registers the standalone GET stream. It fails if one is open.
func (s *Session) openGet(st *stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getStream != nil || s.closed {
		return false
	}
	s.getStream = st
	backlog := s.backlog
	s.backlog = nil
	go func() {
		for _, m := range backlog {
			s.deliver(st, m)
		}
	}()
	return true
}

func (s *Session) closeGet(st *stream) {
	s.mu.Lock()
	if s.getStream == st {
		s.getStream = nil
	}
	s.mu.Unlock()
	s.reroute(st.finish())
}

// ask sends the gateway's own request to the client on st and waits for
// the answer, which is not relayed upstream.
func (s *Session) ask(ctx context.Context, st *stream, method string, params any) (*Message, error) {
	s.mu.Lock()
	s.askN++
	id := json.RawMessage(fmt.Sprintf(`"bridge-gateway-%d"`, s.askN))
	ch := make(chan *Message, 1)
	s.asks[valueKey(id)] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.asks, valueKey(id))
		s.mu.Unlock()
	}()
	req, err := NewRequest(id, method, params)
	if err != nil {
		return nil, err
	}
	s.deliver(st, req)
	select {
	case resp := <-ch:
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ctx.Done():
		return nil, ErrClosed
	}
}

// answerAsk hands a client response to the gateway request it answers,
// reporting whether there was one.
func (s *Session) answerAsk(m *Message) bool {
	s.mu.Lock()
	ch, ok := s.asks[m.IDKey()]
	s.mu.Unlock()
	if ok {
		select {
		case ch <- m:
		default:
		}
	}
	return ok
}

// takeServerRequest returns and forgets the upstream request that a client
// response answers.
func (s *Session) takeServerRequest(resp *Message) *Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	req := s.serverReqs[resp.IDKey()]
	delete(s.serverReqs, resp.IDKey())
	return req
}

// close ends the session: the upstream is closed and every waiting request
// is answered with an error naming why.
func (s *Session) close(why string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	pending := s.pending
	s.pending = map[string]*pendingRequest{}
	s.upstreamIDs = map[string]string{}
	onClose := s.onClose
	s.mu.Unlock()

	for _, p := range pending {
		s.deliver(p.stream, NewError(p.req.ID, CodeUnavailable, "bridge: "+why))
	}
	s.cancel()
	if err := s.upstream.Close(); err != nil {
		s.log.Debug("closing upstream", "session", s.Info.ID, "err", err)
	}
	if s.release != nil {
		s.release() // after the upstream has stopped
	}
	if onClose != nil {
		onClose(why)
	}
}

// quiesce reports whether nothing is in flight on the session, so that a
// pooled upstream can serve another request, and drops any backlog meant
// for the request that is done.
func (s *Session) quiesce() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.pending) > 0 || len(s.serverReqs) > 0 || len(s.asks) > 0 || len(s.postStreams) > 0 || s.getStream != nil {
		return false
	}
	s.backlog = nil
	return true
}

// Closed reports whether the session has ended.
func (s *Session) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
