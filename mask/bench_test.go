package mask

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/mask/benchcorpus"
)

// sensitiveSamples are the mixed corpus's sensitive values, all detected by
// the default profile; the token-shaped ones come from testdata.
func sensitiveSamples() []string {
	out := append(append([]string(nil), benchcorpus.PIIValues...), benchcorpus.SecretValues...)
	return append(out, credentialFixtures().samples...)
}

// buildCorpus generates about size bytes of mixed prose, JSON, logs and code
// in which roughly frac of the segments carry a sensitive value.
func buildCorpus(size int, frac float64, seed uint64) string {
	return benchcorpus.Build(size, frac, seed, sensitiveSamples())
}

// BenchmarkMaskText masks a clean corpus and a mixed one (about 3% of
// segments sensitive) with the default profile. Its same-run baseline is
// Alcatraz, hoop.dev's masking engine, in the nested module mask/alcatraz
// (kept apart so that bridge's go.mod does not depend on it).
func BenchmarkMaskText(b *testing.B) {
	m := defaultMasker(b)
	corpora := []struct {
		name string
		text string
	}{
		{"clean", buildCorpus(1<<20, 0, 1)},
		{"mixed", buildCorpus(1<<20, 0.03, 2)},
	}
	for _, c := range corpora {
		b.Run(c.name+"/default", func(b *testing.B) {
			b.SetBytes(int64(len(c.text)))
			for b.Loop() {
				m.MaskText(c.text)
			}
		})
	}
}

// typicalToolResult is a tools/call result of about 4 KB: customer records as
// text and as structuredContent, with a card number and an email in each.
func typicalToolResult() []byte {
	var recs, text strings.Builder
	for i := 0; i < 12; i++ {
		if i > 0 {
			recs.WriteByte(',')
		}
		card := "4000056655665556"
		if i%3 != 0 {
			card = "1234 5678 9012 3456" // not a card
		}
		fmt.Fprintf(&recs, `{"id":%d,"name":"Customer %d","email":"c%d@example.com","card":"%s","orders":%d,"since":"2019-0%d-1%dT00:00:00Z"}`, 1000+i, i, i, card, i*7, 1+i%9, i%10)
		fmt.Fprintf(&text, "Customer %d <c%d@example.com> card %s orders %d\\n", i, i, card, i*7)
	}
	return []byte(`{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"` + text.String() +
		`"}],"structuredContent":{"customers":[` + recs.String() + `]},"isError":false}}`)
}

// BenchmarkMaskMessage masks a typical tool result (findings in text and in
// structuredContent) and a clean one through the JSON path, and the same
// bytes through MaskText as the same-run baseline.
func BenchmarkMaskMessage(b *testing.B) {
	m := defaultMasker(b)
	msg := typicalToolResult()
	clean := []byte(`{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"` +
		strings.Repeat("Build 20240115 finished in 42s; 311 tests passed, 0 failed. ", 60) + `"}],"isError":false}}`)
	for _, c := range []struct {
		name string
		raw  []byte
	}{{"tool_result", msg}, {"clean_tool_result", clean}} {
		if _, _, err := m.MaskMessage(c.raw); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/json", func(b *testing.B) {
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				m.MaskMessage(c.raw)
			}
		})
		// The text path on the same bytes is the baseline: the JSON path's
		// MB/s over this one is the ratio the benchmarks report.
		b.Run(c.name+"/text", func(b *testing.B) {
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				m.MaskText(string(c.raw))
			}
		})
		// The two paths alternately, call by call, so that load from other
		// processes falls on both alike: json/text is the JSON path's
		// throughput as a share of the text path's.
		b.Run(c.name+"/ratio", func(b *testing.B) {
			var jsonTime, textTime time.Duration
			for b.Loop() {
				t0 := time.Now()
				m.MaskMessage(c.raw)
				t1 := time.Now()
				m.MaskText(string(c.raw))
				textTime += time.Since(t1)
				jsonTime += t1.Sub(t0)
			}
			b.ReportMetric(float64(textTime)/float64(jsonTime), "json/text")
		})
	}
}

// TestCorpusFindings checks that the benchmark corpora mean what they say:
// the clean one has nothing to mask and the mixed one has findings.
func TestCorpusFindings(t *testing.T) {
	m := defaultMasker(t)
	if _, c := m.MaskText(buildCorpus(1<<18, 0, 1)); c != nil {
		t.Errorf("clean corpus has findings: %v", c)
	}
	if _, c := m.MaskText(buildCorpus(1<<18, 0.03, 2)); c.Total() < 20 {
		t.Errorf("mixed corpus has few findings: %v", c)
	}
}
