package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"time"
)

// Options configure a [Log].
type Options struct {
	// Now is the clock that stamps records and checkpoints; nil means time.Now.
	Now func() time.Time
	// Signer, if set, signs checkpoints of the chain head: every SignEvery
	// records, when SignInterval has passed since the last one (checked as
	// records are committed), and at Close.
	Signer ed25519.PrivateKey
	// SignEvery is the number of records between signed checkpoints;
	// 0 means 1000.
	SignEvery int
	// SignInterval, if positive, also signs the head at the first commit at
	// least this long after the previous checkpoint.
	SignInterval time.Duration
	// MaxBatch bounds how many appends share one transaction; 0 means 1024.
	MaxBatch int
	// MaxLinger bounds how long the writer waits for more appends to join a
	// batch, and only when the previous batch was larger than the current
	// one; 0 means 250µs, negative disables lingering. A durable commit
	// costs about a millisecond or more, so a short wait that fills the batch
	// multiplies throughput under concurrency.
	MaxLinger time.Duration
	// Logger receives write failures (at error level) and recoveries; nil
	// discards.
	Logger *slog.Logger
}

// Head is the state of the chain's end.
type Head struct {
	Seq  uint64 // 0 for an empty log
	Hash string
	// Checkpoint is the latest signed checkpoint, if any.
	Checkpoint *Checkpoint
}

// Log is the append-only, hash-chained audit log. Its methods are safe for
// concurrent use. A single writer goroutine assigns sequence numbers, chains
// hashes and commits concurrent appends together in one store transaction
// (group commit).
type Log struct {
	store        Store
	now          func() time.Time
	signer       ed25519.PrivateKey
	signEvery    uint64
	signInterval time.Duration
	maxBatch     int
	logger       *slog.Logger

	reqs chan *appendReq // unbuffered: a sent request is owned by the writer
	quit chan struct{}   // closed by Close
	done chan struct{}   // closed by the writer when it has exited

	closeOnce sync.Once
	closeErr  error
	pruneMu   sync.Mutex

	mu       sync.Mutex // guards the fields below, written only by the writer
	head     Head
	commitCh chan struct{} // closed and replaced on every commit

	// Writer-goroutine state.
	resync    bool // the store failed: reload the head before the next batch
	lastBatch int  // size of the previous batch
	linger    time.Duration
}

type appendReq struct {
	rec  Record
	seq  uint64
	done chan error // buffered 1
}

