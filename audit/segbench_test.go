package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// commitCounter counts a store's commits (Append calls that write).
type commitCounter struct {
	Store
	n atomic.Int64
}

func (c *commitCounter) Append(ctx context.Context, recs []Record, cps []Checkpoint) error {
	c.n.Add(1)
	return c.Store.Append(ctx, recs, cps)
}

// BenchmarkAuditStore compares, in one run, the bbolt store the segment log
// replaces with the segment log at both durability levels, for 1 and 16
// concurrent writers, each append a signed log's durable Log.Append (as the
// gateway writes). It reports records/s, p50 and p99 append latency, and
// fsyncs per record: counted by the segment store itself; for bbolt, two per
// committed transaction (bbolt's Tx.Commit fdatasyncs the pages, then the
// meta page; see docs/benchmarks.md for the strace check).
func BenchmarkAuditStore(b *testing.B) {
	type mk func(b *testing.B, syncs *atomic.Int64) (Store, func() int64)
	stores := []struct {
		name string
		open mk
	}{
		{"bolt", func(b *testing.B, _ *atomic.Int64) (Store, func() int64) {
			c := &commitCounter{Store: openTestBolt(b, tempDB(b))}
			return c, func() int64 { return 2 * c.n.Load() }
		}},
		{"segments-group", func(b *testing.B, syncs *atomic.Int64) (Store, func() int64) {
			s := openTestSegs(b, filepath.Join(b.TempDir(), "a"), SegmentOptions{SegmentSize: 64 << 20, Syncs: syncs})
			return s, syncs.Load
		}},
		{"segments-os", func(b *testing.B, syncs *atomic.Int64) (Store, func() int64) {
			s := openTestSegs(b, filepath.Join(b.TempDir(), "a"), SegmentOptions{SegmentSize: 64 << 20, Durability: DurabilityOS, Syncs: syncs})
			return s, syncs.Load
		}},
	}
	for _, st := range stores {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/writers=%d", st.name, writers), func(b *testing.B) {
				var syncs atomic.Int64
				s, fsyncs := st.open(b, &syncs)
				defer s.Close()
				l, err := Open(s, Options{Signer: testKey(b, 1)})
				if err != nil {
					b.Fatal(err)
				}
				rec := sampleRecord(1)
				lat := make([]time.Duration, b.N)
				var next atomic.Int64
				var wg sync.WaitGroup
				before := fsyncs()
				b.ResetTimer()
				for range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							r := *rec
							t0 := time.Now()
							if _, err := l.Append(context.Background(), &r); err != nil {
								b.Error(err)
								return
							}
							lat[i] = time.Since(t0)
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				n := fsyncs() - before
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
				b.ReportMetric(float64(n)/float64(b.N), "fsyncs/record")
				l.Close()
			})
		}
	}
}
