package settings

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestManagedPath(t *testing.T) {
	env := map[string]string{"ProgramData": `D:\PD\`}
	for _, tc := range []struct{ goos, want string }{
		{"linux", "/etc/bridge/config.yaml"},
		{"freebsd", "/etc/bridge/config.yaml"},
		{"darwin", "/Library/Application Support/bridge/config.yaml"},
		{"windows", `D:\PD\bridge\config.yaml`},
	} {
		if got := ManagedPath(tc.goos, func(k string) string { return env[k] }); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.goos, got, tc.want)
		}
	}
	if got := ManagedPath("windows", func(string) string { return "" }); got != `C:\ProgramData\bridge\config.yaml` {
		t.Errorf("windows without ProgramData: %s", got)
	}
}

func writeManaged(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadManaged(t *testing.T) {
	m, err := LoadManaged(filepath.Join(t.TempDir(), "missing.yaml"))
	if m != nil || err != nil {
		t.Errorf("missing file: %v, %v; want nil, nil", m, err)
	}
	p := writeManaged(t, "# ACME\ngateway: https://mcp-gw.acme.example/\nissuer: https://acme.okta.com/oauth2/default\nlocked: [gateway]\n")
	m, err = LoadManaged(p)
	if err != nil {
		t.Fatal(err)
	}
	if m.Gateway != "https://mcp-gw.acme.example" || m.Issuer != "https://acme.okta.com/oauth2/default" || !m.locks(Gateway) || m.locks(Issuer) || m.Path != p {
		t.Errorf("parsed %+v", m)
	}
	if m, err := ParseManaged("empty.yaml", []byte("\n# nothing\n")); err != nil || m.Gateway != "" {
		t.Errorf("empty file: %+v %v", m, err)
	}
}

func TestLoadManagedRejects(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"gateway: https://x\ntoken: abc\n", `line 2`},
		{"gateway: https://x\nlocked: [gatway]\n", `unknown key "gatway"`},
		{"locked: [issuer]\n", "issuer has no value to lock"},
		{"gateway: ftp://x\n", `gateway: "ftp://x" is not an http(s) URL`},
		{"gateway: [a, b]\n", "line 1"},
		{strings.Repeat("#", maxManagedSize+1), "larger than 64 KiB"},
	} {
		p := writeManaged(t, tc.yaml)
		_, err := LoadManaged(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%q: error %v, want one naming %s and %q", tc.yaml, err, p, tc.want)
		}
	}
}

func TestResolvePrecedence(t *testing.T) {
	builtIn := Values{Gateway: "https://built.in", Issuer: "https://idp.built.in", ClientID: "built-in-client"}
	managed := &Managed{Path: "/etc/bridge/config.yaml", Values: Values{Gateway: "https://managed", Issuer: "https://idp.managed"}}
	user := Values{Gateway: "https://user/"}

	type want struct{ value, source string }
	check := func(t *testing.T, s *Settings, key string, w want) {
		t.Helper()
		got := s.Get(key)
		if got.Value != w.value || got.Source != w.source {
			t.Errorf("%s = %q from %q, want %q from %q", key, got.Value, got.Source, w.value, w.source)
		}
	}

	s, err := Resolve(Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	check(t, s, Gateway, want{"", ""})

	s, _ = Resolve(Inputs{BuiltIn: builtIn})
	check(t, s, Gateway, want{"https://built.in", "built in"})

	s, _ = Resolve(Inputs{BuiltIn: builtIn, Managed: managed})
	check(t, s, Gateway, want{"https://managed", "managed (/etc/bridge/config.yaml)"})
	check(t, s, ClientID, want{"built-in-client", "built in"})

	s, _ = Resolve(Inputs{BuiltIn: builtIn, Managed: managed, User: user, UserPath: "/h/config.json"})
	check(t, s, Gateway, want{"https://user", "user profile (/h/config.json)"})
	check(t, s, Issuer, want{"https://idp.managed", "managed (/etc/bridge/config.yaml)"})

	s, _ = Resolve(Inputs{BuiltIn: builtIn, Managed: managed, User: user, Flags: Values{Gateway: "https://flag"}})
	check(t, s, Gateway, want{"https://flag", "flag"})

	if keys := len(s.All()); keys != 3 {
		t.Errorf("All has %d settings", keys)
	}
}

func TestResolveLocked(t *testing.T) {
	managed := &Managed{Path: "/etc/bridge/config.yaml", Values: Values{Gateway: "https://managed"}, Locked: []string{Gateway}}

	s, err := Resolve(Inputs{Managed: managed, User: Values{Gateway: "https://user"}, UserPath: "/h/config.json"})
	if err != nil {
		t.Fatal(err)
	}
	g := s.Get(Gateway)
	if g.Value != "https://managed" || !g.Locked || g.Source != "managed, locked (/etc/bridge/config.yaml)" || g.Ignored != "user profile says https://user" {
		t.Errorf("locked gateway: %+v", g)
	}

	// A flag naming the locked value is fine; another value is refused.
	if _, err := Resolve(Inputs{Managed: managed, Flags: Values{Gateway: "https://managed/"}}); err != nil {
		t.Errorf("flag equal to the locked value: %v", err)
	}
	_, err = Resolve(Inputs{Managed: managed, Flags: Values{Gateway: "https://elsewhere"}})
	var le *LockedError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "--gateway cannot change it") {
		t.Errorf("flag overriding a lock: %v", err)
	}
}
