package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge/install"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata")

// doctorNow is the doctor tests' clock.
var doctorNow = time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)

// memKeyring is an in-memory keychain; with err set, every call fails.
type memKeyring struct {
	mu  sync.Mutex
	m   map[string]string
	err error
}

func (k *memKeyring) Get(service, user string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return "", k.err
	}
	v, ok := k.m[service+"/"+user]
	if !ok {
		return "", auth.ErrKeyringNotFound
	}
	return v, nil
}

func (k *memKeyring) Set(service, user, value string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return k.err
	}
	if k.m == nil {
		k.m = map[string]string{}
	}
	k.m[service+"/"+user] = value
	return nil
}

func (k *memKeyring) Delete(service, user string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, service+"/"+user)
	return nil
}

// fakeGateway serves the two documents doctor reads.
type fakeGateway struct {
	token     string
	servers   []string
	skew      time.Duration // added to doctorNow in the Date header
	noConfig  bool
	whoamiErr int
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", doctorNow.Add(g.skew).Format(http.TimeFormat))
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case auth.BridgeConfigurationPath:
		if g.noConfig {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(auth.BridgeConfiguration{Issuer: "https://idp.example.com/oauth2/default", ClientID: "bridge-cli", Audience: "api://bridge"})
	case "/v1/whoami":
		if g.whoamiErr != 0 {
			w.WriteHeader(g.whoamiErr)
			_, _ = w.Write([]byte(`{"error":"invalid_token","error_description":"the token has expired"}`))
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+g.token {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_token"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"subject": "00u-alice", "email": "alice@example.com", "name": "Alice", "groups": []string{"engineering"},
			"expires_at": doctorNow.Add(45 * time.Minute), "servers": g.servers,
		})
	default:
		http.NotFound(w, r)
	}
}

// doctorWorld is a machine for doctor: a BRIDGE_HOME, a user home with
// agents' files, a keychain, a gateway and a bridge executable.
type doctorWorld struct {
	t          *testing.T
	home, user string
	exe        string
	env        map[string]string
	kr         *memKeyring
	gw         *fakeGateway
	srv        *httptest.Server
	hc         *http.Client
	in         *install.Installer
	opts       *DoctorOptions
}

const aliceToken = "eyJhbGciOiJSUzI1NiJ9.alice.signature"

