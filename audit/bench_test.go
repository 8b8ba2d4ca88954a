package audit

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkDurableAppend measures durable (committed, fsync'd) appends to a
// bbolt file with 1, 16 and 64 concurrent writers, group-committed against
// the baseline of one bbolt transaction (one fsync) per record, each with and
// without signing (an Ed25519 signed Merkle head per commit), in the same
// run. Records/s is reported as a metric.
func BenchmarkDurableAppend(b *testing.B) {
	for _, mode := range []struct {
		name     string
		maxBatch int
		sign     bool
	}{{"group-commit", 0, false}, {"group-commit-signed", 0, true}, {"tx-per-record", 1, false}, {"tx-per-record-signed", 1, true}} {
		for _, writers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", mode.name, writers), func(b *testing.B) {
				s := openTestBolt(b, tempDB(b))
				defer s.Close()
				opts := Options{MaxBatch: mode.maxBatch}
				if mode.sign {
					opts.Signer = testKey(b, 1)
				}
				l, err := Open(s, opts)
				if err != nil {
					b.Fatal(err)
				}
				rec := sampleRecord(1)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							r := *rec
							if _, err := l.Append(context.Background(), &r); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
				l.Close()
			})
		}
	}
}

// BenchmarkReplaySession measures `bridge audit replay` of a 10,000-record
// session: Session (reading the bbolt file) plus WriteTranscript.
func BenchmarkReplaySession(b *testing.B) {
	s := openTestBolt(b, tempDB(b))
	defer s.Close()
	recs := make([]Record, 10_000)
	for i := range recs {
		recs[i] = *sampleRecord(i)
		recs[i].Session = "s-bench"
	}
	fillStore(b, s, recs, testClock())
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		got, err := Session(ctx, s, "s-bench")
		if err != nil || len(got) != 10_000 {
			b.Fatal(len(got), err)
		}
		if err := WriteTranscript(io.Discard, got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures Verify over a 10,000-record log.
func BenchmarkVerify(b *testing.B) {
	s := openTestBolt(b, tempDB(b))
	defer s.Close()
	recs := make([]Record, 10_000)
	for i := range recs {
		recs[i] = *sampleRecord(i)
	}
	fillStore(b, s, recs, testClock())
	for b.Loop() {
		if rep, err := Verify(context.Background(), s, nil); err != nil || !rep.OK() {
			b.Fatal(err)
		}
	}
}
