package mask

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
)

// evasionFixtures are testdata/evasions.json: texts that hide a value from
// a naive detector (look-alike digits and separators, invisible characters,
// internationalised and IPv6 addresses) with what masking must leave, clean
// look-alikes that must pass unchanged, and the parts of oversized values.
var evasionFixtures = sync.OnceValue(func() evasionFile {
	raw, err := os.ReadFile("testdata/evasions.json")
	if err != nil {
		panic("mask tests: " + err.Error())
	}
	var f evasionFile
	if err := json.Unmarshal(raw, &f); err != nil {
		panic("mask tests: testdata/evasions.json: " + err.Error())
	}
	return f
})

type evasionFile struct {
	Text  [][3]string `json:"text"` // name, input, masked
	Clean []string    `json:"clean"`
	Big   struct {
		PEMBegin  string `json:"pem_begin"`
		PEMEnd    string `json:"pem_end"`
		JWTHeader string `json:"jwt_header"`
	} `json:"big"`
}

// TestEvasions masks each evasion as text and as a string of a tool result,
// with the default profile.
func TestEvasions(t *testing.T) {
	m := defaultMasker(t)
	for _, tc := range evasionFixtures().Text {
		t.Run(tc[0], func(t *testing.T) {
			got, counts := m.MaskText(tc[1])
			if got != tc[2] {
				t.Errorf("MaskText(%+q)\n got %+q\nwant %+q", tc[1], got, tc[2])
			}
			if counts.Total() == 0 {
				t.Errorf("no counts")
			}
			if again, c := m.MaskText(got); again != got || c != nil {
				t.Errorf("not idempotent: %+q", again)
			}
			raw := toolResult(t, map[string]any{"content": []any{map[string]any{"type": "text", "text": tc[1]}}})
			out, _, err := m.MaskMessage(raw)
			if err != nil {
				t.Fatal(err)
			}
			var back struct {
				Result struct {
					Content []struct{ Text string }
				}
			}
			if err := json.Unmarshal(out, &back); err != nil || back.Result.Content[0].Text != tc[2] {
				t.Errorf("MaskMessage: %s (%v)", out, err)
			}
		})
	}
}

// TestEvasionLookalikesClean checks that the clean look-alikes of the
// evasions (UUIDs, versions, timestamps, hashes, "::" in code, Unicode
// prose) have no finding, alone and in the clean corpus.
func TestEvasionLookalikesClean(t *testing.T) {
	m := defaultMasker(t)
	for _, in := range evasionFixtures().Clean {
		if got, c := m.MaskText(in); got != in || c != nil {
			t.Errorf("MaskText(%+q) = %+q (%v), want unchanged", in, got, c)
		}
	}
	corpus := buildCorpus(1<<17, 0, 5) + strings.Join(evasionFixtures().Clean, "\n")
	if _, c := m.MaskText(corpus); c != nil {
		t.Errorf("clean corpus with look-alikes has findings: %v", c)
	}
}

// TestOversizedValuesMaskedWhole checks that no size cap lets a secret's
// tail escape: PEM keys over 1 MiB, with and without their END line, JWTs
// with payloads and headers over 64 KiB, and an assignment value longer
// than the detector follows, which withholds the whole text.
func TestOversizedValuesMaskedWhole(t *testing.T) {
	m := defaultMasker(t)
	big := evasionFixtures().Big
	line := strings.Repeat("MIIEowIBAAKCAQEAx4Ud", 3) + "\n"
	body := strings.Repeat(line, (3<<20)/2/len(line)) // 1.5 MiB
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"` + strings.Repeat("x", 70<<10) + `"}`))
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT",` + strings.Repeat(" ", 70<<10) + `"alg":"HS256"}`))
	for _, tc := range []struct{ name, in, want string }{
		{"pem over 1 MiB", "key:\n" + big.PEMBegin + "\n" + body + big.PEMEnd + "\nafter", "key:\n[REDACTED:private_key]\nafter"},
		{"pem over 1 MiB without END", "key: " + big.PEMBegin + "\n" + body, "key: [REDACTED:private_key]"},
		{"jwt payload over 64 KiB", "Bearer " + big.JWTHeader + "." + payload + ".c2lnbmF0dXJl done", "Bearer [REDACTED:jwt] done"},
		{"jwt header over 64 KiB", "t=" + header + "." + payload + ".c2ln;", "t=[REDACTED:jwt];"},
		{"assignment longer than followed", "config password=" + strings.Repeat("Zq9", 2000) + " rest", "[REDACTED:secret_assignment]"},
	} {
		got, counts := m.MaskText(tc.in)
		if got != tc.want {
			t.Errorf("%s: got %.200q…, want %q", tc.name, got, tc.want)
		}
		if counts.Total() != 1 {
			t.Errorf("%s: counts %v", tc.name, counts)
		}
	}
}

func toolResult(t testing.TB, result any) []byte {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "result": result})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
