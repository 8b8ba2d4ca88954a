package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCanonicalJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, `{}`},
		{"  \n", `{}`},
		{`null`, `null`},
		{`{"b":1, "a":[true,false,null], "c":{"z":"", "y":{}}}`, `{"a":[true,false,null],"b":1,"c":{"y":{},"z":""}}`},
		{`{"n":1.50, "e":1E+2, "m":-0, "big":123456789012345678901234567890}`, `{"big":123456789012345678901234567890,"e":1E+2,"m":-0,"n":1.50}`},
		{`"\u0041\/\"\\\n\t\u0001\u00e9\ud83d\ude00<&>"`, "\"A/\\\"\\\\\\n\\t\\u0001é😀<&>\""},
		{`{"é":1,"e":2,"E":3}`, `{"E":3,"e":2,"é":1}`},
		{`[ ]`, `[]`},
	}
	for _, tt := range tests {
		got, err := CanonicalJSON([]byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("CanonicalJSON(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	bad := []string{
		`{"a":1,"a":2}`, `{"a":1`, `{"a":1}x`, `{a:1}`, `[1,]`, `01`, `1.`, `-`, `"\x"`, "\"\xff\"",
		`"\ud83d"`, `"\ude00"`, `"\ud83d\u0041"`, "\"a\nb\"", `tru`, `{"a" 1}`, `nan`,
		`{"a":{"b":1,"b":2}}`, `[{"x":1,"x":1}]`,
	}
	for _, in := range bad {
		if got, err := CanonicalJSON([]byte(in)); err == nil {
			t.Errorf("CanonicalJSON(%q) = %s, want error", in, got)
		}
	}
}

func TestParseArgsDepth(t *testing.T) {
	if _, err := parseArgs([]byte(strings.Repeat("[", 200) + strings.Repeat("]", 200))); err == nil {
		t.Error("nesting of 200 accepted by the policy's decoder")
	}
	if _, err := parseArgs([]byte(strings.Repeat("[", 100) + strings.Repeat("]", 100))); err != nil {
		t.Errorf("nesting of 100 refused: %v", err)
	}
	for _, in := range []string{`{"a":1} x`, `{"a":1}{}`, `{"a":1,"a":2}`, "\"\xff\""} {
		if _, err := parseArgs([]byte(in)); err == nil {
			t.Errorf("parseArgs(%q) accepted", in)
		}
	}
}

func TestDigester(t *testing.T) {
	key := bytes.Repeat([]byte{7}, MinDigestKeyLen)
	d, err := NewDigester(key)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewDigester(bytes.Repeat([]byte{8}, MinDigestKeyLen))
	if _, err := NewDigester(key[:16]); err == nil {
		t.Error("a 16-byte key was accepted")
	}
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"key order and spacing", `{"a":1,"b":2}`, "{ \"b\": 2,\n \"a\": 1 }", true},
		{"escapes", `{"s":"\u0041"}`, `{"s":"A"}`, true},
		{"absent and empty", ``, `{}`, true},
		{"another value", `{"a":1,"b":2}`, `{"a":1000000,"b":2}`, false},
		{"a decoy key", `{"a":1,"b":2}`, `{"a":1,"b":2,"A":1000000}`, false},
		{"int and float literal", `{"n":1}`, `{"n":1.0}`, false},
		{"beyond float64 precision", `{"n":9007199254740993}`, `{"n":9007199254740992}`, false},
		{"nested order", `{"o":{"y":[1,{"q":1,"p":2}],"x":null}}`, `{"o":{"x":null,"y":[1,{"p":2,"q":1}]}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			da, db := d.Args([]byte(tt.a)), d.Args([]byte(tt.b))
			if (da == db) != tt.same {
				t.Errorf("digests %s and %s: same = %v, want %v", da, db, da == db, tt.same)
			}
			if !IsKeyedDigest(da) || !strings.HasPrefix(da, KeyedDigestPrefix) || len(da) != len(KeyedDigestPrefix)+64 {
				t.Errorf("digest %q is not a keyed digest", da)
			}
			if da == other.Args([]byte(tt.a)) {
				t.Error("two keys gave the same digest")
			}
			if da == KeyedDigestPrefix+ArgsDigest([]byte(tt.a)) {
				t.Error("the keyed digest is the plain SHA-256")
			}
		})
	}
	if inv := d.Args([]byte(`{"a":1,"a":2}`)); !strings.HasPrefix(inv, "invalid:") || !IsKeyedDigest(inv) {
		t.Errorf("digest of invalid arguments %q", inv)
	}
	if IsKeyedDigest(ArgsDigest([]byte(`{}`))) {
		t.Error("an unkeyed digest reads as keyed")
	}
	if s := fmt.Sprint(d) + fmt.Sprintf("%v %+v %s", d, d, d); strings.Contains(s, "\x07") || strings.Contains(s, "7 7 7") {
		t.Errorf("the key prints: %s", s)
	}
}

func TestArgsDigest(t *testing.T) {
	a := ArgsDigest([]byte(`{"b":1,"a":"x"}`))
	b := ArgsDigest([]byte("{\n  \"a\": \"\\u0078\",\n  \"b\": 1\n}"))
	if a != b || len(a) != 64 {
		t.Errorf("digests %s %s", a, b)
	}
	if ArgsDigest(nil) != ArgsDigest([]byte(`{}`)) {
		t.Error("absent arguments and {} must digest alike")
	}
	if d := ArgsDigest([]byte(`{"a":1,"a":1}`)); !strings.HasPrefix(d, "invalid:") {
		t.Errorf("invalid digest %s", d)
	}
	if ArgsDigest([]byte(`{"n":1}`)) == ArgsDigest([]byte(`{"n":1.0}`)) {
		t.Error("number literals are kept, so 1 and 1.0 differ")
	}
}

func TestLeafText(t *testing.T) {
	tree, err := parseArgs([]byte(`{"Key":["VaLue",{"Deep":"ÉCOLE"}],"n":12,"b":true,"z":null}`))
	if err != nil {
		t.Fatal(err)
	}
	text := string(appendLeafText(nil, tree))
	for _, want := range []string{"key\x00", "value\x00", "deep\x00", "école\x00", "12\x00", "true\x00", "null\x00"} {
		if !strings.Contains(text, want) {
			t.Errorf("leaf text %q lacks %q", text, want)
		}
	}
}

func decodeNumbers(data []byte, v *any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(v)
}

// FuzzCanonicalJSON checks that canonicalization never panics, agrees with
// encoding/json on what is valid (modulo its extra strictness), produces
// valid JSON and is idempotent.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"b":[1,2,{"c":null}],"a":"\u00e9\n"}`, `[1e5,-0.5,true]`, `"\ud83d\ude00"`, `{"a":1,"a":2}`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := CanonicalJSON(raw)
		if err != nil {
			if len(bytes.Trim(raw, " \t\r\n")) == 0 {
				t.Fatalf("empty input refused: %v", err)
			}
			return
		}
		if len(bytes.Trim(raw, " \t\r\n")) > 0 && !json.Valid(raw) {
			t.Fatalf("accepted invalid JSON %q", raw)
		}
		if !json.Valid(c) || !utf8.Valid(c) {
			t.Fatalf("canonical form %q of %q is not valid JSON", c, raw)
		}
		c2, err := CanonicalJSON(c)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", raw, c, c2, err)
		}
		var v1, v2 any
		if len(bytes.Trim(raw, " \t\r\n")) > 0 {
			// Numbers as json.Number: a literal such as 1E700 is valid JSON
			// that overflows a float64, and CanonicalJSON keeps its text.
			if decodeNumbers(raw, &v1) != nil || decodeNumbers(c, &v2) != nil {
				t.Fatalf("encoding/json cannot decode %q or %q", raw, c)
			}
			b1, _ := json.Marshal(v1)
			b2, _ := json.Marshal(v2)
			if !bytes.Equal(b1, b2) {
				t.Fatalf("canonical form changes the value: %s vs %s", b1, b2)
			}
		}
	})
}

