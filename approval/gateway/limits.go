package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// budgets are the counts one gateway shares among its upstream servers, so
// that a total holds across servers.
type budgets struct {
	sessions, streams, processes *bridge.Budget
}

const retryHint = "try again shortly, and tell your bridge admin if it persists"

func newBudgets(l config.Limits) budgets {
	return budgets{
		sessions: bridge.NewBudget("open sessions", "sessions", l.SessionsPerUser, l.Sessions,
			"close an MCP client you no longer use, or wait for idle sessions to end (limits.session_idle_timeout), then retry", retryHint),
		streams: bridge.NewBudget("open streams", "streams", l.StreamsPerUser, l.Streams,
			"wait for calls in flight to finish, or close an MCP client, then retry", retryHint),
		processes: bridge.NewBudget("running stdio upstream processes", "processes", l.ProcessesPerUser, l.Processes,
			"close an MCP client session that uses a stdio server, then retry", retryHint),
	}
}

// serverLimits are the relay's bounds for one upstream server.
func (b budgets) serverLimits(l config.Limits) bridge.ServerLimits {
	return bridge.ServerLimits{
		Sessions: b.sessions, Streams: b.streams,
		BodyReadTimeout: l.BodyReadTimeout, StreamIdleTimeout: l.StreamIdleTimeout,
		StatelessPool: l.StatelessPoolPerUser, StatelessIdleTimeout: l.StatelessIdleTimeout,
	}
}

// expiryOf is when a verified identity's token expires: its event streams
// end then, and the client reconnects with a fresh token.
func expiryOf(principal any) time.Time {
	if id, ok := principal.(*auth.Identity); ok && id != nil {
		return id.ExpiresAt
	}
	return time.Time{}
}

// budgetConn is an upstream Conn holding a unit of a budget until it is
// closed.
type budgetConn struct {
	bridge.Conn
	release func()
}

func (c *budgetConn) Close() error {
	err := c.Conn.Close() // the process has been reaped when Close returns
	c.release()
	return err
}

// limitAuditWindow is how long after recording a user's refusal by a limit
// further refusals of that user by that limit are only counted; the next
// record carries the count. A client retrying in a loop thus writes one
// record a minute, not one per attempt.
const limitAuditWindow = time.Minute

// limitAuditKeys bounds the users and limits remembered.
const limitAuditKeys = 4096

// LimitAudit records refusals by limits in the audit log, once per user,
// limit and window.
type LimitAudit struct {
	rec    *Recorder
	now    func() time.Time
	window time.Duration

	mu   sync.Mutex
	seen map[limitKey]*limitSeen
}

type limitKey struct{ subject, limit string }

type limitSeen struct {
	at         time.Time
	suppressed int
}

// NewLimitAudit returns a LimitAudit writing to rec.
func NewLimitAudit(rec *Recorder, now func() time.Time) *LimitAudit {
	return &LimitAudit{rec: rec, now: now, window: limitAuditWindow, seen: map[limitKey]*limitSeen{}}
}

// Refused records that a limit refused a request to server, unless the same
// user was refused by the same limit within the window, which is counted.
func (a *LimitAudit) Refused(server, subject string, principal any, le *bridge.LimitError) {
	now := a.now()
	a.mu.Lock()
	key := limitKey{subject, le.Limit}
	if len(a.seen) >= limitAuditKeys && a.seen[key] == nil {
		a.pruneLocked(now)
		if len(a.seen) >= limitAuditKeys {
			key.subject = "" // too many users at once: one record per limit
		}
	}
	s := a.seen[key]
	if s != nil && now.Sub(s.at) < a.window {
		s.suppressed++
		a.mu.Unlock()
		return
	}
	suppressed := 0
	if s != nil {
		suppressed = s.suppressed
	}
	a.seen[key] = &limitSeen{at: now}
	a.mu.Unlock()

	outcome := "refused by " + le.Limit
	if suppressed > 0 {
		outcome += fmt.Sprintf(" (and %d more refusals of this user by it in the %s before)", suppressed, a.window)
	}
	id := principalOf(&bridge.Exchange{Principal: principal})
	_ = a.rec.Event(context.Background(), &audit.Record{
		Kind: audit.KindDecision, Server: server, Decision: "refused", Rule: le.Limit, Reason: le.Error(), Outcome: outcome,
		Identity: audit.Identity{Subject: id.Subject, Email: id.Email, Groups: id.Groups},
	})
}

func (a *LimitAudit) pruneLocked(now time.Time) {
	for k, s := range a.seen {
		if now.Sub(s.at) >= a.window {
			delete(a.seen, k)
		}
	}
}
