package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Durability says when [SegmentStore.Append] (and so [Log.Append]) returns.
type Durability string

// Durability levels (audit.durability).
const (
	// DurabilityGroup returns once the commit is on stable storage: one
	// fdatasync per group commit. Neither a crash nor a power cut loses an
	// acknowledged record. The default.
	DurabilityGroup Durability = "group"
	// DurabilityOS returns once the commit is written to the operating
	// system, without fdatasync: a crash of the gateway process (SIGKILL,
	// panic, OOM kill) loses nothing, a power cut or kernel crash may lose
	// the last moments of records.
	DurabilityOS Durability = "os"
)

// SegmentDir is where the gateway keeps the segment log of the bbolt file
// at dbPath: a directory beside it, named after it.
func SegmentDir(dbPath string) string { return dbPath + ".audit" }

// SegmentOptions tune [OpenSegments].
type SegmentOptions struct {
	// ReadOnly opens the log with a shared lock and never writes to it; an
	// absent directory is an error. A read-only open waits for a running
	// gateway's exclusive lock.
	ReadOnly bool
	// Durability is DurabilityGroup (the default when empty) or DurabilityOS.
	Durability Durability
	// SegmentSize is the size segment files are preallocated to; 0 means
	// 64 MiB. A commit larger than what is left starts a new segment, and one
	// larger than a whole segment grows its file.
	SegmentSize int64
	// Timeout bounds the wait for the lock; 0 means 2s.
	Timeout time.Duration
	// Logger receives torn-tail repairs and rotation failures; nil discards.
	Logger *slog.Logger
	// Syncs, if set, counts every fdatasync/fsync the store issues
	// (benchmarks report syncs per record with it).
	Syncs *atomic.Int64

	// midWrite, a test hook, runs between the two halves of a commit's
	// write (with the commit's number of frames), so a crash test can kill
	// the process with a torn commit.
	midWrite func(frames int)
}

// SegmentStore is the segment-log implementation of [Store]: an
// append-only sequence of preallocated segment files in one directory,
// with a CRC-checked frame per record and checkpoint and one fdatasync per
// commit (see the format in segframe.go). It holds an in-memory index of
// where each record is, built by scanning the segments at open. A commit
// torn by a crash is recognised at open and left out; the first commit
// after it saves the torn bytes beside the segment (".torn") and zeroes
// them before writing. Safe for concurrent use.
type SegmentStore struct {
	dir      string
	opts     SegmentOptions
	logger   *slog.Logger
	lockF    *os.File
	readonly bool

	wmu sync.Mutex // serialises Append, DeleteRange and Close

	mu     sync.RWMutex // guards the fields below
	segs   []*segment   // ascending first; the last is the active one
	cps    []cpLoc      // in write order
	closed bool
	failed error // a failed fdatasync: the store accepts no more writes
}

// segment is one segment file in the index.
type segment struct {
	first uint64
	path  string
	// offs are the offsets of the frames of records first, first+1, …
	offs []int64
	// end is where the next commit goes (after the last whole commit).
	end int64
	// bad, if set, is damage that stops reading after the records in offs.
	bad *CorruptRecordError
	// dirtyTo is, for the active segment, the end of bytes after end that
	// are not zero (a torn commit) and must be cleared before writing.
	dirtyTo int64
	// f is open for writing on the active segment of a writable store.
	f *os.File
}

func (s *segment) next() uint64 { return s.first + uint64(len(s.offs)) }

// cpLoc is where a checkpoint frame is.
type cpLoc struct {
	seq uint64
	seg *segment
	off int64
}

var errLocked = errors.New("locked by another process (is the gateway running?)")

const segSuffix = ".seg"

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

// OpenSegments opens (or, unless opts.ReadOnly, creates) the segment log in
// dir, scanning every segment to build its index. Damage is not an open
// error: reads stop at it with a *CorruptRecordError naming the record, so
// [Verify] reports it. A commit torn by a crash at the end of the newest
// segment is left out (and logged).
func OpenSegments(dir string, opts SegmentOptions) (*SegmentStore, error) {
	if opts.Durability == "" {
		opts.Durability = DurabilityGroup
	}
	if opts.Durability != DurabilityGroup && opts.Durability != DurabilityOS {
		return nil, fmt.Errorf("audit: unknown durability %q (want %q or %q)", opts.Durability, DurabilityGroup, DurabilityOS)
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 64 << 20
	}
	opts.SegmentSize = max(opts.SegmentSize, 4096)
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	s := &SegmentStore{dir: dir, opts: opts, logger: opts.Logger, readonly: opts.ReadOnly}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return nil, fmt.Errorf("audit: open %s: not a directory", dir)
	case errors.Is(err, fs.ErrNotExist) && opts.ReadOnly:
		return nil, fmt.Errorf("audit: open %s: %w", dir, fs.ErrNotExist)
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("audit: create %s: %w", dir, err)
		}
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return nil, fmt.Errorf("audit: create %s: %w", dir, err)
		}
	case err != nil:
		return nil, fmt.Errorf("audit: open %s: %w", dir, err)
	}
	flag := os.O_RDWR | os.O_CREATE
	if opts.ReadOnly {
		flag = os.O_RDONLY
	}
	lf, err := os.OpenFile(filepath.Join(dir, "LOCK"), flag, 0o600)
	if errors.Is(err, fs.ErrNotExist) && opts.ReadOnly {
		return nil, fmt.Errorf("%w: %s holds no audit log (no LOCK file)", ErrNotFound, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", dir, err)
	}
	if err := lockFile(lf, opts.ReadOnly, opts.Timeout); err != nil {
		lf.Close()
		return nil, fmt.Errorf("audit: open %s: %w", dir, err)
	}
	s.lockF = lf
	if err := s.load(); err != nil {
		lf.Close()
		return nil, err
	}
	return s, nil
}

