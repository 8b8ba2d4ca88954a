package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed-3f9f6f16/bridge/audit"
)

// testEnv serves ${env:…} and ${file:…} from maps, never the real system.
func testEnv(vars map[string]string, files map[string]string) Env {
	return Env{
		Getenv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		ReadFile: func(p string) ([]byte, error) {
			if v, ok := files[p]; ok {
				return []byte(v), nil
			}
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		},
	}
}

const minimal = `listen: 127.0.0.1:8787
identity:
  issuer: https://example.okta.com/oauth2/default
  audience: api://bridge
  client_id: 0oa123
storage: {path: /var/lib/bridge/bridge.db}
servers:
  github:
    transport: stdio
    command: github-mcp-server
    args: [stdio]
    env: {GITHUB_PERSONAL_ACCESS_TOKEN: "${file:/run/secrets/github}"}
  warehouse:
    transport: http
    url: https://warehouse-mcp.internal/mcp
    headers: {Authorization: "Bearer ${env:WAREHOUSE_TOKEN}"}
policy:
  default: deny
  rules:
    - name: reads
      servers: [github]
      tools: ["get_*"]
      action: allow
audit: {signing_key_file: /etc/bridge/audit-signing-key.pem, witness: {file: /var/log/bridge/audit-heads.jsonl}}
`

func TestLoadValid(t *testing.T) {
	env := testEnv(map[string]string{"WAREHOUSE_TOKEN": "wh-secret-1"}, map[string]string{"/run/secrets/github": "ghp_secretvalue\n"})
	cfg, err := Load("gateway.yaml", []byte(minimal), env)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Servers["github"].ResolvedEnv["GITHUB_PERSONAL_ACCESS_TOKEN"].Reveal(); got != "ghp_secretvalue" {
		t.Errorf("file expansion = %q", got)
	}
	if got := cfg.Servers["warehouse"].ResolvedHeaders["Authorization"].Reveal(); got != "Bearer wh-secret-1" {
		t.Errorf("env expansion = %q", got)
	}
	if cfg.Identity.GroupsClaim != "groups" || cfg.Identity.ClockSkew.Seconds() != 60 || cfg.Limits.MaxMessageBytes != 8<<20 {
		t.Errorf("defaults not filled: %+v %+v", cfg.Identity, cfg.Limits)
	}
	if cfg.CompiledPolicy == nil || cfg.CompiledPolicy.Version() == "" || cfg.Masks == nil {
		t.Error("policy and masking were not compiled")
	}
}

// TestLoadErrors: every invalid file is refused with the file, the line and
// the field, and no secret value appears in the message.
func TestLoadErrors(t *testing.T) {
	env := testEnv(map[string]string{"WAREHOUSE_TOKEN": "wh-secret-1"}, map[string]string{"/run/secrets/github": "ghp_secretvalue"})
	cases := []struct {
		name string
		edit func(string) string
		want string // substring of the error, including file:line
	}{
		{"syntax error", func(s string) string { return s + "policy: [\n" }, "gateway.yaml:"},
		{"unknown top-level field", func(s string) string { return s + "listne: x\n" }, `gateway.yaml:25: listne: unknown key: did you mean listen?`},
		{"unknown nested field", func(s string) string {
			return strings.Replace(s, "    transport: http\n", "    transport: http\n    tls_verify: false\n", 1)
		}, `gateway.yaml:15: servers.warehouse.tls_verify: unknown key`},
		{"unknown transport", func(s string) string { return strings.Replace(s, "transport: stdio", "transport: stdi", 1) }, `gateway.yaml:9: servers.github.transport: unknown transport "stdi"`},
		{"missing env var", func(s string) string { return strings.Replace(s, "WAREHOUSE_TOKEN", "NOPE_TOKEN", 1) }, "gateway.yaml:16: servers.warehouse.headers.Authorization: environment variable NOPE_TOKEN is not set"},
		{"missing secret file", func(s string) string { return strings.Replace(s, "/run/secrets/github", "/run/secrets/gone", 1) }, "gateway.yaml:12: servers.github.env.GITHUB_PERSONAL_ACCESS_TOKEN: cannot read /run/secrets/gone"},
		{"unknown expansion", func(s string) string { return strings.Replace(s, "${env:WAREHOUSE_TOKEN}", "${vault:x}", 1) }, "unknown expansion ${vault:…}"},
		{"policy names an unknown server", func(s string) string { return strings.Replace(s, "servers: [github]", "servers: [gitlab]", 1) }, "gateway.yaml:21: policy.rules[0].servers[0]: unknown server \"gitlab\""},
		{"CEL error", func(s string) string {
			return strings.Replace(s, "      action: allow", "      when: 'arg.repo == \"x\"'\n      action: allow", 1)
		}, "policy.rules[0].when: undeclared reference to 'arg' (did you mean 'args'?)"},
		{"bad regex", func(s string) string {
			return strings.Replace(s, "      action: allow", "      args_match: '(unclosed'\n      action: allow", 1)
		}, "policy.rules[0].args_match"},
		{"masking regex", func(s string) string {
			return s + "masking:\n  rules: [{name: emp, pattern: '(x', replace: E}]\n"
		}, "masking.rules[0].pattern"},
		{"no issuer", func(s string) string {
			return strings.Replace(s, "  issuer: https://example.okta.com/oauth2/default\n", "", 1)
		}, "identity.issuer: is required"},
		{"http issuer off loopback", func(s string) string {
			return strings.Replace(s, "https://example.okta.com", "http://example.okta.com", 1)
		}, "identity.issuer: must be an https URL"},
		{"anchors and aliases", func(s string) string { return s + "notify: &a []\nlimits: *a\n" }, "anchors and aliases are not allowed"},
		{"bad server name", func(s string) string { return strings.Replace(s, "  warehouse:", "  Ware/house:", 1) }, "servers.Ware/house: server names are"},
		{"no storage path", func(s string) string {
			return strings.Replace(s, "storage: {path: /var/lib/bridge/bridge.db}\n", "", 1)
		}, "storage.path: is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("gateway.yaml", []byte(tc.edit(minimal)), env)
			if err == nil {
				t.Fatal("loaded an invalid configuration")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
			for _, secret := range []string{"wh-secret-1", "ghp_secretvalue"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error reveals a secret: %v", err)
				}
			}
		})
	}
}

