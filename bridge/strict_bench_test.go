package bridge

import (
	"encoding/json"
	"strings"
	"testing"
)

// benchMessages are a small and a large tools/call, as agents send them.
var benchMessages = map[string]string{
	"small": `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"get_customers","arguments":{"limit":10,"plan":"enterprise"},"_meta":{"progressToken":7}}}`,
	"large": `{"jsonrpc":"2.0","id":43,"method":"tools/call","params":{"name":"execute_sql","arguments":{"query":"` +
		strings.Repeat("SELECT id, name, email FROM customers WHERE plan = 'enterprise' AND region IN ('eu','us'); ", 100) +
		`","rows":[` + strings.Repeat(`{"id":1,"name":"Ada","tags":["a","b"]},`, 200) + `{"id":2}]}}}`,
}

// BenchmarkParse measures the strict decoding against the baseline it
// replaced in the same run: encoding/json reading the envelope (which
// folds case and keeps the last duplicate, and checks nothing below it).
func BenchmarkParse(b *testing.B) {
	for _, size := range []string{"small", "large"} {
		msg := []byte(benchMessages[size])
		b.Run("strict/"+size, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("encoding-json-envelope/"+size, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				var env struct {
					JSONRPC json.RawMessage `json:"jsonrpc"`
					ID      json.RawMessage `json:"id"`
					Method  json.RawMessage `json:"method"`
					Params  json.RawMessage `json:"params"`
					Result  json.RawMessage `json:"result"`
					Error   json.RawMessage `json:"error"`
				}
				if err := json.Unmarshal(msg, &env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
