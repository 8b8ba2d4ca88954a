package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in     string
		kind   Kind
		id     string
		method string
		err    string
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, KindRequest, "1", "tools/list", ""},
		{`{"jsonrpc":"2.0","id":"a-1","method":"x","params":{"k":1}}`, KindRequest, `"a-1"`, "x", ""},
		{` {"jsonrpc":"2.0", "id": 7 ,"method":"x","params":[1]} `, KindRequest, "7", "x", ""},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, KindNotification, "", "notifications/initialized", ""},
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, KindResponse, "1", "", ""},
		{`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}`, KindResponse, "null", "", ""},
		{`{"jsonrpc":"2.0","id":1,"method":"x","params":null}`, KindRequest, "1", "x", ""},
		{``, 0, "", "", "empty"},
		{`[]`, 0, "", "", "not a JSON object"},
		{`"hello"`, 0, "", "", "not a JSON object"},
		{`{"jsonrpc":"2.0","id":1,`, 0, "", "", "malformed JSON"},
		{`{"id":1,"method":"x"}`, 0, "", "", `"jsonrpc" must be "2.0"`},
		{`{"jsonrpc":"1.0","id":1,"method":"x"}`, 0, "", "", `"jsonrpc" must be "2.0"`},
		{`{"jsonrpc":"2.0","id":{},"method":"x"}`, 0, "", "", `"id" must be a string or a number`},
		{`{"jsonrpc":"2.0","id":true,"method":"x"}`, 0, "", "", `"id" must be a string or a number`},
		{`{"jsonrpc":"2.0","id":null,"method":"x"}`, 0, "", "", "cannot be null"},
		{`{"jsonrpc":"2.0","id":1,"method":""}`, 0, "", "", "non-empty string"},
		{`{"jsonrpc":"2.0","id":1,"method":5}`, 0, "", "", "non-empty string"},
		{`{"jsonrpc":"2.0","id":1,"method":"x","params":"s"}`, 0, "", "", "object or array"},
		{`{"jsonrpc":"2.0","id":1,"method":"x","result":1}`, 0, "", "", "cannot carry"},
		{`{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}`, 0, "", "", "not both"},
		{`{"jsonrpc":"2.0","result":1}`, 0, "", "", `needs an "id"`},
		{`{"jsonrpc":"2.0","id":1,"error":"x"}`, 0, "", "", `"error" must be an object`},
		{`{"jsonrpc":"2.0","id":1}`, 0, "", "", "neither a request"},
	}
	for _, tc := range cases {
		m, err := Parse([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("Parse(%s) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%s): %v", tc.in, err)
			continue
		}
		if m.Kind != tc.kind || string(m.ID) != tc.id || m.Method != tc.method {
			t.Errorf("Parse(%s) = kind %v id %s method %q", tc.in, m.Kind, m.ID, m.Method)
		}
		if !bytes.Equal(m.Raw, bytes.TrimSpace([]byte(tc.in))) {
			t.Errorf("Parse(%s) changed the raw bytes: %s", tc.in, m.Raw)
		}
	}
}

// TestParseDoesNotEchoInput: errors never quote the message, which may hold
// secrets.
func TestParseDoesNotEchoInput(t *testing.T) {
	_, err := Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"x","params":{"token":"hunter2"`))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error = %v", err)
	}
}

func TestParseBatch(t *testing.T) {
	msgs, err := ParseBatch([]byte(`[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}]`))
	if err != nil || len(msgs) != 2 || msgs[1].Kind != KindNotification {
		t.Fatalf("ParseBatch = %v, %v", msgs, err)
	}
	for _, bad := range []string{`[]`, `[1]`, `[{"jsonrpc":"2.0"}]`, `[`} {
		if _, err := ParseBatch([]byte(bad)); err == nil {
			t.Errorf("ParseBatch(%s) accepted", bad)
		}
	}
}

func TestProgressToken(t *testing.T) {
	m, err := Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken": "t 1"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(m.ProgressToken()); got != `"t 1"` {
		t.Errorf("ProgressToken = %s", got)
	}
}

func TestBuilders(t *testing.T) {
	e := NewError(nil, CodeRefused, "no")
	if string(e.Raw) != `{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"no"}}` {
		t.Errorf("NewError = %s", e.Raw)
	}
	r, err := NewResult(json.RawMessage(`"x"`), map[string]any{"ok": true})
	if err != nil || r.Kind != KindResponse || string(r.ID) != `"x"` {
		t.Errorf("NewResult = %+v, %v", r, err)
	}
}

// FuzzParse: Parse never panics, and what it accepts is valid JSON whose
// classification is stable.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","method":"n","params":{"_meta":{"progressToken":1}}}`,
		`{"jsonrpc":"2.0","id":"x","error":{"code":1,"message":"m","data":[1]}}`,
		`[{"jsonrpc":"2.0","id":1,"result":{}}]`,
		`{"jsonrpc":"2.0","id":1e400,"method":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := ParseBatch(b)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if !json.Valid(m.Raw) {
				t.Fatalf("accepted invalid JSON %q", m.Raw)
			}
			again, err := Parse(m.Raw)
			if err != nil || again.Kind != m.Kind || string(again.ID) != string(m.ID) || again.Method != m.Method {
				t.Fatalf("re-parse differs: %v", err)
			}
			_ = m.ProgressToken()
		}
	})
}

// TestDerivedNests: a derivation may use another derivation of the same
// message (it once deadlocked), and each is computed once.
func TestDerivedNests(t *testing.T) {
	m, err := Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	type inner struct{}
	type outer struct{}
	n := 0
	get := func() any { return m.Derived(inner{}, func() any { n++; return 1 }) }
	v := m.Derived(outer{}, func() any { return get().(int) + 1 })
	if v != 2 || get() != 1 || n != 1 {
		t.Errorf("outer %v, inner computed %d times", v, n)
	}
}
