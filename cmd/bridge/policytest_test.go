package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// TestPolicyTestExpect: --expect passes on the decision it names and exits
// 1 on any other, so CI can assert on policies.
func TestPolicyTestExpect(t *testing.T) {
	cfgPath := writeSampleConfig(t)
	deny := PolicyOptions{Config: cfgPath, User: "dev@example.com", Server: "demo", Method: "tools/call", Tool: "delete_records", Args: `{"table":"customers"}`}
	tests := []struct {
		expect string
		want   ExitCode
	}{
		{"", ExitOK},
		{"deny", ExitOK},
		{"allow", ExitError},
		{"approve", ExitError},
	}
	for _, tt := range tests {
		t.Run("expect "+tt.expect, func(t *testing.T) {
			f, out, _ := testFactory()
			o := deny
			o.F, o.Expect = f, tt.expect
			err := policyTestRun(&o)
			if got := exitCodeFor(err); got != tt.want {
				t.Fatalf("exit %d (%v), want %d", got, err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), "the decision is deny (rule ") {
				t.Errorf("error %q does not say what the decision was", err)
			}
			if out.Len() == 0 {
				t.Error("no explanation printed")
			}
		})
	}
}

func TestPolicyTestFlagsValidated(t *testing.T) {
	for _, args := range [][]string{
		{"--expect", "maybe"},
		{"-o", "yaml"},
	} {
		f, _, _ := testFactory()
		cmd := NewCmdPolicy(f, nil, func(context.Context, *PolicyOptions) error { return nil })
		cmd.SetArgs(append([]string{"test", "--config", "g.yaml", "--server", "demo"}, args...))
		var ue usageError
		if err := cmd.Execute(); !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestPolicyTestJSON: -o json is one strict JSON object a script can read.
func TestPolicyTestJSON(t *testing.T) {
	cfgPath := writeSampleConfig(t)
	f, out, _ := testFactory()
	o := PolicyOptions{F: f, Config: cfgPath, User: "dev@example.com", Server: "demo", Method: "tools/call", Tool: "delete_records",
		Args: `{"table":"customers","where":"id = 7"}`, Output: "json", Expect: "approve"}
	if err := policyTestRun(&o); err != nil {
		t.Fatal(err)
	}
	var v explanationView
	if err := json.Unmarshal(out.Bytes(), &v, jsontext.AllowDuplicateNames(false)); err != nil {
		t.Fatalf("not strict JSON: %v\n%s", err, out)
	}
	if v.Decision != "approve" || v.Approval == nil || len(v.Rules) == 0 || !v.Rules[len(v.Rules)-1].Matched {
		t.Errorf("view = %+v", v)
	}
	golden(t, filepath.Join("policy", "test-approve.json"), out.String())
}
