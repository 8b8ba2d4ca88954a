package mask

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

func TestZeroConfig(t *testing.T) {
	set, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := set.Profile("")
	if !ok || m.Name() != DefaultProfileName {
		t.Fatalf("Profile(\"\") = %v, %v", m, ok)
	}
	if got := m.Detectors(); !reflect.DeepEqual(got, Builtins()) {
		t.Errorf("default detectors = %v, want all builtins", got)
	}
	if _, ok := set.Profile("nope"); ok {
		t.Error("unknown profile found")
	}
	if got := set.Names(); !reflect.DeepEqual(got, []string{"default"}) {
		t.Errorf("Names = %v", got)
	}
}

const gatewayYAML = `
listen: 127.0.0.1:8787
masking:
  pseudonym_key: 0123456789abcdef-not-a-real-key
  profiles:
    default: {builtins: [credit_card, us_ssn, iban, aws_access_key, github_token, jwt, private_key]}
    analytics:
      builtins: [credit_card, email]
      rules: [employee-id]
      style: pseudonym
      styles: {employee-id: full}
      drop_binary: true
  rules:
    - {name: employee-id, pattern: 'EMP-\d{6}', replace: '[EMPLOYEE-ID]'}
    - {name: codename, words: [falcon, "blue heron"]}
    - {name: ticket, pattern: '(TCK)-\d+', replace: '${1}-XXXX'}
`

type gatewayConfig struct {
	Listen  string `yaml:"listen"`
	Masking Config `yaml:"masking"`
}