// Open starts a log that appends to store, continuing the chain already in
// it. Close the log before the store.
func Open(store Store, opts Options) (*Log, error) {
	l := &Log{
		store:        store,
		now:          opts.Now,
		signer:       opts.Signer,
		signEvery:    uint64(opts.SignEvery),
		signInterval: opts.SignInterval,
		maxBatch:     opts.MaxBatch,
		linger:       opts.MaxLinger,
		logger:       opts.Logger,
		reqs:         make(chan *appendReq),
		quit:         make(chan struct{}),
		done:         make(chan struct{}),
		commitCh:     make(chan struct{}),
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.signEvery == 0 {
		l.signEvery = 1000
	}
	if l.linger == 0 {
		l.linger = 250 * time.Microsecond
	}
	if l.maxBatch <= 0 {
		l.maxBatch = 1024
	}
	if l.logger == nil {
		l.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if l.signer != nil && len(l.signer) != ed25519.PrivateKeySize {
		return nil, errors.New("audit: invalid Ed25519 signing key")
	}
	ctx := context.Background()
	if err := l.loadHead(ctx); err != nil {
		return nil, err
	}
	cps, err := store.Checkpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	if n := len(cps); n > 0 {
		cp := cps[n-1]
		l.head.Checkpoint = &cp
	}
	if last := l.head; last.Seq > 0 {
		l.logger.Info("audit log opened", "seq", last.Seq)
	}
	go l.writer()
	return l, nil
}

// loadHead reads the chain head from the store.
func (l *Log) loadHead(ctx context.Context) error {
	last, ok, err := l.store.Last(ctx)
	if err != nil {
		return fmt.Errorf("audit: read chain head: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok {
		// An empty (or fully pruned, which always leaves an anchor) store.
		l.head.Seq, l.head.Hash = 0, ""
		return nil
	}
	if h, err := last.ComputeHash(); err != nil || h != last.Hash {
		l.logger.Error("audit: the last stored record does not match its hash; run `bridge audit verify`", "seq", last.Seq)
	}
	l.head.Seq, l.head.Hash = last.Seq, last.Hash
	return nil
}

// Store returns the store the log appends to, for queries.
func (l *Log) Store() Store { return l.store }

// Head returns the current chain head and latest checkpoint.
func (l *Log) Head() Head {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.head
	if h.Checkpoint != nil {
		cp := *h.Checkpoint
		h.Checkpoint = &cp
	}
	return h
}

// Append adds rec to the log and returns its sequence number once the record
// is durable. It sets rec's Seq, Time, PrevHash and Hash (values the caller
// set there are replaced). Append does not keep rec; rec.Message must
// already be masked.
//
// An error wrapping ErrWriteFailed means the record was not written: the
// request it belongs to must be refused. If ctx ends while the record is
// queued, Append returns ctx's error and the record may or may not be
// written.
func (l *Log) Append(ctx context.Context, rec *Record) (uint64, error) {
	if rec.Kind == KindAnchor {
		return 0, errors.New("audit: anchor records are written by Prune only")
	}
	return l.append(ctx, rec)
}

func (l *Log) append(ctx context.Context, rec *Record) (uint64, error) {
	if !rec.Kind.Valid() {
		return 0, fmt.Errorf("audit: unknown record kind %q", rec.Kind)
	}
	r := &appendReq{rec: *rec, done: make(chan error, 1)}
	r.rec.enc = nil
	select {
	case l.reqs <- r:
	case <-l.quit:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case err := <-r.done:
		if err != nil {
			return 0, err
		}
		rec.Seq, rec.Time, rec.PrevHash, rec.Hash = r.rec.Seq, r.rec.Time, r.rec.PrevHash, r.rec.Hash
		return r.seq, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Close writes the records already queued, signs the head (if the log has a
// signer and the head moved since the last checkpoint) and stops the log.
// It does not close the store. Later appends fail with ErrClosed.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		close(l.quit)
		<-l.done
	})
	return l.closeErr
}

// writer is the single goroutine that orders, chains and commits records.
func (l *Log) writer() {
	defer close(l.done)
	batch := make([]*appendReq, 0, l.maxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		case <-l.quit:
			l.closeErr = l.finish()
			return
		}
		batch = l.gather(batch)
		l.commit(batch, false)
	}
}

// gather adds the appends that are waiting, or about to wait, to batch.
//
// The appenders released by the previous commit are usually runnable but not
// yet back in Append. Yielding the processor lets them enqueue; and when the
// previous batch was larger than what has arrived, the writer lingers up to
// MaxLinger for the rest of that cohort, so a steady load of N writers
// settles into batches of about N records per fsync even on a busy machine.
// A lone writer (previous batch of one) never lingers.
func (l *Log) gather(batch []*appendReq) []*appendReq {
	drain := func() bool {
		got := false
		for len(batch) < l.maxBatch {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
				got = true
			default:
				return got
			}
		}
		return got
	}
	for idle := 0; idle < 2 && len(batch) < l.maxBatch; {
		if drain() {
			idle = 0
		} else {
			idle++
		}
		runtime.Gosched()
	}
	if want := min(l.lastBatch, l.maxBatch); len(batch) < want && l.linger > 0 {
		t := time.NewTimer(l.linger)
	wait:
		for len(batch) < want {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
			case <-t.C:
				break wait
			case <-l.quit:
				break wait
			}
		}
		t.Stop()
	}
	l.lastBatch = len(batch)
	return batch
}

// finish commits any appends racing with Close and signs the final head.
func (l *Log) finish() error {
	var batch []*appendReq
	for {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
			continue
		default:
		}
		break
	}
	if len(batch) > 0 || l.signer != nil {
		if err := l.commit(batch, true); err != nil {
			return err
		}
	}
	return nil
}

