package bridge

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestParseStrictRefusesAmbiguity lists messages that two mainstream JSON
// parsers could read differently; each must be refused before any stage
// sees it, with the id kept where it can be read so the request can be
// answered.
func TestParseStrictRefusesAmbiguity(t *testing.T) {
	tests := []struct {
		name, in string
		code     int
		wantID   string // "" for no id
	}{
		{"case-variant tool name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-env","NAME":"echo"}}`, CodeInvalidRequest, "1"},
		{"title-case name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"echo","name":"get-env"}}`, CodeInvalidRequest, "1"},
		{"lone case-variant name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"echo"}}`, CodeInvalidRequest, "1"},
		{"case-variant arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{},"ARGUMENTS":{"a":1}}}`, CodeInvalidRequest, "1"},
		{"case-variant argument key", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":1,"A":1000000}}}`, CodeInvalidRequest, "1"},
		{"deep case-variant key", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"q":[{"k":{"v":1,"V":2}}]}}}`, CodeInvalidRequest, "1"},
		{"unicode fold (Kelvin sign)", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":{\"k\":1,\"\u212a\":2}}}", CodeInvalidRequest, "1"},
		{"long s folds to s", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":{\"s\":1,\"\u017f\":2}}}", CodeInvalidRequest, "1"},
		{"case-variant uri", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///ok","URI":"file:///secret"}}`, CodeInvalidRequest, "1"},
		{"case-variant method", `{"jsonrpc":"2.0","id":1,"method":"tools/call","METHOD":"ping"}`, CodeInvalidRequest, "1"},
		{"lone case-variant method", `{"jsonrpc":"2.0","id":1,"Method":"tools/call"}`, CodeInvalidRequest, "1"},
		{"exact duplicate name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"get-env"}}`, CodeInvalidRequest, "1"},
		{"duplicate after unescaping", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","\u006eame":"get-env"}}`, CodeInvalidRequest, "1"},
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`, CodeInvalidRequest, "1"},
		{"duplicate id", `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, CodeInvalidRequest, "1"},
		{"proto key", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"__proto__":{"admin":true}}}}`, CodeInvalidRequest, "1"},
		{"unpaired surrogate", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-env\ud800"}}`, CodeInvalidRequest, "1"},
		{"invalid utf-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"get-env\xff\"}}", CodeInvalidRequest, "1"},
		{"number overflows float64", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"n":1e400}}}`, CodeInvalidRequest, "1"},
		{"case-variant error member", `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"a","MESSAGE":"b"}}`, CodeInvalidRequest, "1"},
		{"case-variant ref member", `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"ok","NAME":"secret"},"argument":{"name":"a","value":""}}}`, CodeInvalidRequest, "1"},
		{"case-variant key past the pairwise threshold", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{` + manyMembers(40) + `,"K7":1}}}`, CodeInvalidRequest, "1"},
		{"escaped case-variant key past the threshold", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{` + manyMembers(40) + `,"\u004b39":1}}}`, CodeInvalidRequest, "1"},
		{"trailing value", `{"jsonrpc":"2.0","id":1,"method":"ping"} {"jsonrpc":"2.0","id":2,"method":"tools/call"}`, CodeParseError, "1"},
		{"malformed", `{"jsonrpc":"2.0","id":1,"method":`, CodeParseError, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse accepted an ambiguous message as %s %q", m.Kind, m.Method)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T, want *ParseError", err)
			}
			if pe.Code != tt.code {
				t.Errorf("code %d, want %d (%v)", pe.Code, tt.code, err)
			}
			if string(pe.ID) != tt.wantID {
				t.Errorf("id %s, want %s", pe.ID, tt.wantID)
			}
			if !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("error does not wrap ErrInvalidMessage")
			}
			if strings.Contains(err.Error(), "get-env") || strings.Contains(err.Error(), "secret") {
				t.Errorf("error echoes the input: %v", err)
			}
		})
	}
}

// manyMembers returns n distinct members "k0":0,"k1":1,….
func manyMembers(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	return strings.Join(parts, ",")
}

// TestParseStrictAccepts checks that unambiguous messages still pass,
// including names that differ by more than case and escaped values.
func TestParseStrictAccepts(t *testing.T) {
	tests := []struct{ name, in, method string }{
		{"plain", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":1,"b":"x"}}}`, "tools/call"},
		{"escaped method", `{"jsonrpc":"2.0","id":1,"method":"tools\/call"}`, "tools/call"},
		{"keys differing beyond case", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":1,"a_":2,"aa":3}}}`, "tools/call"},
		{"same key in sibling objects", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"l":[{"k":1},{"k":2}]}}}`, "tools/call"},
		{"case-variant key inside result", `{"jsonrpc":"2.0","id":1,"result":{"Name":"x","content":[]}}`, ""},
		{"unknown top-level member", `{"jsonrpc":"2.0","id":1,"method":"ping","x-trace":"1"}`, "ping"},
		{"many distinct members", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{` + manyMembers(100) + `}}}`, "tools/call"},
		{"big integer", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"n":123456789012345678901234567890}}}`, "tools/call"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if m.Method != tt.method {
				t.Errorf("method %q, want %q", m.Method, tt.method)
			}
			if string(m.Raw) != tt.in {
				t.Errorf("Raw changed")
			}
		})
	}
}

// TestCanonicalIDKey checks that ids equal by value share a key, so an
// aliased id collides with the pending request instead of stealing its
// response.
func TestCanonicalIDKey(t *testing.T) {
	same := [][]string{
		{`7`, `7.0`, `7e0`, `70e-1`, `7.000`},
		{`"s1"`, `"\u0073\u0031"`, `"s\u0031"`},
		{`0`, `-0`, `0.0`},
		{`9007199254740993`, `9007199254740992`},
	}
	for _, group := range same {
		want, ok := CanonicalKey([]byte(group[0]))
		if !ok {
			t.Fatalf("CanonicalKey(%s) not ok", group[0])
		}
		for _, id := range group[1:] {
			if got, _ := CanonicalKey([]byte(id)); got != want {
				t.Errorf("CanonicalKey(%s) = %q, want %q (as %s)", id, got, want, group[0])
			}
		}
	}
	if a, _ := CanonicalKey([]byte(`"7"`)); a == func() string { k, _ := CanonicalKey([]byte(`7`)); return k }() {
		t.Errorf(`the string "7" and the number 7 must differ`)
	}
	m, err := Parse([]byte(`{"jsonrpc":"2.0","id":7.0,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Parse([]byte(`{"jsonrpc":"2.0","id":7,"result":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.IDKey() != n.IDKey() {
		t.Errorf("a response with id 7 must match the request with id 7.0")
	}
}

// TestParseBatchStrict checks that an ambiguity anywhere in a batch
// refuses the batch.
func TestParseBatchStrict(t *testing.T) {
	_, err := ParseBatch([]byte(`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get-env","NAME":"echo"}}]`))
	if !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("ParseBatch: %v, want ErrAmbiguous", err)
	}
}

// TestWithIDSplicesOnlyTheID checks that replacing an id leaves every
// other byte of the message as it was.
func TestWithIDSplicesOnlyTheID(t *testing.T) {
	in := `{"jsonrpc":"2.0", "id" :  7.0 ,"method":"tools/call","params":{"name":"x","arguments":{"b":1,"a":2}}}`
	m, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := withID(m, []byte(`"bridge-up-1"`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"jsonrpc":"2.0", "id" :  "bridge-up-1" ,"method":"tools/call","params":{"name":"x","arguments":{"b":1,"a":2}}}`
	if string(out.Raw) != want {
		t.Errorf("withID =\n%s\nwant\n%s", out.Raw, want)
	}
}