// load lists and scans the segments.
func (s *SegmentStore) load() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", s.dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".tmp") && !s.readonly:
			// A segment whose creation did not finish.
			_ = os.Remove(filepath.Join(s.dir, name))
			continue
		case !strings.HasSuffix(name, segSuffix):
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || first == 0 || segName(first) != name {
			return fmt.Errorf("%w: %s is not a segment name; move it out of %s", ErrCorrupt, name, s.dir)
		}
		s.segs = append(s.segs, &segment{first: first, path: filepath.Join(s.dir, name)})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].first < s.segs[j].first })
	for i, sg := range s.segs {
		if err := s.scan(sg, i == len(s.segs)-1); err != nil {
			return err
		}
		if i > 0 && sg.bad != nil && len(sg.offs) == 0 && s.segs[i-1].bad == nil && s.segs[i-1].next() < sg.bad.Seq {
			// Nothing of this segment can be read: the first record lost is
			// the one after the previous segment.
			sg.bad.Seq = s.segs[i-1].next()
		}
		if i > 0 && sg.bad == nil && sg.first < s.segs[i-1].next() {
			sg.bad = &CorruptRecordError{Seq: sg.first, Err: fmt.Errorf("segment %s overlaps the one before it", filepath.Base(sg.path))}
			sg.offs = nil
		}
	}
	if s.readonly {
		return nil
	}
	if len(s.segs) == 0 {
		return s.rotate(1)
	}
	last := s.segs[len(s.segs)-1]
	if last.bad != nil {
		// Writing after damage in the newest segment would overwrite what
		// follows it: refuse writes (reads and Verify report the damage).
		s.failed = fmt.Errorf("%w: %v; run `bridge audit verify` and move the damaged segment aside only once it has been examined", ErrCorrupt, last.bad)
		return nil
	}
	f, err := os.OpenFile(last.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", last.path, err)
	}
	last.f = f
	return nil
}

// scan reads one segment's frames into the index. Damage in a segment other
// than the newest, or anything but a torn last commit in the newest, is
// recorded in sg.bad; a torn last commit in the newest is left out and
// noted in sg.dirtyTo.
func (s *SegmentStore) scan(sg *segment, newest bool) error {
	data, err := os.ReadFile(sg.path)
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", sg.path, err)
	}
	if err := checkSegHeader(data, sg.first); err != nil {
		sg.bad = &CorruptRecordError{Seq: sg.first, Err: fmt.Errorf("segment %s: %v", filepath.Base(sg.path), err)}
		sg.end = int64(len(data))
		return nil
	}
	off := int64(segHeaderSize)
	sg.end = off
	var pendOffs []int64
	var pendCPs []cpLoc
	var damage error
	for {
		if off+frameHeaderSize > int64(len(data)) {
			if off < int64(len(data)) || len(pendOffs)+len(pendCPs) > 0 {
				damage = errors.New("the segment ends inside a frame (cut short)")
			}
			break
		}
		h := data[off : off+frameHeaderSize]
		fh, zero, err := parseFrameHeader(h)
		if zero {
			if len(pendOffs)+len(pendCPs) > 0 {
				damage = errors.New("the last commit in the segment is incomplete (cut short)")
			}
			break
		}
		if err != nil {
			damage = err
			break
		}
		pend := off + frameHeaderSize + int64(fh.length)
		if pend > int64(len(data)) {
			damage = errors.New("the segment ends inside a frame (cut short)")
			break
		}
		if err := checkFrame(h, fh, data[off+frameHeaderSize:pend]); err != nil {
			damage = err
			break
		}
		switch fh.kind {
		case frameRecord:
			if want := sg.first + uint64(len(sg.offs)+len(pendOffs)); fh.seq != want {
				damage = fmt.Errorf("the frame holds record %d where record %d belongs", fh.seq, want)
			} else {
				pendOffs = append(pendOffs, off)
			}
		case frameCheckpoint:
			pendCPs = append(pendCPs, cpLoc{seq: fh.seq, seg: sg, off: off})
		}
		if damage != nil {
			break
		}
		off = pend
		if fh.flags&flagCommitEnd != 0 {
			sg.offs = append(sg.offs, pendOffs...)
			s.cps = append(s.cps, pendCPs...)
			pendOffs, pendCPs = pendOffs[:0], pendCPs[:0]
			sg.end = off
		}
	}
	if damage == nil {
		return nil
	}
	if newest && wholeCommitsAfter(data, sg.end) < 2 {
		// A torn commit: what follows the last whole commit is not part of
		// the log. Bytes there are cleared before the next write. (Only the
		// last commit can be torn; its own last frame may have reached the
		// disk before the rest, but two whole commits after the damage mean
		// the damage is not a torn end.)
		for i := len(data) - 1; i >= int(sg.end); i-- {
			if data[i] != 0 {
				sg.dirtyTo = int64(i) + 1
				break
			}
		}
		s.logger.Warn("audit segment log: an incomplete commit at the end of the newest segment is left out (a crash during a write)",
			"segment", filepath.Base(sg.path), "offset", sg.end, "bytes", sg.dirtyTo-sg.end, "detail", damage.Error())
		return nil
	}
	sg.bad = &CorruptRecordError{Seq: sg.next(), Err: fmt.Errorf("segment %s at offset %d: %v", filepath.Base(sg.path), sg.end, damage)}
	return nil
}