// commit chains batch onto the head and writes it (plus a checkpoint when
// due, or when final and the head is unsigned) in one store transaction.
func (l *Log) commit(batch []*appendReq, final bool) error {
	ctx := context.Background()
	if l.resync {
		if err := l.loadHead(ctx); err != nil {
			l.logger.Error("audit store still failing; refusing records", "records", len(batch), "err", err)
			err = fmt.Errorf("%w: %w", ErrWriteFailed, err)
			for _, r := range batch {
				r.done <- err
			}
			return err
		}
		l.resync = false
		l.logger.Info("audit store recovered", "seq", l.head.Seq)
	}
	l.mu.Lock()
	seq, prev, lastCP := l.head.Seq, l.head.Hash, l.head.Checkpoint
	l.mu.Unlock()

	now := l.now().UTC()
	recs := make([]Record, 0, len(batch))
	live := make([]*appendReq, 0, len(batch))
	for _, r := range batch {
		rec := r.rec
		rec.Seq, rec.Time, rec.PrevHash = seq+1, now, prev
		enc, err := rec.seal()
		if err != nil {
			r.done <- err
			continue
		}
		rec.enc = enc
		seq, prev = rec.Seq, rec.Hash
		r.rec, r.seq = rec, rec.Seq
		recs = append(recs, rec)
		live = append(live, r)
	}

	var cp *Checkpoint
	if l.signer != nil && seq > 0 {
		var cpSeq uint64
		var cpTime time.Time
		if lastCP != nil {
			cpSeq, cpTime = lastCP.Seq, lastCP.Time
		}
		due := seq-cpSeq >= l.signEvery ||
			(l.signInterval > 0 && seq > cpSeq && now.Sub(cpTime) >= l.signInterval) ||
			(final && seq != cpSeq)
		if due {
			c := signCheckpoint(l.signer, seq, prev, now)
			cp = &c
		}
	}
	if len(recs) == 0 && cp == nil {
		return nil
	}

	if err := l.store.Append(ctx, recs, cp); err != nil {
		l.resync = true
		l.logger.Error("audit write failed; refusing records", "records", len(recs), "err", err)
		err = fmt.Errorf("%w: %w", ErrWriteFailed, err)
		for _, r := range live {
			r.done <- err
		}
		return err
	}

	l.mu.Lock()
	l.head.Seq, l.head.Hash = seq, prev
	if cp != nil {
		l.head.Checkpoint = cp
	}
	close(l.commitCh)
	l.commitCh = make(chan struct{})
	l.mu.Unlock()
	for _, r := range live {
		r.done <- nil
	}
	return nil
}

// Follow calls fn for every record with Seq > after, in order, first those
// already stored and then each new one as it is committed, until ctx ends,
// the log closes (ErrClosed) or fn returns an error. It never blocks the
// writer: a slow fn only delays its own follower.
func (l *Log) Follow(ctx context.Context, after uint64, fn func(Record) error) error {
	for {
		l.mu.Lock()
		changed := l.commitCh
		l.mu.Unlock()
		err := l.store.Range(ctx, after+1, 0, func(r Record) error {
			after = r.Seq
			return fn(r)
		})
		if err != nil {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-l.done:
			return ErrClosed
		}
	}
}

// PruneResult says what [Log.Prune] did.
type PruneResult struct {
	Pruned    uint64 // records deleted
	Through   uint64 // last seq deleted
	AnchorSeq uint64 // seq of the anchor record written; 0 if nothing was pruned
}

// Prune deletes the records stamped before the cut-off (the longest prefix of
// the log whose times are before it) and first appends an anchor record
// saying what it prunes, so the remaining chain verifies from the anchor.
// Checkpoints of the pruned range are deleted with it. The anchor is durable
// before anything is deleted; if deleting fails part-way, Verify still
// accepts the log and a later Prune finishes the job.
func (l *Log) Prune(ctx context.Context, before time.Time) (PruneResult, error) {
	l.pruneMu.Lock()
	defer l.pruneMu.Unlock()
	first, ok, err := l.store.First(ctx)
	if err != nil || !ok {
		return PruneResult{}, err
	}
	head := l.Head().Seq
	var through uint64
	var throughHash string
	stop := errors.New("stop")
	err = l.store.Range(ctx, first.Seq, head, func(r Record) error {
		if !r.Time.Before(before) {
			return stop
		}
		through, throughHash = r.Seq, r.Hash
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return PruneResult{}, err
	}
	if through == 0 {
		return PruneResult{}, nil
	}
	anchor := &Record{Kind: KindAnchor, Anchor: &Anchor{
		PrunedFrom:    first.Seq,
		PrunedThrough: through,
		PrunedCount:   through - first.Seq + 1,
		PrunedHash:    throughHash,
		Before:        before.UTC(),
	}}
	seq, err := l.append(ctx, anchor)
	if err != nil {
		return PruneResult{}, err
	}
	res := PruneResult{Pruned: through - first.Seq + 1, Through: through, AnchorSeq: seq}
	if err := l.store.DeleteRange(ctx, first.Seq, through); err != nil {
		return res, fmt.Errorf("audit: prune: %w", err)
	}
	return res, nil
}
