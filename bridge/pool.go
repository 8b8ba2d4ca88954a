package bridge

import (
	"context"
	"time"
)

// This file holds the pool of upstreams that 2026-07-28 requests share.
// Such a request has no session, so without a pool each one would start an
// upstream (a whole process, for stdio) and end it when answered. A request
// instead takes an idle upstream of the same user from the pool, or starts
// one, and gives it back when every request of the POST has its answer; one
// that still has something in flight (the client left, a response never
// came) is ended instead, so that no late answer can reach a later request
// that reuses an id. A pooled upstream is used by one request at a time.

// pooled is an idle stateless session and when it became idle.
type pooled struct {
	sess  *Session
	since time.Time
}

// takeStateless returns an idle pooled session of subject, or a new one.
func (s *Server) takeStateless(ctx context.Context, subject string, principal any) (*Session, error) {
	now := s.opts.Now()
	var stale []*Session
	var found *Session
	s.mu.Lock()
	list := s.pool[subject]
	for len(list) > 0 && found == nil {
		p := list[len(list)-1]
		list = list[:len(list)-1]
		if s.usable(p, now) {
			found = p.sess
		} else {
			stale = append(stale, p.sess)
		}
	}
	s.setPoolLocked(subject, list)
	s.mu.Unlock()
	for _, sess := range stale {
		sess.close("the pooled upstream was idle too long")
	}
	if found != nil {
		return found, nil
	}
	return s.open(ctx, subject, principal, true)
}

// usable reports whether a pooled session may serve another request.
func (s *Server) usable(p pooled, now time.Time) bool {
	if p.sess.Closed() {
		return false
	}
	if d := s.opts.Limits.StatelessIdleTimeout; d > 0 && now.Sub(p.since) >= d {
		return false
	}
	if s.opts.Expiry != nil {
		if until := s.opts.Expiry(p.sess.Info.Principal); !until.IsZero() && !now.Before(until) {
			return false // messages from it would carry an expired identity
		}
	}
	return true
}

// putStateless gives a session back to the pool after a request, or ends
// it when the request left something in flight or the pool is full.
func (s *Server) putStateless(sess *Session, complete bool) {
	if !complete || s.opts.Limits.StatelessPool <= 0 || !sess.quiesce() {
		sess.close("stateless request finished")
		return
	}
	subject := sess.Info.Owner
	s.mu.Lock()
	if s.closed || len(s.pool[subject]) >= s.opts.Limits.StatelessPool {
		s.mu.Unlock()
		sess.close("stateless request finished")
		return
	}
	s.pool[subject] = append(s.pool[subject], pooled{sess: sess, since: s.opts.Now()})
	s.mu.Unlock()
}

// drainPool ends subject's pooled sessions, returning how many.
func (s *Server) drainPool(subject string) int {
	s.mu.Lock()
	list := s.pool[subject]
	delete(s.pool, subject)
	s.mu.Unlock()
	for _, p := range list {
		p.sess.close("the user's limit was reached; ending an idle pooled upstream")
	}
	return len(list)
}

// reapPool ends pooled sessions that are no longer usable.
func (s *Server) reapPool(now time.Time) {
	var stale []*Session
	s.mu.Lock()
	for subject, list := range s.pool {
		keep := list[:0]
		for _, p := range list {
			if s.usable(p, now) {
				keep = append(keep, p)
			} else {
				stale = append(stale, p.sess)
			}
		}
		s.setPoolLocked(subject, keep)
	}
	s.mu.Unlock()
	for _, sess := range stale {
		sess.close("the pooled upstream was idle too long")
	}
}

// setPoolLocked stores subject's pool, dropping the key when it is empty
// so the map holds only users with something pooled.
func (s *Server) setPoolLocked(subject string, list []pooled) {
	if len(list) == 0 {
		delete(s.pool, subject)
		return
	}
	s.pool[subject] = list
}

// PooledCount returns the number of idle pooled stateless upstreams.
func (s *Server) PooledCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, list := range s.pool {
		n += len(list)
	}
	return n
}
