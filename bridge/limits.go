package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Budget counts one resource (sessions, upstream processes, streams) per
// user and in total. One Budget may be shared by every Server of a
// gateway, so that totals hold across upstreams. A nil *Budget, or a zero
// bound, is unlimited. It is safe for concurrent use.
type Budget struct {
	// what the resource is called in messages, such as "open sessions".
	what string
	// key is the configuration prefix of its bounds, such as "sessions"
	// for limits.sessions_per_user and limits.sessions.
	key     string
	perUser int
	total   int
	// hintUser and hintTotal say what a refused caller can do.
	hintUser, hintTotal string

	mu     sync.Mutex
	byUser map[string]int
	used   int
}

// NewBudget returns a Budget for a resource named what ("open sessions"),
// configured as limits.<key>_per_user and limits.<key>, bounded by perUser
// and total. hintUser and hintTotal say what a caller refused by each bound
// can do.
func NewBudget(what, key string, perUser, total int, hintUser, hintTotal string) *Budget {
	return &Budget{what: what, key: key, perUser: perUser, total: total, hintUser: hintUser, hintTotal: hintTotal, byUser: map[string]int{}}
}

// Acquire takes one unit for user, or returns a *LimitError naming the
// bound reached. The release function returns it; calling it more than
// once is harmless.
func (b *Budget) Acquire(user string) (release func(), err error) {
	if b == nil {
		return func() {}, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.perUser > 0 && b.byUser[user] >= b.perUser {
		return nil, b.refusal("limits."+b.key+"_per_user", http.StatusTooManyRequests, "you have", b.perUser, b.hintUser)
	}
	if b.total > 0 && b.used >= b.total {
		return nil, b.refusal("limits."+b.key, http.StatusServiceUnavailable, "the gateway has", b.total, b.hintTotal)
	}
	b.byUser[user]++
	b.used++
	var once sync.Once
	return func() { once.Do(func() { b.release(user) }) }, nil
}

func (b *Budget) release(user string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used--
	if b.byUser[user]--; b.byUser[user] <= 0 {
		delete(b.byUser, user) // the map holds only users with something open
	}
}

func (b *Budget) refusal(limit string, status int, who string, n int, hint string) *LimitError {
	msg := fmt.Sprintf("bridge: refused: %s %d %s, the most %s allows", who, n, b.what, limit)
	if hint != "" {
		msg += "; " + hint
	}
	return NewLimitError(limit, status, msg)
}

// InUse returns the units held by user and in total.
func (b *Budget) InUse(user string) (mine, total int) {
	if b == nil {
		return 0, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.byUser[user], b.used
}

// LimitError is a refusal because a configured bound was reached. Its
// message names the bound and what to do; it is a PublicError.
type LimitError struct {
	// Limit is the configuration key, such as limits.sessions_per_user.
	Limit string
	// Status is the HTTP status of the refusal: 429 when the caller's own
	// share is used up, 503 when the gateway as a whole is full, 408 for
	// a body that was not sent in time.
	Status int
	msg    string
}

// NewLimitError returns a refusal by the bound named limit, with the
// HTTP status and the message the caller reads.
func NewLimitError(limit string, status int, msg string) *LimitError {
	return &LimitError{Limit: limit, Status: status, msg: msg}
}

func (e *LimitError) Error() string { return e.msg }

// Public implements PublicError.
func (e *LimitError) Public() (int, string) { return CodeRefused, e.msg }

// AsLimit returns the *LimitError in err's chain, if any.
func AsLimit(err error) (*LimitError, bool) {
	var le *LimitError
	ok := errors.As(err, &le)
	return le, ok
}

// writeLimit answers an HTTP request refused by a limit: the status, a
// Retry-After hint, and a JSON-RPC error body naming the limit (with the
// id of the request when the body held exactly one).
func writeLimit(w http.ResponseWriter, le *LimitError, id json.RawMessage) {
	w.Header().Set("Content-Type", "application/json")
	if le.Status == http.StatusTooManyRequests || le.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	w.WriteHeader(le.Status)
	_, _ = w.Write(NewError(id, CodeRefused, le.msg).Raw)
	_, _ = w.Write([]byte("\n"))
}

// singleID is the id of the one request in msgs, or nil.
func singleID(msgs []*Message) json.RawMessage {
	var id json.RawMessage
	n := 0
	for _, m := range msgs {
		if m.Kind == KindRequest {
			id, n = m.ID, n+1
		}
	}
	if n != 1 {
		return nil
	}
	return id
}

// ServerLimits bound what the callers of a Server may hold open. Budgets
// may be shared by several Servers; a nil Budget or a zero duration is
// unlimited.
type ServerLimits struct {
	// Sessions counts open sessions, stateless pooled ones included.
	Sessions *Budget
	// Streams counts open HTTP streams: POSTs awaiting their answers and
	// GET or legacy SSE event streams.
	Streams *Budget
	// BodyReadTimeout bounds reading a request body from its first byte
	// to its last; a slower client gets HTTP 408.
	BodyReadTimeout time.Duration
	// StreamIdleTimeout ends a GET or legacy SSE event stream that
	// carried no message for this long (keep-alives do not count).
	StreamIdleTimeout time.Duration
	// StatelessPool is how many idle upstreams of 2026-07-28 requests
	// (which have no session) are kept per user for the next request.
	// Zero starts and ends an upstream per request.
	StatelessPool int
	// StatelessIdleTimeout ends a pooled upstream unused for this long.
	StatelessIdleTimeout time.Duration
}
