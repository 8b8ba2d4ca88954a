package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNormalizeGateway(t *testing.T) {
	tests := []struct {
		in, want string
		usage    bool
	}{
		{"", "", false},
		{"https://mcp-gw.example.com/", "https://mcp-gw.example.com", false},
		{"mcp-gw.example.com", "https://mcp-gw.example.com", false},
		{"mcp-gw.example.com:8443", "https://mcp-gw.example.com:8443", false},
		{"127.0.0.1:8787", "http://127.0.0.1:8787", false},
		{"localhost:8787", "http://localhost:8787", false},
		{"[::1]:8787", "http://[::1]:8787", false},
		{"http://127.0.0.1:8787", "http://127.0.0.1:8787", false},
		{"ftp://mcp-gw.example.com", "", true},
		{"https://", "", true},
		{"https://user:pw@mcp-gw.example.com", "", true},
		{"mcp-gw.example.com:", "", true},
		{"https://mcp-gw.example.com/?a=b", "", true},
	}
	for _, tt := range tests {
		got, err := normalizeGateway(tt.in)
		var ue usageError
		if tt.usage != errors.As(err, &ue) {
			t.Errorf("normalizeGateway(%q) error = %v, want a usage error: %v", tt.in, err, tt.usage)
			continue
		}
		if got != tt.want {
			t.Errorf("normalizeGateway(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestNotLoggedInHintOnce: the hint to log in is given once, not doubled
// ("run `bridge login`: run `bridge login`").
func TestNotLoggedInHintOnce(t *testing.T) {
	home := t.TempDir()
	for _, args := range [][]string{{"approvals", "list"}, {"policy", "pins", "list"}, {"status"}} {
		f, _, errOut := testFactory()
		f.Getenv = func(k string) string {
			if k == "BRIDGE_HOME" {
				return home
			}
			return ""
		}
		f.Keyring = &memKeyring{}
		root := NewCmdRoot(f)
		root.SetArgs(append(args, "--gateway", "127.0.0.1:9"))
		root.SetOut(errOut)
		root.SetErr(errOut)
		err := root.Execute()
		if err == nil {
			t.Fatalf("%v: no error without a login", args)
		}
		if n := strings.Count(err.Error(), "bridge login"); n != 1 {
			t.Errorf("%v: %q names bridge login %d times, want once", args, err, n)
		}
	}
}

func TestValidity(t *testing.T) {
	now := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		expires time.Time
		want    string
	}{
		{now.Add(14*time.Minute + 51*time.Second), "within the next 14m51s"},
		{now.Add(-time.Minute), "no longer: the approval has expired"},
		{now, "no longer: the approval has expired"},
	} {
		if got := validity(tt.expires, now); got != tt.want {
			t.Errorf("validity(%v) = %q, want %q", tt.expires.Sub(now), got, tt.want)
		}
	}
}

// FuzzNormalizeGateway: what normalizeGateway accepts is an http(s) URL
// with a host, and normalizing it again changes nothing.
func FuzzNormalizeGateway(f *testing.F) {
	for _, s := range []string{"mcp-gw.example.com", "127.0.0.1:8787", "https://x/", "[::1]:1", "http://a@b", "x:", "//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := normalizeGateway(raw)
		if err != nil || got == "" {
			return
		}
		again, err := normalizeGateway(got)
		if err != nil || again != got {
			t.Fatalf("normalizeGateway(%q) = %q, which normalizes to %q, %v", raw, got, again, err)
		}
		if !strings.HasPrefix(got, "https://") && !strings.HasPrefix(got, "http://") {
			t.Fatalf("normalizeGateway(%q) = %q: not an http(s) URL", raw, got)
		}
	})
}
