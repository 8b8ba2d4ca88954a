package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Append implements Store: the frames of recs and cps are written at the end
// of the active segment in one write, then (DurabilityGroup) one fdatasync.
func (s *SegmentStore) Append(ctx context.Context, recs []Record, cps []Checkpoint) error {
	if s.readonly {
		return errors.New("audit: store is read-only")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(recs) == 0 && len(cps) == 0 {
		return nil
	}
	var buf []byte
	nframes := len(recs) + len(cps)
	recAt := make([]int, len(recs))
	for i := range recs {
		v := recs[i].enc
		if v == nil {
			var err error
			if v, err = EncodeRecord(&recs[i]); err != nil {
				return err
			}
		}
		recAt[i] = len(buf)
		buf = appendFrame(buf, frameRecord, recs[i].Seq, i == nframes-1, v)
	}
	cpAt := make([]int, len(cps))
	for i := range cps {
		v, err := json.Marshal(&cps[i])
		if err != nil {
			return err
		}
		cpAt[i] = len(buf)
		buf = appendFrame(buf, frameCheckpoint, cps[i].Seq, len(recs)+i == nframes-1, v)
	}

	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	closed, failed := s.closed, s.failed
	s.mu.RUnlock()
	switch {
	case closed:
		return ErrClosed
	case errors.Is(failed, ErrCorrupt):
		return fmt.Errorf("audit: the segment log is damaged, so nothing is written to it: %w", failed)
	case failed != nil:
		return fmt.Errorf("audit: an earlier sync of the segment log failed, so what the disk holds is unknown; restart the gateway: %w", failed)
	}
	sg := s.segs[len(s.segs)-1]
	next := sg.next()
	if len(recs) > 0 && recs[0].Seq > next && s.empty() {
		// A store without records takes a log whose older records were
		// pruned (moved from bbolt): its first segment is named after them.
		if err := s.rotate(recs[0].Seq); err != nil {
			return err
		}
		sg, next = s.segs[len(s.segs)-1], recs[0].Seq
	}
	if len(recs) > 0 && recs[0].Seq != next {
		return fmt.Errorf("%w: got seq %d, want %d", ErrConflict, recs[0].Seq, next)
	}
	for i := range recs {
		if recs[i].Seq != next+uint64(i) {
			return fmt.Errorf("%w: got seq %d, want %d", ErrConflict, recs[i].Seq, next+uint64(i))
		}
	}
	// A new segment is named after its first record, so one that holds no
	// record yet takes the commit however large it is.
	if len(sg.offs) > 0 && sg.end+int64(len(buf)) > s.opts.SegmentSize {
		if err := s.rotate(next); err != nil {
			s.logger.Error("audit segment log: cannot start a new segment", "err", err)
			return err
		}
		sg = s.segs[len(s.segs)-1]
	}
	if err := s.clearTorn(sg); err != nil {
		return err
	}
	if err := s.write(sg, buf, nframes); err != nil {
		// Whatever reached the file is an unfinished commit: clear it first
		// next time.
		sg.dirtyTo = max(sg.dirtyTo, sg.end+int64(len(buf)))
		return fmt.Errorf("audit: write segment %s: %w", filepath.Base(sg.path), err)
	}
	if s.opts.Durability == DurabilityGroup {
		if err := s.sync(sg.f); err != nil {
			s.mu.Lock()
			s.failed = err
			s.mu.Unlock()
			return fmt.Errorf("audit: sync segment %s: %w", filepath.Base(sg.path), err)
		}
	}
	s.mu.Lock()
	for i := range recs {
		sg.offs = append(sg.offs, sg.end+int64(recAt[i]))
	}
	for i := range cps {
		s.cps = append(s.cps, cpLoc{seq: cps[i].Seq, seg: sg, off: sg.end + int64(cpAt[i])})
	}
	sg.end += int64(len(buf))
	s.mu.Unlock()
	return nil
}

// empty reports whether no segment holds a record.
func (s *SegmentStore) empty() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, sg := range s.segs {
		if len(sg.offs) > 0 {
			return false
		}
	}
	return true
}

// write writes buf at the end of sg (in two halves when the crash test asks).
func (s *SegmentStore) write(sg *segment, buf []byte, frames int) error {
	if s.opts.midWrite != nil && len(buf) > 1 {
		h := len(buf) / 2
		if _, err := sg.f.WriteAt(buf[:h], sg.end); err != nil {
			return err
		}
		s.opts.midWrite(frames)
		_, err := sg.f.WriteAt(buf[h:], sg.end+int64(h))
		return err
	}
	_, err := sg.f.WriteAt(buf, sg.end)
	return err
}