// newDoctorWorld is a healthy set-up: logged in, a trusted gateway
// offering demo and github, and Claude Desktop running demo through
// bridge.
func newDoctorWorld(t *testing.T) *doctorWorld {
	t.Helper()
	w := &doctorWorld{t: t, home: t.TempDir(), user: t.TempDir(), env: map[string]string{}, kr: &memKeyring{}}
	w.env[auth.HomeEnv] = w.home
	w.exe = filepath.Join(t.TempDir(), "bridge")
	if err := os.WriteFile(w.exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.gw = &fakeGateway{token: aliceToken, servers: []string{"demo", "github"}}
	w.srv = httptest.NewServer(w.gw)
	t.Cleanup(w.srv.Close)
	w.hc = w.srv.Client()
	w.in = &install.Installer{
		Env: install.Env{GOOS: "linux", Home: w.user, Dir: t.TempDir(), Getenv: func(string) string { return "" }},
		Now: func() time.Time { return doctorNow },
	}
	w.opts = &DoctorOptions{ManagedPath: filepath.Join(t.TempDir(), "managed.yaml"), Installer: w.in}
	w.login(&auth.Token{AccessToken: aliceToken, RefreshToken: "refresh-alice", Expiry: doctorNow.Add(42 * time.Minute)})
	w.install("claude-desktop", "demo", w.exe, false)
	return w
}

func (w *doctorWorld) login(tok *auth.Token) {
	w.t.Helper()
	if err := auth.SaveProfile(w.home, &auth.Profile{Gateway: w.srv.URL, Issuer: "https://idp.example.com/oauth2/default", ClientID: "bridge-cli"}); err != nil {
		w.t.Fatal(err)
	}
	if tok != nil {
		if err := (&auth.KeyringStore{Keyring: w.kr}).Save(w.srv.URL, tok); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *doctorWorld) install(client, server, exe string, project bool) {
	w.t.Helper()
	c, _ := install.LookupClient(client)
	if _, err := w.in.Install(c, server, exe, install.Options{Project: project, Force: true}); err != nil {
		w.t.Fatal(err)
	}
}

// useTLS moves the gateway to HTTPS; trusted decides whether the client
// knows its certificate authority.
func (w *doctorWorld) useTLS(trusted bool) {
	w.srv.Close()
	w.srv = httptest.NewTLSServer(w.gw)
	w.t.Cleanup(w.srv.Close)
	w.hc = &http.Client{}
	if trusted {
		w.hc = w.srv.Client()
	}
	w.login(&auth.Token{AccessToken: aliceToken, Expiry: doctorNow.Add(42 * time.Minute)})
}

// run runs doctor and returns its output, with this world's random paths
// and ports replaced by names, followed by its result.
func (w *doctorWorld) run() string {
	w.t.Helper()
	var out, errOut bytes.Buffer
	f := &Factory{
		IO:         IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Getenv:     func(k string) string { return w.env[k] },
		LookupEnv:  func(k string) (string, bool) { v, ok := w.env[k]; return v, ok },
		Now:        func() time.Time { return doctorNow },
		HTTPClient: func() *http.Client { return w.hc },
		Keyring:    w.kr,
		Executable: func() (string, error) { return w.exe, nil },
	}
	w.opts.F = f
	err := doctorRun(context.Background(), w.opts)
	res := "exit: ok"
	if err != nil {
		res = "exit: error: " + err.Error()
		var de errDoctor
		if !errors.As(err, &de) {
			w.t.Errorf("doctor failed with %v, not its own error", err)
		}
	}
	s := out.String() + "---\n" + res + "\n"
	if errOut.Len() > 0 {
		s += "stderr:\n" + errOut.String()
	}
	for _, r := range []struct{ old, new string }{
		{w.srv.URL, "GATEWAY"},
		{w.home, "$BRIDGE_HOME"},
		{w.user, "$HOME"},
		{w.exe, "$BRIDGE"},
		{w.in.Env.Dir, "$PROJECT"},
		{filepath.Dir(w.opts.ManagedPath), "$ETC"},
	} {
		s = strings.ReplaceAll(s, r.old, r.new)
	}
	return s
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestDoctorGolden(t *testing.T) {
	cases := []struct {
		name  string
		setup func(w *doctorWorld)
	}{
		{"healthy", func(w *doctorWorld) {}},
		{"healthy-tls", func(w *doctorWorld) {
			w.useTLS(true)
			w.install("claude-desktop", "demo", w.exe, false)
		}},
		{"bridge-token", func(w *doctorWorld) { w.env[auth.TokenEnv] = aliceToken }},
		{"managed-locked", func(w *doctorWorld) {
			writeFile(t, w.opts.ManagedPath, "gateway: "+w.srv.URL+"\nlocked: [gateway]\n")
			w.opts.Gateway = ""
		}},
		{"no-gateway", func(w *doctorWorld) {
			_ = os.Remove(auth.ProfilePath(w.home))
		}},
		{"managed-invalid", func(w *doctorWorld) {
			writeFile(t, w.opts.ManagedPath, "gateway: https://gw.example.com\nlocked: [gatway]\n")
		}},
		{"not-logged-in", func(w *doctorWorld) { w.kr.m = nil }},
		{"login-expired", func(w *doctorWorld) {
			w.login(&auth.Token{AccessToken: aliceToken, Expiry: doctorNow.Add(-3 * time.Hour)})
		}},
		{"keychain-unavailable", func(w *doctorWorld) {
			w.kr.err = errors.New("org.freedesktop.secrets was not provided by any .service files")
			store := &auth.FileStore{Dir: auth.TokensDir(w.home)}
			if err := store.Save(w.srv.URL, &auth.Token{AccessToken: aliceToken, Expiry: doctorNow.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}},
		{"gateway-unreachable", func(w *doctorWorld) { w.srv.Close() }},
		{"not-a-gateway", func(w *doctorWorld) { w.gw.noConfig = true }},
		{"tls-untrusted", func(w *doctorWorld) { w.useTLS(false) }},
		{"clock-skew", func(w *doctorWorld) { w.gw.skew = -5 * time.Minute }},
		{"clock-skew-tolerated", func(w *doctorWorld) { w.gw.skew = 20 * time.Second }},
		{"token-rejected", func(w *doctorWorld) { w.gw.whoamiErr = http.StatusUnauthorized }},
		{"idp-down", func(w *doctorWorld) { w.gw.whoamiErr = http.StatusServiceUnavailable }},
		{"no-servers", func(w *doctorWorld) { w.gw.servers = nil }},
		{"no-agents", func(w *doctorWorld) {
			c, _ := install.LookupClient("claude-desktop")
			if _, err := w.in.Uninstall(c, "demo", install.Options{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"agents-broken", func(w *doctorWorld) {
			w.install("vscode", "github", w.exe, true)
			w.install("cursor", "github", filepath.Join(w.user, "old", "bridge"), false)
			w.install("claude-code", "warehouse", w.exe, false)
			c, _ := install.LookupClient("windsurf")
			tg, _ := c.Target(w.in.Env, false)
			writeFile(t, tg.Path, "{\"mcpServers\": {\n")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newDoctorWorld(t)
			tc.setup(w)
			checkGolden(t, filepath.Join("testdata", "doctor", tc.name+".golden"), w.run())
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDoctorFlags(t *testing.T) {
	var got *DoctorOptions
	cmd := NewCmdDoctor(&Factory{Getenv: func(string) string { return "" }}, func(_ context.Context, o *DoctorOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--gateway", "https://gw.example.com"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Gateway != "https://gw.example.com" || got.ManagedPath == "" {
		t.Errorf("options %+v", got)
	}
	cmd.SetArgs([]string{"extra"})
	if err := cmd.Execute(); err == nil {
		t.Error("doctor accepted an argument")
	}
}