// FuzzDecide feeds arbitrary argument bytes through a policy using every
// kind of condition: Decide must never panic and must agree with Explain.
func FuzzDecide(f *testing.F) {
	p, err := Compile(Config{Default: "allow", Rules: []RuleConfig{
		{Name: "allow-small", Tools: []string{"t"}, When: `has(args.n) && args.n < 10`, Action: "allow"},
		{Name: "contain", ArgsContain: []string{"secret"}, Action: "deny"},
		{Name: "re", ArgsMatch: `(?i)drop\s+table`, Action: "deny"},
		{Name: "cel", When: `args.a.b.exists(x, x == "y") || size(args) > 3`, Action: "approve", Approval: &ApprovalConfig{Approvers: []string{"ops"}}},
	}}, CompileOptions{})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{`{"n":3}`, `{"a":{"b":["y"]}}`, `{"q":"drop  table"}`, `[]`, `null`, `{"a":`, `{"n":"3"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in := Input{User: "u", Server: "s", Method: MethodToolsCall, Tool: "t", Args: raw}
		d := p.Decide(in)
		if ex := p.Explain(in); ex.Decision != d {
			t.Fatalf("Decide %+v != Explain %+v", d, ex.Decision)
		}
		if _, err := CanonicalJSON(raw); err != nil && d.Action == Allow {
			t.Fatalf("invalid arguments %q allowed by %s", raw, d.Rule)
		}
	})
}
