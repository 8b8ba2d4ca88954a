package mask

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func goldenSet(t testing.TB) *Set {
	t.Helper()
	set, err := New(Config{Profiles: map[string]ProfileConfig{
		"default": {},
		"strict":  {Style: "partial", DropBinary: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestGoldenMessages masks every message in testdata/messages with the
// default profile and with a partial, drop_binary profile, and compares the
// result and the counts with testdata/golden. Run with -update to rewrite.
func TestGoldenMessages(t *testing.T) {
	set := goldenSet(t)
	files, err := filepath.Glob("testdata/messages/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no messages: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base := strings.TrimSuffix(filepath.Base(f), ".json")
		for _, prof := range []string{"default", "strict"} {
			t.Run(base+"/"+prof, func(t *testing.T) {
				m, _ := set.Profile(prof)
				out, counts, err := m.MaskMessage(raw)
				if err != nil {
					t.Fatal(err)
				}
				checkMasked(t, m, raw, out, counts)
				got := []byte("counts: " + counts.String() + "\n" + string(out))
				golden := filepath.Join("testdata", "golden", base+"."+prof+".txt")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("mismatch with %s\n got: %s\nwant: %s", golden, got, want)
				}
			})
		}
	}
}

// checkMasked asserts the invariants of a MaskMessage result.
func checkMasked(t testing.TB, m *Masker, raw, out []byte, counts Counts) {
	t.Helper()
	if !json.Valid(out) || !utf8.Valid(out) {
		t.Fatalf("output is not valid JSON/UTF-8: %s", out)
	}
	if counts == nil && !bytes.Equal(raw, out) && utf8.Valid(raw) {
		t.Errorf("nothing masked but output differs:\n%s\n%s", raw, out)
	}
	if !m.dropBinary && counts[binaryCountName] == 0 {
		if err := sameShape(raw, out); err != nil {
			t.Errorf("shape changed: %v", err)
		}
	}
	again, c2, err := m.MaskMessage(out)
	if err != nil || !bytes.Equal(again, out) || c2 != nil {
		t.Errorf("not idempotent (%v, %v):\n%s\n%s", err, c2, out, again)
	}
}

// sameShape reports whether a and b have the same JSON structure, allowing
// a number to become a string and a key to be masked (objects keep their
// number of members).
func sameShape(a, b []byte) error {
	var va, vb any
	da := json.NewDecoder(bytes.NewReader(a))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(b))
	db.UseNumber()
	if err := da.Decode(&va); err != nil {
		return err
	}
	if err := db.Decode(&vb); err != nil {
		return err
	}
	return shapeEqual(va, vb, "$")
}

func shapeEqual(a, b any, path string) error {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return errors.New(path + ": object changed")
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok {
				continue // a masked key
			}
			if err := shapeEqual(v, w, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return errors.New(path + ": array changed")
		}
		for i := range x {
			if err := shapeEqual(x[i], y[i], path+"[]"); err != nil {
				return err
			}
		}
	case string:
		if _, ok := b.(string); !ok {
			return errors.New(path + ": string changed type")
		}
	case json.Number:
		if _, ok := b.(json.Number); ok {
			return nil
		}
		if _, ok := b.(string); !ok {
			return errors.New(path + ": number changed type")
		}
	default:
		if a != b {
			return errors.New(path + ": literal changed")
		}
	}
	return nil
}

func TestMaskMessageFixedFields(t *testing.T) {
	m := defaultMasker(t)
	// Numbers in ids and progress counts stay: they are ids, not cards.
	raw := []byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":4111111111111111,"progress":4111111111111111,"total":1,"message":"m"}}`)
	out, counts, err := m.MaskMessage(raw)
	if err != nil || counts != nil || &out[0] != &raw[0] {
		t.Errorf("numeric protocol fields masked: %s %v %v", out, counts, err)
	}
	raw = []byte(`{"jsonrpc":"2.0","id":4111111111111111,"result":{"content":[{"type":"text","text":"4111111111111111"}],"structuredContent":{"n":4111111111111111,"id":4111111111111111}}}`)
	out, _, err = m.MaskMessage(raw)
	want := `{"jsonrpc":"2.0","id":4111111111111111,"result":{"content":[{"type":"text","text":"[REDACTED:credit_card]"}],"structuredContent":{"n":"[REDACTED:credit_card]","id":"[REDACTED:credit_card]"}}}`
	if err != nil || string(out) != want {
		t.Errorf("got %s, want %s (%v)", out, want, err)
	}
	// A finding in a string the protocol needs unchanged withholds the
	// message, naming the field and never the value.
	for _, tc := range []struct{ field, raw string }{
		{"id", `{"jsonrpc":"2.0","id":"4111111111111111","result":{}}`},
		{"id", `{"jsonrpc":"2.0","id":"jane.roe@example.com","method":"sampling/createMessage","params":{}}`},
		{"method", `{"jsonrpc":"2.0","method":"notify/123-45-6789","params":{}}`},
		{"progressToken", `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"4111 1111 1111 1111","progress":1}}`},
		{"progressToken", `{"jsonrpc":"2.0","id":1,"result":{"_meta":{"progressToken":"4111111111111111"}}}`},
		{"requestId", `[{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"123-45-6789"}}]`},
	} {
		out, _, err := m.MaskMessage([]byte(tc.raw))
		var we *WithheldError
		if !errors.As(err, &we) || we.Field != tc.field || we.Counts.Total() == 0 || out != nil {
			t.Errorf("%s: got %s, %v; want a *WithheldError for %q", tc.raw, out, err, tc.field)
			continue
		}
		if strings.Contains(err.Error(), "4111") || strings.Contains(err.Error(), "6789") || strings.Contains(err.Error(), "jane") {
			t.Errorf("error leaks content: %v", err)
		}
	}
}

func TestMaskMessageByteFaithful(t *testing.T) {
	m := defaultMasker(t)
	raw := []byte("{ \"jsonrpc\" : \"2.0\",\n \"id\":1.50e+1, \"result\": {\"a\\u0062\": \"caf\\u00e9 \\ud83d\\ude00\", \"x\": [ ], \"y\": { } } }\n")
	out, counts, err := m.MaskMessage(raw)
	if err != nil || counts != nil || !bytes.Equal(out, raw) {
		t.Errorf("clean message changed: %s %v %v", out, counts, err)
	}
	// Only the masked value changes; spacing and escapes elsewhere stay.
	raw = []byte("{ \"jsonrpc\" : \"2.0\", \"id\" : 2, \"result\" : {\"t\\u0065xt\" : \"card\\t4111111111111111\" , \"o\": \"\\u00e9\"}}")
	out, _, _ = m.MaskMessage(raw)
	want := "{ \"jsonrpc\" : \"2.0\", \"id\" : 2, \"result\" : {\"t\\u0065xt\" : \"card\\t[REDACTED:credit_card]\" , \"o\": \"\\u00e9\"}}"
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

func TestMaskMessageInvalid(t *testing.T) {
	m := defaultMasker(t)
	for _, in := range []string{
		``, ` `, `{`, `{"a":}`, `{"a" 1}`, `{"a":1,}`, `[1,]`, `{"a":1}}`, `{"a":1} x`, `"abc`, `"a\x"`, `"\u12"`,
		"\"a\x01b\"", `01`, `-`, `1.`, `1e`, `tru`, `nul`, `{1:2}`, `[}`, `{]`, `{"password":"4111111111111111"`,
	} {
		out, _, err := m.MaskMessage([]byte(in))
		var se *SyntaxError
		if !errors.As(err, &se) || out != nil {
			t.Errorf("MaskMessage(%q) = %q, %v; want a *SyntaxError", in, out, err)
			continue
		}
		if strings.Contains(err.Error(), "4111") {
			t.Errorf("error leaks content: %v", err)
		}
	}
}

func TestMaskMessageInvalidUTF8(t *testing.T) {
	m := defaultMasker(t)
	raw := []byte("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"bad \xff\xfe bytes 4111111111111111\"}],\"k\xc3\":\"v\xe2\x82\"}}")
	out, counts, err := m.MaskMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(out) || !json.Valid(out) {
		t.Fatalf("invalid output %q", out)
	}
	want := "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"bad \uFFFD bytes [REDACTED:credit_card]\"}],\"k\uFFFD\":\"v\uFFFD\"}}"
	if string(out) != want || counts["credit_card"] != 1 {
		t.Errorf("got %q %v\nwant %q", out, counts, want)
	}
	if got, _ := m.MaskText("a\xffb"); got != "a\uFFFDb" {
		t.Errorf("MaskText invalid UTF-8: %q", got)
	}
}

func TestMaskMessageDeepNesting(t *testing.T) {
	m := defaultMasker(t)
	for _, depth := range []int{10_000, 1_000_000} {
		var b strings.Builder
		b.WriteString(`{"jsonrpc":"2.0","id":1,"result":{"structuredContent":`)
		for i := 0; i < depth; i++ {
			b.WriteString(`{"a":[`)
		}
		b.WriteString(`"ssn 123-45-6789"`)
		for i := 0; i < depth; i++ {
			b.WriteString(`]}`)
		}
		b.WriteString(`}}`)
		out, counts, err := m.MaskMessage([]byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		if counts["us_ssn"] != 1 || !bytes.Contains(out, []byte(`"ssn [REDACTED:us_ssn]"`)) || len(out) != b.Len()+len("[REDACTED:us_ssn]")-len("123-45-6789") {
			t.Errorf("depth %d: counts %v", depth, counts)
		}
	}
}

func TestMaskMessageLargeText(t *testing.T) {
	if testing.Short() {
		t.Skip("20 MB message")
	}
	m := defaultMasker(t)
	text := buildCorpus(20<<20, 0.01, 7)
	msg := map[string]any{"jsonrpc": "2.0", "id": 1, "result": map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}}}
	raw, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	out, counts, err := m.MaskMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	if counts.Total() == 0 || !json.Valid(out) {
		t.Fatalf("counts %v", counts)
	}
	var back struct {
		Result struct {
			Content []struct{ Text string }
		}
	}
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	want, _ := m.MaskText(text)
	if back.Result.Content[0].Text != want {
		t.Error("masked message text differs from MaskText")
	}
}

func TestMaskJSONValue(t *testing.T) {
	m := defaultMasker(t)
	in := `{"repo":"prod-api","uri":"https://u:p4ssword@x.example","query":"select * where ssn='123-45-6789'","token":"abcdef123","n":[4111111111111111, 12]}`
	out, counts, err := m.MaskJSONValue([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"repo":"prod-api","uri":"https://u:[REDACTED:secret_assignment]@x.example","query":"select * where ssn='[REDACTED:us_ssn]'","token":"[REDACTED:secret_assignment]","n":["[REDACTED:credit_card]", 12]}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if counts.String() != "credit_card=1 secret_assignment=2 us_ssn=1" {
		t.Errorf("counts %v", counts)
	}
	if _, _, err := m.MaskJSONValue([]byte(`{"a":`)); err == nil {
		t.Error("invalid JSON accepted")
	}
}

func TestCounts(t *testing.T) {
	var total Counts
	total.Merge(nil)
	if total != nil {
		t.Error("Merge(nil) allocated")
	}
	total.Merge(Counts{"email": 1})
	total.Merge(Counts{"email": 2, "jwt": 1})
	if total.String() != "email=3 jwt=1" || total.Total() != 4 {
		t.Errorf("got %v", total)
	}
	if v := total.LogValue(); v.String() != "[email=3 jwt=1]" {
		t.Errorf("LogValue %v", v)
	}
}
