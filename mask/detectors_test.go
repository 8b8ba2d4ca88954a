package mask

import (
	"strings"
	"testing"
)

func defaultMasker(t testing.TB) *Masker {
	t.Helper()
	set, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := set.Profile(DefaultProfileName)
	if !ok {
		t.Fatal("no default profile")
	}
	return m
}

// detectorCase is one text and what the detector must leave of it.
type detectorCase struct {
	in   string
	want string
}

func TestDetectors(t *testing.T) {
	tests := credentialFixtures().detectors // the token-shaped cases live in testdata
	for name, cases := range map[string][]detectorCase{
		"credit_card": {
			{"card 4111111111111111 ok", "card [REDACTED:credit_card] ok"},
			{"card 4111 1111 1111 1111.", "card [REDACTED:credit_card]."},
			{"card 4111-1111-1111-1111,", "card [REDACTED:credit_card],"},
			{"amex 378282246310005", "amex [REDACTED:credit_card]"},
			{"amex 3782 822463 10005", "amex [REDACTED:credit_card]"},
			{"mc 5555555555554444 and 2223003122003222", "mc [REDACTED:credit_card] and [REDACTED:credit_card]"},
			{"discover 6011111111111117", "discover [REDACTED:credit_card]"},
			{"jcb 3530111333300000", "jcb [REDACTED:credit_card]"},
			{"diners 30569309025904", "diners [REDACTED:credit_card]"},
			{"visa13 4222222222222", "visa13 [REDACTED:credit_card]"},
			{`{"card":"4242424242424242"}`, `{"card":"[REDACTED:credit_card]"}`},
			{"list 4111111111111111,5555555555554444", "list [REDACTED:credit_card],[REDACTED:credit_card]"},
			{"card 4111 1111 1111 1111 exp 12/27", "card [REDACTED:credit_card] exp 12/27"},
			{"dotted 4111.1111.1111.1111.", "dotted [REDACTED:credit_card]."},
			// Hard negatives.
			{"dotted run 4111.1111.1111.1111.2", ""},
			{"mixed 4111.1111-1111 1111", ""},
			// Hard negatives.
			{"luhn-invalid 4111111111111112", ""},
			{"luhn-invalid 4111 1111 1111 1112", ""},
			{"order #1234567812345670", ""},      // unknown prefix
			{"timestamp 1700000000000 ms", ""},   // 13 digits, prefix 1
			{"epoch-ns 1712345678901234567", ""}, // 19 digits, prefix 1
			{"uuid 41111111-1111-1111-1111-111111111111", ""},
			{"pi 3.4111111111111111", ""},
			{"id ORD4111111111111111", ""},
			{"too long 41111111111111111111111", ""},
			{"version 4.1.1.1", ""},
			{"phone 4155552671", ""},
		},
		"us_ssn": {
			{"ssn 123-45-6789.", "ssn [REDACTED:us_ssn]."},
			{"SSN: 536 22 1234", "SSN: [REDACTED:us_ssn]"},
			{"Social Security number 536221234", "Social Security number [REDACTED:us_ssn]"},
			{`"ssn":"078-05-1121"`, `"ssn":"[REDACTED:us_ssn]"`},
			// Hard negatives.
			{"area 000-12-3456", ""},
			{"area 666-12-3456", ""},
			{"area 912-12-3456", ""},
			{"group 123-00-4567", ""},
			{"serial 123-45-0000", ""},
			{"void 078-05-1120", ""},
			{"bare 536221234 without label", ""},
			{"spaced 536 22 1234 without label", ""},
			{"date 2024-01-15", ""},
			{"part 1-123-45-6789", ""},
			{"longer 123-45-6789-1", ""},
		},
		"iban": {
			{"IBAN GB82WEST12345698765432 ok", "IBAN [REDACTED:iban] ok"},
			{"IBAN GB82 WEST 1234 5698 7654 32.", "IBAN [REDACTED:iban]."},
			{"de DE89370400440532013000", "de [REDACTED:iban]"},
			{"fr FR1420041010050500013M02606", "fr [REDACTED:iban]"},
			// Hard negatives.
			{"bad check GB83WEST12345698765432", ""},
			{"bad length GB82WEST1234569876543", ""},
			{"unknown country ZZ82WEST12345698765432", ""},
			{"model AB12 CD34", ""},
		},
		"email": {
			{"mail alice.smith+tag@example.co.uk.", "mail [REDACTED:email]."},
			{"<bob@corp.example.com>", "<[REDACTED:email]>"},
			{"mailto:carol@example.org", "mailto:[REDACTED:email]"},
			// Hard negatives.
			{"@alice said", ""},
			{"npm lodash@4.17.21", ""},
			{"user@localhost", ""},
			{"https://user@host.example.com/", ""},
			{".bad@example.com", ".bad@example.com"[0:0]},
			{"idn user@bücher.de", "idn [REDACTED:email]"},
			{"cyrillic пример@почта.рф", "cyrillic [REDACTED:email]"},
			{"a-label x@xn--bcher-kva.xn--p1ai", "a-label [REDACTED:email]"},
			{"unicode digits only x@例.１２", ""},
			{"price 価格@1000円", ""},
		},
		"phone": {
			{"call +1 415 555 2671 now", "call [REDACTED:phone] now"},
			{"call +44 20 7946 0958", "call [REDACTED:phone]"},
			{"call +14155552671", "call [REDACTED:phone]"},
			{"call (415) 555-2671", "call [REDACTED:phone]"},
			{"call 415-555-2671 or 415.555.2671", "call [REDACTED:phone] or [REDACTED:phone]"},
			{"call 1-800-555-0199", "call [REDACTED:phone]"},
			// Hard negatives.
			{"phone-like integer 4155552671", ""},
			{"version 415.555.2671.1", ""},
			{"date 2024-01-15", ""},
			{"+123", ""},
			{"serial 115-555-2671", ""},
			{"math 3+4", ""},
		},
		"ipv4": {
			{"host 10.0.12.7:8080", "host [REDACTED:ipv4]:8080"},
			{"from 203.0.113.42.", "from [REDACTED:ipv4]."},
			// Hard negatives.
			{"loopback 127.0.0.1", ""},
			{"any 0.0.0.0", ""},
			{"version v1.2.3.4", ""},
			{"semver 1.2.3", ""},
			{"five 1.2.3.4.5", ""},
			{"octet 256.1.1.1", ""},
			{"leading zero 10.01.1.1", ""},
			{"oid 1.3.6.1.4.1", ""},
		},
		"ipv6": {
			{"host 2001:db8::8a2e:370:7334 up", "host [REDACTED:ipv6] up"},
			{"host 2001:db8:0:0:1:0:0:1.", "host [REDACTED:ipv6]."},
			{"mapped ::ffff:203.0.113.42", "mapped [REDACTED:ipv6]"},
			{"[2001:db8::1]:443", "[[REDACTED:ipv6]]:443"},
			{"at 2001:db8::1: the host", "at [REDACTED:ipv6]: the host"},
			// Hard negatives.
			{"loopback ::1", ""},
			{"mapped loopback ::ffff:127.0.0.1", ""},
			{"any ::", ""},
			{"multicast ff02::1:ff00:1234", ""},
			{"code std::vector a::b Foo::Bar", ""},
			{"slice xs[1::2] ys[::3]", ""},
			{"letters dead::beef cafe::face", ""},
			{"mac 00:1a:2b:3c:4d:5e eui 02:1a:2b:ff:fe:3c:4d:5e", ""},
			{"time 10:22:33.123 ratio 16:9", ""},
			{"nine groups 1:2:3:4:5:6:7:8:9abc", ""},
			{"word x2001:db8::1", ""},
		},
		"aws_secret_key": {
			{"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = [REDACTED:aws_secret_key]"},
			{`"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"`, `"SecretAccessKey": "[REDACTED:aws_secret_key]"`},
			// Hard negative: a 40-hex commit id with no secret label.
			{"commit 9fceb02d0ae598e95dc970b74767f19372d61af8", ""},
		},
		"google_api_key": {
			{"key=AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "key=[REDACTED:google_api_key]"},
			// Hard negatives.
			{"AIzaShort", ""},
			{"AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQeX", ""},
		},
		"jwt": {
			{"Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c done",
				"Bearer [REDACTED:jwt] done"},
			{"unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "unsigned [REDACTED:jwt]"},
			// Hard negatives.
			{"eyJfoo.eyJbar.baz", ""},
			{"eyJub3RhbGciOiJ4In0.eyJzdWIiOiJ4In0.c2ln", ""}, // header has no alg or typ
			{"keyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.sig", ""},
		},
		"secret_assignment": {
			{"password=hunter22 next", "password=[REDACTED:secret_assignment] next"},
			{"DB_PASSWORD: 's3cr3t pass'", "DB_PASSWORD: '[REDACTED:secret_assignment]'"},
			{`{"client_secret": "abc123xyz"}`, `{"client_secret": "[REDACTED:secret_assignment]"}`},
			{`{\"api_key\":\"abc123xyz\"}`, `{\"api_key\":\"[REDACTED:secret_assignment]\"}`},
			{"https://x.example/cb?api_key=abcd1234&page=2", "https://x.example/cb?api_key=[REDACTED:secret_assignment]&page=2"},
			{"Authorization: Bearer abc.def.ghi", "Authorization: Bearer [REDACTED:secret_assignment]"},
			{"GITHUB_TOKEN=abcdef123", "GITHUB_TOKEN=[REDACTED:secret_assignment]"},
			{"postgres://app:pa55w0rd@db.internal:5432/app", "postgres://app:[REDACTED:secret_assignment]@db.internal:5432/app"},
			// Hard negatives.
			{"password: ${DB_PASSWORD}", ""},
			{"password=", ""},
			{`"password": null`, ""},
			{"if password == other", ""},
			{"progressToken: 12345", ""},
			{"max_tokens=4096", ""},
			{"token_type=Bearer", ""},
			{"password=[REDACTED:secret_assignment]", ""},
			{"secret: ****1234", ""},
		},
	} {
		tests[name] = cases
	}
	for name := range tests {
		if builtinIndex(name) < 0 {
			t.Fatalf("no detector %q", name)
		}
	}
	for _, name := range Builtins() {
		if _, ok := tests[name]; !ok {
			t.Errorf("detector %q has no table test", name)
		}
	}
	for name, cases := range tests {
		set, err := New(Config{Profiles: map[string]ProfileConfig{"only": {Builtins: []string{name}}}})
		if err != nil {
			t.Fatal(err)
		}
		m, _ := set.Profile("only")
		for _, tc := range cases {
			want := tc.want
			if want == "" {
				want = tc.in
			}
			got, counts := m.MaskText(tc.in)
			if got != want {
				t.Errorf("%s: MaskText(%q)\n got %q\nwant %q", name, tc.in, got, want)
				continue
			}
			n := strings.Count(want, "[REDACTED:"+name+"]") - strings.Count(tc.in, "[REDACTED:"+name+"]")
			if counts[name] != n || counts.Total() != n {
				t.Errorf("%s: MaskText(%q) counts %v, want %s=%d", name, tc.in, counts, name, n)
			}
			// The full profile must mask it at least as much, and the
			// replacement must be stable.
			again, c2 := m.MaskText(got)
			if again != got || c2 != nil {
				t.Errorf("%s: not idempotent on %q: %q", name, tc.in, again)
			}
		}
	}
}

func TestHardNegativesDefaultProfile(t *testing.T) {
	m := defaultMasker(t)
	for _, in := range []string{
		"Order 1234567812345670 shipped on 2024-01-15T10:22:33.123Z",
		"request 550e8400-e29b-41d4-a716-446655440000 took 123ms",
		"go1.26.8 linux/amd64, version 10.2.3, build 20240115.1",
		"commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
		"counter 4155552671 and 1700000000000",
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		`{"id": 42, "total": 1234567890123, "ratio": 0.4111111111111111}`,
		"The quick brown fox: jumps over = the lazy dog",
		"token count: 1500, max_tokens = 4096",
	} {
		if got, c := m.MaskText(in); got != in {
			t.Errorf("MaskText(%q) = %q (%v), want unchanged", in, got, c)
		}
	}
}

func TestStyles(t *testing.T) {
	cfg := Config{
		PseudonymKey: "0123456789abcdef0123",
		Profiles: map[string]ProfileConfig{
			"partial": {Style: "partial"},
			"pseudo":  {Style: "pseudonym", Styles: map[string]string{"us_ssn": "full"}},
		},
	}
	set, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := set.Profile("partial")
	if got, _ := p.MaskText("card 4242 4242 4242 4242 pw=abc"); got != "card ************4242 pw=abc" {
		t.Errorf("partial: %q", got)
	}
	if got, _ := p.MaskText("password=hunter2"); got != "password=*******" {
		t.Errorf("partial short: %q", got)
	}
	ps, _ := set.Profile("pseudo")
	a, _ := ps.MaskText("card 4242 4242 4242 4242")
	b, _ := ps.MaskText("card 4242424242424242")
	if a != b || !strings.HasPrefix(a, "card [credit_card#") {
		t.Errorf("pseudonyms differ or malformed: %q %q", a, b)
	}
	if got, _ := ps.MaskText(a); got != a {
		t.Errorf("pseudonym not idempotent: %q", got)
	}
	if got, _ := ps.MaskText("ssn 123-45-6789"); got != "ssn [REDACTED:us_ssn]" {
		t.Errorf("override: %q", got)
	}
	other, err := New(Config{PseudonymKey: "another key of 16+ bytes", Profiles: cfg.Profiles})
	if err != nil {
		t.Fatal(err)
	}
	ops, _ := other.Profile("pseudo")
	if c, _ := ops.MaskText("card 4242424242424242"); c == a {
		t.Errorf("pseudonym does not depend on the key")
	}
}
