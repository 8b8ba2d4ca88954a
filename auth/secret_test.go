package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const secretValue = "eyJhbGciOiJSUzI1NiJ9.super-secret-value"

func TestSecretRedaction(t *testing.T) {
	s := Secret(secretValue)
	tok := Token{AccessToken: s, RefreshToken: Secret("refresh-secret-value"), IDToken: s, TokenType: "Bearer", Expiry: time.Unix(1e9, 0)}
	var out []string
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x", "%10s"} {
		out = append(out,
			fmt.Sprintf(verb, s),
			fmt.Sprintf(verb, &s),
			fmt.Sprintf(verb, tok),
			fmt.Sprintf(verb, &tok),
			fmt.Sprintf(verb, []Secret{s}),
			fmt.Sprintf(verb, map[string]Secret{"k": s}),
		)
	}
	out = append(out, fmt.Sprint(s), fmt.Sprintln(tok), s.String(), s.GoString())

	j, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j))
	j, err = json.Marshal(map[string]any{"s": s, "p": &s})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j))

	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("login", "token", s, "tok", tok, slog.Any("ptr", &tok), slog.Group("g", "s", s))
	text := slog.New(slog.NewTextHandler(&buf, nil))
	text.Info("login", "token", s, "tok", tok)
	out = append(out, buf.String())

	for _, o := range out {
		if strings.Contains(o, "super-secret") || strings.Contains(o, "refresh-secret") {
			t.Fatalf("secret leaked in %q", o)
		}
		if !strings.Contains(o, "redacted") {
			t.Errorf("no redaction marker in %q", o)
		}
	}
	if s.Reveal() != secretValue {
		t.Fatalf("Reveal lost the value")
	}
}

func TestMaskToken(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ", "eyJh…****"},
		{"", "****"},
		{"short", "****"},
		{"elevenchars", "****"},
		{"twelve-chars", "twel…****"},
		{"ééééééééééééé", "éééé…****"},
	} {
		if got := MaskToken(tc.in); got != tc.want {
			t.Errorf("MaskToken(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTokenWireRoundTrip(t *testing.T) {
	in := &Token{AccessToken: "a", RefreshToken: "r", IDToken: "i", TokenType: "Bearer", Expiry: time.Unix(1700000000, 0).UTC()}
	b, err := encodeToken(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeToken(b)
	if err != nil {
		t.Fatal(err)
	}
	if *out != *in {
		t.Fatalf("round trip: got %+v", out) // Secrets print redacted
	}
	if _, err := decodeToken([]byte(`{"v":2,"access_token":"zzz-secret"}`)); err == nil || strings.Contains(err.Error(), "zzz") {
		t.Fatalf("unknown version: err = %v", err)
	}
	if _, err := decodeToken([]byte(`{"access_token":"zzz-secret"`)); err == nil || strings.Contains(err.Error(), "zzz") {
		t.Fatalf("corrupt: err = %v", err)
	}
}

func FuzzDecodeToken(f *testing.F) {
	good, _ := encodeToken(&Token{AccessToken: "a", RefreshToken: "b", Expiry: time.Unix(1, 0)})
	f.Add(good)
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := decodeToken(b)
		if err != nil {
			return
		}
		again, err := encodeToken(tok)
		if err != nil {
			t.Fatal(err)
		}
		tok2, err := decodeToken(again)
		if err != nil || *tok2 != *tok {
			t.Fatalf("re-decode mismatch: %v", err)
		}
	})
}
