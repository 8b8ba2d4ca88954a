package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Filter selects records. Empty fields match everything; set fields must all
// match.
type Filter struct {
	User     string    // the identity's subject or email (email case-insensitively)
	Server   string    // upstream server name
	Tool     string    // tool name
	Decision string    // allow, deny, approve
	Session  string    // session id
	Kind     Kind      // record kind
	Since    time.Time // records at or after this time
	Until    time.Time // records before this time
	After    uint64    // records with a seq greater than this (a paging cursor)
	// Limit caps the number of records returned (0: no cap).
	Limit int
	// Newest keeps the newest Limit matches instead of the oldest. Results
	// are in seq order either way.
	Newest bool
}

// Validate reports a filter that can never be meant.
func (f Filter) Validate() error {
	var errs []error
	if f.Kind != "" && !f.Kind.Valid() {
		errs = append(errs, fmt.Errorf("unknown kind %q", f.Kind))
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		errs = append(errs, errors.New("until must be after since"))
	}
	if f.Limit < 0 {
		errs = append(errs, errors.New("limit must not be negative"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("audit: invalid filter: %w", errors.Join(errs...))
	}
	return nil
}

// Match reports whether r passes the filter (Limit aside).
func (f Filter) Match(r *Record) bool {
	switch {
	case f.After != 0 && r.Seq <= f.After,
		f.User != "" && f.User != r.Identity.Subject && !strings.EqualFold(f.User, r.Identity.Email),
		f.Server != "" && f.Server != r.Server,
		f.Tool != "" && f.Tool != r.Tool,
		f.Decision != "" && f.Decision != r.Decision,
		f.Session != "" && f.Session != r.Session,
		f.Kind != "" && f.Kind != r.Kind,
		!f.Since.IsZero() && r.Time.Before(f.Since),
		!f.Until.IsZero() && !r.Time.Before(f.Until):
		return false
	}
	return true
}

// Query returns the records of s that match f, in seq order. Matching
// nothing is an empty result, not an error.
func Query(ctx context.Context, s Store, f Filter) ([]Record, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	out := []Record{}
	next := 0 // with Newest and a full ring: the oldest element, next to overwrite
	full := errors.New("full")
	err := s.Range(ctx, f.After+1, 0, func(r Record) error {
		if !f.Match(&r) {
			return nil
		}
		switch {
		case f.Limit == 0 || len(out) < f.Limit:
			out = append(out, r)
		case !f.Newest:
			return full
		default:
			out[next] = r
			next = (next + 1) % f.Limit
		}
		return nil
	})
	if err != nil && !errors.Is(err, full) {
		return nil, err
	}
	if next > 0 {
		out = append(out[next:], out[:next]...)
	}
	return out, nil
}

// Get returns the record with seq, or an error wrapping ErrNotFound.
func Get(ctx context.Context, s Store, seq uint64) (Record, error) {
	if seq == 0 { // seqs start at 1; Range reads 0 as "no bound"
		return Record{}, fmt.Errorf("record 0: %w", ErrNotFound)
	}
	return recordAt(ctx, s, seq)
}

// Lookup finds records by a reference a person types: a decimal seq, or else
// an approval id (every record of that approval, in seq order). Nothing found
// is an error wrapping ErrNotFound.
func Lookup(ctx context.Context, s Store, ref string) ([]Record, error) {
	if seq, err := strconv.ParseUint(ref, 10, 64); err == nil {
		r, err := Get(ctx, s, seq)
		if err != nil {
			return nil, err
		}
		return []Record{r}, nil
	}
	var out []Record
	err := s.Range(ctx, 1, 0, func(r Record) error {
		if r.ApprovalID == ref {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no record with seq or approval id %q", ErrNotFound, ref)
	}
	return out, nil
}

// Session returns every record of the session id in seq order, or an error
// wrapping ErrNotFound if there is none.
func Session(ctx context.Context, s Store, id string) ([]Record, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: empty session id", ErrNotFound)
	}
	recs, err := Query(ctx, s, Filter{Session: id})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: session %q", ErrNotFound, id)
	}
	return recs, nil
}

// Query is [Query] on the log's store.
func (l *Log) Query(ctx context.Context, f Filter) ([]Record, error) { return Query(ctx, l.store, f) }

// Get is [Get] on the log's store.
func (l *Log) Get(ctx context.Context, seq uint64) (Record, error) { return Get(ctx, l.store, seq) }

// Session is [Session] on the log's store.
func (l *Log) Session(ctx context.Context, id string) ([]Record, error) {
	return Session(ctx, l.store, id)
}
