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

	"github.com/seed-3f9f6f16/bridge/audit/merkle"
)

// Options configure a [Log].
type Options struct {
	// Now is the clock that stamps records and checkpoints; nil means time.Now.
	Now func() time.Time
	// Signer signs the log's Merkle tree heads. With a signer, Open first
	// verifies the whole log against the signer's public key and Heads and
	// refuses a log that does not verify ([*BrokenError]); each commit
	// carries the signed head of the state before it ([Record.Signed]); and
	// checkpoints are stored and published to Witnesses every SignEvery
	// records, every SignInterval (even when idle), at Open and at Close.
	// Without one (tests only) nothing is signed or checked.
	Signer ed25519.PrivateKey
	// SignEvery is the number of records between stored checkpoints;
	// 0 means 1000.
	SignEvery int
	// SignInterval is the period of checkpoints when records are few or
	// none; 0 means one minute.
	SignInterval time.Duration
	// NewTicker makes the SignInterval ticker; nil means time.NewTicker.
	// Tests pass a channel they drive.
	NewTicker func(time.Duration) (c <-chan time.Time, stop func())
	// Heads are signed heads kept outside the store (a witness's latest),
	// which the log must be a continuation of when it opens.
	Heads []Checkpoint
	// Witnesses receive every stored checkpoint, in order, from the writer
	// goroutine; a failing witness is logged, not fatal.
	Witnesses []Witness
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

// Witness receives signed heads and keeps them outside the data file, so
// that truncating, rolling back or emptying the file shows.
type Witness interface {
	// Name names the witness in logs.
	Name() string
	// Publish records one signed head. It is called from the log's writer
	// and should return quickly.
	Publish(ctx context.Context, head Checkpoint) error
}

// BrokenError is returned by [Open] for a log that does not verify against
// its signed heads: the log neither accepts records nor signs anything.
type BrokenError struct{ Break *Break }

func (e *BrokenError) Error() string {
	return fmt.Sprintf("audit: the log does not verify against its signed heads, so the gateway will neither write nor sign: record %d (%s): %s",
		e.Break.Seq, e.Break.Reason, e.Break.Detail)
}

// Unwrap returns the Break.
func (e *BrokenError) Unwrap() error { return e.Break }

// Head is the state of the chain's end.
type Head struct {
	Seq  uint64 // 0 for an empty log
	Hash string
	// Root is the Merkle root of records 1..Seq (hex); empty without a signer.
	Root string
	// Checkpoint is the latest stored signed checkpoint, if any.
	Checkpoint *Checkpoint
}

// Log is the append-only, hash-chained, Merkle-tree audit log. Its methods
// are safe for concurrent use. A single writer goroutine assigns sequence
// numbers, chains hashes, extends the tree, signs and commits concurrent
// appends together in one store transaction (group commit).
type Log struct {
	store        Store
	now          func() time.Time
	signer       ed25519.PrivateKey
	terms        headTerms
	signEvery    uint64
	signInterval time.Duration
	newTicker    func(time.Duration) (<-chan time.Time, func())
	witnesses    []Witness
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
	tree       *merkle.Tree // over records 1..head.Seq (nil without a signer)
	signedSeq  uint64       // the last seq covered by any signature
	signedOK   bool         // signedSeq is meaningful
	resync     bool         // the store failed: reload the head before the next batch
	lastBatch  int          // size of the previous batch
	linger     time.Duration
	tickC      <-chan time.Time
	stopTicker func()
}

type appendReq struct {
	rec  Record
	seq  uint64
	cp   *Checkpoint // stored with the record (retention anchors)
	done chan error  // buffered 1
}

// Open starts a log that appends to store, continuing the chain already in
// it. With a signer it verifies the log first (see [Options.Signer]).
// Close the log before the store.
func Open(store Store, opts Options) (*Log, error) {
	l := &Log{
		store:        store,
		now:          opts.Now,
		signer:       opts.Signer,
		signEvery:    uint64(opts.SignEvery),
		signInterval: opts.SignInterval,
		newTicker:    opts.NewTicker,
		witnesses:    opts.Witnesses,
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
	if l.signInterval <= 0 {
		l.signInterval = time.Minute
	}
	if l.newTicker == nil {
		l.newTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	if l.linger == 0 {
		l.linger = 250 * time.Microsecond
	}
	if l.maxBatch <= 0 {
		l.maxBatch = 1024
	}
	l.terms = headTerms{maxGap: uint64(l.maxBatch), interval: l.signInterval}
	if l.logger == nil {
		l.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if l.signer != nil && len(l.signer) != ed25519.PrivateKeySize {
		return nil, errors.New("audit: invalid Ed25519 signing key")
	}
	ctx := context.Background()
	if l.signer != nil {
		rep, tree, err := verifyLog(ctx, store, VerifyOptions{PublicKeys: []ed25519.PublicKey{l.PublicKey()}, Heads: opts.Heads}, true)
		if err != nil {
			return nil, fmt.Errorf("audit: verify the log before opening it: %w", err)
		}
		if rep.Break != nil {
			l.logger.Error("AUDIT LOG BROKEN: refusing to write or sign", "seq", rep.Break.Seq, "reason", rep.Break.Reason, "detail", rep.Break.Detail)
			return nil, &BrokenError{Break: rep.Break}
		}
		l.tree = tree
		l.signedSeq, l.signedOK = rep.SignedThrough, rep.SignedThrough > 0 || rep.Records == 0
	}
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
	if l.signer != nil {
		// Sign the head as opened: a new log's genesis (size 0), or where a
		// restarted gateway takes over, so every record has a head before it.
		if err := l.commit(nil, true); err != nil {
			return nil, err
		}
		l.tickC, l.stopTicker = l.newTicker(l.signInterval)
	}
	if last := l.head; last.Seq > 0 {
		l.logger.Info("audit log opened", "seq", last.Seq, "root", last.Root)
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
	} else {
		if h, err := last.ComputeHash(); err != nil || h != last.Hash {
			l.logger.Error("audit: the last stored record does not match its hash; run `bridge audit verify`", "seq", last.Seq)
		}
		l.head.Seq, l.head.Hash = last.Seq, last.Hash
	}
	if l.tree != nil {
		if l.tree.Size() != l.head.Seq {
			return fmt.Errorf("%w: the store holds %d records but the verified tree %d", ErrCorrupt, l.head.Seq, l.tree.Size())
		}
		l.head.Root = l.tree.Root().String()
	}
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
// is durable. It sets rec's Seq, Time, Signed, PrevHash and Hash (values the
// caller set there are replaced). Append does not keep rec; rec.Message must
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
	return l.append(ctx, rec, nil)
}

func (l *Log) append(ctx context.Context, rec *Record, cp *Checkpoint) (uint64, error) {
	if !rec.Kind.Valid() {
		return 0, fmt.Errorf("audit: unknown record kind %q", rec.Kind)
	}
	r := &appendReq{rec: *rec, cp: cp, done: make(chan error, 1)}
	r.rec.enc, r.rec.Signed = nil, nil
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
		rec.Seq, rec.Time, rec.Signed, rec.PrevHash, rec.Hash = r.rec.Seq, r.rec.Time, r.rec.Signed, r.rec.PrevHash, r.rec.Hash
		return r.seq, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Close writes the records already queued, signs the head (if the log has a
// signer) and stops the log. It does not close the store. Later appends fail
// with ErrClosed.
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
	if l.stopTicker != nil {
		defer l.stopTicker()
	}
	batch := make([]*appendReq, 0, l.maxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		case <-l.tickC:
			// Idle or not, the head is signed every interval, so a witness
			// sees a gateway that stopped signing.
			_ = l.commit(nil, true)
			continue
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

// commit chains batch onto the head and writes it in one store
// transaction. With a signer, the batch's first record carries the signed
// head of the state before it (unless that state is already signed), a
// checkpoint is stored at every SignEvery-th record since the last one, and
// one at the end of the batch when checkpoint is set (open, tick, close).
func (l *Log) commit(batch []*appendReq, checkpoint bool) error {
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
	var tree *merkle.Tree
	if l.signer != nil {
		tree = l.tree.Clone() // the writer's tree moves only once the commit is durable
	}
	var cpSeq uint64
	if lastCP != nil {
		cpSeq = lastCP.Seq
	}
	signedSeq, signedOK := l.signedSeq, l.signedOK

	now := l.now().UTC()
	recs := make([]Record, 0, len(batch))
	live := make([]*appendReq, 0, len(batch))
	var cps []Checkpoint
	for _, r := range batch {
		rec := r.rec
		rec.Seq, rec.Time, rec.PrevHash = seq+1, now, prev
		if tree != nil && len(live) == 0 && (!signedOK || signedSeq != seq) {
			h := signHead(l.signer, l.terms, seq, prev, tree.Root(), now)
			rec.Signed = &h
		}
		canonical, err := rec.CanonicalBytes()
		if err != nil {
			r.done <- err
			continue
		}
		rec.Hash = hashHex(canonical)
		rec.enc = appendHash(canonical, rec.Hash)
		if rec.Signed != nil {
			signedSeq, signedOK = seq, true
		}
		seq, prev = rec.Seq, rec.Hash
		if tree != nil {
			tree.Append(merkle.LeafHash(rec.enc))
			if seq-cpSeq >= l.signEvery {
				cps = append(cps, signHead(l.signer, l.terms, seq, prev, tree.Root(), now))
				cpSeq, signedSeq, signedOK = seq, seq, true
			}
		}
		r.rec, r.seq = rec, rec.Seq
		recs = append(recs, rec)
		live = append(live, r)
		if r.cp != nil {
			cps = append(cps, *r.cp)
		}
	}
	if tree != nil && checkpoint && (len(cps) == 0 || cps[len(cps)-1].Seq != seq || cps[len(cps)-1].Frontier != nil) {
		cps = append(cps, signHead(l.signer, l.terms, seq, prev, tree.Root(), now))
		signedSeq, signedOK = seq, true
	}
	if len(recs) == 0 && len(cps) == 0 {
		return nil
	}

	if err := l.store.Append(ctx, recs, cps); err != nil {
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
	if tree != nil {
		l.tree, l.signedSeq, l.signedOK = tree, signedSeq, signedOK
		l.head.Root = tree.Root().String()
	}
	var latest *Checkpoint
	for i := range cps {
		if cps[i].Frontier == nil && (latest == nil || cps[i].Seq >= latest.Seq) {
			latest = &cps[i]
		}
	}
	if latest != nil {
		cp := *latest
		l.head.Checkpoint = &cp
	}
	close(l.commitCh)
	l.commitCh = make(chan struct{})
	l.mu.Unlock()
	for _, r := range live {
		r.done <- nil
	}
	l.publish(ctx, cps)
	return nil
}

// publish hands stored checkpoints to the witnesses.
func (l *Log) publish(ctx context.Context, cps []Checkpoint) {
	for _, cp := range cps {
		cp.Frontier = nil
		for _, w := range l.witnesses {
			if err := w.Publish(ctx, cp); err != nil {
				l.logger.Error("audit witness did not take the signed head", "witness", w.Name(), "seq", cp.Seq, "err", err)
			}
		}
	}
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
// the log whose times are before it). It first appends an anchor record
// saying what it prunes, together with the signed head of the pruned prefix
// and its Merkle frontier (a checkpoint at the last pruned seq), so the rest
// of the chain and tree verify from the anchor. Checkpoints of the pruned
// range are deleted with it. The anchor is durable before anything is
// deleted; if deleting fails part-way, Verify still accepts the log and a
// later Prune finishes the job.
func (l *Log) Prune(ctx context.Context, before time.Time) (PruneResult, error) {
	l.pruneMu.Lock()
	defer l.pruneMu.Unlock()
	first, ok, err := l.store.First(ctx)
	if err != nil || !ok {
		return PruneResult{}, err
	}
	// The tree grows from the previous anchor, if the log was pruned before.
	// The tree grows from the newest anchor the stored records reach, if
	// the log was pruned before (a prune that stopped part-way leaves
	// records at or below it).
	tree, from := &merkle.Tree{}, uint64(1)
	cps, err := l.store.Checkpoints(ctx)
	if err != nil {
		return PruneResult{}, err
	}
	head := l.Head().Seq
	for _, cp := range cps {
		if cp.Frontier != nil && cp.Seq+1 >= first.Seq && cp.Seq < head {
			if tree, err = frontierTree(cp); err != nil {
				return PruneResult{}, fmt.Errorf("audit: prune: the retention anchor at %d: %w", cp.Seq, err)
			}
			from = cp.Seq + 1
		}
	}
	if from == 1 && first.Seq > 1 {
		return PruneResult{}, fmt.Errorf("audit: prune: no retention anchor for the records before %d", first.Seq)
	}
	if from > first.Seq {
		// Finish what an interrupted prune left.
		if err := l.store.DeleteRange(ctx, first.Seq, from-1); err != nil {
			return PruneResult{}, fmt.Errorf("audit: prune: %w", err)
		}
		first.Seq = from
	}
	var through uint64
	var throughHash string
	stop := errors.New("stop")
	err = l.store.Range(ctx, from, head, func(r Record) error {
		if !r.Time.Before(before) {
			return stop
		}
		canonical, err := r.CanonicalBytes()
		if err != nil {
			return err
		}
		tree.Append(leafHash(canonical, r.Hash))
		through, throughHash = r.Seq, r.Hash
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return PruneResult{}, err
	}
	if through == 0 {
		return PruneResult{}, nil
	}
	root := tree.Root()
	var anchorCP Checkpoint
	if l.signer != nil {
		anchorCP = signHead(l.signer, l.terms, through, throughHash, root, l.now())
	} else {
		anchorCP = Checkpoint{Seq: through, Hash: throughHash, Root: root.String(), Time: l.now().UTC()}
	}
	for _, h := range tree.Frontier() {
		anchorCP.Frontier = append(anchorCP.Frontier, h.String())
	}
	anchor := &Record{Kind: KindAnchor, Anchor: &Anchor{
		PrunedFrom:    first.Seq,
		PrunedThrough: through,
		PrunedCount:   through - first.Seq + 1,
		PrunedHash:    throughHash,
		PrunedRoot:    root.String(),
		Before:        before.UTC(),
	}}
	seq, err := l.append(ctx, anchor, &anchorCP)
	if err != nil {
		return PruneResult{}, err
	}
	res := PruneResult{Pruned: through - first.Seq + 1, Through: through, AnchorSeq: seq}
	if err := l.store.DeleteRange(ctx, first.Seq, through); err != nil {
		return res, fmt.Errorf("audit: prune: %w", err)
	}
	return res, nil
}

// frontierTree rebuilds the tree of an anchor checkpoint and checks that it
// hashes to the head's root.
func frontierTree(cp Checkpoint) (*merkle.Tree, error) {
	nodes := make([]merkle.Hash, len(cp.Frontier))
	for i, s := range cp.Frontier {
		h, err := merkle.ParseHash(s)
		if err != nil {
			return nil, err
		}
		nodes[i] = h
	}
	t, err := merkle.FromFrontier(cp.Seq, nodes)
	if err != nil {
		return nil, err
	}
	if t.Root().String() != cp.Root {
		return nil, errors.New("its frontier does not hash to its signed root")
	}
	return t, nil
}