func TestYAMLConfig(t *testing.T) {
	var gc gatewayConfig
	if err := yaml.UnmarshalWithOptions([]byte(gatewayYAML), &gc, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	set, err := New(gc.Masking)
	if err != nil {
		t.Fatal(err)
	}
	def, _ := set.Profile("default")
	in := "EMP-123456 of Project Falcon, ticket TCK-991, card 4111111111111111, mail a@example.com"
	got, counts := def.MaskText(in)
	want := "[EMPLOYEE-ID] of Project [REDACTED:codename], ticket TCK-XXXX, card [REDACTED:credit_card], mail a@example.com"
	if got != want {
		t.Errorf("default:\n got %q\nwant %q", got, want)
	}
	if counts.String() != "codename=1 credit_card=1 employee-id=1 ticket=1" {
		t.Errorf("counts %v", counts)
	}
	an, _ := set.Profile("analytics")
	got, _ = an.MaskText(in)
	if !strings.HasPrefix(got, "[EMPLOYEE-ID] of Project Falcon, ticket TCK-991, card [credit_card#") || !strings.Contains(got, "mail [email#") {
		t.Errorf("analytics: %q", got)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"bad regexp", Config{Rules: []RuleConfig{{Name: "a", Pattern: "x"}, {Name: "b", Pattern: "y"}, {Name: "c", Pattern: "a(b"}}},
			[]string{"rules[2].pattern: error parsing regexp: missing closing ): `a(b`"}},
		{"unknown builtin", Config{Profiles: map[string]ProfileConfig{"default": {Builtins: []string{"credit_card", "email", "jwt", "ssn"}}}},
			[]string{`profiles.default.builtins[3]: unknown detector "ssn" (known: all, none, credit_card, us_ssn, iban, email, phone, ipv4, ipv6, aws_access_key, aws_secret_key, github_token, gitlab_token, slack_token, google_api_key, jwt, private_key, secret_assignment)`}},
		{"rule shape", Config{Rules: []RuleConfig{{Name: "x"}, {Name: "y", Pattern: "a", Words: []string{"b"}}, {Pattern: "z"}, {Name: "w", Words: []string{"ok", " "}}}},
			[]string{"rules[0]: set pattern or words", "rules[1]: set pattern or words, not both", "rules[2].name: required", "rules[3].words[1]: empty word"}},
		{"names", Config{Rules: []RuleConfig{{Name: "email", Pattern: "q"}, {Name: "dup", Pattern: "q"}, {Name: "dup", Pattern: "r"}, {Name: "has space", Pattern: "q"}}},
			[]string{`rules[0].name: "email" is the name of a builtin detector`, `rules[2].name: duplicate rule name "dup"`, `rules[3].name: "has space": use letters, digits, '_', '-' and '.'`}},
		{"empty match", Config{Rules: []RuleConfig{{Name: "e", Pattern: `\d*`}}},
			[]string{"rules[0].pattern: matches the empty string"}},
		{"not idempotent", Config{Rules: []RuleConfig{{Name: "e", Pattern: `EMP-\w+`, Replace: "EMP-X"}, {Name: "w", Words: []string{"falcon"}, Replace: "Falcon!"}, {Name: "c", Pattern: "card", Replace: "4111111111111111"}}},
			[]string{"rules[0].replace: the rule's own pattern matches it, so masking would not be idempotent",
				"rules[1].replace: contains one of the rule's words, so masking would not be idempotent",
				`rules[2].replace: profile "default" would mask the replacement text again`}},
		{"profile refs", Config{Rules: []RuleConfig{{Name: "r", Pattern: "q"}}, Profiles: map[string]ProfileConfig{"p": {Rules: []string{"r", "s"}, Style: "half", Styles: map[string]string{"zzz": "full", "email": "bogus"}}}},
			[]string{`profiles.p.rules[1]: unknown rule "s"`, `profiles.p.style: unknown style "half" (known: full, partial, pseudonym)`,
				`profiles.p.styles.email: unknown style "bogus" (known: full, partial, pseudonym)`, `profiles.p.styles.zzz: unknown detector or rule "zzz"`}},
		{"pseudonym key", Config{Profiles: map[string]ProfileConfig{"p": {Style: "pseudonym"}}},
			[]string{"pseudonym_key: required by profiles.p.style"}},
		{"short key", Config{PseudonymKey: "short-secret", Profiles: map[string]ProfileConfig{"p": {Styles: map[string]string{"email": "pseudonym"}}}},
			[]string{"pseudonym_key: must be at least 16 bytes"}},
		{"odd profile name", Config{Profiles: map[string]ProfileConfig{"a.b": {Builtins: []string{"x"}}}},
			[]string{`profiles.'a.b'.builtins[0]: unknown detector "x" (known: all, none, credit_card, us_ssn, iban, email, phone, ipv4, ipv6, aws_access_key, aws_secret_key, github_token, gitlab_token, slack_token, google_api_key, jwt, private_key, secret_assignment)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("New: %v, want *ConfigError", err)
			}
			var got []string
			for _, fe := range ce.Errors {
				got = append(got, fe.Error())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tc.want)
			}
			if strings.Contains(err.Error(), "short-secret") {
				t.Error("error message leaks the pseudonym key")
			}
		})
	}
}

// TestErrorPathsResolveInYAML shows that a FieldError path, prefixed with
// "$.masking.", is a goccy/go-yaml path to the faulty node.
func TestErrorPathsResolveInYAML(t *testing.T) {
	src := `masking:
  profiles:
    default:
      builtins: [credit_card, ssn]
  rules:
    - {name: ok, pattern: 'x'}
    - name: broken
      pattern: 'a(b'
`
	var gc gatewayConfig
	if err := yaml.UnmarshalWithOptions([]byte(src), &gc, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	_, err := New(gc.Masking)
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Errors) != 2 {
		t.Fatalf("New: %v", err)
	}
	file, err := parser.ParseBytes([]byte(src), 0)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := map[string]int{"rules[1].pattern": 8, "profiles.default.builtins[1]": 4}
	for _, fe := range ce.Errors {
		path, err := yaml.PathString("$.masking." + fe.Path)
		if err != nil {
			t.Fatalf("%s: %v", fe.Path, err)
		}
		node, err := path.FilterFile(file)
		if err != nil {
			t.Fatalf("%s: %v", fe.Path, err)
		}
		if line := node.GetToken().Position.Line; line != wantLines[fe.Path] {
			t.Errorf("%s: line %d, want %d", fe.Path, line, wantLines[fe.Path])
		}
	}
}
