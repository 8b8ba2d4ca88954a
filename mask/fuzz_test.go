package mask

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

func fuzzMaskers(t testing.TB) []*Masker {
	set, err := New(Config{
		PseudonymKey: "fuzz-key-0123456789",
		Rules:        []RuleConfig{{Name: "emp", Pattern: `EMP-\d{6}`, Replace: "[EMP]"}, {Name: "words", Words: []string{"falcon", "blue heron"}}},
		Profiles: map[string]ProfileConfig{
			"partial": {Style: "partial"},
			"pseudo":  {Style: "pseudonym"},
			"drop":    {DropBinary: true},
			"refuse":  {Binary: "refuse"},
			"pass":    {Binary: "pass", Builtins: []string{"ipv4", "email", "credit_card"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ms []*Masker
	for _, n := range set.Names() {
		m, _ := set.Profile(n)
		ms = append(ms, m)
	}
	return ms
}

func FuzzMaskText(f *testing.F) {
	for _, s := range sensitiveSamples() {
		f.Add("x " + s + " y")
	}
	for _, s := range []string{
		"", "4111 1111 1111 1111 1111", "password=[REDACTED:secret_assignment]", "EMP-123456 falcon",
		"a@b.co@c.de", "+1 (415) 555-2671-1234", "\xff\xfe",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "token: ****1234", "GB82 WEST 1234 5698 7654 32 12",
		buildCorpus(2048, 0.2, 3),
	} {
		f.Add(s)
	}
	for _, e := range evasionFixtures().Text {
		f.Add(e[1])
	}
	for _, c := range evasionFixtures().Clean {
		f.Add(c)
	}
	ms := fuzzMaskers(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range ms {
			out, counts := m.MaskText(s)
			if !utf8.ValidString(out) {
				t.Fatalf("%s: invalid UTF-8 %q", m.Name(), out)
			}
			if counts == nil && utf8.ValidString(s) && out != s {
				t.Fatalf("%s: changed without counts: %q -> %q", m.Name(), s, out)
			}
			again, c2 := m.MaskText(out)
			if again != out {
				t.Fatalf("%s: not idempotent:\n in  %q\n out %q\n 2nd %q (%v)", m.Name(), s, out, again, c2)
			}
		}
	})
}

func FuzzMaskMessage(f *testing.F) {
	files, _ := filepath.Glob("testdata/messages/*.json")
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	for _, s := range []string{
		`{}`, `[]`, `"4111111111111111"`, `4111111111111111`, `{"password":"x\u0000y"}`, `[{"type":"image","data":"QUtJQQ=="}]`,
		`{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"uri":"x","blob":"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}`,
	} {
		f.Add([]byte(s))
	}
	ms := fuzzMaskers(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, m := range ms {
			out, counts, err := m.MaskMessage(raw)
			var we *WithheldError
			if errors.As(err, &we) {
				continue
			}
			if err != nil {
				if json.Valid(raw) {
					t.Fatalf("%s: rejected valid JSON %q: %v", m.Name(), raw, err)
				}
				continue
			}
			if !json.Valid(out) || !utf8.Valid(out) {
				t.Fatalf("%s: invalid output %q from %q", m.Name(), out, raw)
			}
			if utf8.Valid(raw) {
				if counts == nil && !bytes.Equal(out, raw) {
					t.Fatalf("%s: changed without counts: %q -> %q", m.Name(), raw, out)
				}
				if !m.dropBinary && counts[binaryCountName] == 0 {
					if err := sameShape(raw, out); err != nil {
						t.Fatalf("%s: %v: %q -> %q", m.Name(), err, raw, out)
					}
				}
			}
			again, c2, err := m.MaskMessage(out)
			if err != nil || !bytes.Equal(again, out) {
				t.Fatalf("%s: not idempotent (%v, %v):\n in  %q\n out %q\n 2nd %q", m.Name(), err, c2, raw, out, again)
			}
		}
	})
}
