package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge/settings"
)

func versionOutput(t *testing.T, home string, opts *VersionOptions) string {
	t.Helper()
	var out bytes.Buffer
	opts.F = &Factory{
		IO:     IOStreams{Out: &out, ErrOut: &out},
		Getenv: func(k string) string { return map[string]string{auth.HomeEnv: home}[k] },
		Now:    func() time.Time { return doctorNow },
	}
	if err := versionRun(opts); err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(strings.ReplaceAll(out.String(), home, "$BRIDGE_HOME"), filepath.Dir(opts.ManagedPath), "$ETC")
}

var testBuild = BuildInfo{
	Version: "1.4.0", Commit: "3f9f6f16c0ffee", Date: "2026-11-20T08:00:00Z",
	GoVersion: "go1.26.8", OS: "linux", Arch: "amd64",
}

func TestVersionSources(t *testing.T) {
	home, etc := t.TempDir(), t.TempDir()
	managed := filepath.Join(etc, "config.yaml")
	b := testBuild
	b.BuiltIn = settings.Values{Gateway: "https://built-in.example.com", ClientID: "0oa-built-in"}

	// Built in only.
	got := versionOutput(t, home, &VersionOptions{Build: b, ManagedPath: managed})
	checkGolden(t, filepath.Join("testdata", "version", "built-in.golden"), got)

	// A managed file locking the gateway, an issuer from it, and a user
	// profile whose gateway the lock overrides.
	writeFile(t, managed, "gateway: https://mcp-gw.acme.example\nissuer: https://acme.okta.com/oauth2/default\nlocked: [gateway]\n")
	if err := auth.SaveProfile(home, &auth.Profile{Gateway: "https://elsewhere.example.com", ClientID: "0oa-user"}); err != nil {
		t.Fatal(err)
	}
	got = versionOutput(t, home, &VersionOptions{Build: b, ManagedPath: managed})
	checkGolden(t, filepath.Join("testdata", "version", "managed-locked.golden"), got)

	// A broken managed file is shown, not hidden.
	writeFile(t, managed, "gateway: [\n")
	got = versionOutput(t, home, &VersionOptions{Build: b, ManagedPath: managed})
	checkGolden(t, filepath.Join("testdata", "version", "managed-invalid.golden"), got)
}

func TestVersionResolveGateway(t *testing.T) {
	home := t.TempDir()
	f := &Factory{Getenv: func(k string) string { return map[string]string{auth.HomeEnv: home}[k] }}
	// With no profile, no flag, no managed file and no built-in default
	// (the test binary has none), there is no gateway.
	if _, err := resolveGateway(f, "", nil); err == nil || !strings.Contains(err.Error(), "bridge login --gateway") {
		t.Errorf("no gateway: %v", err)
	}
	gw, err := resolveGateway(f, "https://flag.example.com/", &auth.Profile{Gateway: "https://profile.example.com"})
	if err != nil || gw != "https://flag.example.com" {
		t.Errorf("flag: %q %v", gw, err)
	}
	gw, err = resolveGateway(f, "", &auth.Profile{Gateway: "https://profile.example.com"})
	if err != nil || gw != "https://profile.example.com" {
		t.Errorf("profile: %q %v", gw, err)
	}

	managed := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, managed, "gateway: https://locked.example.com\nlocked: [gateway]\n")
	_, err = resolveSettings(managed, settings.Values{}, home, nil, settings.Values{Gateway: "https://flag.example.com"})
	var ue usageError
	if err == nil || !strings.Contains(err.Error(), "locked") || !asUsage(err, &ue) {
		t.Errorf("flag against a lock: %v", err)
	}
}

func asUsage(err error, ue *usageError) bool {
	u, ok := err.(usageError)
	if ok {
		*ue = u
	}
	return ok
}
