package mask

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestMaskMessageEverythingThatLeaves holds the attacks on protocol fields,
// object keys and binary content: each row is a message that leaked before
// and what the agent must receive now (default profile).
func TestMaskMessageEverythingThatLeaves(t *testing.T) {
	m := defaultMasker(t)
	const card = `[REDACTED:credit_card]`
	for _, tc := range []struct{ name, in, want string }{
		{"uri of resource contents",
			`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"db://cards/4111111111111111","text":"x"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"db://cards/` + card + `","text":"x"}]}}`},
		{"uri from SELECT card AS uri",
			`{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"rows":[{"uri":"4111 1111 1111 1111"},{"uri":"5555555555554444"}]}}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"rows":[{"uri":"` + card + `"},{"uri":"` + card + `"}]}}}`},
		{"uriTemplate",
			`{"jsonrpc":"2.0","id":1,"result":{"resourceTemplates":[{"uriTemplate":"crm://x/{id}?owner=jane.roe@example.com","name":"t"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"resourceTemplates":[{"uriTemplate":"crm://x/{id}?owner=[REDACTED:email]","name":"t"}]}}`},
		{"mimeType",
			`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"a://b","mimeType":"text/x-123-45-6789","text":""}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"a://b","mimeType":"text/x-[REDACTED:us_ssn]","text":""}]}}`},
		{"nextCursor",
			`{"jsonrpc":"2.0","id":1,"result":{"resources":[],"nextCursor":"after=4111111111111111"}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"resources":[],"nextCursor":"after=` + card + `"}}`},
		{"nextCursor of notification params",
			`{"jsonrpc":"2.0","method":"notifications/x","params":{"nextCursor":"123-45-6789"}}`,
			`{"jsonrpc":"2.0","method":"notifications/x","params":{"nextCursor":"[REDACTED:us_ssn]"}}`},
		{"card as object key",
			`{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"balances":{"4111111111111111":12.5,"ok":1}}}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"balances":{"` + card + `":12.5,"ok":1}}}}`},
		{"colliding masked keys get suffixes",
			`{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"4111111111111111":1,"5555555555554444":2,"[REDACTED:credit_card]~2":3,"378282246310005":4}}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"` + card + `":1,"` + card + `~3":2,"` + card + `~2":3,"` + card + `~4":4}}}`},
		{"escaped key",
			`{"jsonrpc":"2.0","id":1,"result":{"k":{"jane.roe\u0040example.com":true}}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"k":{"[REDACTED:email]":true}}}`},
		{"text blob beside a uri",
			`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"file:///a.csv","mimeType":"text/csv","blob":"` + b64("name,card\nann,4111111111111111\n") + `"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"file:///a.csv","mimeType":"text/csv","blob":"` + b64("name,card\nann,"+card+"\n") + `"}]}}`},
		{"text blob from SELECT card AS uri",
			`{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"uri":"4111111111111111","blob":"` + b64("ssn 123-45-6789") + `"}}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"uri":"` + card + `","blob":"` + b64("ssn [REDACTED:us_ssn]") + `"}}}`},
		{"text image data",
			`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"image","mimeType":"image/svg+xml","data":"` + b64("<svg><text>4111 1111 1111 1111</text></svg>") + `"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"image","mimeType":"image/svg+xml","data":"` + b64("<svg><text>"+card+"</text></svg>") + `"}]}}`},
		{"blob that is not base64 is text",
			`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"a://b","blob":"card 4111111111111111!"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"a://b","blob":"card ` + card + `!"}]}}`},
		{"binary with a secret in a printable run is withheld",
			`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"audio","mimeType":"audio/wav","data":"` + b64("RIFF\x00\xff\x01\xfeowner jane.roe@example.com\x00\x00") + `"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"[audio withheld by gateway]"}]}}`},
		{"binary with a UTF-16 secret is withheld, its uri masked",
			`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"file:///123-45-6789.doc","blob":"` + b64("\xd0\xcf\x11\xe0"+utf16le("SSN 123-45-6789")) + `"}]}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"file:///[REDACTED:us_ssn].doc","mimeType":"text/plain","text":"[binary resource withheld by gateway]"}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, counts, err := m.MaskMessage([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Errorf("got  %s\nwant %s", out, tc.want)
			}
			if counts.Total() == 0 {
				t.Error("no counts")
			}
			checkMasked(t, m, []byte(tc.in), out, counts)
		})
	}
}

func utf16le(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		b.WriteByte(0)
	}
	return b.String()
}

// TestBinaryModes checks the profile's binary option on binary content that
// is not text, with and without a finding inside.
func TestBinaryModes(t *testing.T) {
	set, err := New(Config{Profiles: map[string]ProfileConfig{
		"scan": {}, "refuse": {Binary: "refuse"}, "pass": {Binary: "pass"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"
	msg := func(bin string) string {
		return `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"image","mimeType":"image/png","data":"` + b64(bin) + `"}]}}`
	}
	note := `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"[image withheld by gateway]"}]}}`
	secret := png + "tEXtComment\x00card 4111111111111111\x00"
	for _, tc := range []struct {
		profile, bin string
		withheld     bool
	}{
		{"scan", png, false}, {"scan", secret, true},
		{"refuse", png, true}, {"refuse", secret, true},
		{"pass", png, false}, {"pass", secret, false},
	} {
		m, _ := set.Profile(tc.profile)
		in := msg(tc.bin)
		out, counts, err := m.MaskMessage([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		want := in
		if tc.withheld {
			want = note
		}
		if string(out) != want || (counts[binaryCountName] == 1) != tc.withheld {
			t.Errorf("%s on %q: got %s (%v)", tc.profile, tc.bin, out, counts)
		}
	}
	// Text is masked whatever the mode.
	for _, name := range []string{"scan", "refuse", "pass"} {
		m, _ := set.Profile(name)
		out, _, err := m.MaskMessage([]byte(msg("card 4111111111111111")))
		if err != nil || !bytes.Contains(out, []byte(b64("card [REDACTED:credit_card]"))) {
			t.Errorf("%s: text binary not masked: %s %v", name, out, err)
		}
	}
	if _, err := New(Config{Profiles: map[string]ProfileConfig{"x": {Binary: "maybe"}}}); err == nil || !strings.Contains(err.Error(), "profiles.x.binary") {
		t.Errorf("unknown binary mode: %v", err)
	}
}

// TestMaskJSONValueKeys checks that keys are masked in arbitrary JSON too.
func TestMaskJSONValueKeys(t *testing.T) {
	m := defaultMasker(t)
	out, counts, err := m.MaskJSONValue([]byte(`{"jane.roe@example.com":{"uri":"4111111111111111"}}`))
	if err != nil || string(out) != `{"[REDACTED:email]":{"uri":"[REDACTED:credit_card]"}}` || counts.Total() != 2 {
		t.Errorf("got %s %v %v", out, counts, err)
	}
	var v map[string]any
	if json.Unmarshal(out, &v) != nil {
		t.Error("invalid output")
	}
}