// wholeCommitsAfter counts (up to 2) the frames flagged as the end of a
// commit that are intact (header and checksum) at any offset after off. A
// region that would take more checksumming than twice its size to search
// counts as 2: it is not what a torn write leaves.
func wholeCommitsAfter(data []byte, off int64) int {
	n, budget := 0, 2*len(data)
	for i := int(off) + 1; i+frameHeaderSize <= len(data) && n < 2; i++ {
		h := data[i : i+frameHeaderSize]
		if h[16] != frameRecord && h[16] != frameCheckpoint {
			continue
		}
		fh, zero, err := parseFrameHeader(h)
		if zero || err != nil || fh.flags&flagCommitEnd == 0 || i+frameHeaderSize+int(fh.length) > len(data) {
			continue
		}
		if budget -= int(fh.length); budget < 0 {
			return 2
		}
		if checkFrame(h, fh, data[i+frameHeaderSize:i+frameHeaderSize+int(fh.length)]) == nil {
			n++
			i += frameHeaderSize + int(fh.length) - 1
		}
	}
	return n
}

// rotate creates, preallocates and syncs the segment named first, and
// makes it the active one.
func (s *SegmentStore) rotate(first uint64) error {
	path := filepath.Join(s.dir, segName(first))
	tmp := path + ".tmp"
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%w: segment %s exists already; it is never overwritten", ErrCorrupt, filepath.Base(path))
	}
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("audit: create segment: %w", err)
	}
	fail := func(err error) error {
		f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("audit: create segment %s: %w", filepath.Base(path), err)
	}
	// Zero-fill rather than fallocate: written blocks need no extent
	// conversion, so a commit's fdatasync writes data only.
	zeros := make([]byte, 1<<20)
	copy(zeros, segHeader(first))
	for off := int64(0); off < s.opts.SegmentSize; off += int64(len(zeros)) {
		n := min(int64(len(zeros)), s.opts.SegmentSize-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return fail(err)
		}
		if off == 0 {
			clear(zeros[:segHeaderSize])
		}
	}
	if err := s.sync(f); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return fmt.Errorf("audit: create segment %s: %w", filepath.Base(path), err)
	}
	s.count()
	sg := &segment{first: first, path: path, end: segHeaderSize, f: f}
	s.mu.Lock()
	if n := len(s.segs); n > 0 && s.segs[n-1].f != nil {
		_ = s.segs[n-1].f.Close()
		s.segs[n-1].f = nil
	}
	s.segs = append(s.segs, sg)
	s.mu.Unlock()
	return nil
}

func (s *SegmentStore) sync(f *os.File) error {
	s.count()
	return fdatasync(f)
}

func (s *SegmentStore) count() {
	if s.opts.Syncs != nil {
		s.opts.Syncs.Add(1)
	}
}

// Dir returns the directory of the log.
func (s *SegmentStore) Dir() string { return s.dir }

// Durability returns the store's durability level.
func (s *SegmentStore) Durability() Durability { return s.opts.Durability }

// Close implements Store. A writable store syncs the active segment first,
// so a clean shutdown loses nothing even with DurabilityOS.
func (s *SegmentStore) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	for _, sg := range s.segs {
		if sg.f != nil {
			if s.failed == nil {
				err = s.sync(sg.f)
			}
			err = errors.Join(err, sg.f.Close())
			sg.f = nil
		}
	}
	return errors.Join(err, s.lockF.Close())
}
