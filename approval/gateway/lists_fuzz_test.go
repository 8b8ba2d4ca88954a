package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// FuzzFilterList checks the list filter against a second, independent JSON
// parser: whatever it forwards is one valid message whose every listed
// entry (read by encoding/json) has the string name that was allowed, and
// nothing it refused survives.
func FuzzFilterList(f *testing.F) {
	for _, seed := range []string{
		`{"tools":[{"name":"ok"},{"name":"no"}],"nextCursor":"c"}`,
		`{"tools":[{"name":"ok"},{"Name":"no"},{"name":1},[],"x"]}`,
		`{"tools":{"name":"no"}}`,
		`{"Tools":[{"name":"no"}]}`,
		`{"tools":[{"name":"o\u006b"},{"name":"n\u006f"}]}`,
		`{"tools":[]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, result string) {
		m, err := bridge.Parse([]byte(`{"jsonrpc":"2.0","id":1,"result":` + result + `}`))
		if err != nil || m.Kind != bridge.KindResponse || m.Error != nil {
			return
		}
		keep := func(name string) bool { return !strings.HasPrefix(name, "no") }
		out, err := filterList(m, listSpec{"tools", "name"}, keep)
		if err != nil {
			return // withheld
		}
		if _, err := bridge.Parse(out.Raw); err != nil {
			t.Fatalf("filtered message does not parse: %v: %s", err, out.Raw)
		}
		var r map[string]json.RawMessage
		if json.Unmarshal(out.Result, &r) != nil {
			t.Fatalf("filtered result is not an object: %s", out.Result)
		}
		for k, v := range r {
			if !strings.EqualFold(k, "tools") {
				continue
			}
			var tools []map[string]any
			if err := json.Unmarshal(v, &tools); err != nil {
				if out == m && k == "tools" {
					continue // not filtered; kept as it came only when nothing needed removing
				}
				t.Fatalf("tools %s: %v", v, err)
			}
			for _, tool := range tools {
				name, ok := tool["name"].(string)
				if !ok || !keep(name) {
					t.Fatalf("forwarded entry %v from %s", tool, result)
				}
			}
		}
	})
}
