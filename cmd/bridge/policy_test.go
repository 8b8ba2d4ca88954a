package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testFactory() (*Factory, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	f := newFactory()
	f.IO = IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut}
	return f, out, errOut
}

// golden compares got with testdata/name; -update (doctor_test.go) rewrites it.
func golden(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func TestPolicyFlags(t *testing.T) {
	f, _, _ := testFactory()
	var got *PolicyOptions
	cmd := NewCmdPolicy(f, nil, func(_ context.Context, o *PolicyOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"test", "--config", "g.yaml", "--user", "a@x", "--groups", "eng,ops", "--server", "demo", "--tool", "echo", "--args", `{"m":1}`})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Ref != "" {
		t.Errorf("--ref defaults to %q", got.Ref)
	}
	if got.User != "a@x" || len(got.Groups) != 2 || got.Server != "demo" || got.Tool != "echo" || got.Method != "tools/call" {
		t.Errorf("options = %+v", got)
	}
	cmd = NewCmdPolicy(f, nil, func(context.Context, *PolicyOptions) error { return nil })
	cmd.SetArgs([]string{"test", "--config", "g.yaml", "--server", "demo", "--args", "{bad"})
	var ue usageError
	if err := cmd.Execute(); !errors.As(err, &ue) {
		t.Errorf("bad --args: %v", err)
	}
}

// TestPolicyCommandsGolden checks `policy check` and `policy test` output
// against golden files, on the dev mode's sample policy.
func TestPolicyCommandsGolden(t *testing.T) {
	cfgPath := writeSampleConfig(t)
	cases := []struct {
		name string
		run  func(*PolicyOptions) error
		opts PolicyOptions
	}{
		{"check.golden", policyCheckRun, PolicyOptions{Config: cfgPath}},
		{"test-allow.golden", policyTestRun, PolicyOptions{Config: cfgPath, User: "dev@example.com", Groups: []string{"engineering"}, Server: "demo", Method: "tools/call", Tool: "echo", Args: `{"message":"hi"}`}},
		{"test-deny.golden", policyTestRun, PolicyOptions{Config: cfgPath, User: "dev@example.com", Server: "demo", Method: "tools/call", Tool: "delete_records", Args: `{"table":"customers"}`}},
		{"test-approve.golden", policyTestRun, PolicyOptions{Config: cfgPath, User: "dev@example.com", Server: "demo", Method: "tools/call", Tool: "delete_records", Args: `{"table":"customers","where":"id = 7"}`}},
		{"test-default.golden", policyTestRun, PolicyOptions{Config: cfgPath, User: "dev@example.com", Server: "demo", Method: "tools/call", Tool: "unknown_tool"}},
		{"test-list.golden", policyTestRun, PolicyOptions{Config: cfgPath, User: "dev@example.com", Server: "demo", Method: "prompts/list"}},
		{"test-completion.golden", policyTestRun, PolicyOptions{Config: cfgPath, User: "dev@example.com", Server: "demo", Method: "completion/complete", Ref: "ref/prompt", Tool: "summarize"}},
		{"test-unknown-method.golden", policyTestRun, PolicyOptions{Config: cfgPath, User: "dev@example.com", Server: "demo", Method: "acme/export"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, out, _ := testFactory()
			o := tc.opts
			o.F = f
			if err := tc.run(&o); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("policy", tc.name), strings.ReplaceAll(out.String(), cfgPath, "gateway.yaml"))
		})
	}
}

func TestPolicyCheckInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("listen: x\npolicy:\n  rules:\n    - when: 'arg.x'\n      action: allow\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, _, _ := testFactory()
	err := policyCheckRun(&PolicyOptions{F: f, Config: path})
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:4: policy.rules[0].when") || !strings.Contains(err.Error(), "did you mean 'args'") {
		t.Errorf("error = %v", err)
	}
}

// writeSampleConfig writes the dev mode's configuration as a file.
func writeSampleConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../approval/devmode/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.NewReplacer("{{LISTEN}}", "127.0.0.1:8787", "{{ISSUER}}", "http://127.0.0.1:8787/dev/idp/oauth2/default",
		"{{SELF}}", "/usr/local/bin/bridge", "{{DATA}}", "/tmp/bridge").Replace(string(b))
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
