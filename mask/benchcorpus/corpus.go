// Package benchcorpus generates the text the masking benchmarks run on:
// mixed prose, log lines, JSON and code in which a chosen share of segments
// carries a sensitive value. The mask package's benchmarks and the
// comparison with Alcatraz (the nested module in mask/alcatraz) use it, so
// both measure the same bytes. It is deterministic for a given seed.
package benchcorpus

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// PIIValues are sensitive values of the entity types that bridge's default
// profile and Alcatraz both detect: payment cards, US SSNs, IBANs, e-mail
// addresses, phone numbers and IP addresses.
var PIIValues = []string{
	"4111 1111 1111 1111", "5555555555554444", "378282246310005", "123-45-6789",
	"jane.roe@example.com", "+44 20 7946 0958", "(415) 555-2671", "203.0.113.42",
	"GB82 WEST 1234 5698 7654 32",
}

// SecretValues are sensitive values only bridge's detectors name (a Google
// API key, a JWT, secret assignments); the mask tests add more from their
// testdata.
var SecretValues = []string{
	"AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
	"password=hunter22", `"api_key": "9f8e7d6c5b4a"`,
}

var (
	words = strings.Fields(`the a of to and in is for on that with as was by at from this be are
		order customer account invoice payment shipped pending service request response latency cache
		database query index table user session deployment region cluster node version release build
		error warning retry timeout connection refused granted denied approval reviewer policy gateway`)
	logs = []string{
		`2024-01-15T10:22:33.123Z INFO  http: GET /api/v2/orders/%d status=200 duration=%dms bytes=%d host=api.internal`,
		`2024-01-15T10:22:34.001Z WARN  db: slow query took %dms rows=%d table=orders shard=%d`,
		`time="2024-01-15T10:22:35Z" level=error msg="retry %d of 5" request_id=550e8400-e29b-41d4-a716-4466554400%02d bytes=%d`,
	}
	jsonLines = []string{
		`{"id": %d, "status": "shipped", "total": %d.%02d, "currency": "EUR", "items": [{"sku": "SKU-%d", "qty": %d}], "created_at": "2024-01-15T10:22:33Z"}`,
		`{"order_id": "ORD-%d", "customer": {"name": "Customer %d", "tier": "gold"}, "version": "1.%d.%d", "updated": 1705314153%03d}`,
	}
	code = []string{
		"func handle%d(w http.ResponseWriter, r *http.Request) {\n\tif err := check(r.Context(), %d); err != nil {\n\t\treturn\n\t}\n}",
		"for (let i = 0; i < items.length; i++) { total += items[i].price * %d; } // v%d.%d",
		"SELECT id, name, created_at FROM customers WHERE region = 'eu-west-%d' LIMIT %d;",
	}
)

// Build generates about size bytes in which roughly frac of the segments
// carry one of samples (after " contact: "). frac 0 gives a corpus with
// nothing to mask.
func Build(size int, frac float64, seed uint64, samples []string) string {
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
				b.WriteString(words[r.IntN(len(words))])
			}
			b.WriteString(". ")
		case 1:
			fmt.Fprintf(&b, logs[r.IntN(len(logs))], r.IntN(100000), r.IntN(90), r.IntN(90000))
		case 2:
			fmt.Fprintf(&b, jsonLines[r.IntN(len(jsonLines))], r.IntN(1000000), r.IntN(1000), r.IntN(100), r.IntN(1000), r.IntN(10))
		case 3:
			fmt.Fprintf(&b, code[r.IntN(len(code))], r.IntN(100), r.IntN(100), r.IntN(10))
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
