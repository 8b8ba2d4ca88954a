package queue

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Store keeps requests durably. Implementations are safe for concurrent use.
// They store and return copies: a caller never shares a *Request with the
// store.
type Store interface {
	// Put inserts a new request. It fails with ErrExists if the id is taken.
	Put(ctx context.Context, r *Request) error
	// Get returns the request with the id, or ErrNotFound.
	Get(ctx context.Context, id string) (*Request, error)
	// List returns the requests that match f, oldest first.
	List(ctx context.Context, f Filter) ([]*Request, error)
	// Update runs fn on a copy of the request in one transaction and stores
	// the result if fn returns nil; otherwise nothing changes and Update
	// returns fn's error. Updates of one request are serialised, so fn sees
	// the latest state: this is the compare-and-swap that makes Claim run
	// a call exactly once. fn must not change the id, the call (requester
	// subject, server, tool, digest) or Created. It returns the stored
	// result, or ErrNotFound.
	Update(ctx context.Context, id string, fn func(*Request) error) (*Request, error)
	// Live returns the index entries of the pending and approved requests
	// whose deadline is not after dueBy (all of them when dueBy is zero),
	// earliest deadline first. It reads a small index, never the requests
	// themselves, so the expiry sweep and the per-requester count stay
	// cheap however large the requests are.
	Live(ctx context.Context, dueBy time.Time) ([]LiveEntry, error)
}

// LiveEntry is the index entry of a request that is not final yet.
type LiveEntry struct {
	ID      string
	Subject string
	State   State
	Expires time.Time
}

// isLive reports whether a request in state s belongs in the live index.
func isLive(s State) bool { return s == StatePending || s == StateApproved }

// liveEntry is r's index entry.
func liveEntry(r *Request) LiveEntry {
	return LiveEntry{ID: r.ID, Subject: r.Requester.Subject, State: r.State, Expires: r.Expires}
}

// sortLive orders entries by deadline, then id.
func sortLive(es []LiveEntry) {
	slices.SortFunc(es, func(a, b LiveEntry) int {
		if c := a.Expires.Compare(b.Expires); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// Filter selects requests in Store.List. Zero fields select everything.
type Filter struct {
	// States keeps requests in any of these states.
	States []State
	// Call keeps requests for exactly this call.
	Call *CallKey
}

func (f Filter) match(r *Request) bool {
	if len(f.States) > 0 && !slices.Contains(f.States, r.State) {
		return false
	}
	return f.Call == nil || *f.Call == r.Call()
}

// ErrExists is returned by Store.Put for a duplicate id.
var ErrExists = errors.New("approval store: id exists")

// errImmutable refuses an Update that changed what identifies a request.
var errImmutable = errors.New("approval store: update changed the request's identity")

// checkImmutable reports whether an update kept id, call and creation time.
func checkImmutable(before, after *Request) error {
	if before.ID != after.ID || before.Call() != after.Call() || !before.Created.Equal(after.Created) {
		return errImmutable
	}
	return nil
}

// sortOldestFirst orders requests by creation time, then id.
func sortOldestFirst(rs []*Request) {
	slices.SortFunc(rs, func(a, b *Request) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// MemStore is an in-memory Store for tests and development. Its zero
// value is ready to use.
type MemStore struct {
	mu   sync.Mutex
	reqs map[string]*Request
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{} }

// Put implements Store.
func (s *MemStore) Put(ctx context.Context, r *Request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reqs == nil {
		s.reqs = make(map[string]*Request)
	}
	if _, ok := s.reqs[r.ID]; ok {
		return ErrExists
	}
	s.reqs[r.ID] = r.Clone()
	return nil
}

// Get implements Store.
func (s *MemStore) Get(ctx context.Context, id string) (*Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reqs[id]
	if !ok {
		return nil, ErrNotFound
	}
	return r.Clone(), nil
}

// List implements Store.
func (s *MemStore) List(ctx context.Context, f Filter) ([]*Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	var out []*Request
	for _, r := range s.reqs {
		if f.match(r) {
			out = append(out, r.Clone())
		}
	}
	s.mu.Unlock()
	sortOldestFirst(out)
	return out, nil
}

// Update implements Store.
func (s *MemStore) Update(ctx context.Context, id string, fn func(*Request) error) (*Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.reqs[id]
	if !ok {
		return nil, ErrNotFound
	}
	next := cur.Clone()
	if err := fn(next); err != nil {
		return nil, err
	}
	if err := checkImmutable(cur, next); err != nil {
		return nil, err
	}
	s.reqs[id] = next
	return next.Clone(), nil
}

// Live implements Store.
func (s *MemStore) Live(ctx context.Context, dueBy time.Time) ([]LiveEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	var out []LiveEntry
	for _, r := range s.reqs {
		if isLive(r.State) && (dueBy.IsZero() || !r.Expires.After(dueBy)) {
			out = append(out, liveEntry(r))
		}
	}
	s.mu.Unlock()
	sortLive(out)
	return out, nil
}