// TestLoadReportsEveryProblem: one run lists all errors, not just the first.
func TestLoadReportsEveryProblem(t *testing.T) {
	bad := strings.NewReplacer("transport: stdio", "transport: nope", "transport: http", "transport: ftp").Replace(minimal)
	_, err := Load("gateway.yaml", []byte(bad), testEnv(nil, nil))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) < 2 {
		t.Fatalf("want several errors, got %v", err)
	}
}

// TestLoadHostileYAML: exponential aliases and oversized files are refused
// quickly without expanding them.
func TestLoadHostileYAML(t *testing.T) {
	laughs := `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
`
	if _, err := Load("laughs.yaml", []byte(laughs), testEnv(nil, nil)); err == nil || !strings.Contains(err.Error(), "aliases") {
		t.Errorf("billion laughs: %v", err)
	}
	big := strings.Repeat("# padding\n", MaxFileBytes/10+1)
	if _, err := Load("big.yaml", []byte(big), testEnv(nil, nil)); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "nope.yaml"), OSEnv())
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

// TestLoadDesignExample: the configuration in DESIGN.md loads as written.
func TestLoadDesignExample(t *testing.T) {
	b, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv(map[string]string{"WAREHOUSE_TOKEN": "t", "SLACK_WEBHOOK": "https://hooks.slack.com/x", "HOOK_SECRET": "s"},
		map[string]string{"/run/secrets/github": "ghp_x"})
	cfg, err := Load("design.yaml", b, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Notify) != 2 || cfg.Notify[0].ResolvedURL.Reveal() != "https://hooks.slack.com/x" {
		t.Errorf("notify = %+v", cfg.Notify)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("servers: {a: {transport: stdio, command: x}}"))
	f.Add([]byte("a: &a [1]\nb: *a"))
	f.Add(Example())
	broken, _ := filepath.Glob(filepath.Join("testdata", "errors", "*.yaml"))
	for _, file := range broken {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	env := testEnv(map[string]string{"WAREHOUSE_TOKEN": "x"}, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Load("fuzz.yaml", data, env)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
	})
}

func TestPolicyMethodWarnings(t *testing.T) {
	yaml := `
identity: {issuer: "https://id.example.com", audience: api://b, client_id: c}
storage: {path: /tmp/x.db}
audit: {signing_key_file: /etc/bridge/audit-signing-key.pem, witness: {file: /var/log/bridge/audit-heads.jsonl}}
servers:
  demo: {transport: stdio, command: demo}
policy:
  rules:
    - name: vendor
      methods: [acme/deploy]
      action: allow
    - name: typo
      methods: [prompts/gett]
      action: allow
`
	cfg, err := Load("gateway.yaml", []byte(yaml), Env{Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("an unknown method name was refused: %v", err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Error(), `gateway.yaml:13: policy.rules[1].methods[0]: unknown method "prompts/gett" (did you mean "prompts/get"?)`) {
		t.Errorf("warnings %v", cfg.Warnings)
	}
}

func TestAuditDurabilityAndLogDirectory(t *testing.T) {
	env := Env{Getenv: func(string) (string, bool) { return "", false }}
	doc := func(audit string) []byte {
		return []byte(`
identity: {issuer: "https://id.example.com", audience: api://b, client_id: c}
storage: {path: /var/lib/bridge/bridge.db}
servers:
  demo: {transport: stdio, command: demo}
audit: ` + audit + "\n")
	}
	for _, tc := range []struct {
		audit string
		want  audit.Durability
		err   string
	}{
		{`{signing_key_file: /k.pem, witness: {file: /w/heads.jsonl}}`, audit.DurabilityGroup, ""},
		{`{durability: group, signing_key_file: /k.pem, witness: {file: /w/heads.jsonl}}`, audit.DurabilityGroup, ""},
		{`{durability: os, signing_key_file: /k.pem, witness: {file: /w/heads.jsonl}}`, audit.DurabilityOS, ""},
		{`{durability: none, signing_key_file: /k.pem, witness: {file: /w/heads.jsonl}}`, "", `audit.durability: must be "group"`},
		{`{signing_key_file: /k.pem, witness: {file: /var/lib/bridge/bridge.db.audit/heads.jsonl}}`, "", "inside its audit log directory"},
	} {
		cfg, err := Load("gateway.yaml", doc(tc.audit), env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want %q", tc.audit, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.audit, err)
			continue
		}
		if got := cfg.Audit.DurabilityLevel(); got != tc.want {
			t.Errorf("%s: durability %q, want %q", tc.audit, got, tc.want)
		}
	}
}
