package auth

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestDefaultHome(t *testing.T) {
	env := map[string]string{HomeEnv: "/tmp/x/../bridge-home"}
	got, err := DefaultHome(func(k string) string { return env[k] })
	if err != nil || got != "/tmp/bridge-home" {
		t.Fatalf("DefaultHome with %s = %q, %v", HomeEnv, got, err)
	}
	t.Setenv("XDG_CONFIG_HOME", "/tmp/xdg") // os.UserConfigDir on Linux
	got, err = DefaultHome(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(got) != "bridge" {
		t.Fatalf("DefaultHome = %q, want .../bridge", got)
	}
}

func TestProfileSaveLoad(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	if _, err := LoadProfile(home); !errors.Is(err, ErrNoProfile) {
		t.Fatalf("LoadProfile on empty home: %v", err)
	}
	p := &Profile{Gateway: "https://gw.example.com", Issuer: "https://x.okta.com/oauth2/default", ClientID: "0oa1", Audience: "api://bridge", Scopes: []string{"openid"}}
	if err := SaveProfile(home, p); err != nil {
		t.Fatal(err)
	}
	got, err := LoadProfile(home)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("got %+v, want %+v", got, p)
	}
	assertMode(t, home, 0o700)
	assertMode(t, ProfilePath(home), 0o600)
	entries, _ := os.ReadDir(home)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}
