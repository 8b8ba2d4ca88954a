package mask

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// sensitiveSamples are the mixed corpus's sensitive values, all detected by
// the default profile; the token-shaped ones come from testdata.
func sensitiveSamples() []string {
	return append(append([]string(nil), sampleValues...), credentialFixtures().samples...)
}

var sampleValues = []string{
	"4111 1111 1111 1111", "5555555555554444", "378282246310005", "123-45-6789",
	"jane.roe@example.com", "+44 20 7946 0958", "(415) 555-2671", "203.0.113.42",
	"AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "GB82 WEST 1234 5698 7654 32",
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
	"password=hunter22", `"api_key": "9f8e7d6c5b4a"`,
}

var (
	corpusWords = strings.Fields(`the a of to and in is for on that with as was by at from this be are
		order customer account invoice payment shipped pending service request response latency cache
		database query index table user session deployment region cluster node version release build
		error warning retry timeout connection refused granted denied approval reviewer policy gateway`)
	corpusLogs = []string{
		`2024-01-15T10:22:33.123Z INFO  http: GET /api/v2/orders/%d status=200 duration=%dms bytes=%d host=api.internal`,
		`2024-01-15T10:22:34.001Z WARN  db: slow query took %dms rows=%d table=orders shard=%d`,
		`time="2024-01-15T10:22:35Z" level=error msg="retry %d of 5" request_id=550e8400-e29b-41d4-a716-4466554400%02d bytes=%d`,
	}
	corpusJSON = []string{
		`{"id": %d, "status": "shipped", "total": %d.%02d, "currency": "EUR", "items": [{"sku": "SKU-%d", "qty": %d}], "created_at": "2024-01-15T10:22:33Z"}`,
		`{"order_id": "ORD-%d", "customer": {"name": "Customer %d", "tier": "gold"}, "version": "1.%d.%d", "updated": 1705314153%03d}`,
	}
	corpusCode = []string{
		"func handle%d(w http.ResponseWriter, r *http.Request) {\n\tif err := check(r.Context(), %d); err != nil {\n\t\treturn\n\t}\n}",
		"for (let i = 0; i < items.length; i++) { total += items[i].price * %d; } // v%d.%d",
		"SELECT id, name, created_at FROM customers WHERE region = 'eu-west-%d' LIMIT %d;",
	}
)

// buildCorpus generates about size bytes of mixed prose, JSON, logs and code
// in which roughly frac of the segments carry a sensitive value.
func buildCorpus(size int, frac float64, seed uint64) string {
	samples := sensitiveSamples()
	r := rand.New(rand.NewPCG(seed, 42))
	var b strings.Builder
	b.Grow(size + 512)
	for b.Len() < size {
		switch r.IntN(4) {
		case 0:
			n := 8 + r.IntN(16)
			for i := 0; i < n; i++ {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(corpusWords[r.IntN(len(corpusWords))])
			}
			b.WriteString(". ")
		case 1:
			fmt.Fprintf(&b, corpusLogs[r.IntN(len(corpusLogs))], r.IntN(100000), r.IntN(90), r.IntN(90000))
		case 2:
			fmt.Fprintf(&b, corpusJSON[r.IntN(len(corpusJSON))], r.IntN(1000000), r.IntN(1000), r.IntN(100), r.IntN(1000), r.IntN(10))
		case 3:
			fmt.Fprintf(&b, corpusCode[r.IntN(len(corpusCode))], r.IntN(100), r.IntN(100), r.IntN(10))
		}
		if r.Float64() < frac {
			b.WriteString(" contact: ")
			b.WriteString(samples[r.IntN(len(samples))])
			b.WriteString(" ")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// naiveRegexps are what a straightforward implementation runs: one regular
// expression per detector over the whole text, with no validation.
var naiveRegexps = []*regexp.Regexp{
	regexp.MustCompile(`\b(?:\d[ -]?){12,18}\d\b`),
	regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`),
	regexp.MustCompile(`\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b`),
	regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`),
	regexp.MustCompile(`\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}|\(?\b\d{3}\)?[ .-]\d{3}[.-]\d{4}\b`),
	regexp.MustCompile(`\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b`),
	regexp.MustCompile(`\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b`),
	regexp.MustCompile(`(?i)aws_?secret_?access_?key["']?\s*[:=]\s*["']?[A-Za-z0-9/+]{40}`),
	regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b`),
	regexp.MustCompile(`\bglpat-[A-Za-z0-9_-]{20,}`),
	regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]{10,}`),
	regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`),
	regexp.MustCompile(`\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`),
	regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----`),
	regexp.MustCompile(`(?i)\b(?:password|passwd|secret|api_?key|token)\b["']?\s*[:=]\s*["']?[^\s"',;&]+`),
}

func naiveMask(s string) string {
	for _, re := range naiveRegexps {
		s = re.ReplaceAllString(s, "[REDACTED]")
	}
	return s
}

// BenchmarkMaskText compares the default profile with the naive approach on
// a clean corpus and on a mixed corpus (about 3% of segments sensitive).
// The ratio of the two MB/s figures is the speed-up.
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
		b.Run(c.name+"/naive", func(b *testing.B) {
			b.SetBytes(int64(len(c.text)))
			for b.Loop() {
				naiveMask(c.text)
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
