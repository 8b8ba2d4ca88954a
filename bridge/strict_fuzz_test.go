package bridge

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
)

// FuzzStrictParseAgreesWithOtherParsers: whatever Parse accepts, two
// independent parsers — encoding/json (v1, into map[string]any with
// UseNumber, and into a struct, which matches member names
// case-insensitively) and json v2 (github.com/go-json-experiment/json,
// into any) — read the same method, the same params name and uri, and the
// same arguments. A message on which they could disagree (a duplicate or
// case-variant name, invalid UTF-8, a number beyond float64, __proto__) must
// be refused by Parse, since an upstream might read it either way.
func FuzzStrictParseAgreesWithOtherParsers(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-env","NAME":"echo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","\u006eame":"get-env"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":1},"ARGUMENTS":{"a":2}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":1,"a":2}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","argument\u017f":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"__proto__":{}}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo\ud800"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":1e400}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","METHOD":"ping"}`,
		`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a","URI":"file:///b"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1,"uri":"x"}}`,
		`{"jsonrpc":"2.0","id":7.0,"method":"prompts/get","params":{"name":"p","arguments":{"k":"v"}}}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"e\xffcho\"}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		raw := []byte(m.Raw)

		// json v2: strict by default (duplicates, invalid UTF-8 refused).
		var v2 any
		if err := jsonv2.Unmarshal(raw, &v2); err != nil {
			t.Fatalf("Parse accepted what json v2 refuses (%v): %q", err, b)
		}
		// encoding/json into a map, numbers kept as text.
		var v1 map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v1); err != nil {
			t.Fatalf("Parse accepted what encoding/json refuses (%v): %q", err, b)
		}
		checkNames(t, b, v2)

		top2, _ := v2.(map[string]any)
		if got := stringOr(v1["method"]); got != m.Method || stringOr(top2["method"]) != m.Method {
			t.Fatalf("method: Parse %q, encoding/json %q, json v2 %q: %q", m.Method, got, stringOr(top2["method"]), b)
		}
		if m.Params == nil {
			return
		}
		var params2 any
		if err := jsonv2.Unmarshal(m.Params, &params2); err != nil {
			t.Fatalf("Parse's params do not decode (%v): %q", err, b)
		}
		p1, _ := v1["params"].(map[string]any)
		p2, _ := params2.(map[string]any)
		if !reflect.DeepEqual(normalize(v1["params"]), normalize(top2["params"])) || !reflect.DeepEqual(normalize(top2["params"]), normalize(params2)) {
			t.Fatalf("params differ between the parsers: %q", b)
		}
		// The lenient struct decoding the gateway once used (case-insensitive,
		// last match wins) must read the same name, uri and arguments.
		var loose struct {
			Name      any `json:"name"`
			URI       any `json:"uri"`
			Arguments any `json:"arguments"`
		}
		if p1 != nil {
			ld := json.NewDecoder(bytes.NewReader(m.Params))
			ld.UseNumber()
			if err := ld.Decode(&loose); err == nil {
				for _, k := range []struct {
					name string
					v    any
				}{{"name", loose.Name}, {"uri", loose.URI}, {"arguments", loose.Arguments}} {
					if !reflect.DeepEqual(normalize(k.v), normalize(p2[k.name])) {
						t.Fatalf("params %s: case-insensitive decoding reads %v, strict %v: %q", k.name, k.v, p2[k.name], b)
					}
				}
			}
		}
	})
}

// checkNames fails on two member names of one object equal under Unicode
// case folding, and on a __proto__ member, at any depth.
func checkNames(t *testing.T, b []byte, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		seen := map[string]string{}
		for k, c := range v {
			if k == "__proto__" {
				t.Fatalf("Parse accepted a __proto__ member: %q", b)
			}
			folded := foldKey(k)
			if prev, ok := seen[folded]; ok {
				t.Fatalf("Parse accepted %q and %q in one object: %q", prev, k, b)
			}
			seen[folded] = k
			checkNames(t, b, c)
		}
	case []any:
		for _, c := range v {
			checkNames(t, b, c)
		}
	}
}

// foldKey maps a name to a representative of its case-folding class, the
// way encoding/json matches names (including the Kelvin sign and long s).
func foldKey(s string) string {
	var out strings.Builder
	for _, r := range s {
		switch r {
		case '\u212a':
			r = 'k'
		case '\u017f':
			r = 's'
		}
		out.WriteString(strings.ToLower(strings.ToUpper(string(r))))
	}
	return out.String()
}

// normalize makes the parsers' trees comparable: json.Number and float64
// both become the float64 they denote.
func normalize(v any) any {
	switch v := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return "bad number " + string(v)
		}
		return f
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, c := range v {
			out[k] = normalize(c)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, c := range v {
			out[i] = normalize(c)
		}
		return out
	}
	return v
}

func stringOr(v any) string {
	s, _ := v.(string)
	return s
}
