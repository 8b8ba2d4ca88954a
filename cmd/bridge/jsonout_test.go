package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/seed-3f9f6f16/bridge/auth"
)

// strictJSON decodes out into v the way a careful script would: exact
// member names, no duplicates, nothing after the value.
func strictJSON(t *testing.T, out []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(out, v, json.RejectUnknownMembers(true)); err != nil {
		t.Fatalf("not the documented JSON: %v\n%s", err, out)
	}
}

func TestVersionJSON(t *testing.T) {
	f, out, _ := testFactory()
	home := t.TempDir()
	f.Getenv = func(k string) string {
		if k == auth.HomeEnv {
			return home
		}
		return ""
	}
	opts := &VersionOptions{F: f, Output: "json", ManagedPath: filepath.Join(t.TempDir(), "managed.yaml"),
		Build: BuildInfo{Version: "1.2.3", Commit: "abc", Date: "2026-03-14", GoVersion: "go1.26", OS: "linux", Arch: "amd64"}}
	if err := versionRun(opts); err != nil {
		t.Fatal(err)
	}
	var v versionView
	strictJSON(t, out.Bytes(), &v)
	if v.Version != "1.2.3" || v.Commit != "abc" || len(v.Settings) == 0 || v.SettingsError != "" {
		t.Errorf("version = %+v", v)
	}
}

func TestStatusJSON(t *testing.T) {
	w := newDoctorWorld(t)
	w.env[auth.TokenEnv] = aliceToken
	var out bytes.Buffer
	f := &Factory{
		IO:         IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &bytes.Buffer{}},
		Getenv:     func(k string) string { return w.env[k] },
		LookupEnv:  func(k string) (string, bool) { v, ok := w.env[k]; return v, ok },
		Now:        func() time.Time { return doctorNow },
		HTTPClient: func() *http.Client { return w.hc },
		Keyring:    w.kr,
	}
	if err := statusRun(context.Background(), &LoginOptions{F: f, Gateway: w.srv.URL, Output: "json"}); err != nil {
		t.Fatal(err)
	}
	var v statusView
	strictJSON(t, out.Bytes(), &v)
	if !v.Reachable || v.User == "" || v.TokenSource != auth.TokenEnv || v.Gateway != w.srv.URL {
		t.Errorf("status = %+v", v)
	}
	if strings.Contains(out.String(), aliceToken) {
		t.Error("the token is printed unmasked")
	}

	// Unreachable: the JSON says so and the command fails.
	out.Reset()
	w.srv.Close()
	err := statusRun(context.Background(), &LoginOptions{F: f, Gateway: w.srv.URL, Output: "json"})
	if err == nil {
		t.Fatal("no error with the gateway down")
	}
	v = statusView{}
	strictJSON(t, out.Bytes(), &v)
	if v.Reachable || !strings.Contains(v.Error, "unreachable") {
		t.Errorf("status of a stopped gateway = %+v", v)
	}
}

func TestDoctorJSON(t *testing.T) {
	w := newDoctorWorld(t)
	w.opts.Output = "json"
	var v doctorView
	var out bytes.Buffer
	f := &Factory{
		IO:         IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &bytes.Buffer{}},
		Getenv:     func(k string) string { return w.env[k] },
		LookupEnv:  func(k string) (string, bool) { v, ok := w.env[k]; return v, ok },
		Now:        func() time.Time { return doctorNow },
		HTTPClient: func() *http.Client { return w.hc },
		Keyring:    w.kr,
		Executable: func() (string, error) { return w.exe, nil },
	}
	w.opts.F = f
	if err := doctorRun(context.Background(), w.opts); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	strictJSON(t, out.Bytes(), &v)
	if !v.OK || len(v.Checks) == 0 {
		t.Errorf("doctor = %+v", v)
	}
	for _, c := range v.Checks {
		if c.Name == "" || len(c.Detail) == 0 || !strings.Contains(" ok warn fail skip ", " "+c.Status+" ") {
			t.Errorf("check %+v", c)
		}
	}

	// A failed check: ok is false and the exit status is 1's.
	w.srv.Close()
	out.Reset()
	err := doctorRun(context.Background(), w.opts)
	if exitCodeFor(err) != ExitError {
		t.Fatalf("doctor with the gateway down: %v", err)
	}
	v = doctorView{}
	strictJSON(t, out.Bytes(), &v)
	if v.OK {
		t.Error("ok although a check failed")
	}
}

func TestInstallListJSON(t *testing.T) {
	w := newInstallWorld(t)
	o := InstallOptions{F: w.opts.F, Installer: w.opts.Installer, Client: "claude-desktop", Server: "demo"}
	if err := installRun(&o); err != nil {
		t.Fatal(err)
	}
	w.out.Reset()
	w.opts.List, w.opts.Output = true, "json"
	if err := installListRun(w.opts); err != nil {
		t.Fatal(err)
	}
	var v []listingView
	strictJSON(t, w.out.Bytes(), &v)
	found := false
	for _, l := range v {
		if l.Client == "claude-desktop" && l.Scope == "user" {
			found = l.Status == "configured" && len(l.Servers) == 1 && l.Servers[0].Name == "demo"
		}
	}
	if !found {
		t.Errorf("claude-desktop's demo entry is not listed: %s", w.out.String())
	}
}