// clearTorn saves the bytes of a torn commit beside the segment and zeroes
// them, so that the next commit is not followed by stale frames.
func (s *SegmentStore) clearTorn(sg *segment) error {
	if sg.dirtyTo <= sg.end {
		return nil
	}
	n := sg.dirtyTo - sg.end
	torn := make([]byte, n)
	if _, err := sg.f.ReadAt(torn, sg.end); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("audit: read the torn commit in %s: %w", filepath.Base(sg.path), err)
	}
	aside := fmt.Sprintf("%s.torn-%d", sg.path, sg.end)
	if err := os.WriteFile(aside, torn, 0o600); err != nil {
		return fmt.Errorf("audit: keep the torn commit of %s: %w", filepath.Base(sg.path), err)
	}
	if _, err := sg.f.WriteAt(make([]byte, n), sg.end); err != nil {
		return fmt.Errorf("audit: clear the torn commit in %s: %w", filepath.Base(sg.path), err)
	}
	if err := s.sync(sg.f); err != nil {
		return fmt.Errorf("audit: clear the torn commit in %s: %w", filepath.Base(sg.path), err)
	}
	s.logger.Warn("audit segment log: cleared an incomplete commit left by a crash", "segment", filepath.Base(sg.path), "offset", sg.end, "bytes", n, "kept_in", filepath.Base(aside))
	sg.dirtyTo = 0
	return nil
}

// view is a reader's snapshot of one segment.
type view struct {
	first uint64
	path  string
	offs  []int64
	end   int64
	bad   *CorruptRecordError
}

func (s *SegmentStore) snapshot() ([]view, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := make([]view, len(s.segs))
	for i, sg := range s.segs {
		out[i] = view{first: sg.first, path: sg.path, offs: sg.offs[:len(sg.offs):len(sg.offs)], end: sg.end, bad: sg.bad}
	}
	return out, nil
}

// stillIndexed reports whether the segment at path is still in the index
// (it was not deleted by retention while a reader had it).
func (s *SegmentStore) stillIndexed(path string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, sg := range s.segs {
		if sg.path == path {
			return true
		}
	}
	return false
}

// Range implements Store. Each frame's checksum is checked again as it is
// read, so damage done after open is reported too.
func (s *SegmentStore) Range(ctx context.Context, from, to uint64, fn func(Record) error) error {
	from = max(from, 1)
	views, err := s.snapshot()
	if err != nil {
		return err
	}
	for _, v := range views {
		last := v.first + uint64(len(v.offs)) // one past the last record
		if to != 0 && v.first > to {
			break
		}
		if max(from, v.first) < last {
			i := int(max(from, v.first) - v.first)
			if err := s.readRecords(ctx, v, i, to, fn); err != nil {
				return err
			}
		}
		if v.bad != nil && v.bad.Seq >= from && (to == 0 || v.bad.Seq <= to) {
			return v.bad
		}
	}
	return nil
}

