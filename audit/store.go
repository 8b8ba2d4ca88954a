package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Errors callers test for with errors.Is.
var (
	// ErrWriteFailed wraps every error that made [Log.Append] fail to make a
	// record durable. The request the record belongs to must be refused
	// (unless audit.on_failure is allow).
	ErrWriteFailed = errors.New("audit: record not written")
	// ErrClosed is returned by a closed Log or Store.
	ErrClosed = errors.New("audit: log closed")
	// ErrNotFound is returned for an unknown seq or session.
	ErrNotFound = errors.New("audit: not found")
	// ErrConflict is returned by a Store asked to append records that do not
	// continue its chain (another writer got there first).
	ErrConflict = errors.New("audit: append does not continue the chain")
	// ErrCorrupt is returned when stored data cannot be read as an audit log.
	ErrCorrupt = errors.New("audit: corrupt store")
)

// CorruptRecordError is returned by a Store's Range when the record stored
// under Seq cannot be decoded or claims another seq.
type CorruptRecordError struct {
	Seq uint64
	Err error
}

func (e *CorruptRecordError) Error() string {
	return fmt.Sprintf("audit: record %d is corrupt: %v", e.Seq, e.Err)
}

// Unwrap returns ErrCorrupt and the underlying error.
func (e *CorruptRecordError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// Store is where the log's records and signed checkpoints live. A Store is
// safe for concurrent use. Only one [Log] may append to a Store at a time;
// readers (Range, Last, Checkpoints) may run alongside it.
type Store interface {
	// Append durably writes recs, which continue the chain (recs[0].Seq is
	// one more than the last stored seq, or 1 for an empty store, and seqs
	// are consecutive), and cps (replacing a stored checkpoint of the same
	// Seq), all in one atomic transaction. On error nothing was written. A
	// store that finds recs[0].Seq does not continue its chain returns an
	// error wrapping ErrConflict.
	Append(ctx context.Context, recs []Record, cps []Checkpoint) error
	// Range calls fn for each record with from <= Seq <= to (to == 0 means
	// no upper bound), in seq order, until fn returns an error, which Range
	// returns. A record that cannot be decoded stops Range with a
	// *CorruptRecordError.
	Range(ctx context.Context, from, to uint64, fn func(Record) error) error
	// First and Last return the lowest and highest stored records; ok is
	// false for an empty store.
	First(ctx context.Context) (rec Record, ok bool, err error)
	Last(ctx context.Context) (rec Record, ok bool, err error)
	// Checkpoints returns the stored checkpoints in seq order.
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
	// DeleteRange deletes the records with from <= Seq <= to, lowest first,
	// and then the checkpoints with from-1 <= Seq < to (the checkpoint at to
	// is the retention anchor of what is left); it may use several
	// transactions, so after a failure a prefix of the range may be gone. It
	// is used by retention only.
	DeleteRange(ctx context.Context, from, to uint64) error
	// Close releases the store's resources.
	Close() error
}

// MemStore is an in-memory Store for tests and development. It is not durable.
type MemStore struct {
	mu     sync.RWMutex
	recs   []Record // ascending seq
	cps    []Checkpoint
	closed bool
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{} }

// Append implements Store.
func (m *MemStore) Append(ctx context.Context, recs []Record, cps []Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	next := uint64(1)
	if n := len(m.recs); n > 0 {
		next = m.recs[n-1].Seq + 1
	}
	for i, r := range recs {
		if r.Seq != next+uint64(i) {
			return fmt.Errorf("%w: got seq %d, want %d", ErrConflict, r.Seq, next+uint64(i))
		}
	}
	m.recs = append(m.recs, recs...)
	for _, cp := range cps {
		i := sort.Search(len(m.cps), func(i int) bool { return m.cps[i].Seq >= cp.Seq })
		if i < len(m.cps) && m.cps[i].Seq == cp.Seq {
			m.cps[i] = cp
			continue
		}
		m.cps = append(m.cps, Checkpoint{})
		copy(m.cps[i+1:], m.cps[i:])
		m.cps[i] = cp
	}
	return nil
}

// Range implements Store.
func (m *MemStore) Range(ctx context.Context, from, to uint64, fn func(Record) error) error {
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return ErrClosed
	}
	i := sort.Search(len(m.recs), func(i int) bool { return m.recs[i].Seq >= from })
	var batch []Record
	for ; i < len(m.recs) && (to == 0 || m.recs[i].Seq <= to); i++ {
		batch = append(batch, m.recs[i])
	}
	m.mu.RUnlock()
	for _, r := range batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// First implements Store.
func (m *MemStore) First(ctx context.Context) (Record, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return Record{}, false, ErrClosed
	}
	if len(m.recs) == 0 {
		return Record{}, false, nil
	}
	return m.recs[0], true, nil
}

// Last implements Store.
func (m *MemStore) Last(ctx context.Context) (Record, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return Record{}, false, ErrClosed
	}
	if len(m.recs) == 0 {
		return Record{}, false, nil
	}
	return m.recs[len(m.recs)-1], true, nil
}

// Checkpoints implements Store.
func (m *MemStore) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	return append([]Checkpoint(nil), m.cps...), nil
}

// DeleteRange implements Store.
func (m *MemStore) DeleteRange(ctx context.Context, from, to uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	keep := m.recs[:0]
	for _, r := range m.recs {
		if r.Seq < from || r.Seq > to {
			keep = append(keep, r)
		}
	}
	m.recs = keep
	keepCP := m.cps[:0]
	for _, c := range m.cps {
		if c.Seq+1 < from || c.Seq >= to {
			keepCP = append(keepCP, c)
		}
	}
	m.cps = keepCP
	return nil
}

// Close implements Store.
func (m *MemStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// LoadMemStore returns a store holding recs and cps as they are, gaps and
// all, for verifying what another store exported (recs in seq order).
func LoadMemStore(recs []Record, cps []Checkpoint) *MemStore {
	m := &MemStore{recs: append([]Record(nil), recs...), cps: append([]Checkpoint(nil), cps...)}
	sort.SliceStable(m.recs, func(i, j int) bool { return m.recs[i].Seq < m.recs[j].Seq })
	sort.SliceStable(m.cps, func(i, j int) bool { return m.cps[i].Seq < m.cps[j].Seq })
	return m
}