// readRecords reads v's records from index i through seq to (0: all).
func (s *SegmentStore) readRecords(ctx context.Context, v view, i int, to uint64, fn func(Record) error) error {
	f, err := os.Open(v.path)
	if errors.Is(err, fs.ErrNotExist) && !s.stillIndexed(v.path) {
		return nil // deleted by retention meanwhile
	}
	if err != nil {
		return &CorruptRecordError{Seq: v.first + uint64(i), Err: fmt.Errorf("segment %s: %v", filepath.Base(v.path), err)}
	}
	defer f.Close()
	start := v.offs[i]
	br := bufio.NewReaderSize(io.NewSectionReader(f, start, v.end-start), 64<<10)
	off := start
	h := make([]byte, frameHeaderSize)
	var payload []byte
	for ; i < len(v.offs); i++ {
		seq := v.first + uint64(i)
		if to != 0 && seq > to {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		for {
			bad := func(err error) error {
				return &CorruptRecordError{Seq: seq, Err: fmt.Errorf("segment %s at offset %d: %v", filepath.Base(v.path), off, err)}
			}
			if _, err := io.ReadFull(br, h); err != nil {
				return bad(fmt.Errorf("the frame cannot be read: %v", err))
			}
			fh, zero, err := parseFrameHeader(h)
			if zero {
				err = errors.New("the frame is gone (zeroed)")
			}
			if err != nil {
				return bad(err)
			}
			if cap(payload) < int(fh.length) {
				payload = make([]byte, fh.length)
			}
			payload = payload[:fh.length]
			if _, err := io.ReadFull(br, payload); err != nil {
				return bad(fmt.Errorf("the frame cannot be read: %v", err))
			}
			if err := checkFrame(h, fh, payload); err != nil {
				return bad(err)
			}
			off += frameHeaderSize + int64(fh.length)
			if fh.kind == frameCheckpoint {
				continue
			}
			if fh.seq != seq {
				return bad(fmt.Errorf("the frame holds record %d", fh.seq))
			}
			r, err := DecodeRecord(payload)
			if err != nil {
				return bad(err)
			}
			if r.Seq != seq {
				return bad(fmt.Errorf("stored as record %d but claims seq %d", seq, r.Seq))
			}
			if err := fn(r); err != nil {
				return err
			}
			break
		}
	}
	return nil
}

// edge returns the first or last stored record.
func (s *SegmentStore) edge(ctx context.Context, last bool) (Record, bool, error) {
	views, err := s.snapshot()
	if err != nil {
		return Record{}, false, err
	}
	var seq uint64
	for i := range views {
		v := views[i]
		if last {
			v = views[len(views)-1-i]
		}
		if len(v.offs) > 0 {
			seq = v.first
			if last {
				seq = v.first + uint64(len(v.offs)) - 1
			}
			break
		}
		if !last && v.bad != nil {
			return Record{}, false, v.bad
		}
	}
	if seq == 0 {
		return Record{}, false, nil
	}
	var out Record
	err = s.Range(ctx, seq, seq, func(r Record) error { out = r; return nil })
	if err != nil {
		return Record{}, false, err
	}
	return out, out.Seq == seq, nil
}

// First implements Store.
func (s *SegmentStore) First(ctx context.Context) (Record, bool, error) { return s.edge(ctx, false) }

// Last implements Store.
func (s *SegmentStore) Last(ctx context.Context) (Record, bool, error) { return s.edge(ctx, true) }

// Checkpoints implements Store. For each Seq the checkpoint written last
// wins; one that cannot be read is returned emptied (Verify reports it).
func (s *SegmentStore) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	locs := append([]cpLoc(nil), s.cps...)
	paths := map[*segment]string{}
	for _, l := range locs {
		paths[l.seg] = l.seg.path
	}
	s.mu.RUnlock()
	bySeq := map[uint64]Checkpoint{}
	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, l := range locs {
		path := paths[l.seg]
		f, ok := files[path]
		if !ok {
			var err error
			if f, err = os.Open(path); err != nil {
				if errors.Is(err, fs.ErrNotExist) && !s.stillIndexed(path) {
					continue
				}
				bySeq[l.seq] = Checkpoint{Seq: l.seq}
				continue
			}
			files[path] = f
		}
		bySeq[l.seq] = readCheckpoint(f, l)
	}
	out := make([]Checkpoint, 0, len(bySeq))
	for _, cp := range bySeq {
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func readCheckpoint(f *os.File, l cpLoc) Checkpoint {
	h := make([]byte, frameHeaderSize)
	if _, err := f.ReadAt(h, l.off); err != nil {
		return Checkpoint{Seq: l.seq}
	}
	fh, zero, err := parseFrameHeader(h)
	if zero || err != nil || fh.kind != frameCheckpoint || fh.seq != l.seq {
		return Checkpoint{Seq: l.seq}
	}
	payload := make([]byte, fh.length)
	if _, err := f.ReadAt(payload, l.off+frameHeaderSize); err != nil || checkFrame(h, fh, payload) != nil {
		return Checkpoint{Seq: l.seq}
	}
	var cp Checkpoint
	if err := json.Unmarshal(payload, &cp); err != nil || cp.Seq != l.seq {
		return Checkpoint{Seq: l.seq}
	}
	return cp
}

// DeleteRange implements Store. Retention deletes whole segments: a segment
// is removed once every record in it is within from..to (never the active
// one), oldest first, so up to one segment's worth of records past retention
// may remain until the next prune. Checkpoints go with their segment.
func (s *SegmentStore) DeleteRange(ctx context.Context, from, to uint64) error {
	if s.readonly {
		return errors.New("audit: store is read-only")
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	removed := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			return ErrClosed
		}
		var victim *segment
		if len(s.segs) > 1 {
			sg := s.segs[0]
			lastSeq := sg.next() - 1 // sg.first-1 for a segment without records
			if sg.bad == nil && (len(sg.offs) == 0 || sg.first >= from) && lastSeq <= to {
				victim = sg
			}
		}
		s.mu.RUnlock()
		if victim == nil {
			break
		}
		if err := os.Remove(victim.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: delete segment %s: %w", filepath.Base(victim.path), err)
		}
		removed = true
		s.mu.Lock()
		s.segs = s.segs[1:]
		keep := s.cps[:0]
		for _, c := range s.cps {
			if c.seg != victim {
				keep = append(keep, c)
			}
		}
		s.cps = keep
		s.mu.Unlock()
	}
	if removed {
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("audit: delete segments: %w", err)
		}
	}
	return nil
}
